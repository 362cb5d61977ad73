"""Read a table's raw records from API v2, page by page.

:func:`extract` is the one entry point: it looks the table up in ``V2_ENDPOINTS`` and
either walks its collection or calls the table's named extractor. It yields lists of raw
records (one list per page or per item call), so the caller can commit as it goes.

The two derived tables get records already shaped to their table:

* ``contact_tracking``: one activity per record, as the API sends it, plus
  ``campaign_id`` (string, always filled), ``contact_id`` (string), ``activity_type``
  (filled from the collection when missing), ``activity_date`` (the type's own date) and,
  for clicks, ``link_uri`` (from the campaign's links) -- the contact-tracking shape (§8).
* ``email_campaign_summary``: ``campaign_id``, ``last_run_date`` and ``start_date`` (the
  same value), ``end_date`` (when the numbers were read, UTC) and the counts
  ``sends, opens, clicks, forwards, unsubscribes, bounces, spam_count``.

Records may repeat across pages (§1.3 reports N+1 items); merging by key is the caller's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ctctsync.api.client import ApiClient
from ctctsync.api.v2.endpoints import (
    ACTIVITY_DATE_FIELDS,
    CAMPAIGN_PAGE_SIZE,
    CAMPAIGN_PATH,
    CAMPAIGN_SUMMARY_PATH,
    CAMPAIGN_TRACKING_PATH,
    CAMPAIGNS_PATH,
    TRACKING_PAGE_SIZE,
    TRACKING_TYPES,
    V2_ENDPOINTS,
    Endpoint,
    format_since,
)
from ctctsync.errors import NotFound

log = logging.getLogger("ctctsync.api.v2")

Records = list[dict[str, Any]]
Clock = Callable[[], datetime]

SUMMARY_COUNTS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces", "spam_count")
"""The counts of a campaign summary -- constant-contact-api.md §9."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def extract(
    table_name: str,
    client: ApiClient,
    since: datetime | None = None,
    *,
    campaigns: Iterable[Mapping[str, Any]] | None = None,
    now: Clock = _utcnow,
) -> Iterator[Records]:
    """Yield pages of raw records of ``table_name`` (a key of ``V2_ENDPOINTS``).

    ``since`` (timezone-aware) makes incremental tables send their filter
    (``modified_since``/``created_since``); None reads everything. Full-refresh tables
    ignore it. ``campaigns`` lets the caller share one list of SENT campaign summaries
    (:func:`sent_campaigns`) between the two per-campaign tables instead of listing twice.
    """
    endpoint = V2_ENDPOINTS[table_name]
    if endpoint.extractor == "campaign_activities":
        yield from campaign_activities(client, since, campaigns=campaigns)
    elif endpoint.extractor == "campaign_summaries":
        yield from campaign_summaries(client, campaigns=campaigns, now=now)
    elif endpoint.extractor is not None:
        raise ValueError(f"unknown extractor {endpoint.extractor!r}")
    else:
        yield from collection(endpoint, client, since)


def collection(endpoint: Endpoint, client: ApiClient, since: datetime | None) -> Iterator[Records]:
    """Walk one collection endpoint; one list of records per page."""
    for page in client.pages(endpoint.path, endpoint.first_params(since), endpoint.envelope):
        yield page.records


def sent_campaigns(client: ApiClient) -> list[dict[str, Any]]:
    """Summaries (id, name, status, modified_date) of every SENT campaign.

    Tracking exists only for SENT campaigns -- constant-contact-api.md §1.8, §9.
    """
    params: dict[str, str | int] = {"status": "SENT", "limit": CAMPAIGN_PAGE_SIZE}
    found: dict[str, dict[str, Any]] = {}
    for page in client.pages(CAMPAIGNS_PATH, params, "v2_results"):
        for campaign in page.records:
            found[str(campaign["id"])] = campaign  # pages may overlap -- §1.3
    return list(found.values())


def _normalise_activity(
    record: dict[str, Any], campaign_id: str, activity_type: str
) -> dict[str, Any]:
    # campaign_id is a number in campaign tracking, a string in contact tracking -- §1.5.
    out = dict(record)
    out["campaign_id"] = str(record.get("campaign_id") or campaign_id)
    if out.get("contact_id") is not None:
        out["contact_id"] = str(out["contact_id"])
    kind = str(out.get("activity_type") or activity_type)
    out["activity_type"] = kind
    date_field = ACTIVITY_DATE_FIELDS.get(kind)
    out["activity_date"] = out.get(date_field) if date_field else None
    return out


def _link_uris(client: ApiClient, campaign_id: str) -> dict[str, str]:
    """``{link_id: url}`` of a campaign, from its detail's ``click_through_details``.

    Campaign-level click items carry ``link_id`` but no ``link_uri`` (contact-level ones do)
    -- constant-contact-api.md §9.1; ``url_uid`` is the ``link_id`` -- §3.
    """
    detail = client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
    links = detail.get("click_through_details") if isinstance(detail, dict) else None
    out: dict[str, str] = {}
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("url_uid") is not None and link.get("url"):
            out[str(link["url_uid"])] = str(link["url"])
    return out


def campaign_activities(
    client: ApiClient,
    since: datetime | None,
    *,
    campaigns: Iterable[Mapping[str, Any]] | None = None,
) -> Iterator[Records]:
    """ContactTracking: every activity of every contact, read per SENT campaign.

    v2 has no account-wide activity feed; the per-contact feed (§8) needs one call chain
    per contact. The six per-campaign collections (§9.1) hold the same activities with
    ``6 x campaigns + extra pages`` calls, independent of the number of contacts (plus one
    campaign detail call when the campaign has clicks in the window, for ``link_uri``).

    Incremental reads send ``created_since``, except for campaigns changed since
    ``since`` (e.g. just sent): their history is read whole, so activities created before
    the campaign reached SENT are not lost.
    """
    chosen = list(campaigns) if campaigns is not None else sent_campaigns(client)
    for campaign in chosen:
        campaign_id = str(campaign["id"])
        changed = _parse_time(campaign.get("modified_date"))
        use_since = since is not None and (changed is None or changed < since)
        uris: dict[str, str] | None = None
        try:
            for type_path, activity_type in TRACKING_TYPES:
                params: dict[str, str | int] = {"limit": TRACKING_PAGE_SIZE}
                if use_since and since is not None:
                    params["created_since"] = format_since(since)
                path = CAMPAIGN_TRACKING_PATH.format(campaign_id=campaign_id, type=type_path)
                for page in client.pages(path, params, "v2_results"):
                    if not page.records:
                        continue
                    records = [
                        _normalise_activity(r, campaign_id, activity_type) for r in page.records
                    ]
                    if activity_type == "EMAIL_CLICK":
                        if uris is None:
                            uris = _link_uris(client, campaign_id)
                        for record in records:
                            if not record.get("link_uri"):
                                record["link_uri"] = uris.get(str(record.get("link_id")))
                    yield records
        except NotFound:
            # Deleted between the campaign list and its tracking: nothing left to read.
            log.info("campaign %s disappeared while reading its tracking; skipped", campaign_id)


def campaign_summaries(
    client: ApiClient,
    *,
    campaigns: Iterable[Mapping[str, Any]] | None = None,
    now: Clock = _utcnow,
) -> Iterator[Records]:
    """EmailCampaignSummary: one summary per SENT campaign, one call each.

    The campaign detail carries the same numbers as ``…/tracking/reports/summary`` in its
    ``tracking_summary`` plus ``last_run_date`` (which the summary lacks) -- §3, §9; so one
    detail call gives the whole row. Only if a detail has no ``tracking_summary`` is the
    summary endpoint called.
    """
    chosen = list(campaigns) if campaigns is not None else sent_campaigns(client)
    for campaign in chosen:
        campaign_id = str(campaign["id"])
        try:
            detail = client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
            read_at = now()
            summary = detail.get("tracking_summary") if isinstance(detail, dict) else None
            if not isinstance(summary, dict):
                summary = client.get_json(CAMPAIGN_SUMMARY_PATH.format(campaign_id=campaign_id))
                read_at = now()
        except NotFound:
            # Deleted between list and detail (deleted campaigns 404) -- §1.8.
            log.info("campaign %s disappeared before its summary was read; skipped", campaign_id)
            continue
        last_run = detail.get("last_run_date") if isinstance(detail, dict) else None
        record: dict[str, Any] = {
            "campaign_id": campaign_id,
            "last_run_date": last_run,
            "start_date": last_run,
            "end_date": format_since(read_at),
        }
        for count in SUMMARY_COUNTS:
            record[count] = summary.get(count) if isinstance(summary, dict) else None
        yield [record]
