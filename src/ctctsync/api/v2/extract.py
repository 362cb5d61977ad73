"""Read a table's raw records from API v2, page by page.

:func:`extract` is the one entry point: it takes the table's v2 :class:`~ctctsync.tables.Source`
from the registry and hands it to the reader the source names (:data:`READERS`). It yields
lists of raw records (one list per page or per item call), so the caller can commit as it
goes.

The two per-campaign tables get records already shaped to their table:

* ``contact_tracking``: one activity per record, as the API sends it, plus
  ``campaign_id`` (string, always filled), ``contact_id`` (string), ``activity_type``
  (filled from the collection when missing), ``activity_date`` (the type's own date) and,
  for clicks, ``link_uri`` (from the campaign's links) -- the contact-tracking shape (§8).
* ``email_campaign_summary``: ``campaign_id``, ``last_run_date`` and ``start_date`` (the
  same value), ``end_date`` (when the numbers were read, UTC) and the counts
  ``sends, opens, clicks, forwards, unsubscribes, bounces, spam_count``.

Records may repeat across pages (§1.3 reports N+1 items); merging by key is the caller's job.

Change detection (``ctctsync.api.tracking``): :func:`scan_campaigns` reads each given
campaign's detail once -- its ``tracking_summary`` counts, ``last_run_date`` and link URLs --
and the campaign planner hands the per-campaign readers only what moved: a campaign mapping
with ``TRACKING_KEY`` is read for those kinds only, each from its own ``created_since``; one
with ``SCAN_KEY`` takes its link URLs from the scan (no second detail call); one with
``SUMMARY_KEY`` yields that summary row without a call. v2 has no batched stats: the floor is
one scan call per campaign checked.

Nothing is lost silently (docs/architecture.md, "No silent loss"): what a reader could not
read is noted in the :class:`~ctctsync.api.readnotes.ReadNotes` the caller passes (shared
with the v3 readers; re-exported here), by a kind of :data:`LOSSES` that
says whether it is gone for good (a warning; the bookmark may move) or a later read can
recover it (a warning, and the table's bookmark stays). A missing lookup costs no rows: a
campaign whose detail answers 404 while its tracking answers keeps its clicks (without
``link_uri``) and its summary (from ``…/tracking/reports/summary``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from ctctsync.api.client import ApiClient
from ctctsync.api.readnotes import LOSSES, LossKind, ReadNotes, Recovery
from ctctsync.api.tracking import SCAN_KEY, SUMMARY_KEY, TRACKING_KEY, CampaignScan, TrackingRead
from ctctsync.api.v2.endpoints import (
    CAMPAIGN_PATH,
    SENT,
    TRACKING_TYPES,
    V2_ENDPOINTS,
    first_params,
    format_since,
)
from ctctsync.errors import NotFound
from ctctsync.tables import ACTIVITY_DATE_FIELDS, Source, Table, table

log = logging.getLogger("ctctsync.api.v2")

__all__ = [
    "LOSSES",
    "READERS",
    "LossKind",
    "ReadNotes",
    "Recovery",
    "campaign_activities",
    "campaign_summaries",
    "collection",
    "extract",
    "scan_campaigns",
    "sent_campaigns",
]

Records = list[dict[str, Any]]
Clock = Callable[[], datetime]
Campaigns = Iterable[Mapping[str, Any]]

SUMMARY_COUNTS = ("sends", "opens", "clicks", "forwards", "unsubscribes", "bounces", "spam_count")
"""The counts of a campaign summary -- constant-contact-api.md §9."""

# The per-campaign readers' defaults, so they can be called on their own (tests, tools).
_CAMPAIGNS = V2_ENDPOINTS["email_campaigns"]
_ACTIVITIES = V2_ENDPOINTS["contact_tracking"]
_SUMMARIES = V2_ENDPOINTS["email_campaign_summary"]


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


class SourceReader(Protocol):
    """What every reader of :data:`READERS` accepts (each uses what it needs)."""

    def __call__(
        self,
        client: ApiClient,
        since: datetime | None,
        *,
        source: Source,
        campaigns: Campaigns | None,
        now: Clock,
        notes: ReadNotes,
    ) -> Iterator[Records]: ...


def extract(
    table_or_name: Table | str,
    client: ApiClient,
    since: datetime | None = None,
    *,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
    columns: Sequence[str] | None = None,  # v2 reads every field anyway
) -> Iterator[Records]:
    """Yield pages of raw records of a table (a registry ``Table`` or its name).

    ``since`` (timezone-aware) makes incremental tables send their filter
    (``modified_since``/``created_since``); None reads everything. Full-refresh tables
    ignore it. ``campaigns`` lets the caller share one list of SENT campaign summaries
    (:func:`sent_campaigns`) between the tables that enumerate ``email_campaigns``, instead
    of listing them for each. ``notes`` receives what could not be read (:data:`LOSSES`);
    a caller that passes none still gets each loss in the log.
    """
    spec = table(table_or_name) if isinstance(table_or_name, str) else table_or_name
    source = spec.sources.get("v2")
    if source is None:
        raise ValueError(f"table {spec.name} declares no v2 source")
    yield from READERS[source.reader](client, since, source=source, campaigns=campaigns,
                                      now=now, notes=notes if notes is not None else ReadNotes())


def collection(
    client: ApiClient,
    since: datetime | None,
    *,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """Walk one collection endpoint; one list of records per page."""
    for page in client.pages(source.path, first_params(source, since), source.envelope):
        yield page.records


def sent_campaigns(
    client: ApiClient, known: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Summaries (id, name, status, modified_date) of every SENT campaign, read from the
    ``email_campaigns`` source (the tables that depend on it enumerate these).

    Tracking exists only for SENT campaigns -- constant-contact-api.md §1.8, §9. ``known``
    (the campaign ledger's view) is not needed: the list alone names every campaign.
    """
    params = {**first_params(_CAMPAIGNS, None), "status": SENT}
    found: dict[str, dict[str, Any]] = {}
    for page in client.pages(_CAMPAIGNS.path, params, _CAMPAIGNS.envelope):
        for campaign in page.records:
            found[str(campaign["id"])] = campaign  # pages may overlap -- §1.3
    return list(found.values())


KIND_COUNTS: Mapping[str, str] = MappingProxyType(
    {activity_type: count for count, activity_type in TRACKING_TYPES}
)
"""Tracking kind -> its count in ``tracking_summary``: the six collections' path names are
the summary's count names -- constant-contact-api.md §9, §9.1."""

SCAN_PARAMS: Mapping[str, str] = MappingProxyType({"updateSummary": "true"})
"""The detail's ``tracking_summary`` is as of CC's last scheduled update unless asked to
recompute it (§3): a stale count would only delay the rows, but fresh ones load them on
this run."""


def scan_campaigns(
    client: ApiClient,
    campaigns: Sequence[Mapping[str, Any]],
    *,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> dict[str, CampaignScan]:
    """One detail call per campaign: its ``tracking_summary`` counts by kind, its
    ``last_run_date`` (sent_at), its summary row and its link URLs (``extra["links"]``,
    ``{link_id: url}``) -- constant-contact-api.md §3, §9.

    The counts are v2's: sends and bounces per address, opens, clicks and forwards per
    *unique* recipient (§9). A repeat open does not move them; the planner reads a kind
    from the instant it was last read up to, so such rows are loaded at the kind's next move
    or the campaign's periodic whole read. A campaign whose detail answers 404, or carries
    no ``tracking_summary``, is left out: the readers then read it as without a scan (and
    note what they cannot read themselves).
    """
    out: dict[str, CampaignScan] = {}
    for campaign in campaigns:
        campaign_id = str(campaign["id"])
        try:
            detail = client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id), SCAN_PARAMS)
        except NotFound:
            log.info("campaign %s: detail answered 404 to the scan; read without it",
                     campaign_id)
            continue
        read_at = now()
        summary = detail.get("tracking_summary") if isinstance(detail, dict) else None
        if not isinstance(summary, dict):
            continue
        counts = {kind: _count(summary.get(name)) for kind, name in KIND_COUNTS.items()}
        out[campaign_id] = CampaignScan(
            campaign_id=campaign_id,
            counts=counts,
            sent_at=_parse_time(detail.get("last_run_date")),
            summary=_summary_record(campaign_id, detail, summary, read_at),
            extra={"links": _links_of(detail)},
        )
    return out


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _campaign_list(client: ApiClient, campaigns: Campaigns | None) -> Sequence[Mapping[str, Any]]:
    return list(campaigns) if campaigns is not None else sent_campaigns(client)


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


def _link_uris(client: ApiClient, campaign_id: str, notes: ReadNotes) -> dict[str, str]:
    """``{link_id: url}`` of a campaign, from its detail's ``click_through_details``.

    Campaign-level click items carry ``link_id`` but no ``link_uri`` (contact-level ones do)
    -- constant-contact-api.md §9.1; ``url_uid`` is the ``link_id`` -- §3. A detail that
    answers 404 while the tracking answers costs no rows: the clicks load without a URL and
    the loss is noted (a later read fills the URLs in).
    """
    try:
        detail = client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
    except NotFound:
        log.warning("campaign %s: detail answered 404 while its tracking answered; "
                    "its clicks are loaded without link_uri", campaign_id)
        notes.add("link_lookup_missing", campaign_id)
        return {}
    return _links_of(detail)


def _links_of(detail: Any) -> dict[str, str]:
    """``{link_id: url}`` of a campaign detail's ``click_through_details``."""
    links = detail.get("click_through_details") if isinstance(detail, dict) else None
    out: dict[str, str] = {}
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("url_uid") is not None and link.get("url"):
            out[str(link["url_uid"])] = str(link["url"])
    return out


def _since_for(campaign: Mapping[str, Any], since: datetime | None) -> datetime | None:
    """The filter for one campaign's tracking: None (read whole) for a campaign changed
    since ``since`` (e.g. just sent), so activities created before it reached SENT are not
    lost; ``since`` otherwise."""
    changed = _parse_time(campaign.get("modified_date"))
    if changed is not None and since is not None and changed >= since:
        return None
    return since


def _campaign_exists(client: ApiClient, campaign_id: str) -> bool:
    """Whether the campaign's detail answers (deleted campaigns 404 -- §1.8)."""
    try:
        client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
    except NotFound:
        return False
    return True


class _Links:
    """A campaign's link URLs, looked up once, on its first page of clicks (or given by the
    run's scan of the campaign)."""

    def __init__(self, client: ApiClient, campaign_id: str, notes: ReadNotes,
                 uris: Mapping[str, str] | None = None) -> None:
        self._client, self._campaign_id, self._notes = client, campaign_id, notes
        self._uris: dict[str, str] | None = dict(uris) if uris is not None else None

    def fill(self, records: Records) -> None:
        if self._uris is None:
            self._uris = _link_uris(self._client, self._campaign_id, self._notes)
        for record in records:
            if not record.get("link_uri"):
                record["link_uri"] = self._uris.get(str(record.get("link_id")))


def _campaign_activity_pages(
    client: ApiClient, source: Source, campaign_id: str,
    kinds: Mapping[str, datetime | None], notes: ReadNotes,
    links: Mapping[str, str] | None = None,
) -> Iterator[Records]:
    """The pages of one campaign's tracking collections (``kinds``: activity type -> its
    ``created_since``; the others are not read), normalised; ``links``: the campaign's link
    URLs when the run's scan read them already.

    A collection answering 404 is a campaign deleted during the run when its detail 404s
    too (gone for good: the rest of its tracking is skipped); otherwise the campaign exists,
    the collection is noted as missing (read again next run) and the others are read.
    """
    link_uris = _Links(client, campaign_id, notes, links)
    for type_path, activity_type in TRACKING_TYPES:
        if activity_type not in kinds:
            continue
        since = kinds[activity_type]
        path = source.path.format(campaign_id=campaign_id, type=type_path)
        try:
            for page in client.pages(path, first_params(source, since), source.envelope):
                if not page.records:
                    continue
                records = [_normalise_activity(r, campaign_id, activity_type)
                           for r in page.records]
                if activity_type == "EMAIL_CLICK":
                    link_uris.fill(records)
                yield records
        except NotFound:
            if not _campaign_exists(client, campaign_id):
                log.warning("campaign %s was deleted while its tracking was read; the rest "
                            "of its tracking is gone", campaign_id)
                notes.add("campaign_deleted", campaign_id)
                return
            log.warning("campaign %s: %s answered 404 while the campaign exists; "
                        "read again next run", campaign_id, type_path)
            notes.add("tracking_missing", f"{campaign_id}/{type_path}")


def campaign_activities(
    client: ApiClient,
    since: datetime | None,
    *,
    source: Source = _ACTIVITIES,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """ContactTracking: every activity of every contact, read per SENT campaign.

    v2 has no account-wide activity feed; the per-contact feed (§8) needs one call chain
    per contact. The six per-campaign collections (§9.1) hold the same activities with
    ``6 x campaigns + extra pages`` calls, independent of the number of contacts (plus one
    campaign detail call when the campaign has clicks in the window, for ``link_uri``).

    Incremental reads send ``created_since``, except for campaigns changed since
    ``since`` (:func:`_since_for`). A campaign mapping with ``TRACKING_KEY`` (the campaign
    planner's) is read for its kinds only, each from its own since; one with ``SCAN_KEY``
    takes its link URLs from the scan. What cannot be read goes to ``notes``
    (:func:`_campaign_activity_pages`).
    """
    notes = notes if notes is not None else ReadNotes()
    for campaign in _campaign_list(client, campaigns):
        campaign_id = str(campaign["id"])
        yield from _campaign_activity_pages(
            client, source, campaign_id, _kinds_of(campaign, since), notes,
            _scanned_links(campaign),
        )


def _kinds_of(campaign: Mapping[str, Any], since: datetime | None) -> Mapping[str, datetime | None]:
    """The kinds to read of a campaign, each with its ``created_since``: the planner's
    choice when it made one, else every kind from the table's since (:func:`_since_for`)."""
    read = campaign.get(TRACKING_KEY)
    if isinstance(read, TrackingRead):
        return read.kinds
    whole_or_since = _since_for(campaign, since)
    return dict.fromkeys(KIND_COUNTS, whole_or_since)


def _scanned_links(campaign: Mapping[str, Any]) -> Mapping[str, str] | None:
    scan = campaign.get(SCAN_KEY)
    if not isinstance(scan, CampaignScan):
        return None
    links = scan.extra.get("links")
    return links if isinstance(links, Mapping) else None


def _summary_record(
    campaign_id: str, detail: Any, summary: Any, read_at: datetime
) -> dict[str, Any]:
    last_run = detail.get("last_run_date") if isinstance(detail, dict) else None
    record: dict[str, Any] = {
        "campaign_id": campaign_id,
        "last_run_date": last_run,
        "start_date": last_run,
        "end_date": format_since(read_at),
    }
    for count in SUMMARY_COUNTS:
        record[count] = summary.get(count) if isinstance(summary, dict) else None
    return record


def campaign_summaries(
    client: ApiClient,
    since: datetime | None = None,
    *,
    source: Source = _SUMMARIES,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """EmailCampaignSummary: one summary per SENT campaign, one call each (a full table:
    ``since`` is not used).

    The campaign detail carries the same numbers as the source's ``…/reports/summary`` in
    its ``tracking_summary`` plus ``last_run_date`` (which the summary lacks) -- §3, §9; so
    one detail call gives the whole row. If a detail has no ``tracking_summary``, or answers
    404, the summary endpoint is called (a missing lookup costs no row: without the detail
    the row has no ``last_run_date``, and that is noted). Only a campaign whose summary
    404s too is deleted (§1.8): noted, and it has no row. A campaign mapping with
    ``SUMMARY_KEY`` (read by the run's scan, or kept from the campaign's last check) yields
    that row without a call.
    """
    notes = notes if notes is not None else ReadNotes()
    for campaign in _campaign_list(client, campaigns):
        campaign_id = str(campaign["id"])
        ready = campaign.get(SUMMARY_KEY)
        if isinstance(ready, Mapping):
            yield [dict(ready)]
            continue
        try:
            record = _summary(client, source, campaign_id, now, notes)
        except NotFound:
            log.warning("campaign %s was deleted before its summary was read", campaign_id)
            notes.add("campaign_deleted", campaign_id)
            continue
        yield [record]


def _summary(
    client: ApiClient, source: Source, campaign_id: str, now: Clock, notes: ReadNotes
) -> dict[str, Any]:
    """One campaign's summary row: from its detail, else from the summary endpoint."""
    try:
        detail: Any = client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
    except NotFound:
        detail = None
    read_at = now()
    summary = detail.get("tracking_summary") if isinstance(detail, dict) else None
    if not isinstance(summary, dict):
        summary = client.get_json(source.path.format(campaign_id=campaign_id))
        read_at = now()
        if detail is None:  # the campaign exists (its summary answered): note the gap
            log.warning("campaign %s: detail answered 404 while its summary answered; "
                        "summary read without last_run_date", campaign_id)
            notes.add("summary_without_detail", campaign_id)
    return _summary_record(campaign_id, detail, summary, read_at)


READERS: Mapping[str, SourceReader] = MappingProxyType(
    {
        "collection": collection,
        "campaign_activities": campaign_activities,
        "campaign_summaries": campaign_summaries,
    }
)
"""The reader of each strategy a v2 :class:`~ctctsync.tables.Source` can name."""
