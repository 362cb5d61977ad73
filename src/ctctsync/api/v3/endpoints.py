"""Constant Contact API v3 facts that are not a table's declaration: the origin, the format
of date filters, the tracking reports, campaign roles and statuses, and the sub-resource
paths the readers call.

Where each table's rows come from is declared once, in the registry
(``ctctsync.tables.TABLES[name].sources["v3"]``); :data:`V3_ENDPOINTS` is a read-only view
of those declarations, keyed by table name. Sections cited are of
``constant-contact-v3-api.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ctctsync.api.paging import Paginator, V3CursorPaginator, paginator_for
from ctctsync.tables import TABLES, Source

BASE_URL = "https://api.cc.email"
"""v3 origin; every path starts with ``/v3/`` and next hrefs are path-relative (§1.1, §1.3)."""


def format_time(moment: datetime) -> str:
    """A v3 date filter (``updated_after``, ``after_date``): ``2022-01-01T16:37:59.091Z``
    (ISO-8601 in UTC with milliseconds, as the contract's examples write it -- §1.6).

    Naive datetimes are refused: a timezone mistake here silently skips or re-reads data.
    """
    if moment.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime | None:
    """A v3 timestamp as an aware UTC datetime, None when absent or unreadable.

    Lenient on purpose: v3 writes ``Z``, ``.000Z``, ``-04:00``, ``+0000`` and date-only
    values depending on the service (§1.6); a date is taken as midnight UTC.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def first_params(source: Source, since: datetime | None) -> dict[str, str | int]:
    """Query of a source's first page: its fixed params, page size and incremental filter.

    Later pages send only what the next link carries: a v3 ``_links`` cursor already holds
    the filters and the limit (§1.3)."""
    query: dict[str, str | int] = dict(source.params)
    if source.page_size is not None:
        query["limit"] = source.page_size
    if since is not None and source.since_param is not None:
        query[source.since_param] = format_time(since)
    return query


def paginator(source: Source, path: str | None = None) -> Paginator:
    """The paginator of a v3 source; ``path``: the concrete collection path (cursor paging
    builds ``<path>?next=`` links), the source's own path by default."""
    where = path or source.path
    if source.envelope == "v3_cursor":
        if source.records_key is None:
            raise ValueError(f"{source.path}: v3_cursor needs records_key")
        # the cursor does not say whether it keeps the page size: ask for it again
        keep: dict[str, str | int] = {}
        if source.page_size is not None:
            keep["limit"] = source.page_size
        return V3CursorPaginator(source.records_key, where, MappingProxyType(keep))
    return paginator_for(source.envelope, source.records_key, where)


TRACKING_TYPES: tuple[tuple[str, str], ...] = (
    ("sends", "EMAIL_SEND"),
    ("opens", "EMAIL_OPEN"),
    ("clicks", "EMAIL_CLICK"),
    ("forwards", "EMAIL_FORWARD"),
    ("bounces", "EMAIL_BOUNCE"),
    ("optouts", "EMAIL_UNSUBSCRIBE"),
)
"""The six activity reports of a campaign activity (the ``{type}`` of the contact_tracking
source's path) and the v2 ``activity_type`` their rows keep, for continuity with v2 tables
(§3.8). ``unique_opens`` repeats ``opens``; ``didnotopens`` lists contacts who did *not*
act: neither is an activity, so neither is read."""

ACTIVITY_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "em_sends": "EMAIL_SEND",
        "em_opens": "EMAIL_OPEN",
        "em_clicks": "EMAIL_CLICK",
        "em_forwards": "EMAIL_FORWARD",
        "em_bounces": "EMAIL_BOUNCE",
        "em_optouts": "EMAIL_UNSUBSCRIBE",
    }
)
"""A row's ``tracking_activity_type`` -> the v2 ``activity_type`` (§3.8)."""

STATS_PATH = "/v3/reports/stats/email_campaigns/{campaign_ids}"
"""Activity counts of many campaigns, ids comma-separated (§3.9)."""
STATS_ENDPOINT = "GET /v3/reports/stats/email_campaigns/{campaign_ids}"
"""The stats calls' name in the call counter (the path holds a list, not one id)."""
STATS_MAX_IDS = 150
"""``campaign_ids`` of one stats call: contract ``maximum: 150`` (§3.9)."""

STAT_OF_KIND: Mapping[str, str] = MappingProxyType(
    {
        "EMAIL_SEND": "em_sends",
        "EMAIL_OPEN": "em_opens_all",
        "EMAIL_CLICK": "em_clicks_all",
        "EMAIL_FORWARD": "em_forwards",
        "EMAIL_UNSUBSCRIBE": "em_optouts",
        "EMAIL_BOUNCE": "em_bounces",
    }
)
"""Tracking kind -> the campaign stat counting its report's rows (§3.9). Opens and clicks
take the ``*_all`` counts: the ``opens``/``clicks`` reports list every open and click, and
the unique ``em_opens``/``em_clicks`` would not move on a contact's second open."""

CAMPAIGNS_PATH = "/v3/emails"
"""Every campaign, deleted ones included (``Removed``) -- §3.6."""
CAMPAIGN_PATH = "/v3/emails/{campaign_id}"
"""One campaign with its ``campaign_activities`` (id and role) -- §3.6."""
EVENT_PATH = "/v3/events/{event_id}"
"""One event's detail: ``time_zone``, ``active_time``, ``default_track`` -- §3.11."""

EMAIL_ROLES = frozenset({"primary_email", "resend"})
"""The campaign activities that are emails sent to contacts (``permalink`` is a web page):
the ones with tracking reports -- §3.6, §3.8."""

SENT_STATUSES = frozenset({"DONE", "EXECUTING"})
"""Campaign statuses whose activities have tracking: sent, or being sent. ``REMOVED``
campaigns are left out: their activities cannot be read any more (§1.7)."""

V3_ENDPOINTS: Mapping[str, Source] = MappingProxyType(
    {name: t.sources["v3"] for name, t in TABLES.items() if "v3" in t.sources}
)
"""Every table's v3 source, by table name: a view of the registry, not a second copy."""
