"""Constant Contact API v2 facts that are not a table's declaration: origins, the date
format of the ``*_since`` filters, the tracking collections and the sub-resource paths the
readers call.

Where each table's rows come from is declared once, in the registry
(``ctctsync.tables.TABLES[name].sources["v2"]``); :data:`V2_ENDPOINTS` is a read-only view
of those declarations, keyed by table name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from ctctsync.tables import TABLES, Source

BASE_URL = "https://api.constantcontact.com"
"""v2 API origin; every path starts with ``/v2/`` -- constant-contact-api.md §1.1."""
AUTH_BASE_URL = "https://oauth2.constantcontact.com"
"""v2 OAuth 2.0 server; paths start with ``/oauth2/`` -- constant-contact-api.md §1.2."""

SINCE_FORMAT = "yyyy-MM-ddTHH:mm:ss.SSSZ"
"""``modified_since``/``created_since`` values: ISO-8601 in UTC with milliseconds, as the
Java v5 SDK sends them (``2015-02-11T13:12:06.000Z``) -- §1.5. See :func:`format_since`."""


def format_since(moment: datetime) -> str:
    """A ``modified_since``/``created_since`` value: ``2015-02-11T13:12:06.000Z``.

    Naive datetimes are refused: a timezone mistake here silently skips or re-reads data.
    """
    if moment.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def first_params(source: Source, since: datetime | None) -> dict[str, str | int]:
    """Query of a source's first page: its fixed params, page size and incremental filter."""
    query: dict[str, str | int] = dict(source.params)
    if source.page_size is not None:
        query["limit"] = source.page_size
    if since is not None and source.since_param is not None:
        query[source.since_param] = format_since(since)
    return query


TRACKING_TYPES: tuple[tuple[str, str], ...] = (
    ("sends", "EMAIL_SEND"),
    ("opens", "EMAIL_OPEN"),
    ("clicks", "EMAIL_CLICK"),
    ("forwards", "EMAIL_FORWARD"),
    ("bounces", "EMAIL_BOUNCE"),
    ("unsubscribes", "EMAIL_UNSUBSCRIBE"),
)
"""The six per-campaign tracking collections (the ``{type}`` of the contact_tracking
source's path) and the ``activity_type`` of their items -- constant-contact-api.md §9.1, §8."""

CAMPAIGN_PATH = "/v2/emailmarketing/campaigns/{campaign_id}"
"""One campaign's detail: its ``click_through_details`` (link URLs) and ``tracking_summary``
plus ``last_run_date`` -- constant-contact-api.md §3, §9."""

SENT = "SENT"
"""The campaign status whose campaigns have tracking -- constant-contact-api.md §1.8, §9."""

V2_ENDPOINTS: Mapping[str, Source] = MappingProxyType(
    {name: t.sources["v2"] for name, t in TABLES.items() if "v2" in t.sources}
)
"""Every table's v2 source, by table name: a view of the registry, not a second copy."""
