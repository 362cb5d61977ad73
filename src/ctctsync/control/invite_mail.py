"""E-mailing an invitation link through the SMTP server the notifications use
(``CTCTSYNC_SMTP_*``, :func:`ctctsync.control.notify.send_email`), when one is configured.

The link is always shown to the administrator as well: a mail that is refused or lost must
not leave the person without a way in. Sending happens after the invitation is stored, once,
without retries (the administrator sees the outcome at once and can pass the link on).
"""

from __future__ import annotations

from ctctsync.control.models import UserInvite
from ctctsync.control.notify import DeliveryFailed, send_email
from ctctsync.control.settings import ControlSettings


def can_email(settings: ControlSettings) -> bool:
    """Whether this server can send e-mail (``CTCTSYNC_SMTP_HOST`` is set)."""
    return bool(settings.smtp_host)


def invitation_text(invite: UserInvite, link: str, inviter: str) -> tuple[str, str]:
    """The subject and plain-text body of an invitation e-mail."""
    role = "an administrator" if invite.is_admin else "a user"
    subject = "Your invitation to ctctsync"
    body = (
        f"{inviter} invited you to ctctsync (Constant Contact to warehouse) as {role}.\n\n"
        f"Open this link to choose your password and sign in:\n\n{link}\n\n"
        f"It works once, until {invite.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect "
        "this invitation, ignore this message: nothing happens without the link.\n"
    )
    return subject, body


def email_invitation(
    settings: ControlSettings, invite: UserInvite, link: str, inviter: str
) -> str | None:
    """Send the invitation to its address; None when sent, else why not (no URL, no
    secret in the message)."""
    subject, body = invitation_text(invite, link, inviter)
    try:
        send_email(settings, invite.email, subject, body)
    except DeliveryFailed as exc:
        return exc.message
    return None
