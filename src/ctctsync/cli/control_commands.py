"""CLI command functions of the control plane (``cli.py`` wires them into typer).

Each function takes plain arguments, prints with rich (or JSON with ``as_json``) and
returns an exit code (:class:`ctctsync.errors.ExitCode`, the same as ``sync``'s): 0 success,
1 the run failed, 2 bad usage / input / configuration / not found, 3 the run stopped early
with its progress saved (daily quota spent, or cancelled), 4 re-authorization needed.

The CLI talks to the store directly (the same database the server uses) and acts as the
first administrator, so ``ctctsync integrations list`` sees every integration.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import sqlalchemy as sa
from rich.table import Table
from sqlalchemy.orm import Session

from ctctsync.cli.output import console, err_console
from ctctsync.control import services as svc
from ctctsync.control.errors import NotFound, QuotaWouldDefer, ServiceError
from ctctsync.control.models import DEFAULT_API_VERSION, ApiVersion, Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import (
    PARTNER_PER_DAY,
    PARTNER_PER_SECOND,
    IntegrationCreate,
    IntegrationPublic,
    KeyLimitsIn,
    KeyLimitsPublic,
    QuotaOverview,
    RunPublic,
    validated,
)
from ctctsync.control.settings import ControlSettings
from ctctsync.errors import ExitCode, RedactingFilter, exit_code

EXIT_OK = ExitCode.OK
EXIT_USAGE = ExitCode.CONFIG

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})



class _Abort(Exception):  # noqa: N818 -- internal: carries an exit code to the wrapper
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def _store(settings: ControlSettings | None) -> Iterator[tuple[ControlPlane, Session, User]]:
    """The plane (no threads), a session, and the acting administrator (the oldest active
    one)."""
    plane = ControlPlane(settings or ControlSettings())
    try:
        with plane.session() as db:
            actor = db.scalar(
                sa.select(User).where(User.is_admin, User.is_active).order_by(User.id)
            )
            if actor is None:
                err_console.print(
                    "[red]No active administrator exists yet.[/] Create one with "
                    "[bold]ctctsync users create EMAIL --admin[/].",
                    soft_wrap=True,
                )
                raise _Abort(EXIT_USAGE)
            yield plane, db, actor
    finally:
        plane.close()


def _guard(fn: Callable[[], int]) -> int:
    """Run a command body, turning service errors into messages and exit codes."""
    try:
        return fn()
    except _Abort as exc:
        return exc.code
    except ServiceError as exc:
        if exc.errors:
            for field, message in exc.errors.items():
                err_console.print(f"[red]{field}[/]: {message}")
        else:
            err_console.print(f"[red]{exc.message}[/]")
        return EXIT_USAGE


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _resolve_run(db: Session, user: User, run_id: str) -> Run:
    """A run by id or unique id prefix (the list shows 8 characters)."""
    if len(run_id) < 32:
        matches = list(db.scalars(sa.select(Run.id).where(Run.id.startswith(run_id)).limit(2)))
        if len(matches) != 1:
            raise NotFound(
                f"No run with id {run_id!r}."
                if not matches
                else f"Run id prefix {run_id!r} is ambiguous; give more characters."
            )
        run_id = matches[0]
    return svc.get_run(db, user, run_id)


def _when(value: object) -> str:
    return "-" if value is None else str(value)[:19].replace("T", " ")


# ----------------------------------------------------------------------------- integrations


def integrations_list(settings: ControlSettings | None = None, *, as_json: bool = False) -> int:
    """``ctctsync integrations list``: every integration with its state and last run."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            items = [IntegrationPublic.model_validate(i) for i in svc.list_integrations(db, actor)]
        if as_json:
            _print_json([i.model_dump(mode="json") for i in items])
            return EXIT_OK
        table = Table("name", "state", "every", "tables", "last run", "next run")
        for i in items:
            last = f"{i.last_run.status} {_when(i.last_run.created_at)}" if i.last_run else "-"
            table.add_row(
                i.name,
                i.state,
                f"{i.frequency_hours} h",
                str(len(i.tables)),
                last,
                _when(i.next_run_at),
            )
        console.print(table if items else "No integrations yet.")
        return EXIT_OK

    return _guard(body)


def integrations_add(
    name: str,
    *,
    frequency_hours: int = 24,
    history_start: str | None = None,
    tables: list[str] | None = None,
    api_key: str | None = None,
    access_token: str | None = None,
    api_version: ApiVersion = DEFAULT_API_VERSION,
    settings: ControlSettings | None = None,
    as_json: bool = False,
) -> int:
    """``ctctsync integrations add NAME``: create an integration, optionally with credentials.

    ``tables`` entries are ``table`` (all columns) or ``table:col1,col2``; without any, every
    table ``api_version`` reads. Without credentials, authorize it from the web UI. An API
    key with an access token is a v2 credential: given them, a v3 integration (which has
    not run yet) becomes v2 (``set_manual_credentials``), as CLI calls from before v3
    support expect.
    """

    def body() -> int:
        selection: dict[str, list[str] | None] | None = None
        if tables:
            selection = {}
            for item in tables:
                table, _, cols = item.partition(":")
                selection[table.strip()] = [c.strip() for c in cols.split(",")] if cols else None
        with _store(settings) as (_plane, db, actor):
            integ = svc.create_integration(
                db,
                actor,
                validated(
                    IntegrationCreate,
                    name=name,
                    frequency_hours=frequency_hours,
                    history_start=history_start,
                    api_version=api_version,
                    tables=selection,
                ),
            )
            if api_key or access_token:
                svc.set_manual_credentials(db, integ, api_key or "", access_token or "")
            shown = IntegrationPublic.model_validate(integ)
        if as_json:
            _print_json(shown.model_dump(mode="json"))
        else:
            console.print(
                f"Created integration [bold]{shown.name}[/] ({shown.state}, "
                f"API {shown.api_version})."
            )
            if shown.credentials.method is None:
                console.print("Authorize it with Constant Contact from the web UI to start runs.")
        return EXIT_OK

    return _guard(body)


def integrations_show(
    name: str, settings: ControlSettings | None = None, *, as_json: bool = False
) -> int:
    """``ctctsync integrations show NAME``: settings, state, selection and recent runs."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            integ = svc.get_integration_by_name(db, actor, name)
            shown = IntegrationPublic.model_validate(integ)
            runs = [RunPublic.model_validate(r) for r in svc.list_runs(db, actor, integ, limit=10)]
        if as_json:
            _print_json(
                {**shown.model_dump(mode="json"), "runs": [r.model_dump(mode="json") for r in runs]}
            )
            return EXIT_OK
        console.print(
            f"[bold]{shown.name}[/]  {shown.state}"
            + (f" - {shown.state_reason}" if shown.state_reason else "")
        )
        console.print(
            f"every {shown.frequency_hours} h, history from {shown.history_start}, "
            f"credentials {shown.credentials.access_token}"
            + (f" ({shown.credentials.method})" if shown.credentials.method else "")
            + f", next run {_when(shown.next_run_at)}"
        )
        for table_name, cols in shown.tables.items():
            console.print(f"  {table_name}: {'all columns' if cols is None else ', '.join(cols)}")
        _print_runs(runs)
        return EXIT_OK

    return _guard(body)


def _simple(
    name: str, settings: ControlSettings | None, action: Callable[[Session, Integration], str]
) -> int:
    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            message = action(db, svc.get_integration_by_name(db, actor, name))
        console.print(message)
        return EXIT_OK

    return _guard(body)


def integrations_pause(name: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync integrations pause NAME``."""
    return _simple(name, settings, lambda db, i: f"{svc.pause(db, i).name} is paused.")


def integrations_resume(name: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync integrations resume NAME`` (reactivate)."""
    return _simple(
        name, settings, lambda db, i: f"{i.name} is {svc.reactivate(db, i).state} again."
    )


def integrations_resync(name: str, table: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync integrations resync NAME TABLE``: re-read one table from the history start."""
    return _simple(
        name,
        settings,
        lambda db, i: f"Queued run {svc.resync_table(db, i, table).id[:8]} re-reading {table}.",
    )


def integrations_delete(
    name: str,
    *,
    drop_tables: bool = False,
    yes: bool = False,
    settings: ControlSettings | None = None,
) -> int:
    """``ctctsync integrations delete NAME [--drop-tables] --yes``."""
    if not yes:
        err_console.print(f"This deletes {name}, its runs and its bookmarks. Add --yes to confirm.")
        return EXIT_USAGE

    def action(db: Session, integ: Integration) -> str:
        dropped = svc.delete_integration(db, integ, drop_tables=drop_tables)
        return f"Deleted {name}." + (f" Dropped {', '.join(dropped)}." if dropped else "")

    return _simple(name, settings, action)


def integrations_run(
    name: str,
    *,
    wait: bool = False,
    settings: ControlSettings | None = None,
    poll_seconds: float = 2.0,
    when_quota_allows: bool = False,
) -> int:
    """``ctctsync integrations run NAME [--wait] [--when-quota-allows]``: queue a run; with
    ``--wait`` execute it here (or, if a server's worker took it, follow it) and exit with its
    outcome. When today's API quota will not cover it, nothing is queued (exit 3) unless
    ``--when-quota-allows`` (then it waits, deferred, for the quota's reset)."""

    def body() -> int:
        with _store(settings) as (plane, db, actor):
            integ = svc.get_integration_by_name(db, actor, name)
            try:
                run = svc.run_now(db, integ, actor, when_quota_allows=when_quota_allows)
            except QuotaWouldDefer as exc:
                err_console.print(f"[yellow]{exc.message}[/]")
                err_console.print("Use --when-quota-allows to queue it for then.")
                return int(ExitCode.STOPPED)
            run_id = run.id
            db.rollback()
            console.print(f"Queued run {run_id[:8]} of {name}.")
            if not wait:
                return EXIT_OK
            plane.work_once(f"{plane.process_id}:cli", run_id=run_id)
            while True:
                db.rollback()
                db.expire_all()
                current = svc.get_run(db, actor, run_id)
                if current.finished:
                    shown = RunPublic.model_validate(current)
                    break
                if current.status == "deferred":
                    reason = current.defer_reason
                    err_console.print(f"[yellow]Run {run_id[:8]} deferred:[/] {reason}")
                    return int(ExitCode.STOPPED)
                db.rollback()
                time.sleep(poll_seconds)  # a server's worker has it: follow it
        _print_runs([shown])
        if shown.error:
            console.print(shown.error)
        return _exit_code(shown)

    return _guard(body)


def _exit_code(run: RunPublic) -> int:
    """A finished run's exit code, by the one failure table (as ``ctctsync sync`` does)."""
    return int(exit_code(run.status, run.failure_type))


# ----------------------------------------------------------------------------- API budget


def _limit(value: float | int | None, is_default: bool, unit: str) -> str:
    if value is None:
        return "none"
    text = f"{value:,g}{unit}" if isinstance(value, float) else f"{value:,}{unit}"
    return f"{text} (default)" if is_default else text


def _print_plan(overview: QuotaOverview) -> None:
    now = overview.now
    hours = (overview.resets_at - now).total_seconds() / 3600
    console.print(
        f"API budget for {now.date().isoformat()} (UTC), at {now:%H:%M} UTC; the daily "
        f"quotas reset at 00:00 UTC (in {hours:.1f} h)."
    )
    rows = Table(
        "integration", "key", "every", "calls/run", "runs/day", "calls/day", "used today",
        "estimate basis", title="Integrations",
    )
    budgets = [(k.label, b) for k in overview.keys for b in k.integrations]
    budgets += [("no key yet", b) for b in overview.without_key]
    for label, b in budgets:
        rows.add_row(
            b.name,
            label,
            f"{b.frequency_hours} h" if b.schedulable else "not scheduled",
            f"{b.estimate.calls:,}",
            str(b.runs_per_day),
            f"{b.calls_per_day:,}",
            f"{b.used_today:,}",
            b.estimate.basis,
        )
    console.print(rows if budgets else "No integrations yet.")
    if overview.keys:
        keys = Table(
            "key", "per second", "per day", "planned/day", "used today", "in flight",
            "reserved (runs)", "headroom", title="API keys",
        )
        for k in overview.keys:
            keys.add_row(
                f"{k.label} ({k.key})",
                _limit(k.per_second, k.per_second_is_default, "/s"),
                _limit(k.per_day, k.per_day_is_default, ""),
                f"{k.planned_per_day:,}",
                f"{k.used_today:,}",
                f"{k.in_flight:,}",
                f"{k.reserved_today:,} ({k.reserved_runs})",
                "-" if k.headroom is None else f"{k.headroom:,}",
            )
        console.print(keys)
    for k in overview.keys:
        if k.warning:
            console.print(f"[bold yellow]Warning ({k.label}):[/] {k.warning}")


def plan(settings: ControlSettings | None = None, *, as_json: bool = False) -> int:
    """``ctctsync plan``: per integration its key, frequency, estimated calls per run and per
    day and their basis; per API key the day's plan against its daily limit (used today,
    reserved for today's scheduled runs, headroom) and a warning when the schedule does not
    fit."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            overview = svc.quota_overview(db, actor)
        if as_json:
            _print_json(overview.model_dump(mode="json"))
        else:
            _print_plan(overview)
        return EXIT_OK

    return _guard(body)


def _print_keys(keys: list[KeyLimitsPublic]) -> None:
    if not keys:
        console.print("No API key in use yet (integrations without credentials have none).")
        return
    table = Table("key", "label", "API", "per second", "per day", "changed")
    for k in keys:
        table.add_row(
            k.key,
            k.label,
            k.api_version,
            _limit(k.per_second, k.per_second_is_default, "/s"),
            _limit(k.per_day, k.per_day_is_default, ""),
            _when(k.updated_at),
        )
    console.print(table)


def api_keys_list(settings: ControlSettings | None = None, *, as_json: bool = False) -> int:
    """``ctctsync api-keys list``: the API keys in use and their limits (never the keys)."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            keys = svc.list_key_limits(db, actor)
        if as_json:
            _print_json([k.model_dump(mode="json") for k in keys])
        else:
            _print_keys(keys)
        return EXIT_OK

    return _guard(body)


def api_keys_set_limits(
    key: str,
    *,
    per_second: float | None = None,
    per_day: int | None = None,
    partner: bool = False,
    default: bool = False,
    settings: ControlSettings | None = None,
) -> int:
    """``ctctsync api-keys set-limits KEY [--per-second N] [--per-day N] [--partner]
    [--default]``: KEY is a fingerprint (or a unique prefix) from ``api-keys list``. Limits
    not given stay as they are; ``--partner`` means CC's partner limits (10/s, 250,000/day),
    ``--default`` the installation's defaults."""

    def body() -> int:
        if partner and default:
            err_console.print("[red]Choose --partner or --default, not both.[/]")
            return EXIT_USAGE
        with _store(settings) as (_plane, db, actor):
            known = svc.list_key_limits(db, actor)
            matches = [k for k in known if k.key.startswith(key.lower())] if key else []
            if len(matches) != 1:
                raise NotFound(
                    f"No API key {key!r} is in use; `ctctsync api-keys list` shows them."
                    if not matches
                    else f"Key prefix {key!r} is ambiguous; give more characters."
                )
            current = matches[0]
            second = None if current.per_second_is_default else current.per_second
            day = None if current.per_day_is_default else current.per_day
            if default:
                second = day = None
            if partner:
                second, day = PARTNER_PER_SECOND, PARTNER_PER_DAY
            second = per_second if per_second is not None else second
            day = per_day if per_day is not None else day
            data = validated(KeyLimitsIn, per_second=second, per_day=day)
            saved = svc.set_key_limits(db, actor, current.key, data)
        _print_keys([saved])
        return EXIT_OK

    return _guard(body)


# ----------------------------------------------------------------------------- runs


def _print_runs(runs: list[RunPublic]) -> None:
    if not runs:
        console.print("No runs yet.")
        return
    table = Table("run", "integration", "trigger", "status", "started", "took", "rows", "calls")
    for r in runs:
        took = f"{r.duration_seconds:.0f} s" if r.duration_seconds is not None else "-"
        table.add_row(
            r.id[:8],
            r.integration_name,
            r.trigger,
            r.status,
            _when(r.started_at),
            took,
            str(r.total_rows),
            str(r.api_calls),
        )
    console.print(table)


def runs_list(
    integration: str | None = None,
    *,
    limit: int = 20,
    settings: ControlSettings | None = None,
    as_json: bool = False,
) -> int:
    """``ctctsync runs list [INTEGRATION]``: the newest runs."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            integ = svc.get_integration_by_name(db, actor, integration) if integration else None
            found = svc.list_runs(db, actor, integ, limit=limit)
            runs = [RunPublic.model_validate(r) for r in found]
        if as_json:
            _print_json([r.model_dump(mode="json") for r in runs])
        else:
            _print_runs(runs)
        return EXIT_OK

    return _guard(body)


def runs_show(
    run_id: str, settings: ControlSettings | None = None, *, as_json: bool = False
) -> int:
    """``ctctsync runs show RUN``: status, rows per table, API calls, error."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            run = RunPublic.model_validate(_resolve_run(db, actor, run_id))
        if as_json:
            _print_json(run.model_dump(mode="json"))
            return EXIT_OK
        _print_runs([run])
        for table_name, rows in run.rows.items():
            console.print(f"  {table_name}: {rows} rows ({run.table_status.get(table_name, '-')})")
        if run.error:
            console.print(f"[red]{run.error}[/]")
        return EXIT_OK

    return _guard(body)


def runs_logs(
    run_id: str,
    *,
    follow: bool = False,
    settings: ControlSettings | None = None,
    poll_seconds: float = 1.0,
) -> int:
    """``ctctsync runs logs RUN [--follow]``: the run's process log."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            run = _resolve_run(db, actor, run_id)
            seq = 0
            while True:
                for line in svc.run_logs(db, run, seq):
                    console.print(f"{_when(line.ts)} {line.level:<7} {line.message}", markup=False)
                    seq = line.seq
                db.rollback()
                db.expire_all()
                run = svc.get_run(db, actor, run.id)
                if not follow or run.finished:
                    db.rollback()
                    if follow:
                        for line in svc.run_logs(db, run, seq):
                            console.print(
                                f"{_when(line.ts)} {line.level:<7} {line.message}", markup=False
                            )
                    return EXIT_OK
                db.rollback()
                time.sleep(poll_seconds)

    return _guard(body)


# ----------------------------------------------------------------------------- users, serve


def users_create_admin(email: str, password: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync users create-admin EMAIL``: create an administrator (the first or another)."""

    def body() -> int:
        plane = ControlPlane(settings or ControlSettings())
        try:
            with plane.session() as db:
                user = svc.create_user(db, email, password, is_admin=True)
                console.print(f"Created administrator {user.email}.")
        finally:
            plane.close()
        return EXIT_OK

    return _guard(body)


def users_unlock(email: str, settings: ControlSettings | None = None) -> int:
    """``ctctsync users unlock EMAIL``: clear a sign-in lockout (audited as the CLI's admin)."""

    def body() -> int:
        with _store(settings) as (_plane, db, actor):
            cleared = svc.unlock_account(db, actor, email, address="cli")
        console.print(
            f"Unlocked {email.strip().lower()}." if cleared else f"{email} was not locked."
        )
        return EXIT_OK

    return _guard(body)


def keys_generate() -> int:
    """``ctctsync keys generate``: print a session secret and a Fernet key, as environment
    lines to paste into the server's configuration (nothing is stored)."""
    from cryptography.fernet import Fernet

    from ctctsync.control.settings import generate_secret_key

    print(f"CTCTSYNC_SECRET_KEY={generate_secret_key()}")  # plain text: pipeable into an env file
    print(f"CTCTSYNC_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
    return EXIT_OK


def serve(
    settings: ControlSettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> int:
    """``ctctsync serve``: the web app, the REST API, the scheduler and the workers in one
    process. Binds 127.0.0.1 unless told otherwise; any other address requires an explicit
    ``CTCTSYNC_SECRET_KEY`` (and HTTPS in front: see docs/operations.md)."""
    import uvicorn

    from ctctsync.web.app import create_app

    base = settings or ControlSettings()
    update: dict[str, Any] = {}
    if host is not None:
        update["host"] = host
    if port is not None:
        update["port"] = port
    if workers is not None:
        update["workers"] = workers
    cfg = base.model_copy(update=update) if update else base
    if (problem := cfg.startup_problem()) is not None:
        err_console.print(f"[red]Refusing to start:[/] {problem}", soft_wrap=True)
        return EXIT_USAGE
    if cfg.host not in LOCAL_HOSTS and not cfg.secret_key_explicit:
        err_console.print(
            f"[red]Refusing to listen on {cfg.host} without an explicit secret key.[/] "
            "Set CTCTSYNC_SECRET_KEY (and CTCTSYNC_ENCRYPTION_KEY), and put HTTPS in front "
            "(docs/operations.md)."
        )
        return EXIT_USAGE
    plane = ControlPlane(cfg)
    with plane.session() as db:
        has_users = db.scalar(sa.select(sa.func.count()).select_from(User))
    if not has_users:
        console.print(
            "No users yet: create the first administrator with "
            "[bold]ctctsync users create EMAIL --admin[/] (or on the web page /setup)."
        )
    app = create_app(cfg, plane)
    # the access log shows request paths: an invitation link's or an OAuth callback's
    # ``token=``/``code=`` is scrubbed before it is written
    logging.getLogger("uvicorn.access").addFilter(RedactingFilter())
    plane.start()
    runs_where = (f"{cfg.workers} worker(s)" if cfg.queue != "procrastinate"
                  else "runs go to the fleet's queue: start `ctctsync worker` processes")
    console.print(
        f"ctctsync control plane on http://{cfg.host}:{cfg.port} "
        f"({runs_where}, store {_safe_url(cfg.resolved_database_url)})"
    )
    try:
        with _sigterm_as_sigint():
            uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
    finally:
        # Running jobs end `cancelled` within their request in flight and are due again at
        # once, so the next start resumes them from their bookmarks.
        plane.close()
    return EXIT_OK


def migrate(settings: ControlSettings | None = None) -> int:
    """``ctctsync migrate``: bring the store's schema to this version's head (and, with
    ``CTCTSYNC_QUEUE=procrastinate``, create procrastinate's tables), then exit.

    Every process migrates at start anyway; this is the explicit step of an upgrade: run it
    once with the new version, then restart the web process and the workers."""
    from ctctsync.control.database import (
        create_store_engine,
        current_revisions,
        head_revisions,
        upgrade_database,
    )

    cfg = settings or ControlSettings()
    if (problem := cfg.startup_problem()) is not None:
        err_console.print(f"[red]Refusing to start:[/] {problem}", soft_wrap=True)
        return EXIT_USAGE
    engine = create_store_engine(cfg.resolved_database_url)
    try:
        before = current_revisions(engine)
        ran = upgrade_database(engine)
        jobs = False
        if cfg.queue == "procrastinate":
            from ctctsync.control.fleet import ensure_schema, job_conninfo

            jobs = ensure_schema(job_conninfo(cfg.resolved_database_url))
    finally:
        engine.dispose()
    head = ", ".join(sorted(head_revisions()))
    where = _safe_url(cfg.resolved_database_url)
    if ran:
        was = ", ".join(sorted(before)) or "empty"
        console.print(f"store {where}: migrated from {was} to {head}")
    else:
        console.print(f"store {where}: already at {head}")
    if jobs:
        console.print("created procrastinate's tables (the fleet's queue)")
    return EXIT_OK


def worker(settings: ControlSettings | None = None, *, concurrency: int = 2) -> int:
    """``ctctsync worker``: execute runs from the procrastinate queue until SIGTERM/SIGINT
    (running syncs end ``cancelled``, resumed from their bookmarks by the next run)."""
    cfg = settings or ControlSettings()
    if cfg.queue != "procrastinate":
        err_console.print(
            "[red]Refusing to start:[/] ctctsync worker takes runs from the fleet's queue: "
            "set CTCTSYNC_QUEUE=procrastinate (with a PostgreSQL CTCTSYNC_DATABASE_URL). "
            "With the default queue, `ctctsync serve` runs the workers itself.",
            soft_wrap=True,
        )
        return EXIT_USAGE
    if (problem := cfg.startup_problem()) is not None:
        err_console.print(f"[red]Refusing to start:[/] {problem}", soft_wrap=True)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    plane = ControlPlane(cfg)
    assert plane.fleet is not None
    console.print(
        f"ctctsync worker {plane.process_id}: {concurrency} run(s) at once, "
        f"store {_safe_url(cfg.resolved_database_url)}"
    )
    try:
        plane.fleet.run_worker(concurrency)
    finally:
        plane.close()
    return EXIT_OK


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """Treat SIGTERM (what container platforms and systemd send) as Ctrl-C.

    uvicorn handles both signals while it serves, then re-raises the one it caught once it
    has stopped. SIGINT's default handler raises ``KeyboardInterrupt`` (which uvicorn.run
    swallows), so ``serve`` goes on to stop the plane and its jobs end ``cancelled``;
    SIGTERM's default handler would kill the process there, leaving its jobs ``running``
    until the sweeper fails them as "worker died".
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled on the main thread
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _safe_url(url: str) -> str:
    """A database URL without its password, for display."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"
