"""The notifications page: the user's channels (add, turn off, delete, send a test), which
events of each integration notify them, and the deliveries (an administrator sees all)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import NOTIFICATION_EVENTS, NotificationDelivery, User
from ctctsync.control.notify import MAX_ATTEMPTS, channel_kinds_available
from ctctsync.control.services import notifications as notes
from ctctsync.validation import STORE_INT_MAX
from ctctsync.web.deps import CurrentUser, Db, Plane
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.security import verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/notifications", dependencies=[Depends(verify_csrf)])

ChannelId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="A channel's id.")]


def _page(
    request: Request,
    db: Db,
    plane: Plane,
    user: User,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    created: dict[str, Any] | None = None,
    code: int = 200,
) -> Response:
    return render(
        request,
        "notifications.html",
        {
            "section": "notifications",
            "channels": notes.list_channels(db, user),
            "available": channel_kinds_available(plane.settings),
            "kind_labels": notes.KIND_LABELS,
            "event_labels": notes.EVENT_LABELS,
            "events": NOTIFICATION_EVENTS,
            "integrations": svc.list_integrations(db, user),
            "chosen": notes.choices(db, user),
            "deliveries": notes.list_deliveries(db, user),
            "shown": notes.DELIVERIES_SHOWN,
            "max_attempts": MAX_ATTEMPTS,
            "digest_hour": plane.settings.notify_digest_hour,
            "values": values or {"kind": "webhook", "name": "", "target": ""},
            "errors": errors or {},
            "created": created,
        },
        status_code=code,
    )


@router.get("")
def notifications_page(request: Request, db: Db, plane: Plane, user: CurrentUser) -> Response:
    """Channels, choices per integration, and recent deliveries."""
    return _page(request, db, plane, user)


@router.post("/channels")
def add_channel(request: Request, db: Db, plane: Plane, user: CurrentUser, form: Form) -> Response:
    """Add a channel; a webhook's signing secret is shown on this response only."""
    values = {k: form_str(form, k) for k in ("kind", "name", "target")}
    try:
        channel, secret = notes.create_channel(
            db, user, values["kind"], values["name"], values["target"]
        )
    except ValidationFailed as exc:
        return _page(
            request, db, plane, user, values=values, errors=field_messages(exc.errors), code=422
        )
    created = {"name": channel.name, "kind": channel.kind, "secret": secret}
    return _page(request, db, plane, user, created=created)


@router.post("/channels/{channel_id}/test")
def send_test(
    request: Request, db: Db, plane: Plane, user: CurrentUser, channel_id: ChannelId
) -> Response:
    """Send a test message now and say how it went (a failure is retried like any other)."""
    name = notes.get_channel(db, user, channel_id).name
    delivery_id = notes.queue_test(db, user, channel_id).id
    db.close()  # SQLite: let go of the store before the sender writes to it
    status = plane.notifier.send_now(delivery_id)
    if status == "sent":
        flash(request, f"Test sent to “{name}”.")
    else:
        with plane.session() as fresh:
            row = fresh.get(NotificationDelivery, delivery_id)
            error = row.last_error if row is not None else None
        retry = " It is retried like any notification." if status == "pending" else ""
        flash(request, f"The test to “{name}” could not be sent: {error}.{retry}", "error")
    return RedirectResponse("/notifications", status_code=303)


@router.post("/channels/{channel_id}/enabled")
def toggle_channel(
    request: Request, db: Db, user: CurrentUser, channel_id: ChannelId, form: Form
) -> Response:
    """Turn a channel on or off."""
    on = form_str(form, "enabled") == "on"
    notes.set_channel_enabled(db, user, channel_id, on)
    flash(request, "The channel is on." if on else "The channel is off: nothing is sent to it.")
    return RedirectResponse("/notifications", status_code=303)


@router.post("/channels/{channel_id}/delete")
def delete_channel(request: Request, db: Db, user: CurrentUser, channel_id: ChannelId) -> Response:
    """Delete a channel and its deliveries."""
    notes.delete_channel(db, user, channel_id)
    flash(request, "The channel is deleted.")
    return RedirectResponse("/notifications", status_code=303)


@router.post("/choices")
def save_choices(request: Request, db: Db, user: CurrentUser, form: Form) -> Response:
    """Store the ticked events of every integration the form listed."""
    # ids as the form sends them; anything else (another digit script such as "²", which
    # str.isdigit() accepts and int() refuses, or beyond the store's integers) is no id
    shown = [v for v in form.getlist("integration") if isinstance(v, str) and _is_id(v)]
    for raw in shown:
        picked = [v for v in form.getlist(f"events.{raw}") if isinstance(v, str)]
        notes.set_choices(db, user, int(raw), picked)
    flash(request, "Your notification choices are saved.")
    return RedirectResponse("/notifications", status_code=303)


def _is_id(value: str) -> bool:
    """Whether ``value`` is a row id as a form sends it (ASCII digits, 1..STORE_INT_MAX)."""
    return value.isascii() and value.isdigit() and 1 <= int(value) <= STORE_INT_MAX
