"""Where each table's rows come from in API v2, declared as data.

``V2_ENDPOINTS`` is keyed by the table names of :data:`ctctsync.tables.TABLES`. Tables that
one collection call cannot fill name an *extractor* (a small function in
:mod:`ctctsync.api.v2.extract`) instead of overriding anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from ctctsync.api.paging import Envelope

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


TRACKING_TYPES: tuple[tuple[str, str], ...] = (
    ("sends", "EMAIL_SEND"),
    ("opens", "EMAIL_OPEN"),
    ("clicks", "EMAIL_CLICK"),
    ("forwards", "EMAIL_FORWARD"),
    ("bounces", "EMAIL_BOUNCE"),
    ("unsubscribes", "EMAIL_UNSUBSCRIBE"),
)
"""The six per-campaign tracking collections and the ``activity_type`` of their items --
constant-contact-api.md §9.1, §8."""

ACTIVITY_DATE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "EMAIL_SEND": "send_date",
        "EMAIL_OPEN": "open_date",
        "EMAIL_CLICK": "click_date",
        "EMAIL_FORWARD": "forward_date",
        "EMAIL_BOUNCE": "bounce_date",
        "EMAIL_UNSUBSCRIBE": "unsubscribe_date",
    }
)
"""Each activity type keeps its date in its own field -- constant-contact-api.md §8."""


@dataclass(frozen=True)
class Endpoint:
    """How one table is read from API v2."""

    table: str
    path: str
    """The collection path (for extractor tables: the path of the per-item call, with
    ``{campaign_id}``/``{type}`` placeholders)."""
    envelope: Envelope
    page_size: int | None = None
    """The documented maximum ``limit``; None where the endpoint is not paged."""
    since_param: str | None = None
    """The incremental filter parameter, or None for full-refresh tables."""
    since_format: str = SINCE_FORMAT
    """The date format of ``since_param`` (written by :func:`format_since`)."""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Extra query parameters sent with the first page."""
    extractor: str | None = None
    """Name of the function in :mod:`ctctsync.api.v2.extract` that reads this table, when
    one collection call is not enough."""
    reference: str = ""
    """The section of constant-contact-api.md this declaration follows."""

    def first_params(self, since: datetime | None) -> dict[str, str | int]:
        """Query of the first page: extra params, page size and the incremental filter."""
        query: dict[str, str | int] = dict(self.params)
        if self.page_size is not None:
            query["limit"] = self.page_size
        if since is not None and self.since_param is not None:
            query[self.since_param] = format_since(since)
        return query


CAMPAIGNS_PATH = "/v2/emailmarketing/campaigns"
CAMPAIGN_PATH = "/v2/emailmarketing/campaigns/{campaign_id}"
CAMPAIGN_TRACKING_PATH = "/v2/emailmarketing/campaigns/{campaign_id}/tracking/{type}"
CAMPAIGN_SUMMARY_PATH = "/v2/emailmarketing/campaigns/{campaign_id}/tracking/reports/summary"
CAMPAIGN_PAGE_SIZE = 50  # campaigns: max limit 50 (SDKs claim 500; docs win) -- §1.3
TRACKING_PAGE_SIZE = 500  # tracking: default and max 500 -- §1.3, §9.1

_P = MappingProxyType

V2_ENDPOINTS: dict[str, Endpoint] = {
    e.table: e
    for e in (
        Endpoint(
            table="contacts",
            path="/v2/contacts",
            envelope="v2_results",
            page_size=500,  # contacts: max 500 -- §1.3
            since_param="modified_since",
            # status defaults to ALL; said explicitly so OPTOUT/REMOVED are never dropped -- §2
            params=_P({"status": "ALL"}),
            reference="constant-contact-api.md §2",
        ),
        Endpoint(
            table="email_campaigns",
            path=CAMPAIGNS_PATH,
            envelope="v2_results",
            page_size=CAMPAIGN_PAGE_SIZE,
            since_param="modified_since",
            # ALL = every status but DELETED (DELETED only when asked for) -- §3
            params=_P({"status": "ALL"}),
            reference="constant-contact-api.md §3",
        ),
        Endpoint(
            table="my_library_files",
            path="/v2/library/files",
            envelope="v2_results",
            page_size=1000,  # library files: max 1000 -- §1.3, §4; no date filter
            reference="constant-contact-api.md §4",
        ),
        Endpoint(
            table="account_info",
            path="/v2/account/info",
            envelope="v2_object",  # one object, not paginated -- §5
            reference="constant-contact-api.md §5",
        ),
        Endpoint(
            table="trash_files",
            path="/v2/library/folders/trash/files",
            envelope="v2_results",
            page_size=1000,  # trash: docs say max 1000 (Ruby docblock 50, UNCONFIRMED) -- §6
            reference="constant-contact-api.md §6",
        ),
        Endpoint(
            table="contact_lists",
            path="/v2/lists",
            envelope="v2_array",  # lists is a bare array, not paginated -- §7
            since_param="modified_since",
            reference="constant-contact-api.md §7",
        ),
        Endpoint(
            table="contact_tracking",
            path=CAMPAIGN_TRACKING_PATH,
            envelope="v2_results",
            page_size=TRACKING_PAGE_SIZE,
            since_param="created_since",
            extractor="campaign_activities",
            # Per sent campaign x the six tracking collections, not per contact: calls grow
            # with campaigns and activities, never with contacts -- §8 vs §9.1.
            reference="constant-contact-api.md §8, §9.1",
        ),
        Endpoint(
            table="email_campaign_summary",
            path=CAMPAIGN_SUMMARY_PATH,
            envelope="v2_object",  # one summary object per campaign -- §9
            extractor="campaign_summaries",
            reference="constant-contact-api.md §9",
        ),
        Endpoint(
            table="events",
            path="/v2/eventspot/events",
            envelope="v2_results",
            page_size=500,  # events: 1-500 per the .NET SDK (docs unreadable) -- §10
            reference="constant-contact-api.md §10",
        ),
    )
}
"""Every table's v2 source, keyed by the table names of ``ctctsync.tables.TABLES``."""
