"""The API quota page: per API key its limits, today's use, what today's scheduled runs
reserve, and each integration's estimated calls; administrators edit a key's limits.

Constant Contact counts calls per API key (a v2 key, or the v3 application's client id that
every v3 integration shares), so the page is organised by key. A key is named by its
fingerprint and a label (``ctctsync.control.services.quota.key_of``), never by the key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control.errors import NotFound, ValidationFailed
from ctctsync.control.schemas import (
    DEFAULT_PER_DAY,
    DEFAULT_PER_SECOND,
    PARTNER_PER_DAY,
    PARTNER_PER_SECOND,
    PER_DAY_MAX,
    PER_DAY_MIN,
    PER_SECOND_MAX,
    PER_SECOND_MIN,
    KeyLimitsIn,
    KeyLimitsPublic,
    validated,
)
from ctctsync.control.services import quota
from ctctsync.web.deps import CurrentAdmin, CurrentUser, Db
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.quota import UsageBar
from ctctsync.web.security import verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/quota", dependencies=[Depends(verify_csrf)])

KeyFingerprint = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
"""A key's fingerprint in a page's path; anything else names no page (404)."""

LIMIT_HINTS = {
    "per_second": (
        f"Requests per second ({PER_SECOND_MIN:g} to {PER_SECOND_MAX:g}). Constant Contact's "
        f"standard keys allow {DEFAULT_PER_SECOND:g}, partner keys {PARTNER_PER_SECOND:g}. "
        "Leave blank for the default."
    ),
    "per_day": (
        f"Requests per UTC day ({PER_DAY_MIN:,} to {PER_DAY_MAX:,}). Standard keys allow "
        f"{DEFAULT_PER_DAY:,}, partner keys {PARTNER_PER_DAY:,}. Leave blank for the default."
    ),
}


@router.get("")
def quota_page(request: Request, db: Db, user: CurrentUser) -> Response:
    """Every key the user's integrations spend, with a usage bar and the day's plan."""
    overview = quota.quota_overview(db, user)
    bars = {
        k.key: UsageBar(k.used_today + k.in_flight, k.reserved_today, k.per_day)
        for k in overview.keys
        if k.per_day is not None
    }
    return render(
        request,
        "quota/index.html",
        {"section": "quota", "overview": overview, "bars": bars},
    )


def _key(db: Db, user: Any, fingerprint: str) -> KeyLimitsPublic:
    for limits in quota.list_key_limits(db, user):
        if limits.key == fingerprint:
            return limits
    raise NotFound("No API key with this fingerprint is in use.")


def _limits_form(
    request: Request,
    limits: KeyLimitsPublic,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "quota/key.html",
        {
            "section": "quota",
            "limits": limits,
            "values": values,
            "errors": errors,
            "hints": LIMIT_HINTS,
        },
        status_code=status_code,
    )


def _shown(value: float | int | None, is_default: bool) -> str:
    """A limit as the form's field shows it: blank when it is the default."""
    if value is None or is_default:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


@router.get("/keys/{fingerprint}")
def key_page(request: Request, db: Db, admin: CurrentAdmin, fingerprint: KeyFingerprint) -> (
    Response
):
    """The form to change one key's per-second and per-day limits (administrators)."""
    limits = _key(db, admin, fingerprint)
    values = {
        "per_second": _shown(limits.per_second, limits.per_second_is_default),
        "per_day": _shown(limits.per_day, limits.per_day_is_default),
    }
    return _limits_form(request, limits, values, {})


def _number(text: str) -> str | None:
    """A typed limit: blank means the default (None); thousands separators are dropped, so
    ``250,000`` reads as 250000 (the limits are whole numbers or decimals with a point)."""
    cleaned = text.replace(",", "").replace("_", "").replace(" ", "")
    return cleaned or None


@router.post("/keys/{fingerprint}")
def save_key(
    request: Request, db: Db, admin: CurrentAdmin, fingerprint: KeyFingerprint, form: Form
) -> Response:
    """Save one key's limits; nothing changes when a field is invalid (422, per field)."""
    limits = _key(db, admin, fingerprint)
    values = {"per_second": form_str(form, "per_second"), "per_day": form_str(form, "per_day")}
    try:
        # The service's input schema holds the rules and messages (the REST API's too).
        data = validated(
            KeyLimitsIn,
            per_second=_number(values["per_second"]),
            per_day=_number(values["per_day"]),
        )
        saved = quota.set_key_limits(db, admin, fingerprint, data)
    except ValidationFailed as exc:
        errors = field_messages(exc.errors) or {"form": exc.message}
        return _limits_form(request, limits, values, errors, status_code=422)
    flash(
        request,
        f"Limits of {saved.label} saved: {_limit_words(saved)}. "
        "The next run of every integration on this key uses them.",
    )
    return RedirectResponse("/quota", status_code=303)


def _limit_words(limits: KeyLimitsPublic) -> str:
    per_second = "no pacing" if limits.per_second is None else f"{limits.per_second:g} per second"
    per_day = "no daily limit" if limits.per_day is None else f"{limits.per_day:,} per day"
    return f"{per_second}, {per_day}"
