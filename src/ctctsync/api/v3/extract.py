"""Read a table's rows from API v3, page by page, already shaped to the table's columns.

:func:`extract` is the entry point, with the same signature as
:func:`ctctsync.api.v2.extract.extract`: it takes the table's v3
:class:`~ctctsync.tables.Source` from the registry and hands it to the reader the source
names (:data:`READERS`). It yields lists of records (one list per page or per item call),
each record holding the columns of ``table.for_version("v3")`` (:mod:`.shape`) plus any v3
field ctctsync does not know (so new fields are reported). :func:`sent_campaigns` lists the
campaigns whose activities have tracking, with their activity ids, and
:func:`scan_campaigns` counts their activities (both in :mod:`.campaigns`).
:func:`read_events` reads the events tables with the event planner's choices (which details
and whose registrations to read).

Records may repeat across pages; merging by key is the caller's job. What a reader could not
read goes to the caller's :class:`~ctctsync.api.readnotes.ReadNotes`. Sections cited are of
``constant-contact-v3-api.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from ctctsync.api.client import ApiClient
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.tracking import TRACKING_KEY, TrackingRead
from ctctsync.api.v3.campaigns import (
    all_campaigns,
    campaign_detail,
    email_activity_ids,
    scan_campaigns,
    sent_campaigns,
)
from ctctsync.api.v3.endpoints import (
    ACTIVITY_TYPES,
    EVENT_PATH,
    TRACKING_TYPES,
    V3_ENDPOINTS,
    first_params,
    format_time,
    paginator,
    parse_time,
)
from ctctsync.api.v3.export import read_contacts
from ctctsync.api.v3.shape import Shaper, tracking_row
from ctctsync.errors import NotFound
from ctctsync.tables import ACTIVITY_DATE_FIELDS, TABLES, Source, Table, table

log = logging.getLogger("ctctsync.api.v3")

Records = list[dict[str, Any]]
Clock = Callable[[], datetime]
Campaigns = Iterable[Mapping[str, Any]]

__all__ = [
    "READERS",
    "TableUnavailable",
    "extract",
    "read_events",
    "scan_campaigns",
    "sent_campaigns",
]


class TableUnavailable(ValueError):  # noqa: N818 - named by what the caller meets
    """The table has no v3 source (MyLibrary files, trash): the message says why."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SourceReader(Protocol):
    """What every reader of :data:`READERS` accepts (each uses what it needs)."""

    def __call__(
        self,
        client: ApiClient,
        since: datetime | None,
        *,
        table: Table,
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
    columns: Sequence[str] | None = None,
) -> Iterator[Records]:
    """Yield pages of a table's rows read from v3 (a registry ``Table`` or its name).

    ``columns``: the columns the caller will load (default: all of the table's); a contacts
    read that needs none of the columns the bulk export cannot fill may take the export.

    ``since`` (timezone-aware) makes incremental tables send their filter (``updated_after``,
    ``after_date``) or, for tracking, stop at it; None reads everything. Full tables ignore
    it. UNCONFIRMED whether v3's ``*_after`` filters are inclusive (§1.9): either way is
    safe, since callers pass the bookmark minus a look-back and merge by key.
    ``campaigns``: :func:`sent_campaigns`, shared by the tables that enumerate
    ``email_campaigns`` (read here when not given). ``notes`` receives what could not be read.

    Raises :class:`TableUnavailable` (with the registry's reason) for a table v3 cannot fill.
    """
    spec = table(table_or_name) if isinstance(table_or_name, str) else table_or_name
    source = spec.sources.get("v3")
    if source is None:
        raise TableUnavailable(f"{spec.name}: {spec.unavailable_reason('v3')}")
    view = _v3_view(spec)
    notes = notes if notes is not None else ReadNotes()
    if view.name == "contacts":
        # the bulk export replaces paging when it costs fewer calls (export.py)
        yield from read_contacts(client, since, table=view, source=source, notes=notes,
                                 columns=columns)
        return
    yield from READERS[source.reader](
        client, since, table=view, source=source, campaigns=campaigns, now=now, notes=notes,
    )


def _v3_view(spec: Table) -> Table:
    """The table as v3 fills it: as given if it is the v3 view already, else built from the
    given declaration (or, for another version's view, from the registry's)."""
    if spec.api_version == "v3":
        return spec
    if spec.api_version is None:
        return spec.for_version("v3")
    return TABLES[spec.name].for_version("v3")  # another version's columns: start over


def collection(
    client: ApiClient,
    since: datetime | None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """Walk one collection (or read one object); one list of rows per page."""
    shape = Shaper(table, source)
    for page in client.pages(source.path, first_params(source, since), paginator(source)):
        yield [shape(r) for r in page.records]


# --- campaigns and their activities ----------------------------------------------------------


def _campaign_list(client: ApiClient, campaigns: Campaigns | None) -> Sequence[Mapping[str, Any]]:
    return list(campaigns) if campaigns is not None else sent_campaigns(client)


def _until_watermark(
    records: Sequence[Mapping[str, Any]], since: datetime | None
) -> tuple[list[Mapping[str, Any]], bool]:
    """The rows of a newest-first page created at or after ``since``, and whether an older
    row was met (then the report holds nothing newer further on: stop paging)."""
    if since is None:
        return list(records), False
    kept: list[Mapping[str, Any]] = []
    for record in records:
        created = parse_time(record.get("created_time"))
        if created is not None and created < since:
            return kept, True
        kept.append(record)
    return kept, False


def _report(
    client: ApiClient, source: Source, shape: Shaper, campaign_id: str, path: str,
    activity_type: str, since: datetime | None,
) -> Iterator[Records]:
    """One report of one campaign activity, read newest first until the watermark."""
    for page in client.pages(path, first_params(source, None), paginator(source, path)):
        fresh, older_met = _until_watermark(page.records, since)
        rows = []
        for raw in fresh:
            kind = ACTIVITY_TYPES.get(str(raw.get("tracking_activity_type")), activity_type)
            rows.append(tracking_row(shape, raw, campaign_id, kind,
                                     ACTIVITY_DATE_FIELDS.get(kind)))
        if rows:
            yield rows
        if older_met:
            return  # newest first (§1.8): the rest was read by an earlier run


Reads = Sequence[tuple[str, str, datetime | None]]
"""The reports to read of a campaign's activities: (report, activity kind, created since)."""


def _reads(campaign: Mapping[str, Any], since: datetime | None) -> Reads:
    """Which of a campaign's six reports to read, each with its own ``since``: the kinds its
    :data:`~ctctsync.api.tracking.TRACKING_KEY` names (the planner's choice), else every
    kind since the table's ``since``."""
    plan = campaign.get(TRACKING_KEY)
    if not isinstance(plan, TrackingRead):
        return [(type_path, kind, since) for type_path, kind in TRACKING_TYPES]
    return [(type_path, kind, plan.kinds[kind])
            for type_path, kind in TRACKING_TYPES if kind in plan.kinds]


def _report_pages(
    client: ApiClient, source: Source, shape: Shaper, campaign_id: str, activity_id: str,
    reads: Reads, notes: ReadNotes,
) -> Iterator[Records]:
    """The reports ``reads`` names of one campaign activity.

    A report answering 404 means the campaign was deleted during the run when its detail
    404s too (gone for good: the activity's other reports are skipped); otherwise the
    campaign exists, the report is noted as missing (read again next run: the bookmark
    stays) and the others are read -- as v2 does (constant-contact-api.md §1.8)."""
    for type_path, activity_type, since in reads:
        path = source.path.format(campaign_activity_id=activity_id, type=type_path)
        try:
            yield from _report(client, source, shape, campaign_id, path, activity_type, since)
        except NotFound:
            if campaign_detail(client, campaign_id) is None:
                notes.add("campaign_deleted", campaign_id)
                return
            log.warning("campaign %s: %s answered 404 while the campaign exists; read again "
                        "next run", campaign_id, path)
            notes.add("tracking_missing", f"{activity_id}/{type_path}")


def campaign_activities(
    client: ApiClient,
    since: datetime | None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """ContactTracking: the activities of sent campaigns, from the six per-activity reports
    (§3.8) of each of a campaign's email activities (``primary_email``, ``resend``).

    A campaign carrying :data:`~ctctsync.api.tracking.TRACKING_KEY` has only the kinds it
    names read, each since its own moment (None: whole); one without it has every kind read
    since ``since``; a campaign not in ``campaigns`` is not read.

    The reports have no date filter (§1.9) and list the newest first (§1.8): an incremental
    read pages each report until its first row older than its ``since`` (the mark minus the
    look-back; the merge on ``activity_id`` absorbs the overlap). Calls: one per report read
    per campaign activity + one per further page of new rows, whatever the number of
    contacts (the per-contact report, §3.7, would need a call chain per contact). A campaign
    removed during the run answers 404: its activities are gone with it (noted,
    :func:`_report_pages`).
    """
    notes = notes if notes is not None else ReadNotes()
    shape = Shaper(table, source)
    for campaign in _campaign_list(client, campaigns):
        campaign_id = str(campaign["campaign_id"])
        if campaign.get("deleted"):  # its detail 404ed in sent_campaigns
            notes.add("campaign_deleted", campaign_id)
            continue
        reads = _reads(campaign, since)
        if not reads:
            continue
        for activity_id in campaign.get("activity_ids") or ():
            yield from _report_pages(client, source, shape, campaign_id, str(activity_id),
                                     reads, notes)


def campaign_summaries(
    client: ApiClient,
    since: datetime | None = None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """EmailCampaignSummary: the bulk summary report, 500 sent campaigns per call (§3.9),
    instead of v2's call per campaign. ``end_date`` is when each page was read (the counts
    are as of then); ``start_date`` the campaign's ``last_sent_date``. A full table."""
    shape = Shaper(table, source)
    for page in client.pages(source.path, first_params(source, None), paginator(source)):
        read_at = format_time(now())
        yield [shape(r, {"end_date": read_at}) for r in page.records]


def email_activities(
    client: ApiClient,
    since: datetime | None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """EmailCampaignActivities: for each campaign changed since ``since`` (``after_date`` on
    ``GET /emails``, §1.9), its detail, then each of its email activities (§3.6).

    Removed campaigns are skipped: their activities cannot be read (§1.7). An activity that
    answers 404 is noted (gone)."""
    notes = notes if notes is not None else ReadNotes()
    shape = Shaper(table, source)
    for campaign in all_campaigns(client, since):
        if str(campaign.get("current_status") or "").upper() == "REMOVED":
            continue
        detail = campaign_detail(client, str(campaign["campaign_id"]))
        if detail is None:
            continue
        rows = []
        for activity_id in email_activity_ids(detail):
            try:
                activity = client.get_json(source.path.format(campaign_activity_id=activity_id))
            except NotFound:
                notes.add("activity_unreadable", activity_id)
                continue
            if isinstance(activity, dict):
                rows.append(shape(activity))
        if rows:
            yield rows


# --- events ----------------------------------------------------------------------------------


EVENT_DETAIL_FIELDS = ("time_zone", "active_time", "track_id")
"""What the readers keep of an event's detail (§3.11: only the detail has them):
``time_zone``, ``active_time`` and ``default_track.track_id``."""


class EventPlan(Protocol):
    """The caller's choices for a read of the events tables, event by event (the event
    planner, ``ctctsync.sync.events.EventRun``). Details are mappings of
    :data:`EVENT_DETAIL_FIELDS`. Without a plan every detail and every event's
    registrations are read (:class:`_ReadAll`)."""

    def known_detail(self, event: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The listed ``event``'s detail fields as kept, or None to read its detail."""
        ...

    def reads_registrations(self, event: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
        """Whether ``event``'s registrations are read (``detail``: as read or kept)."""
        ...

    def read(self, event: Mapping[str, Any], detail: Mapping[str, Any], *,
             registrations: bool) -> None:
        """The reader is done with ``event`` (its row shaped, or its registrations read
        when ``registrations``, or left as loaded)."""
        ...


class _ReadAll:
    """The plan of a read without one: every detail, every event's registrations."""

    def known_detail(self, event: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return None

    def reads_registrations(self, event: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
        return True

    def read(self, event: Mapping[str, Any], detail: Mapping[str, Any], *,
             registrations: bool) -> None:
        return None


def detail_fields(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`EVENT_DETAIL_FIELDS` of an event detail (``GET /events/{event_id}``)."""
    track = detail.get("default_track")
    return {"time_zone": detail.get("time_zone"), "active_time": detail.get("active_time"),
            "track_id": track.get("track_id") if isinstance(track, dict) else None}


def _events_with_details(
    client: ApiClient, notes: ReadNotes, plan: EventPlan
) -> Iterator[list[tuple[Mapping[str, Any], Mapping[str, Any]]]]:
    """Each page of the event list as (event, its detail fields) pairs: the detail read
    where ``plan`` keeps none. The list has no date filter and no update time (§3.11): it
    is read whole, one call per 100 events.

    An event whose detail answers 404 was deleted during the run: noted, and left out."""
    source = V3_ENDPOINTS["events"]
    for page in client.pages(source.path, first_params(source, None), paginator(source)):
        pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
        for event in page.records:
            detail = plan.known_detail(event)
            if detail is None:
                event_id = str(event.get("event_id"))
                try:
                    raw = client.get_json(EVENT_PATH.format(event_id=event_id))
                except NotFound:
                    log.warning("event %s answered 404: deleted during the run", event_id)
                    notes.add("event_deleted", event_id)
                    continue
                detail = detail_fields(raw if isinstance(raw, dict) else {})
            pairs.append((event, detail))
        yield pairs


def event_details(
    client: ApiClient,
    since: datetime | None = None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
    plan: EventPlan | None = None,
) -> Iterator[Records]:
    """Events: the event list (100 per page, ``next_cursor``) and the detail of each event
    ``plan`` has no kept detail for (without a plan: every event's), the only place with
    ``time_zone`` and ``active_time`` (§3.11). 1 + events/100 calls + one per detail read.
    Every listed event is a row: a full table."""
    notes = notes if notes is not None else ReadNotes()
    plan = plan if plan is not None else _ReadAll()
    shape = Shaper(table, source)
    for pairs in _events_with_details(client, notes, plan):
        rows = []
        for event, detail in pairs:
            rows.append(shape(dict(event), {"time_zone_id": detail.get("time_zone"),
                                            "active_date": detail.get("active_time")}))
            plan.read(event, detail, registrations=False)
        yield rows


def event_registrations(
    client: ApiClient,
    since: datetime | None = None,
    *,
    table: Table,
    source: Source,
    campaigns: Campaigns | None = None,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
    plan: EventPlan | None = None,
) -> Iterator[Records]:
    """EventRegistrations: per listed event ``plan`` picks (without a plan: every one), the
    registrations of its default track, 100 per page (``next_cursor``) -- §3.11; the track's
    id comes from the event's detail (read, or kept by ``plan``). An event without a default
    track has no registrations to read. No date filter (§1.9): an event's registrations
    are read whole or not at all."""
    notes = notes if notes is not None else ReadNotes()
    plan = plan if plan is not None else _ReadAll()
    shape = Shaper(table, source)
    for pairs in _events_with_details(client, notes, plan):
        for event, detail in pairs:
            if not plan.reads_registrations(event, detail):
                plan.read(event, detail, registrations=False)
                continue
            event_id = str(event.get("event_id"))
            track_id = detail.get("track_id")
            if track_id:
                path = source.path.format(event_id=event_id, track_id=track_id)
                extra = {"event_id": event_id, "track_id": track_id}
                try:
                    for page in client.pages(path, first_params(source, None),
                                             paginator(source, path)):
                        if page.records:
                            yield [shape(r, extra) for r in page.records]
                except NotFound:
                    notes.add("event_deleted", event_id)
                    continue
            plan.read(event, detail, registrations=True)


_EVENT_READERS = MappingProxyType(
    {"event_details": event_details, "event_registrations": event_registrations}
)


def read_events(
    table: Table,
    client: ApiClient,
    *,
    plan: EventPlan,
    now: Clock = _utcnow,
    notes: ReadNotes | None = None,
) -> Iterator[Records]:
    """Yield pages of an events table's rows (``events``, ``event_registrations``), the
    details and registrations read as ``plan`` decides (``ctctsync.sync.events``); what
    :func:`extract` reads with every detail and every registration read."""
    view = _v3_view(table)
    source = view.sources["v3"]
    reader = _EVENT_READERS.get(source.reader)
    if reader is None:
        raise ValueError(f"{view.name} is not an events table (its reader: {source.reader})")
    yield from reader(client, None, table=view, source=source, now=now, notes=notes, plan=plan)


READERS: Mapping[str, SourceReader] = MappingProxyType(
    {
        "collection": collection,
        "campaign_activities": campaign_activities,
        "campaign_summaries": campaign_summaries,
        "email_activities": email_activities,
        "event_details": event_details,
        "event_registrations": event_registrations,
    }
)
"""The reader of each strategy a v3 :class:`~ctctsync.tables.Source` can name
(:data:`ctctsync.tables.V3Reader`)."""
