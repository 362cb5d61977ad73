"""Jinja2 environment and the ``render`` helper every page uses.

``render`` adds what the base layout needs (the signed-in user, the CSRF token, one-shot
flash messages, the nav section) so routes pass only their own values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined
from starlette.responses import HTMLResponse

from ctctsync.control.services.users import PASSWORD_RULES
from ctctsync.web.security import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

_FLASH_KEY = "flashes"

STATE_LABELS: dict[str, str] = {
    "draft": "Setup not finished",
    "pending": "Pending",
    "active": "Active",
    "paused": "Paused",
    "failed": "Failed",
    "needs_reauth": "Needs re-authorization",
    "queued": "Queued",
    "deferred": "Deferred",
    "waiting": "Waiting",
    "running": "Running",
    "succeeded": "Succeeded",
    "succeeded_with_warnings": "Succeeded with warnings",
    "partial": "Partial (daily quota)",
    "cancelled": "Cancelled",
    "skipped": "Skipped",
    "stopped": "Stopped (daily quota)",
    "full": "Full",
    "incremental": "Key-based (lastRunDate)",
}
"""How integration states, job statuses and replication types read on the page."""


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago`` / ``in 2 h`` / a date, for a timestamp (naive values are UTC)."""
    if value is None:
        return "—"
    value = _aware(value)
    now = now or datetime.now(UTC)
    delta = now - value
    future = delta < timedelta(0)
    seconds = abs(delta.total_seconds())
    if seconds < 45:
        text = "a few seconds"
    elif seconds < 3600:
        text = f"{round(seconds / 60) or 1} min"
    elif seconds < 86400 * 2:
        text = f"{round(seconds / 3600)} h"
    elif seconds < 86400 * 30:
        text = f"{round(seconds / 86400)} days"
    else:
        return value.strftime("%Y-%m-%d")
    return f"in {text}" if future else f"{text} ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    """``1 min 05 s`` between two timestamps; running jobs count up to now."""
    if start is None:
        return "—"
    stop = _aware(end) if end is not None else datetime.now(UTC)
    seconds = max(0, int((stop - _aware(start)).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def utc(value: datetime | None) -> str:
    """``2026-11-27 17:40:02 UTC``."""
    if value is None:
        return "—"
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def thousands(value: int | None) -> str:
    """``12,345``; ``—`` for unknown."""
    return "—" if value is None else f"{value:,}"


def build_templates() -> Jinja2Templates:
    """The Jinja2 environment with ctctsync's filters and globals."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    # A misspelt or missing value is a bug to see in tests, not an empty string on a page.
    env.undefined = StrictUndefined
    env.filters["ago"] = ago
    env.filters["utc"] = utc
    env.filters["thousands"] = thousands
    env.globals["duration"] = duration
    env.globals["state_labels"] = STATE_LABELS
    env.globals["password_rules"] = PASSWORD_RULES  # beside every new-password field
    return templates


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """Queue a message for the next page rendered in this session."""
    queued = list(request.session.get(_FLASH_KEY, []))
    queued.append([kind, text])
    request.session[_FLASH_KEY] = queued


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a full page (or a fragment) with the layout's common values."""
    templates: Jinja2Templates = request.app.state.templates
    ctx: dict[str, Any] = {
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request),
        "section": None,
        # A polled fragment (``integrations/_status.html``) must not eat the next page's flash.
        "flashes": [] if name.rpartition("/")[2].startswith("_")
        else request.session.pop(_FLASH_KEY, []),
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(
        request, name, ctx, status_code=status_code, headers=headers
    )
    response.headers.setdefault("Cache-Control", "no-store")
    return response
