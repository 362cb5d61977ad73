"""v3 email campaigns (constant-contact-v3-api.md §3.6): ``GET /v3/emails``, one campaign, its
activities, their send history and schedules, and the v2 -> v3 id cross-references.

Every campaign of the account model has two campaign activities, ``primary_email`` and
``permalink`` (the roles a real sent campaign has, §3.6); their UUIDs come from
:class:`~ctctsync.sandbox.v3.ids.V3Ids`. :class:`CampaignIndex` maps those UUIDs back and is
shared with the reports module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.v3.common import (
    V3Error,
    bad_request,
    links_next,
    not_found,
    parse_limit,
    parse_time,
    query,
    ts_millis,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.ids import ROLE_KINDS, V3Ids

JSONDict = dict[str, Any]
SERVICE = "emails"
"""Error-key prefix of this area (``emails.api.not_found``): UNCONFIRMED, chose the resource name
because CC's keys are per service (§1.4) and no campaign error body was ever captured."""

STATUS_LIST = {"DRAFT": "Draft", "SCHEDULED": "Scheduled", "SENT": "Done", "DELETED": "Removed"}
"""``current_status`` in ``GET /emails``: mixed case (§1.6, NANGO "Draft")."""
STATUS_DETAIL = {"DRAFT": "DRAFT", "SCHEDULED": "SCHEDULED", "SENT": "DONE", "DELETED": "REMOVED"}
"""``current_status`` in a campaign and its activities: upper case (§1.6, NANGO "DRAFT")."""
ROLES = tuple(ROLE_KINDS)
"""``primary_email`` then ``permalink``, the order of the real capture (§3.6)."""
XREF_MAX = 50
"""``v2_email_campaign_ids``: up to 50 ids a request (§3.6)."""
ACTIVITY_INCLUDES = frozenset(
    {"physical_address_in_footer", "permalink_url", "html_content", "document_properties"})
KIND_DOCUMENT = 40
"""UUID kind of an activity's ``document_id`` (above ids.py's kinds 20-25, so no collision)."""


@dataclass(frozen=True)
class CampaignType:
    """A campaign's ``type``/``type_code``, its summary ``campaign_type`` and ``format_type``."""

    code: int
    name: str
    label: str
    format_type: int


NEWSLETTER = CampaignType(10, "NEWSLETTER", "Newsletter", 4)
CUSTOM_CODE = CampaignType(26, "CUSTOM_CODE_EMAIL", "Custom Code Email", 5)
"""The two types seen in real captures (§3.6, NANGO); every third campaign is custom code. The
summary label "Custom Code Email" is UNCONFIRMED (only "Newsletter" is in the contract)."""


def campaign_type(c: gen.Campaign) -> CampaignType:
    """The type of campaign ``c`` (fixed by its id)."""
    return CUSTOM_CODE if c.id % 3 == 0 else NEWSLETTER


@dataclass(frozen=True)
class ActivityRef:
    """A campaign activity: its campaign and role."""

    campaign: gen.Campaign
    role: str


class CampaignIndex:
    """Campaign and campaign-activity UUIDs -> the model's campaigns.

    Campaigns are only ever added, so the maps are rebuilt when the campaign count changes."""

    def __init__(self, account: Account, ids: V3Ids) -> None:
        self.account = account
        self.ids = ids
        self._lock = threading.Lock()
        self._size = -1
        self._campaigns: dict[str, gen.Campaign] = {}
        self._activities: dict[str, ActivityRef] = {}

    def _refresh(self) -> None:
        with self.account.lock:
            camps = list(self.account.campaigns.values())
        with self._lock:
            if len(camps) == self._size:
                return
            self._campaigns = {self.ids.campaign(c.id): c for c in camps}
            self._activities = {self.ids.activity(c.id, role): ActivityRef(c, role)
                                for c in camps for role in ROLES}
            self._size = len(camps)

    def campaign(self, uuid: str) -> gen.Campaign | None:
        """The campaign of v3 id ``uuid`` (None if unknown)."""
        self._refresh()
        return self._campaigns.get(uuid.lower())

    def activity(self, uuid: str) -> ActivityRef | None:
        """The campaign activity of v3 id ``uuid`` (None if unknown)."""
        self._refresh()
        return self._activities.get(uuid.lower())

    def primary(self, c: gen.Campaign) -> str:
        """The UUID of the campaign's ``primary_email`` activity (what reports are keyed by)."""
        return self.ids.activity(c.id, "primary_email")


# -- rendering ---------------------------------------------------------------------------------


def campaign_row(ids: V3Ids, c: gen.Campaign) -> JSONDict:
    """A campaign as ``GET /emails`` lists it, keys in the real order (§3.6)."""
    kind = campaign_type(c)
    return {"campaign_id": ids.campaign(c.id), "created_at": ts_millis(c.created_ms),
            "current_status": STATUS_LIST[c.status], "name": c.name, "type": kind.name,
            "type_code": kind.code, "updated_at": ts_millis(c.modified_ms)}


def campaign_detail(ids: V3Ids, c: gen.Campaign) -> JSONDict:
    """``GET /emails/{campaign_id}``: the row plus ``campaign_activities``, status upper case."""
    row = campaign_row(ids, c)
    row["current_status"] = STATUS_DETAIL[c.status]
    return {"campaign_activities": [
        {"campaign_activity_id": ids.activity(c.id, role), "role": role} for role in ROLES],
        **row}


_COUNTRY_NAMES = {"US": "United States", "CA": "Canada", "DE": "Germany", "RO": "Romania"}
_US_STATES = {"MA": "Massachusetts", "IL": "Illinois", "TX": "Texas", "OR": "Oregon"}


def _footer(account: Account) -> JSONDict:
    info = account.info
    country = info.country_code.upper()
    return {
        "address_line1": info.line1, "address_line2": info.line2 or None,
        "address_line3": info.line3 or None, "city": info.city, "country_code": country,
        "country_name": _COUNTRY_NAMES.get(country), "organization_name": info.organization_name,
        "postal_code": info.postal_code, "state_code": info.state_code or None,
        # state_name is generated from state_code for US addresses (§3.6)
        "state_name": _US_STATES.get(info.state_code) if country == "US" else None,
    }


def _document_properties(c: gen.Campaign) -> JSONDict:
    # booleans are strings in this object (§3.6)
    return {
        "style_content": ".white{color: #ffffff;}", "letter_format": "HTML",
        "greeting_salutation": c.greeting, "greeting_name_type": "F",
        "greeting_secondary": "Greetings!", "subscribe_link_enabled": "false",
        "subscribe_link_name": "Subscribe to my email list!",
        "text_content": f"{c.subject}\n" + "\n".join(lk.url for lk in c.links),
        "permission_reminder_enabled": "false",
        "permission_reminder": "Hi, just a reminder that you're receiving this email because "
                               "you have expressed an interest in our company.",
        "view_as_webpage_enabled": "false",
        "view_as_webpage_text": "Having trouble viewing this email?",
        "view_as_webpage_link_name": "Click here to view this email as a web page",
        "forward_email_link_enabled": "false", "forward_email_link_name": "Forward email",
    }


def _permalink(ids: V3Ids, c: gen.Campaign) -> str | None:
    if c.status != "SENT":  # a permalink exists once the campaign went out
        return None
    return "https://conta.cc/" + ids.activity(c.id, "permalink").replace("-", "")[:7]


_INCLUDES: dict[str, Callable[[Account, V3Ids, gen.Campaign], Any]] = {
    "physical_address_in_footer": lambda account, ids, c: _footer(account),
    "permalink_url": lambda account, ids, c: _permalink(ids, c),
    "html_content": lambda account, ids, c: (
        f"<html><body>[[trackingImage]] <p>{c.subject}</p>"
        + "".join(f'<a href="{lk.url}">{lk.url}</a>' for lk in c.links) + "</body></html>"),
    "document_properties": lambda account, ids, c: _document_properties(c),
}


def activity_detail(account: Account, ids: V3Ids, ref: ActivityRef,
                    include: frozenset[str]) -> JSONDict:
    """``GET /emails/activities/{id}``: the core fields of the real capture, then what
    ``include`` asks for (§3.6)."""
    c = ref.campaign
    out: JSONDict = {
        "campaign_activity_id": ids.activity(c.id, ref.role), "campaign_id": ids.campaign(c.id),
        "role": ref.role, "contact_list_ids": [ids.list(lid) for lid in c.list_ids],
        "segment_ids": [], "current_status": STATUS_DETAIL[c.status],
        "format_type": campaign_type(c).format_type, "from_email": c.from_email,
        "from_name": c.from_name, "reply_to_email": c.from_email, "subject": c.subject,
        "preheader": f"The latest from {c.from_name}.",
        "document_id": ids.uuid(KIND_DOCUMENT, c.id),
    }
    for name, build in _INCLUDES.items():
        if name in include:
            out[name] = build(account, ids, c)
    return out


def send_history(account: Account, ids: V3Ids, ref: ActivityRef) -> list[JSONDict]:
    """The sends of an activity, oldest first; ``[]`` if never sent (§3.6). The model sends a
    campaign once (later activity joins that send), so a sent campaign has one entry whose
    ``count`` is the number of sends the tracking report serves."""
    c = ref.campaign
    if ref.role != "primary_email" or c.last_run_ms is None:
        return []
    sends = account.campaign_counts(c.id)["sends"]
    if not sends:
        return []
    return [{"send_id": 1, "contact_list_ids": [ids.list(lid) for lid in c.list_ids],
             "count": sends, "run_date": ts_millis(c.last_run_ms), "send_status": "COMPLETED",
             "reason_code": 0}]


def schedules(ref: ActivityRef) -> list[JSONDict]:
    """``GET /emails/activities/{id}/schedules``: the scheduled send of a SCHEDULED campaign's
    primary activity, else ``[]`` (§3.6)."""
    c = ref.campaign
    if ref.role != "primary_email" or c.status != "SCHEDULED" or c.next_run_ms is None:
        return []
    return [{"scheduled_date": ts_millis(c.next_run_ms)}]


# -- the collection ----------------------------------------------------------------------------


def _order_key(c: gen.Campaign) -> tuple[int, int]:
    return c.created_ms, c.id


def campaigns_page(account: Account, index: CampaignIndex, params: Mapping[str, str], *,
                   limit: int) -> tuple[list[gen.Campaign], gen.Campaign | None]:
    """One page of ``GET /emails``: newest created first (observed, §1.8), every campaign
    including deleted ones (§1.7), ``after_date``/``before_date`` on ``updated_at`` (§1.9).
    Returns the page and the first campaign of the next page.

    UNCONFIRMED: ``after_date`` is inclusive and ``before_date`` exclusive, so a connector's
    watermark re-read never misses a campaign updated at the watermark itself."""
    after = parse_time(params, "after_date")
    before = parse_time(params, "before_date")
    start: tuple[int, int] | None = None
    if "next" in params:
        first = index.campaign(params["next"])
        if first is None:
            raise V3Error(bad_request("cursor", "is not valid.", SERVICE))
        start = _order_key(first)
    with account.lock:
        camps = sorted(account.campaigns.values(), key=_order_key, reverse=True)
    picked = [c for c in camps
              if (start is None or _order_key(c) <= start)
              and (after is None or c.modified_ms >= after)
              and (before is None or c.modified_ms < before)]
    return picked[:limit], (picked[limit] if len(picked) > limit else None)


# -- routes ------------------------------------------------------------------------------------


def _include(params: Mapping[str, str]) -> frozenset[str]:
    raw = params.get("include", "")
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    unknown = names - ACTIVITY_INCLUDES
    if unknown:
        raise V3Error(bad_request("include", f"has invalid values: {', '.join(sorted(unknown))}.",
                                  SERVICE))
    return names


class CampaignRoutes:
    """The handlers of ``/v3/emails...``."""

    def __init__(self, face: V3Face, index: CampaignIndex) -> None:
        self.face = face
        self.account = face.ctx.account
        self.ids = face.ids
        self.index = index

    def _activity(self, request: Request) -> ActivityRef:
        ref = self.index.activity(request.path_params["campaign_activity_id"])
        # activities of a REMOVED campaign cannot be fetched (§1.7)
        if ref is None or ref.campaign.status == "DELETED":
            raise V3Error(not_found("campaign_activity_id", SERVICE))
        return ref

    async def emails(self, request: Request) -> Response:
        params = query(request)
        limit = parse_limit(params, 50, 500)
        page, nxt = campaigns_page(self.account, self.index, params, limit=limit)
        body: JSONDict = {"campaigns": [campaign_row(self.ids, c) for c in page]}
        if nxt is not None:  # no _links at all on the last page (§1.3)
            carried: dict[str, str] = {
                k: params[k] for k in ("after_date", "before_date") if k in params}
            body["_links"] = links_next(request.url.path, {
                "limit": str(limit), "next": self.ids.campaign(nxt.id), **carried})
        return v3_json(body)

    async def email(self, request: Request) -> Response:
        c = self.index.campaign(request.path_params["campaign_id"])
        if c is None:
            raise V3Error(not_found("campaign_id", SERVICE))
        return v3_json(campaign_detail(self.ids, c))

    async def activity(self, request: Request) -> Response:
        ref = self._activity(request)
        include = _include(request.query_params)
        return v3_json(activity_detail(self.account, self.ids, ref, include))

    async def send_history(self, request: Request) -> Response:
        ref = self._activity(request)
        return v3_json(send_history(self.account, self.ids, ref))

    async def schedules(self, request: Request) -> Response:
        return v3_json(schedules(self._activity(request)))

    async def xrefs(self, request: Request) -> Response:
        raw = request.query_params.get("v2_email_campaign_ids", "")
        wanted = [v.strip() for v in raw.split(",") if v.strip()]
        if not wanted:
            raise V3Error(bad_request("v2_email_campaign_ids", "is required.", SERVICE))
        if len(wanted) > XREF_MAX:
            raise V3Error(bad_request("v2_email_campaign_ids",
                                      f"accepts at most {XREF_MAX} ids.", SERVICE))
        if not all(v.isdigit() for v in wanted):
            raise V3Error(bad_request("v2_email_campaign_ids", "must be numeric ids.", SERVICE))
        with self.account.lock:
            known = [int(v) for v in wanted if int(v) in self.account.campaigns]
        # UNCONFIRMED: unknown v2 ids are left out rather than failing the request
        return v3_json({"xrefs": [
            {"v2_email_campaign_id": str(cid), "campaign_id": self.ids.campaign(cid),
             "campaign_activity_id": self.ids.activity(cid, "primary_email")} for cid in known]})


def routes(face: V3Face) -> list[Route]:
    """``/v3/emails...``, each behind ``campaign_data`` + ``campaign:read`` (§3.6)."""
    handlers = CampaignRoutes(face, CampaignIndex(face.ctx.account, face.ids))
    g = face.guarded("campaign_data", "campaign:read")
    return [
        Route("/v3/emails", g(handlers.emails)),
        # registered before /v3/emails/{campaign_id} so the literal path wins
        Route("/v3/emails/campaign_id_xrefs", g(handlers.xrefs)),
        Route("/v3/emails/{campaign_id}", g(handlers.email)),
        Route("/v3/emails/activities/{campaign_activity_id}", g(handlers.activity)),
        Route("/v3/emails/activities/{campaign_activity_id}/send_history",
              g(handlers.send_history)),
        Route("/v3/emails/activities/{campaign_activity_id}/schedules", g(handlers.schedules)),
    ]
