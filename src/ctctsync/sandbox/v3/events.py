"""v3 events and registrations (constant-contact-v3-api.md §3.11).

Unlike the rest of v3 these page with ``next_cursor``/``prev_cursor`` (+ ``total_records``),
taken back as ``?next=``/``?prev=`` (§1.3). The sandbox's cursor is URL-safe base64 (as the
contract's examples look) of the query it continues plus the offset of its page: events are
never added, so offsets are stable; registrations added by the test hooks come first in the
default order (newest first), so a walk across such an addition sees the next page shifted, as
an offset-backed cursor would. Event ids are UUIDs in v3
(v2 ids look like ``a07e...``): each event's is derived from the seed and its place in the
account (``KIND_EVENT_V3``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.registrations import Registration, ticket_price
from ctctsync.sandbox.v3.common import (
    V3Error,
    bad_request,
    not_found,
    ts_millis,
    ts_seconds,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.ids import KIND_EVENT_V3, KIND_REGISTRATION, V3Ids

JSONDict = dict[str, Any]
SERVICE = "events"
"""Error-key prefix (``events.api.validation.error``): UNCONFIRMED, no events error captured."""
EVENTS_LIMIT = 100
"""``GET /events``: ``limit`` default and maximum 100 (§1.3)."""
REGISTRATIONS_LIMIT = 100
"""Registrations ``limit``/``page_size``: no default or maximum documented (§1.3); UNCONFIRMED:
chose the events' 100 for both."""
EVENT_STATUSES = frozenset({"ACTIVE", "DRAFT", "COMPLETE", "DELETED", "CANCELLED", "ERROR"})
REGISTRATION_STATUSES = frozenset(
    {"PENDING", "REGISTERED", "CANCELED", "EXPIRED", "IN_PROGRESS", "FAILED"})
"""The contract's enum has the typo ``"IN_PROGRESS, FAILED"`` as one value; both are accepted."""
PAYMENT_STATUSES = frozenset({"PENDING", "PAID", "REFUNDED", "CANCELLED", "FAILED", "CHARGED_BACK"})
KIND_TRACK_ACTIVITY, KIND_TRACK_CONFIRMATION, KIND_PAYMENT = 41, 42, 43
"""UUID kinds of a track's campaign activities and of a payment (above ids.py's 20-25 and
campaigns' 40)."""


# -- cursors -----------------------------------------------------------------------------------


def encode_cursor(params: Mapping[str, str]) -> str:
    """URL-safe base64 without padding of the query a cursor continues."""
    return base64.urlsafe_b64encode(urlencode(sorted(params.items())).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> dict[str, str]:
    """The query of a ``next``/``prev`` cursor; a bad cursor is a 400."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise V3Error(bad_request("next", "is not a valid cursor.", SERVICE)) from None
    params = dict(parse_qsl(text, keep_blank_values=True))
    if not params.get("offset", "").isdigit():
        raise V3Error(bad_request("next", "is not a valid cursor.", SERVICE))
    return params


def cursor_query(request: Request, filters: tuple[str, ...]) -> tuple[dict[str, str], int]:
    """The query to answer and the offset of its page: the cursor's (``next``/``prev``) when
    there is one -- it already holds the filters -- else the request's own."""
    q = request.query_params
    if "next" in q and "prev" in q:
        raise V3Error(bad_request("next", "and prev are mutually exclusive.", SERVICE))
    raw = q.get("next") or q.get("prev")
    if raw is None:
        return {k: q[k] for k in filters if k in q}, 0
    params = decode_cursor(raw)
    return {k: params[k] for k in filters if k in params}, int(params["offset"])


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paged collection (§1.3)."""

    records: list[JSONDict]
    total: int
    next_cursor: str | None
    prev_cursor: str | None

    def body(self, path: str) -> JSONDict:
        """``records``, ``total_records``, the cursors and their ``_links``. UNCONFIRMED whether
        CC fills ``_links``; the sandbox mirrors the cursors there."""
        links = {name: {"href": f"{path}?{urlencode({name: cur})}"}
                 for name, cur in (("next", self.next_cursor), ("prev", self.prev_cursor))
                 if cur is not None}
        return {"records": self.records, "total_records": self.total,
                "next_cursor": self.next_cursor, "prev_cursor": self.prev_cursor,
                "_links": links or None}


def paginate(rows: list[JSONDict], params: Mapping[str, str], offset: int, limit: int) -> Page:
    """The page at ``offset`` and the cursors of its neighbours."""
    carried = {**params, "limit": str(limit)}
    nxt = (encode_cursor({**carried, "offset": str(offset + limit)})
           if offset + limit < len(rows) else None)
    prev = encode_cursor({**carried, "offset": str(max(0, offset - limit))}) if offset else None
    return Page(rows[offset:offset + limit], len(rows), nxt, prev)


def _limit(params: Mapping[str, str], maximum: int) -> int:
    raw = params.get("limit")
    if raw is None:
        return maximum
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise V3Error(bad_request("limit", f"must be between 1 and {maximum}.", SERVICE))
    return int(raw)


def _choice(params: Mapping[str, str], name: str, allowed: frozenset[str]) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = raw.upper()
    if value not in allowed:
        raise V3Error(bad_request(name, f"must be one of {', '.join(sorted(allowed))}.", SERVICE))
    return value


def _sort(params: Mapping[str, str], keys: Mapping[str, Callable[[Any], Any]]
          ) -> tuple[Callable[[Any], Any], bool] | None:
    """The ``sort_by`` key and whether descending (``sort_order`` defaults to ASC, §1.8)."""
    by = params.get("sort_by")
    order = _choice(params, "sort_order", frozenset({"ASC", "DESC"}))
    if by is None or by == "":
        return None
    if by not in keys:
        raise V3Error(bad_request("sort_by", f"must be one of {', '.join(keys)}.", SERVICE))
    return keys[by], order == "DESC"


# -- events ------------------------------------------------------------------------------------


def track_id(ids: V3Ids, index: int) -> str:
    """The event's default track id: a short code like ``s8zabc`` (§1.1)."""
    digest = hashlib.sha256(ids.uuid(KIND_EVENT_V3, index + 1).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:6])


def event_updated_ms(e: gen.Event) -> int:
    """The event's ``last_update_time`` (epoch ms): its last edit by a test hook, else when it
    was published (created, for a draft)."""
    if e.updated_ms is not None:  # edited, cancelled or deleted by a test hook
        return e.updated_ms
    return e.active_ms if e.active_ms is not None else e.created_ms


def _address(e: gen.Event) -> JSONDict | None:
    if e.location is None:
        return None
    return {"address_type": "EVENT", "line1": e.line1, "city": e.city or None,
            "country": e.country or None, "country_code": e.country_code.upper() or None,
            "latitude": e.latitude, "longitude": e.longitude, "location_name": e.location,
            "postal_code": e.postal_code or None, "state": e.state or None,
            "state_code": e.state_code or None}


def _registration_url(ids: V3Ids, index: int) -> str:
    return f"https://lp.constantcontactpages.com/ev/reg/{track_id(ids, index)}"


def event_row(account: Account, ids: V3Ids, index: int, e: gen.Event) -> JSONDict:
    """An event as ``GET /events`` lists it (EventListingDto, §3.11); times in seconds."""
    regs = [r for r in account.event_registrations(index) if r.status == "REGISTERED"]
    return {
        "event_id": ids.uuid(KIND_EVENT_V3, index + 1), "title": e.title,
        "description": e.description, "start_time": ts_seconds(e.start_ms),
        "end_time": ts_seconds(e.end_ms), "status": e.status,
        "registration_url": _registration_url(ids, index), "name": e.name,
        "event_type": e.type, "location_type": "PHYSICAL" if e.location else "ONLINE",
        "time_zone_type": gen.EVENT_TIME_ZONES[e.time_zone], "address": _address(e),
        # registration_count equals v2's total_registered_count (sandbox.registrations)
        "event_registration_summary_metrics": {
            "registration_count": len(regs), "ticket_sold": sum(r.tickets for r in regs),
            "item_sold": 0},
        "create_time": ts_seconds(e.created_ms),
    }


def _track(ids: V3Ids, index: int, e: gen.Event) -> JSONDict:
    return {
        "track_id": track_id(ids, index),
        "campaign_activity_id": ids.uuid(KIND_TRACK_ACTIVITY, index + 1),
        "conf_email_campaign_activity_id": ids.uuid(KIND_TRACK_CONFIRMATION, index + 1),
        "registration_type": "TICKET", "tickets_header": "Tickets", "items_header": "Items",
        "overall_ticket_capacity": 250, "reg_manually_closed_flag": False,
        "restrict_to_single_ticket_flag": False, "platform_fee_scope_type": "OWNER",
        "registration_end_time": ts_seconds(e.start_ms),
        "media_assets": [], "promo_codes": [], "items": [],
        "create_time": ts_millis(e.created_ms),
        "last_update_time": ts_millis(event_updated_ms(e)),
    }


def event_detail(account: Account, ids: V3Ids, index: int, e: gen.Event,
                 settings: bool) -> JSONDict:
    """``GET /events/{event_id}`` (EventDto, §3.11); ``campaign_id`` equals ``event_id``.
    ``include=true`` adds ``event_settings`` and ``event_metadata`` (UNCONFIRMED: the contract
    says only "event setting properties"). ``cancelled_time``/``deleted_time`` only once the
    event was cancelled/deleted (§1.7)."""
    eid = ids.uuid(KIND_EVENT_V3, index + 1)
    paid = ticket_price(account.seed, index) > 0
    eso = base64.urlsafe_b64encode(hashlib.sha256(eid.encode()).digest()[:16]).decode()
    out: JSONDict = {
        "description": e.description, "title": e.title, "name": e.name, "event_id": eid,
        "campaign_id": eid, "event_start": ts_seconds(e.start_ms),
        "event_end": ts_seconds(e.end_ms), "event_type": e.type, "eso": eso,
        "contact": {"name": e.contact_name, "email_address": e.contact_email,
                    "from_email_address": e.contact_email,
                    "organization_name": account.info.organization_name,
                    "phone_number": e.contact_phone},
        "create_time": ts_millis(e.created_ms),
        "active_time": ts_millis(e.active_ms) if e.active_ms is not None else None,
        "last_update_time": ts_millis(event_updated_ms(e)),
        "address": _address(e), "currency_type": "USD", "default_track": _track(ids, index, e),
        "display_contact_flag": True, "display_end_time_flag": True,
        "display_on_calendar_flag": True, "display_time_zone_flag": True,
        "event_calendar_url": f"https://lp.constantcontactpages.com/ev/calendar/{eso}",
        "event_widget_url": f"https://eventsfeed.constantcontact.com/widget/myevents.js?eso={eso}",
        "location_type": "PHYSICAL" if e.location else "ONLINE", "notify_owner_on_reg": False,
        "registration_url": _registration_url(ids, index), "status": e.status,
        "time_zone": e.time_zone, "time_zone_abbreviation": gen.EVENT_TIME_ZONES[e.time_zone],
    }
    if e.cancelled_ms is not None:
        out["cancelled_time"] = ts_millis(e.cancelled_ms)
    if e.deleted_ms is not None:
        out["deleted_time"] = ts_millis(e.deleted_ms)
    if settings:
        out["event_metadata"] = {"items_enabled": False, "paid_event": paid,
                                 "promo_codes_enabled": False}
        out["event_settings"] = {"event_requires_payments": paid, "item_configured": False,
                                 "online_payment_configured": paid, "payment_configured": paid,
                                 "promo_code_configured": False, "ticket_configured": True}
    return out


EVENT_SORTS: dict[str, Callable[[tuple[int, gen.Event]], Any]] = {
    "name": lambda ie: ie[1].name.lower(), "start_time": lambda ie: ie[1].start_ms,
    "end_time": lambda ie: ie[1].end_ms, "created_time": lambda ie: ie[1].created_ms,
    "updated_time": lambda ie: event_updated_ms(ie[1]),
}


def find_events(account: Account, params: Mapping[str, str]) -> list[tuple[int, gen.Event]]:
    """The events matching ``event_status`` and ``search_text`` (in name, title, description),
    sorted. UNCONFIRMED default order (none documented): newest created first. Without
    ``event_status`` CANCELLED and DELETED events are listed too: the reference documents no
    default filter, only that the status can be asked for (§1.7, §3.11) -- UNCONFIRMED."""
    status = _choice(params, "event_status", EVENT_STATUSES)
    text = params.get("search_text", "").lower()
    found = [(i, e) for i, e in enumerate(account.events)
             if (status is None or e.status == status)
             and (not text or text in f"{e.name}\n{e.title}\n{e.description}".lower())]
    sort = _sort(params, EVENT_SORTS)
    if sort is None:
        found.sort(key=lambda ie: (ie[1].created_ms, ie[0]), reverse=True)
    else:
        key, desc = sort
        found.sort(key=lambda ie: (key(ie), ie[0]), reverse=desc)
    return found


# -- registrations -----------------------------------------------------------------------------


def registration_id(ids: V3Ids, index: int, r: Registration) -> str:
    """The v3 id of registration ``r`` of event ``index``."""
    return ids.uuid(KIND_REGISTRATION, (index + 1) * 1_000_000 + r.number)


def registration_row(ids: V3Ids, index: int, r: Registration) -> JSONDict:
    """A registration as the track's list shows it (RegistrantInformationLiteDto, §3.11)."""
    return {
        "registration_id": registration_id(ids, index, r), "first_name": r.first_name,
        "last_name": r.last_name, "email_address": r.email,
        "registration_status": r.status, "payment_status": r.payment_status,
        "registration_time": ts_millis(r.registered_ms), "tickets": r.tickets,
        "total": r.total,
        # camel case in the contract itself (§3.11)
        "checkedIn_tickets": r.checked_in, "eligible_checkin_tickets": r.tickets,
        "checkin_status": "CHECKED_IN" if r.checked_in else "NOT_CHECKED_IN",
        "new_contact": r.new_contact, "track_key": track_id(ids, index),
    }


def _field(order: int, name: str, label: str, value: str) -> JSONDict:
    return {"display_order": order, "field_label": label, "field_name": name,
            "field_type": "TEXT",
            "label_key": f"registration.field.label.{name.lower()}", "field_value": value}


def registration_detail(account: Account, ids: V3Ids, index: int, e: gen.Event,
                        r: Registration) -> JSONDict:
    """``GET .../registrations/{registration_id}`` (DetailedRegistrationDto, §3.11)."""
    fields = [_field(1, "CONTACT_EMAIL_ADDRESS", "Email Address", r.email),
              _field(2, "CONTACT_FIRST_NAME", "First Name", r.first_name),
              _field(3, "CONTACT_LAST_NAME", "Last Name", r.last_name)]
    rid = registration_id(ids, index, r)
    tickets = [{"ticket_name": "General Admission", "price": r.price,
                "order_ticket_key": f"{rid[:6]}{k}", "editable": False,
                "checked_in_time": ts_millis(e.start_ms) if k < r.checked_in else None,
                "fields": fields[:1]} for k in range(r.tickets)]
    out: JSONDict = {
        "registration_id": rid,
        "contact_id": ids.contact(r.contact_id) if r.contact_id is not None else None,
        "checkedIn_tickets": r.checked_in, "checkin_status":
            "CHECKED_IN" if r.checked_in else "NOT_CHECKED_IN",
        "eligible_checkin_tickets": r.tickets, "registration_date": ts_millis(r.registered_ms),
        "registration_status": r.status, "display_physical_tickets": False,
        "contact": fields, "tickets": tickets,
    }
    if r.payment_status is not None:
        out["order_summary"] = {
            "number": rid.replace("-", "")[:10].upper(), "title": e.title,
            "payment_method": "STRIPE", "payment_status": r.payment_status,
            "payment_time": ts_millis(r.registered_ms),
            "payment_transaction_id": ids.uuid(KIND_PAYMENT, (index + 1) * 1_000_000 + r.number),
            "details": [{"name": "General Admission", "line_item_type": "TICKET",
                         "amount": f"${r.total:,.2f}", "amount_unformatted": r.total}],
        }
    return out


REGISTRATION_SORTS: dict[str, Callable[[Registration], Any]] = {
    "first_name": lambda r: r.first_name.lower(), "last_name": lambda r: r.last_name.lower(),
    "email_address": lambda r: r.email, "registration_status": lambda r: r.status,
    "payment_status": lambda r: r.payment_status or "", "tickets": lambda r: r.tickets,
    "total": lambda r: r.total,
}


def find_registrations(regs: tuple[Registration, ...], params: Mapping[str, str]
                       ) -> list[Registration]:
    """Registrations matching the status filters and ``search_text`` (name or email), sorted.
    UNCONFIRMED default order (none documented): latest registration first."""
    status = _choice(params, "registration_status", REGISTRATION_STATUSES)
    payment = _choice(params, "payment_status", PAYMENT_STATUSES)
    text = params.get("search_text", "").lower()
    found = [r for r in regs
             if (status is None or r.status == status)
             and (payment is None or r.payment_status == payment)
             and (not text or text in f"{r.first_name} {r.last_name}\n{r.email}".lower())]
    sort = _sort(params, REGISTRATION_SORTS)
    if sort is None:
        found.sort(key=lambda r: (r.registered_ms, r.number), reverse=True)
    else:
        key, desc = sort
        found.sort(key=lambda r: (key(r), r.number), reverse=desc)
    return found


# -- routes ------------------------------------------------------------------------------------

EVENT_FILTERS = ("event_status", "search_text", "sort_by", "sort_order", "limit")
REGISTRATION_FILTERS = ("registration_status", "payment_status", "search_text", "sort_by",
                        "sort_order", "limit")


class EventRoutes:
    """The handlers of ``/v3/events...``."""

    def __init__(self, face: V3Face) -> None:
        self.account = face.ctx.account
        self.ids = face.ids
        self._by_uuid = {face.ids.uuid(KIND_EVENT_V3, i + 1): i
                         for i in range(len(self.account.events))}

    def _event(self, request: Request) -> tuple[int, gen.Event]:
        index = self._by_uuid.get(request.path_params["event_id"].lower())
        if index is None:
            raise V3Error(not_found("event_id", SERVICE))
        return index, self.account.events[index]

    def _track(self, request: Request) -> tuple[int, gen.Event, tuple[Registration, ...]]:
        index, e = self._event(request)
        if request.path_params["track_id"] != track_id(self.ids, index):
            raise V3Error(not_found("track_id", SERVICE))
        return index, e, self.account.event_registrations(index)

    async def events(self, request: Request) -> Response:
        params, offset = cursor_query(request, EVENT_FILTERS)
        limit = _limit(params, EVENTS_LIMIT)
        with self.account.lock:  # one state of the events, whatever the test hooks do
            rows = [event_row(self.account, self.ids, i, e) for i, e in
                    find_events(self.account, params)]
        return v3_json(paginate(rows, params, offset, limit).body(request.url.path))

    async def event(self, request: Request) -> Response:
        index, e = self._event(request)
        raw = request.query_params.get("include", "false").lower()
        if raw not in ("true", "false"):
            raise V3Error(bad_request("include", "must be true or false.", SERVICE))
        with self.account.lock:
            return v3_json(event_detail(self.account, self.ids, index, e, raw == "true"))

    async def registrations(self, request: Request) -> Response:
        index, _e, regs = self._track(request)
        params, offset = cursor_query(request, REGISTRATION_FILTERS)
        page_size = request.query_params.get("page_size")
        if page_size is not None and "next" not in request.query_params \
                and "prev" not in request.query_params:
            if "limit" in params and params["limit"] != page_size:
                raise V3Error(bad_request("page_size", "must equal limit when both are given.",
                                          SERVICE))
            params = {**params, "limit": page_size}
        limit = _limit(params, REGISTRATIONS_LIMIT)
        rows = [registration_row(self.ids, index, r) for r in find_registrations(regs, params)]
        return v3_json(paginate(rows, params, offset, limit).body(request.url.path))

    async def registration(self, request: Request) -> Response:
        index, e, regs = self._track(request)
        wanted = request.path_params["registration_id"].lower()
        for r in regs:
            if registration_id(self.ids, index, r) == wanted:
                with self.account.lock:
                    return v3_json(registration_detail(self.account, self.ids, index, e, r))
        raise V3Error(not_found("registration_id", SERVICE))


def routes(face: V3Face) -> list[Route]:
    """``/v3/events...``, each behind ``campaign_data`` + ``campaign:read`` (§3.11)."""
    h = EventRoutes(face)
    g = face.guarded("campaign_data", "campaign:read")
    track = "/v3/events/{event_id}/tracks/{track_id}/registrations"
    return [
        Route("/v3/events", g(h.events)),
        Route("/v3/events/{event_id}", g(h.event)),
        Route(track, g(h.registrations)),
        Route(f"{track}/{{registration_id}}", g(h.registration)),
    ]
