"""``ctctsync users ...``: the Admin > Users page on the command line (issue 12 §6).

Each function takes plain arguments, prints, and returns an exit code (0 done, 2 refused:
bad input, unknown user, a rule such as "the last active administrator stays active").
They act on the store the server uses, as an active administrator (audited with the address
``cli``); ``users create ... --admin`` also works while no user exists (the first one).
Secrets made here (a temporary password, an invitation link) are printed once, to stdout,
for the operator to pass on, and stored only as hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from ctctsync.cli.control_commands import EXIT_OK, EXIT_USAGE, _Abort, _guard, _when
from ctctsync.cli.output import console, err_console
from ctctsync.control import services as svc
from ctctsync.control.invite_mail import can_email, email_invitation
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings

CLI_ADDRESS = "cli"
"""What the audit log shows as the address of a change made from a shell."""


@contextmanager
def _session(settings: ControlSettings | None) -> Iterator[tuple[ControlPlane, Session]]:
    plane = ControlPlane(settings or ControlSettings())
    try:
        with plane.session() as db:
            yield plane, db
    finally:
        plane.close()


def _actor(db: Session, *, besides: User | None = None) -> User:
    """The active administrator the shell acts as: the oldest one, other than ``besides``
    (the target of the command, so that the shell can deactivate or reset an
    administrator while another one exists)."""
    query = sa.select(User).where(User.is_admin, User.is_active).order_by(User.id)
    if besides is not None:
        query = query.where(User.id != besides.id)
    actor = db.scalar(query)
    if actor is None:
        exists = db.scalar(sa.select(User.id).where(User.is_admin, User.is_active))
        err_console.print(
            f"[red]{escape(besides.email)} is the only active administrator.[/] Create "
            "another with [bold]ctctsync users create EMAIL --admin[/] first."
            if exists is not None and besides is not None
            else "[red]No active administrator exists yet.[/] Create one with "
            "[bold]ctctsync users create EMAIL --admin[/].",
            soft_wrap=True,
        )
        raise _Abort(EXIT_USAGE)
    return actor


def _role(user: User) -> str:
    return "administrator" if user.is_admin else "user"


def _status(user: User, locked: set[str]) -> str:
    if not user.is_active:
        return "deactivated"
    if user.email in locked:
        return "locked"
    if user.must_change_password:
        return "must change password"
    return "active"


def users_create(
    email: str,
    password: str | None,
    settings: ControlSettings | None = None,
    *,
    is_admin: bool = False,
) -> int:
    """``ctctsync users create EMAIL [--admin]``: create a user with ``password``, or (None)
    with a temporary password printed once, to be changed at the first sign-in."""

    def body() -> int:
        with _session(settings) as (_plane, db):
            has_users = db.scalar(sa.select(sa.func.count()).select_from(User))
            actor = _actor(db) if has_users else None
            user, temporary = svc.add_user(
                db, actor, email, is_admin=is_admin, password=password, address=CLI_ADDRESS
            )
            console.print(f"Created {_role(user)} {escape(user.email)}.")
            if temporary is not None:
                console.print(
                    "Temporary password (shown once; they choose their own at first sign-in):"
                )
                print(temporary)  # plain: nothing wraps or styles the secret
        return EXIT_OK

    return _guard(body)


def users_list(settings: ControlSettings | None = None, *, as_json: bool = False) -> int:
    """``ctctsync users list``: every user with role, status, created and last sign-in; and
    the invitations not accepted yet."""

    def body() -> int:
        with _session(settings) as (_plane, db):
            users = svc.list_users(db)
            actor = _actor(db) if users else None
            locked = {lock.email for lock in svc.list_lockouts(db, actor)} if actor else set()
            invites = svc.pending_invites(db, actor) if actor else []
            seen = svc.last_sign_ins(db)
            now = svc.context(db).now()
            rows = [
                {
                    "email": u.email,
                    "role": _role(u),
                    "status": _status(u, locked),
                    "created_at": u.created_at,
                    "last_sign_in": seen.get(u.id),
                    "deactivated_at": u.deactivated_at,
                }
                for u in users
            ]
            pending = [
                {
                    "email": i.email,
                    "role": "administrator" if i.is_admin else "user",
                    "expires_at": i.expires_at,
                    "expired": i.expires_at <= now,
                }
                for i in invites
            ]
        if as_json:
            console.print_json(json.dumps({"users": rows, "invites": pending}, default=str))
            return EXIT_OK
        grid = Table(title="Users", title_justify="left")
        for name in ("email", "role", "status", "created", "last sign-in"):
            grid.add_column(name)
        for row in rows:
            grid.add_row(
                escape(str(row["email"])), str(row["role"]), str(row["status"]),
                _when(row["created_at"]), _when(row["last_sign_in"]),
            )  # fmt: skip
        console.print(grid)
        if pending:
            invited = Table(title="Invitations not accepted yet", title_justify="left")
            for name in ("email", "role", "link valid until"):
                invited.add_column(name)
            for inv in pending:
                until = "expired" if inv["expired"] else _when(inv["expires_at"]) + " UTC"
                invited.add_row(escape(str(inv["email"])), str(inv["role"]), until)
            console.print(invited)
        return EXIT_OK

    return _guard(body)


def users_deactivate(email: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync users deactivate EMAIL``: no more sign-in; sessions end, API tokens are
    refused."""

    def body() -> int:
        with _session(settings) as (_plane, db):
            target = svc.user_by_email(db, email)
            actor = _actor(db, besides=target)
            ended = svc.deactivate_user(db, actor, target.id, address=CLI_ADDRESS)
            console.print(
                f"Deactivated {escape(target.email)}: {ended} session(s) ended, its API tokens "
                "are refused until it is re-activated."
            )
        return EXIT_OK

    return _guard(body)


def users_activate(email: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync users activate EMAIL``: a deactivated user may sign in again."""

    def body() -> int:
        with _session(settings) as (_plane, db):
            target = svc.user_by_email(db, email)
            svc.reactivate_user(db, _actor(db), target.id, address=CLI_ADDRESS)
            console.print(f"Re-activated {escape(target.email)}: it can sign in again.")
        return EXIT_OK

    return _guard(body)


def users_reset_password(email: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync users reset-password EMAIL``: a temporary password, printed once."""

    def body() -> int:
        with _session(settings) as (_plane, db):
            target = svc.user_by_email(db, email)
            actor = _actor(db, besides=target)
            secret = svc.reset_password(db, actor, target.id, address=CLI_ADDRESS)
            console.print(
                f"Reset the password of {escape(target.email)}; its sessions ended. Temporary "
                "password (shown once; a new one is chosen at the next sign-in):"
            )
            print(secret)
        return EXIT_OK

    return _guard(body)


def users_invite(
    email: str,
    settings: ControlSettings | None = None,
    *,
    is_admin: bool = False,
    send_email: bool = False,
) -> int:
    """``ctctsync users invite EMAIL [--admin] [--send-email]``: print a one-time invitation
    link (and e-mail it through the configured SMTP server)."""

    def body() -> int:
        with _session(settings) as (plane, db):
            if send_email and not can_email(plane.settings):
                err_console.print(
                    "[red]E-mail is not configured on this server[/] (CTCTSYNC_SMTP_HOST is "
                    "unset): leave out --send-email and pass the printed link on.",
                    soft_wrap=True,
                )
                return EXIT_USAGE
            invite, token = svc.invite_user(
                db, _actor(db), email, is_admin=is_admin, address=CLI_ADDRESS
            )
            link = svc.invite_url(plane.settings.public_base_url, token)
            console.print(
                f"Invited {escape(invite.email)} as {'an administrator' if is_admin else 'a user'}."
                f" Send them this link (shown once; valid until "
                f"{invite.expires_at:%Y-%m-%d %H:%M} UTC, once):"
            )
            print(link)
            if send_email:
                actor = svc.get_user(db, invite.created_by_id) if invite.created_by_id else None
                inviter = actor.email if actor is not None else "An administrator"
                failed = email_invitation(plane.settings, invite, link, inviter)
                if failed:
                    err_console.print(
                        f"[red]The e-mail could not be sent:[/] {escape(failed)}. Pass the link "
                        "on yourself.",
                        soft_wrap=True,
                    )
                    return EXIT_USAGE
                console.print(f"E-mailed the link to {escape(invite.email)}.")
        return EXIT_OK

    return _guard(body)
