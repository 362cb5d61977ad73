"""API v3 equivalents of the nine tables -- data only, no implementation yet.

v2 is legacy (no new v2 keys; shutdown date unconfirmed) -- constant-contact-api.md §11.
When a v3 client is written it reuses :class:`~ctctsync.api.client.ApiClient` (with a
Bearer-only auth: v3 sends no ``api_key`` query parameter), the ``v3_links`` paginator of
:mod:`ctctsync.api.paging` and the same error table (v3 throttles with 429 ``throttled``
/ ``quota_exceeded``, already in :data:`ctctsync.errors.RULES`). This module records where
each table would come from; when v3 is implemented, each entry becomes a
``ctctsync.tables.Source`` in its table's ``sources["v3"]`` (beside ``sources["v2"]``), with
readers in an ``api.v3`` package, and this planning table goes away. Sources:
constant-contact-api.md §11 and constant-contact-v3-api.md §1-§3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

V3_BASE_URL = "https://api.cc.email"
"""v3 origin; paths start with ``/v3/`` (next hrefs are path-relative) -- v3 reference §1.3."""
V3_AUTHORIZE_URL = "https://authz.constantcontact.com/oauth2/default/v1/authorize"
V3_TOKEN_URL = "https://authz.constantcontact.com/oauth2/default/v1/token"  # noqa: S105
"""v3 OAuth: 24 h access tokens, rotating refresh tokens (persist before use) -- §1.2."""


@dataclass(frozen=True)
class V3Source:
    """Where a table's rows would come from in v3 (None path = no v3 endpoint known)."""

    path: str | None
    records_key: str | None
    page_size: int | None
    incremental_param: str | None
    notes: str


V3_SOURCES: Mapping[str, V3Source] = MappingProxyType(
    {
        "contacts": V3Source(
            "/v3/contacts",
            "contacts",
            500,
            "updated_after",
            "include=custom_fields,list_memberships,taggings,notes,phone_numbers,"
            "street_addresses&status=all; UUID ids (v2 ids via /contacts/contact_id_xrefs).",
        ),
        "email_campaigns": V3Source(
            "/v3/emails",
            "campaigns",
            500,
            "after_date",
            "updated_after is silently ignored on /emails; use after_date.",
        ),
        "my_library_files": V3Source(None, None, None, None, "No v3 MyLibrary endpoint found."),
        "account_info": V3Source(
            "/v3/account/summary",
            None,
            None,
            None,
            "Single object; extra_fields=physical_address,company_logo.",
        ),
        "trash_files": V3Source(None, None, None, None, "No v3 trash endpoint found."),
        "contact_lists": V3Source(
            "/v3/contact_lists",
            "lists",
            500,
            None,
            "No date filter: full refresh; include_membership_count=all&status=all.",
        ),
        "contact_tracking": V3Source(
            "/v3/reports/email_reports/{campaign_activity_id}/tracking/{type}",
            "tracking_activities",
            500,
            None,
            "Per campaign activity, types sends|opens|clicks|bounces|optouts|forwards; no "
            "created_since: read newest-first and stop at the stored watermark.",
        ),
        "email_campaign_summary": V3Source(
            "/v3/reports/summary_reports/email_campaign_summaries",
            "bulk_email_campaign_summaries",
            500,
            None,
            "Bulk: up to 500 campaigns per call instead of one call per campaign.",
        ),
        "events": V3Source(
            "/v3/events",
            "events",
            100,
            None,
            "Pages by next_cursor (query param next=), not _links.",
        ),
    }
)
"""Each table's planned v3 source, keyed by the table names of ``ctctsync.tables.TABLES``."""
