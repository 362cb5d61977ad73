"""v3 reports (constant-contact-v3-api.md §3.7-§3.9): per-campaign-activity tracking, link
clicks, contact reports, the campaign summary report and the stats endpoints.

All of them read the one ActivityLog of the account model, so a connector can cross-check:
the number of rows ``tracking/<kind>`` serves for a campaign's ``primary_email`` activity equals
the summary's ``unique_counts`` and the stats' ``em_*`` of that campaign (``didnotopens`` =
``not_opened`` = ``em_not_opened`` = sends - opens - bounces). The model holds at most one
activity of each type per contact and campaign, so "all" and "unique" counts are equal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.activities import Marker
from ctctsync.sandbox.generator import BOUNCE, CLICK, FORWARD, OPEN, SEND, UNSUBSCRIBE
from ctctsync.sandbox.records import Activity, CursorKey
from ctctsync.sandbox.v3.campaigns import ActivityRef, CampaignIndex, campaign_type
from ctctsync.sandbox.v3.common import (
    Handler,
    V3Error,
    bad_request,
    date_only,
    error_array,
    links_next,
    not_found,
    parse_limit,
    parse_time,
    query,
    ts_millis,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.ids import V3Ids

JSONDict = dict[str, Any]
SERVICE = "reports"
"""Error-key prefix (``reports.api.validation.error``): UNCONFIRMED, no reporting 400 was ever
captured; the 404 of the stats endpoints uses the contract's own ``reportingsvc`` key."""
_SCAN_CHUNK = 1000
STATS_MAX_CAMPAIGNS = 150
"""``campaign_ids`` of ``/reports/stats/email_campaigns``: contract ``maximum: 150`` (§3.9)."""
STATS_MAX_ACTIVITIES = 10
SUMMARY_PAGE = 200
"""``activity_summary`` serves "the most recent 200 campaigns" a page (§3.7)."""
RATE_WINDOW_MS = 5 * 366 * gen.DAY_MS
"""``open_and_click_rates``: the range may span at most 5 years (§3.7)."""

DEVICES = (("computer", 45), ("mobile", 40), ("tablet", 10), ("other", 5))
"""``device_type`` of opens and clicks and its share in percent; the values are the ones the
guide names (§3.8), the shares are the sandbox's own."""
_DEVICE_BY_PERCENT = tuple(name for name, share in DEVICES for _ in range(share))

BOUNCE_STATS = {"B": "em_bounces_nonexistent_address", "D": "em_bounces_undeliverable",
                "F": "em_bounces_mailbox_full", "S": "em_bounces_suspended",
                "V": "em_bounces_vacation", "X": "em_bounces_other", "Z": "em_bounces_blocked"}
"""Bounce codes (§3.8) -> the per-code counts of the activity stats (§3.9)."""

CONTACT_TYPES = {"em_sends": SEND, "em_opens": OPEN, "em_clicks": CLICK, "em_bounces": BOUNCE,
                 "em_optouts": UNSUBSCRIBE, "em_forwards": FORWARD,
                 "p_contact_open": None, "p_contact_click": None, "p_contact_add": None,
                 "p_contact_update": None}
"""``activity_details`` types (§3.7); the landing-page ``p_*`` types are accepted and match
nothing (the sandbox has no landing pages)."""
TYPE_NAMES = {SEND: "em_sends", OPEN: "em_opens", CLICK: "em_clicks", FORWARD: "em_forwards",
              BOUNCE: "em_bounces", UNSUBSCRIBE: "em_optouts"}


def device_type(seed: int, seq: int) -> str:
    """The device of open or click ``seq`` (fixed by its place in the log)."""
    return _DEVICE_BY_PERCENT[(seq * 2_654_435_761 + seed * 40_503) % 100]


# -- per-campaign-activity tracking (§3.8) -----------------------------------------------------


@dataclass(frozen=True)
class TrackingKind:
    """One ``tracking/<name>`` report: the activity type it lists and its row type."""

    activity: int
    row_type: str
    extras: Callable[[int, Activity, gen.Contact | None], JSONDict]


def _no_extras(seed: int, a: Activity, c: gen.Contact | None) -> JSONDict:
    return {}


def _open_extras(seed: int, a: Activity, c: gen.Contact | None) -> JSONDict:
    return {"device_type": device_type(seed, a.seq)}


def _click_extras(seed: int, a: Activity, c: gen.Contact | None) -> JSONDict:
    # url_id is a numeric string in the rows although the filter is an integer (§3.8)
    return {"device_type": device_type(seed, a.seq), "url_id": str(a.link_uid),
            "link_url": a.link_url}


def _optout_extras(seed: int, a: Activity, c: gen.Contact | None) -> JSONDict:
    return {"opt_out_reason": a.unsubscribe_reason or None}


def _bounce_extras(seed: int, a: Activity, c: gen.Contact | None) -> JSONDict:
    return {"bounce_code": a.bounce_code,
            "current_email_address": c.email if c is not None else a.email}


TRACKING: dict[str, TrackingKind] = {
    "sends": TrackingKind(SEND, "em_sends", _no_extras),
    "opens": TrackingKind(OPEN, "em_opens", _open_extras),
    # the last open per contact; the model has at most one, so the same rows as opens
    "unique_opens": TrackingKind(OPEN, "em_opens", _open_extras),
    "didnotopens": TrackingKind(SEND, "em_didnotopens", _no_extras),
    "clicks": TrackingKind(CLICK, "em_clicks", _click_extras),
    "forwards": TrackingKind(FORWARD, "em_forwards", _no_extras),
    "optouts": TrackingKind(UNSUBSCRIBE, "em_optouts", _optout_extras),
    "bounces": TrackingKind(BOUNCE, "em_bounces", _bounce_extras),
}
BOUNCE_CODES = frozenset(BOUNCE_STATS)
LINKS_REQUIRED = frozenset({"bounces", "optouts"})
"""The reports whose page schema requires ``_links`` (the contract's Bounces/Optouts pages).
UNCONFIRMED what CC sends on their last page: the sandbox sends ``"_links": {}`` there -- the
empty form seen on a real last page of contacts (§1.3), which a client stopping at a missing
``next.href`` handles -- because it satisfies the contract; the other reports omit ``_links``."""


def scan(account: Account, *, campaign_id: int, types: frozenset[int], after: CursorKey | None,
         limit: int, keep: Callable[[Activity], bool] | None
         ) -> tuple[list[Activity], CursorKey | None]:
    """Up to ``limit`` activities of a campaign, newest first from ``after`` (inclusive), that
    ``keep`` accepts; and the key of the next page's first row (None at the end)."""
    if keep is None:
        return account.activity_page(campaign_id=campaign_id, types=types, after=after,
                                     limit=limit)
    rows: list[Activity] = []
    cursor = after
    while True:
        chunk, nxt = account.activity_page(campaign_id=campaign_id, types=types, after=cursor,
                                           limit=_SCAN_CHUNK)
        for a in chunk:
            if not keep(a):
                continue
            if len(rows) == limit:
                return rows, (-a.ts_ms, -a.seq)
            rows.append(a)
        if nxt is None:
            return rows, None
        cursor = nxt


class ReachedContacts:
    """The contacts who opened or bounced each campaign (what ``didnotopens`` leaves out),
    cached by the campaign's activity marker (it changes with every append, retraction and
    activity the clock makes visible)."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self._cache: dict[int, tuple[Marker, frozenset[int]]] = {}
        self._lock = threading.Lock()

    def __call__(self, campaign_id: int) -> frozenset[int]:
        with self.account.pinned_time():  # the marker and the set of one instant
            marker = self.account.activity_marker(campaign_id)
            with self._lock:
                hit = self._cache.get(campaign_id)
            if hit is not None and hit[0] == marker:
                return hit[1]
            acts, _ = self.account.activity_page(campaign_id=campaign_id,
                                                 types=frozenset({OPEN, BOUNCE}), limit=10**9)
        found = frozenset(a.contact_id for a in acts)
        with self._lock:
            self._cache[campaign_id] = (marker, found)
        return found


def encode_key(key: CursorKey) -> str:
    """A log cursor key as the ``next`` of a v3 cursor: ``<time ms>.<log position>``."""
    return f"{-key[0]}.{-key[1]}"


def decode_key(raw: str | None) -> CursorKey | None:
    """The log cursor key of a ``next`` value; a malformed one is a 400."""
    if raw is None:
        return None
    ts, seq = int_pair(raw)
    return -ts, -seq


def int_pair(raw: str) -> tuple[int, int]:
    """``<a>.<b>``, the ``next`` of the sandbox's report cursors (time and id); else a 400."""
    a, _, b = raw.partition(".")
    if not (a.isdigit() and b.isdigit()):
        raise V3Error(bad_request("cursor", "is not valid.", SERVICE))
    return int(a), int(b)


def tracking_row(account: Account, ids: V3Ids, kind: TrackingKind, a: Activity,
                 contacts: dict[int, gen.Contact | None]) -> JSONDict:
    """One row of a tracking report, keys in the contract's order (§3.8)."""
    c = contacts.get(a.contact_id)
    if a.contact_id not in contacts:
        c = contacts[a.contact_id] = account.contact(a.contact_id)
    deleted = account.contact_deleted_ms(a.contact_id) if c is not None else None
    return {
        "contact_id": ids.contact(a.contact_id),
        "campaign_activity_id": ids.activity(a.campaign_id, "primary_email"),
        "tracking_activity_type": kind.row_type, "email_address": a.email,
        "first_name": (c.first_name or None) if c else None,
        "last_name": (c.last_name or None) if c else None,
        **kind.extras(account.seed, a, c),
        "created_time": ts_millis(a.ts_ms),
        "deleted_at": date_only(deleted) if deleted is not None else None,
    }


def _tracking_filter(request: Request, params: Mapping[str, str], name: str,
                     reached_contacts: ReachedContacts, campaign_id: int
                     ) -> tuple[dict[str, str], Callable[[Activity], bool] | None]:
    """The filter of report ``name`` (``url_id``, repeated ``bounce_code``, or the non-openers
    of ``didnotopens``) and the parameters that carry it in the cursor."""
    if name == "clicks" and params.get("url_id"):
        raw = params["url_id"]
        if not raw.isdigit():
            raise V3Error(bad_request("url_id", "is not a valid integer.", SERVICE))
        uid = int(raw)
        return {"url_id": raw}, lambda a: a.link_uid == uid
    if name == "bounces":
        # repeated in the request (bounce_code=B&bounce_code=D); one csv inside our cursor
        codes = (params.get("bounce_code", "").split(",") if "cursor" in request.query_params
                 else request.query_params.getlist("bounce_code"))
        wanted = frozenset(code for code in codes if code)
        if wanted - BOUNCE_CODES:
            raise V3Error(bad_request("bounce_code", "must be one of B, D, F, S, V, X, Z.",
                                      SERVICE))
        if wanted:
            return {"bounce_code": ",".join(sorted(wanted))}, lambda a: a.bounce_code in wanted
    if name == "didnotopens":
        # sent, never opened and not bounced: em_not_opened = sends - opens - bounces (§3.9)
        reached = reached_contacts(campaign_id)
        return {}, lambda a: a.contact_id not in reached
    return {}, None


# -- summaries and stats (§3.9) ----------------------------------------------------------------


def unique_counts(account: Account, c: gen.Campaign) -> dict[str, int]:
    """The campaign's counts under the summary report's names; each one equals the number of
    rows the matching tracking report serves."""
    n = account.campaign_counts(c.id)
    return {"sends": n["sends"], "opens": n["opens"], "clicks": n["clicks"],
            "forwards": n["forwards"], "optouts": n["unsubscribes"],
            # abuse is v2's spam_count: a campaign never sent has none (as the v2 face)
            "abuse": c.spam_count if n["sends"] else 0, "bounces": n["bounces"],
            "not_opened": n["sends"] - n["opens"] - n["bounces"]}


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def percents(u: Mapping[str, int]) -> dict[str, float]:
    """Rates in percent. UNCONFIRMED formulas (CC documents none): bounce over sends, the
    others over delivered mail (sends - bounces), as CC's UI defines its open rate."""
    delivered = u["sends"] - u["bounces"]
    return {"click": _pct(u["clicks"], delivered), "open": _pct(u["opens"], delivered),
            "did_not_open": _pct(u["not_opened"], delivered),
            "bounce": _pct(u["bounces"], u["sends"]),
            "unsubscribe": _pct(u["optouts"], delivered)}


def aggregate_percents(rows: list[dict[str, int]]) -> dict[str, float | int]:
    """``aggregate_percents`` of one page (§3.9); an empty page has integer zeros (NANGO)."""
    if not rows:
        return {"click": 0, "open": 0, "did_not_open": 0, "bounce": 0, "unsubscribe": 0}
    total = {k: sum(r[k] for r in rows) for k in rows[0]}
    return dict(percents(total))


def _devices(seed: int, seqs: Iterable[int]) -> dict[str, int]:
    out = {name: 0 for name, _ in DEVICES}
    for seq in seqs:
        out[device_type(seed, seq)] += 1
    return out


def email_stats(account: Account, c: gen.Campaign) -> JSONDict:
    """``stats`` of ``/reports/stats/email_campaigns`` (§3.9): the tracking counts, opens and
    clicks split by the device the tracking rows show. ``em_opens_all``/``em_clicks_all``
    count every open/click record (the model has at most one per contact, so they equal the
    unique ``em_opens``/``em_clicks``): a connector can detect change by them."""
    with account.pinned_time():
        u = unique_counts(account, c)
        opens = account.activity_seqs(c.id, frozenset({OPEN}))
        clicks = account.activity_seqs(c.id, frozenset({CLICK}))
    od, cd = _devices(account.seed, opens), _devices(account.seed, clicks)
    out: JSONDict = {
        "em_bounces": u["bounces"], "em_clicks": u["clicks"], "em_clicks_all": len(clicks),
        **{f"em_clicks_all_{name}": cd[name] for name, _ in DEVICES}, "em_clicks_all_none": 0,
        "em_forwards": u["forwards"], "em_not_opened": u["not_opened"], "em_opens": u["opens"],
        "em_opens_all": len(opens),
        **{f"em_opens_all_{name}": od[name] for name, _ in DEVICES}, "em_opens_all_none": 0,
        "em_optouts": u["optouts"], "em_sends": u["sends"],
    }
    return out


def email_percents(stats: Mapping[str, int], u: Mapping[str, int]) -> dict[str, float]:
    """``percents`` of a campaign's stats; the device rates are shares of opens/clicks."""
    base = percents(u)
    return {"bounce": base["bounce"], "click": base["click"],
            "desktop_click": _pct(stats["em_clicks_all_computer"], stats["em_clicks_all"]),
            "desktop_open": _pct(stats["em_opens_all_computer"], stats["em_opens_all"]),
            "did_not_open": base["did_not_open"],
            "mobile_click": _pct(stats["em_clicks_all_mobile"], stats["em_clicks_all"]),
            "mobile_open": _pct(stats["em_opens_all_mobile"], stats["em_opens_all"]),
            "open": base["open"], "unsubscribe": base["unsubscribe"]}


def activity_stats(account: Account, ref: ActivityRef) -> JSONDict:
    """``stats`` of ``/reports/stats/email_campaign_activities`` (§3.9): the campaign's stats for
    its ``primary_email`` activity (zeros for a permalink), plus abuse and bounces by code."""
    c = ref.campaign
    if ref.role != "primary_email":
        zero = dict.fromkeys(email_stats(account, c), 0)
        return {**zero, "em_abuse": 0, **dict.fromkeys(BOUNCE_STATS.values(), 0)}
    stats = email_stats(account, c)
    bounces, _ = account.activity_page(campaign_id=c.id, types=frozenset({BOUNCE}),
                                       limit=10**9)
    by_code = dict.fromkeys(BOUNCE_STATS.values(), 0)
    for a in bounces:
        by_code[BOUNCE_STATS[a.bounce_code]] += 1
    return {**stats, "em_abuse": unique_counts(account, c)["abuse"], **by_code}


def _ids_path(raw: str, name: str, maximum: int) -> list[str]:
    ids = list(dict.fromkeys(v.strip().lower() for v in raw.split(",") if v.strip()))
    if not ids:
        raise V3Error(bad_request(name, "is required.", SERVICE))
    if len(ids) > maximum:
        raise V3Error(bad_request(name, f"accepts at most {maximum} ids.", SERVICE))
    return ids


def _stats_not_found(name: str) -> V3Error:
    # any unknown id fails the whole request (§3.9); key as in the contract's StatsError
    return V3Error(error_array(404, f"reportingsvc.not_found.invalid_path_param.{name}.",
                               "Could not find any campaign stats for all requested campaigns."))


# -- contact reports (§3.7) --------------------------------------------------------------------


def contact_types(request: Request, params: Mapping[str, str]) -> frozenset[str]:
    """The requested types: exactly one of ``tracking_activities_list`` (csv) or the repeated
    ``tracking_activity_type`` (§3.7); else a 400."""
    if "cursor" in request.query_params:
        listed, repeated = [params.get("tracking_activities_list", "")], []
    else:
        listed = request.query_params.getlist("tracking_activities_list")
        repeated = request.query_params.getlist("tracking_activity_type")
    names = [n.strip() for raw in listed for n in raw.split(",") if n.strip()]
    if names and repeated:
        raise V3Error(bad_request("tracking_activities_list",
                                  "and tracking_activity_type are mutually exclusive.", SERVICE))
    names = names or [n.strip() for n in repeated if n.strip()]
    if not names:
        raise V3Error(bad_request("tracking_activities_list", "is required.", SERVICE))
    unknown = set(names) - set(CONTACT_TYPES)
    if unknown:
        raise V3Error(bad_request("tracking_activities_list",
                                  f"has invalid values: {', '.join(sorted(unknown))}.", SERVICE))
    return frozenset(names)


def _bool(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise V3Error(bad_request(name, "must be true or false.", SERVICE))
    return raw.lower() == "true"


@dataclass(frozen=True)
class CampaignActivitySummary:
    """What one contact did with one campaign (a row of ``activity_summary``)."""

    campaign: gen.Campaign
    start_ms: int
    counts: dict[int, int]


def contact_summaries(account: Account, cid: int, start: int, end: int
                      ) -> list[CampaignActivitySummary]:
    """The contact's activity per campaign whose send started in ``[start, end]``, most
    recent first. UNCONFIRMED: the window applies to the campaign's send date (``start_on``),
    as the guide says "the starting date ... to use to get campaigns"."""
    acts, _ = account.activity_page(contact_id=cid, limit=10**9)
    per: dict[int, dict[int, int]] = {}
    first: dict[int, int] = {}
    for a in acts:
        counts = per.setdefault(a.campaign_id, {})
        counts[a.type] = counts.get(a.type, 0) + 1
        first[a.campaign_id] = min(first.get(a.campaign_id, a.ts_ms), a.ts_ms)
    out = []
    for camp_id, counts in per.items():
        camp = account.campaigns[camp_id]
        start_on = camp.last_run_ms if camp.last_run_ms is not None else first[camp_id]
        if start <= start_on <= end:
            out.append(CampaignActivitySummary(camp, start_on, counts))
    out.sort(key=lambda s: (s.start_ms, s.campaign.id), reverse=True)
    return out


def _window(params: Mapping[str, str]) -> tuple[int, int]:
    start, end = parse_time(params, "start"), parse_time(params, "end")
    if start is None or end is None:
        raise V3Error(bad_request("start" if start is None else "end", "is required.", SERVICE))
    if end < start:
        raise V3Error(bad_request("end", "must not be before start.", SERVICE))
    return start, end


# -- routes ------------------------------------------------------------------------------------


class ReportRoutes:
    """The handlers of ``/v3/reports/...``."""

    def __init__(self, face: V3Face, index: CampaignIndex) -> None:
        self.account = face.ctx.account
        self.ids = face.ids
        self.index = index
        self.reached = ReachedContacts(self.account)

    def _activity(self, request: Request) -> ActivityRef:
        ref = self.index.activity(request.path_params["campaign_activity_id"])
        if ref is None:
            raise V3Error(not_found("campaign_activity_id", SERVICE))
        return ref

    def _contact(self, request: Request) -> int:
        cid = self.ids.find(gen.KIND_CONTACT, request.path_params["contact_id"],
                            self.account.contact_count)
        if cid is None:
            raise V3Error(not_found("contact_id", SERVICE))
        return cid

    def tracking(self, name: str) -> Handler:
        """The handler of ``tracking/<name>``."""
        kind = TRACKING[name]

        async def handler(request: Request) -> Response:
            ref = self._activity(request)
            params = query(request)
            limit = parse_limit(params, 500, 500)
            if ref.role != "primary_email":  # only the sent activity has tracking (§3.8)
                return v3_json(self._tracking_body(name, [], None))
            carried, keep = _tracking_filter(request, params, name, self.reached,
                                             ref.campaign.id)
            with self.account.lock:
                acts, nxt = scan(self.account, campaign_id=ref.campaign.id,
                                 types=frozenset({kind.activity}),
                                 after=decode_key(params.get("next")), limit=limit, keep=keep)
                contacts: dict[int, gen.Contact | None] = {}
                rows = [tracking_row(self.account, self.ids, kind, a, contacts) for a in acts]
            links = None if nxt is None else links_next(
                request.url.path, {"limit": str(limit), "next": encode_key(nxt), **carried})
            return v3_json(self._tracking_body(name, rows, links))

        return handler

    @staticmethod
    def _tracking_body(name: str, rows: list[JSONDict], links: JSONDict | None) -> JSONDict:
        body: JSONDict = {"tracking_activities": rows}
        if links is not None:
            body["_links"] = links
        elif name in LINKS_REQUIRED:
            body["_links"] = {}
        # else no _links on the last page, nor for a never-sent activity (§1.3, §3.8)
        return body

    async def links(self, request: Request) -> Response:
        ref = self._activity(request)
        with_zero = _bool(request.query_params, "no_clicks", False)
        c = ref.campaign
        clicks = self.account.link_clicks(c.id) if ref.role == "primary_email" else {}
        by_url: dict[str, JSONDict] = {}
        for lk in c.links:  # duplicate URLs are combined (§3.8)
            row = by_url.setdefault(lk.url, {"link_url": lk.url, "url_id": str(lk.uid),
                                             "unique_clicks": 0})
            row["unique_clicks"] += clicks.get(lk.uid, 0)
        counts = [r for r in by_url.values() if with_zero or r["unique_clicks"]]
        return v3_json({"campaign_activity_id": self.ids.activity(c.id, ref.role),
                        "link_click_counts": counts})

    async def activity_details(self, request: Request) -> Response:
        """The contact's activities, newest first, 1-100 a page (§3.7). UNCONFIRMED whether
        click or bounce rows carry more fields here: the sandbox sends the contract's five."""
        cid = self._contact(request)
        params = query(request)
        names = contact_types(request, params)
        limit = parse_limit(params, 100, 100)
        with_names = _bool(params, "include_campaign_activity_names", True)
        types = frozenset(t for n in names if (t := CONTACT_TYPES[n]) is not None)
        acts, nxt = ([], None) if not types else self.account.activity_page(
            contact_id=cid, types=types, after=decode_key(params.get("next")), limit=limit)
        rows = [{"contact_id": self.ids.contact(cid),
                 "campaign_activity_id": self.ids.activity(a.campaign_id, "primary_email"),
                 "created_time": ts_millis(a.ts_ms), "tracking_activity_type": TYPE_NAMES[a.type],
                 "campaign_activity_name":
                     self.account.campaigns[a.campaign_id].name if with_names else None}
                for a in acts]
        body: JSONDict = {"tracking_activities": rows}
        if nxt is not None:
            body["_links"] = links_next(request.url.path, {
                "limit": str(limit), "next": encode_key(nxt),
                "tracking_activities_list": ",".join(sorted(names)),
                "include_campaign_activity_names": str(with_names).lower()})
        return v3_json(body)

    async def activity_summary(self, request: Request) -> Response:
        cid = self._contact(request)
        params = query(request)
        start, end = _window(params)
        rows = contact_summaries(self.account, cid, start, end)
        if "next" in params:
            key = int_pair(params["next"])
            rows = [r for r in rows if (r.start_ms, r.campaign.id) <= key]
        page, rest = rows[:SUMMARY_PAGE], rows[SUMMARY_PAGE:]
        body: JSONDict = {"contact_id": self.ids.contact(cid), "campaign_activities": [
            {"campaign_activity_id": self.ids.activity(r.campaign.id, "primary_email"),
             "start_on": ts_millis(r.start_ms),
             **{f"em_{name}": r.counts.get(t, 0) for name, t in (
                 ("bounces", BOUNCE), ("clicks", CLICK), ("forwards", FORWARD), ("opens", OPEN),
                 ("sends", SEND), ("unsubscribes", UNSUBSCRIBE))}}
            for r in page]}
        if rest:
            body["_links"] = links_next(request.url.path, {
                "start": params["start"], "end": params["end"],
                "next": f"{rest[0].start_ms}.{rest[0].campaign.id}"})
        return v3_json(body)

    async def open_and_click_rates(self, request: Request) -> Response:
        """UNCONFIRMED definitions: the campaigns sent to the contact in the window, and the
        share of them the contact opened / clicked."""
        cid = self._contact(request)
        start, end = _window(query(request))
        if end - start > RATE_WINDOW_MS:
            raise V3Error(bad_request("end", "must be within 5 years of start.", SERVICE))
        sent = [r for r in contact_summaries(self.account, cid, start, end) if r.counts.get(SEND)]
        n = len(sent)
        opened = sum(1 for r in sent if r.counts.get(OPEN))
        clicked = sum(1 for r in sent if r.counts.get(CLICK))
        return v3_json({"contact_id": self.ids.contact(cid), "included_activities_count": n,
                        "average_open_rate": opened / n if n else 0.0,
                        "average_click_rate": clicked / n if n else 0.0})

    async def summaries(self, request: Request) -> Response:
        """Only campaigns that were sent, latest ``last_sent_date`` first (§3.9)."""
        params = query(request)
        limit = parse_limit(params, 50, 500)
        with self.account.lock:
            sent = sorted((c for c in self.account.campaigns.values()
                           if c.status == "SENT" and c.last_run_ms is not None),
                          key=lambda c: (c.last_run_ms or 0, c.id), reverse=True)
        if "next" in params:
            key = int_pair(params["next"])
            sent = [c for c in sent if (c.last_run_ms or 0, c.id) <= key]
        page = sent[:limit]
        counts = [unique_counts(self.account, c) for c in page]
        body: JSONDict = {
            "bulk_email_campaign_summaries": [
                {"campaign_id": self.ids.campaign(c.id), "campaign_type": campaign_type(c).label,
                 "last_sent_date": ts_millis(c.last_run_ms or 0), "unique_counts": u}
                for c, u in zip(page, counts, strict=True)],
            "aggregate_percents": aggregate_percents(counts)}
        if len(sent) > limit:
            nxt = sent[limit]
            body["_links"] = links_next(request.url.path, {
                "limit": str(limit), "next": f"{nxt.last_run_ms}.{nxt.id}"})
        return v3_json(body)

    async def campaign_stats(self, request: Request) -> Response:
        wanted = _ids_path(request.path_params["campaign_ids"], "campaign_ids",
                           STATS_MAX_CAMPAIGNS)
        camps = [self.index.campaign(v) for v in wanted]
        now = ts_millis(self.account.clock.now_ms())
        results = []
        with self.account.lock:
            for c in camps:
                if c is None:
                    raise _stats_not_found("campaign_ids")
                stats = email_stats(self.account, c)
                results.append({"campaign_id": self.ids.campaign(c.id), "stats": stats,
                                "percents": email_percents(stats, unique_counts(self.account, c)),
                                "last_refresh_time": now})
        return v3_json({"results": results})

    async def activity_stats(self, request: Request) -> Response:
        wanted = _ids_path(request.path_params["campaign_activity_ids"],
                           "campaign_activity_ids", STATS_MAX_ACTIVITIES)
        refs = [self.index.activity(v) for v in wanted]
        now = ts_millis(self.account.clock.now_ms())
        results = []
        with self.account.lock:
            for ref in refs:
                if ref is None:
                    raise _stats_not_found("campaign_activity_ids")
                c = ref.campaign
                results.append({"campaign_id": self.ids.campaign(c.id),
                                "campaign_activity_id": self.ids.activity(c.id, ref.role),
                                "stats": activity_stats(self.account, ref),
                                "last_refresh_time": now})
        return v3_json({"results": results})


def routes(face: V3Face) -> list[Route]:
    """``/v3/reports/...``: campaign reports need ``campaign_data``, contact reports
    ``contact_data``; all need the ``ui:campaign:metrics`` privilege (§1.2, contract)."""
    h = ReportRoutes(face, CampaignIndex(face.ctx.account, face.ids))
    camp = face.guarded("campaign_data", "ui:campaign:metrics")
    contact = face.guarded("contact_data", "ui:campaign:metrics")
    base = "/v3/reports/email_reports/{campaign_activity_id}"
    people = "/v3/reports/contact_reports/{contact_id}"
    return [
        *(Route(f"{base}/tracking/{name}", camp(h.tracking(name))) for name in TRACKING),
        Route(f"{base}/links", camp(h.links)),
        Route(f"{people}/activity_details", contact(h.activity_details)),
        Route(f"{people}/activity_summary", contact(h.activity_summary)),
        Route(f"{people}/open_and_click_rates", contact(h.open_and_click_rates)),
        Route("/v3/reports/summary_reports/email_campaign_summaries", camp(h.summaries)),
        Route("/v3/reports/stats/email_campaigns/{campaign_ids}", camp(h.campaign_stats)),
        Route("/v3/reports/stats/email_campaign_activities/{campaign_activity_ids}",
              camp(h.activity_stats)),
    ]
