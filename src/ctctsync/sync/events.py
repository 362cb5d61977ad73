"""The event planner: which v3 events a run reads the detail and the registrations of.

v3's event list (``GET /events``, 100 per page) has no update time and no date filter, and
neither have the registrations (constant-contact-v3-api.md §3.11, §1.9). Reading every
event's detail and every event's registrations on every run cost one call per event and
one per page of registrations per event, whether anything changed or not. Per run, for the
two tables the v3 events reader fills (:data:`EVENT_TABLES`), each with its own ledger
(``StateStore.ledger``: ``{event_id: entry}``):

* the list is always read (one call per 100 events), and each listed record's
  :func:`fingerprint` (registration counts, status, name, times, ...) is compared with the
  one the ledger kept;
* ``events`` (a full table, replaced every run: every listed event is a row): an event's
  detail (the only place with ``time_zone`` and ``active_time``) is read when the event is
  new to the ledger, its record changed, or its recheck slot came (once per
  ``TrackingPolicy.recheck_days``, at a phase hashed from its id like the campaigns'
  :func:`~ctctsync.sync.tiers.recheck_phase`); the other rows take those fields from the
  ledger;
* ``event_registrations``: an event's registrations are read again when the event is new,
  its record changed, the rows were loaded with other columns, its track changed, it is
  *live* (the run falls between its start minus :data:`LIVE_MARGIN` and its end plus it:
  check-ins and payments happen then and move no count), or its own slot came (every
  ``TrackingPolicy.events_every_hours``, staggered by event; 0 = every run). The table is
  then merged by key, and once the load is committed the rows of the events read again that
  this run did not return, and those of events no longer listed, are deleted
  (:func:`ctctsync.warehouse.prune.prune_events`) before the ledger is saved. A first load
  or a full refresh reads everything and replaces the table, as before.

A registration whose payment status changes while its event is neither live nor changed
waits for the event's slot (a day by default): that delay is the price of not reading every
event's registrations on every run.

Everything here is pure but :class:`EventRun`'s bookkeeping of one read; nothing reads a
clock or a store. The readers call an :class:`EventRun` through the ``EventPlan`` protocol
of ``ctctsync.api.v3.extract``, with details as mappings of :data:`DETAIL_FIELDS`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, cast

from ctctsync.api.client import ApiClient
from ctctsync.api.readnotes import ReadNotes
from ctctsync.config import TrackingPolicy
from ctctsync.sync.tiers import Entry, parse_instant, recheck_phase
from ctctsync.tables import Table

Role = Literal["details", "registrations"]

EVENT_TABLES: Final[Mapping[str, Role]] = {
    "events": "details",
    "event_registrations": "registrations",
}
"""The tables the planner decides for, when the version has a planned events read (v3;
v2's EventSpot list carries every column and is read as before)."""

DETAIL_FIELDS: Final = ("time_zone", "active_time", "track_id")
"""What a run keeps of an event's detail: ``time_zone``, ``active_time`` and
``default_track.track_id`` (§3.11: only the detail has them)."""

LIVE_MARGIN: Final = timedelta(hours=24)
"""An event is live from this long before its start to this long after its end: its
registrations are read on every run then (late registrations, check-ins, payments)."""

Reason = Literal["new", "changed", "columns", "track", "live", "slot", "recheck"]
"""Why an event's detail (``new``, ``changed``, ``recheck``) or registrations are read."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fingerprint(record: Mapping[str, Any]) -> str:
    """The SHA-256 of an event list record's canonical JSON (sorted keys, no spaces): any
    change of the record (counts, status, name, times, address) changes it."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def columns_key(columns: Collection[str]) -> str:
    """A short stable name of a column selection (rows loaded with other columns are read
    again, so no kept row lacks a newly selected column)."""
    return hashlib.sha256(",".join(sorted(columns)).encode()).hexdigest()[:16]


def event_id(record: Mapping[str, Any]) -> str:
    """A listed event's id."""
    return str(record.get("event_id"))


def _slot(moment: datetime, phase: timedelta, period: timedelta) -> int:
    return (moment - _EPOCH - phase) // period


def _slot_came(event: str, since: datetime | None, now: datetime, period: timedelta) -> bool:
    """Whether a slot of ``event`` (``phase + k * period``, the phase hashed from its id)
    lies after ``since`` and at or before ``now``; always when ``since`` is unknown."""
    if since is None:
        return True
    phase = recheck_phase(event, period)
    return _slot(now, phase, period) > _slot(since, phase, period)


def detail_reason(event: str, print_: str, entry: Entry | None, now: datetime,
                  policy: TrackingPolicy) -> Reason | None:
    """Why a run at ``now`` reads the event's detail (None: the ledger's fields serve):
    ``new`` to the ledger (or an entry without a detail), its list record ``changed``
    (``print_``: its :func:`fingerprint` now), or its ``recheck`` slot came (once per
    ``policy.recheck_days``, to catch a detail change the list does not show)."""
    if entry is None or parse_instant(entry.get("detail_at")) is None:
        return "new"
    if entry.get("fingerprint") != print_:
        return "changed"
    period = timedelta(days=policy.recheck_days)
    if _slot_came(event, parse_instant(entry.get("detail_at")), now, period):
        return "recheck"
    return None


def is_live(record: Mapping[str, Any], now: datetime) -> bool:
    """Whether ``now`` falls within the event's start minus :data:`LIVE_MARGIN` and its end
    plus it (list ``start_time``/``end_time``); an event without both times is not live."""
    start = parse_instant(record.get("start_time"))
    end = parse_instant(record.get("end_time")) or start
    if start is None or end is None:
        return False
    return start - LIVE_MARGIN <= now <= end + LIVE_MARGIN


def registrations_reason(record: Mapping[str, Any], print_: str, entry: Entry | None,
                         now: datetime, policy: TrackingPolicy, columns: str,
                         track_id: Any = None) -> Reason | None:
    """Why a run at ``now`` reads the event's registrations again (None: its rows stay as
    loaded): ``new`` to the ledger, its list record ``changed``, its rows loaded with other
    ``columns`` (:func:`columns_key`), its ``track`` not the one read (``track_id``: the
    detail's now, None when not read), ``live`` (:func:`is_live`), or its ``slot`` came
    (every ``policy.events_every_hours`` at a phase hashed from its id; 0: every run)."""
    read_at = parse_instant(entry.get("read_at")) if entry is not None else None
    if entry is None or read_at is None:
        return "new"
    every = timedelta(hours=policy.events_every_hours)
    checks: tuple[tuple[Reason, bool], ...] = (  # in this order: the first that holds
        ("changed", entry.get("fingerprint") != print_),
        ("columns", entry.get("columns") != columns),
        ("track", track_id is not None and track_id != entry.get("track_id")),
        ("live", is_live(record, now)),
        ("slot", every <= timedelta(0) or _slot_came(event_id(record), read_at, now, every)),
    )
    return next((reason for reason, holds in checks if holds), None)


@dataclass
class EventRun:
    """One events table's read in one run: the decisions, event by event, and the ledger
    the read leaves (the ``EventPlan`` protocol of ``ctctsync.api.v3.extract``).

    Used by the reader's thread while the pages are read, then by the engine once they are
    all read (after the load): never by two threads at once."""

    table: str
    role: Role
    previous: Mapping[str, Entry]
    """The ledger as the run found it (empty for a whole read: every event is new)."""
    now: datetime
    policy: TrackingPolicy
    columns: str
    """:func:`columns_key` of the columns this run loads."""
    whole: bool = False
    """Every event is read (first load, full refresh) and the table replaced."""
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ledger once this run's rows are committed: the events read, as told."""
    reread: set[str] = field(default_factory=set)
    """Events whose registrations were read again (their rows not returned are stale)."""
    kept: set[str] = field(default_factory=set)
    """Listed events whose registrations were not read (their rows stay as loaded)."""
    reasons: Counter[str] = field(default_factory=Counter)
    details: int = 0
    _prints: dict[str, str] = field(default_factory=dict)
    _detail_read: set[str] = field(default_factory=set)

    def _print(self, record: Mapping[str, Any]) -> str:
        eid = event_id(record)
        if eid not in self._prints:
            self._prints[eid] = fingerprint(record)
        return self._prints[eid]

    def _entry(self, eid: str) -> Entry | None:
        return self.previous.get(eid)

    # -- the EventPlan protocol --------------------------------------------------------------

    def known_detail(self, event: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The event's detail fields from the ledger, or None when the detail is to be read
        (:func:`detail_reason`)."""
        eid = event_id(event)
        entry = self._entry(eid)
        reason = detail_reason(eid, self._print(event), entry, self.now, self.policy)
        if reason is not None or entry is None:
            self._detail_read.add(eid)
            self.details += 1
            self.reasons[f"detail {reason or 'new'}"] += 1
            return None
        return {name: entry.get(name) for name in DETAIL_FIELDS}

    def reads_registrations(self, event: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
        """Whether the event's registrations are read (:func:`registrations_reason`);
        ``detail``: its fields as read (or kept)."""
        eid = event_id(event)
        fresh = detail.get("track_id") if eid in self._detail_read else None
        reason = registrations_reason(event, self._print(event), self._entry(eid), self.now,
                                      self.policy, self.columns, fresh)
        if reason is None:
            return False
        self.reasons[reason] += 1
        return True

    def read(self, event: Mapping[str, Any], detail: Mapping[str, Any], *,
             registrations: bool) -> None:
        """The reader is done with ``event``: its row was shaped (``events``), or its
        registrations were read (``registrations``) or left as loaded."""
        eid = event_id(event)
        old = self._entry(eid) or {}
        stamp = self.now.isoformat()
        entry: dict[str, Any] = {name: detail.get(name) for name in DETAIL_FIELDS}
        entry["fingerprint"] = self._print(event)
        entry["detail_at"] = stamp if eid in self._detail_read else old.get("detail_at")
        if self.role == "details":
            entry["read_at"] = stamp
        elif registrations:
            entry["read_at"], entry["columns"] = stamp, self.columns
            self.reread.add(eid)
        else:
            entry["read_at"], entry["columns"] = old.get("read_at"), old.get("columns")
            self.kept.add(eid)
        self.entries[eid] = entry

    # -- after the load ----------------------------------------------------------------------

    @property
    def prunes(self) -> bool:
        """Whether stale rows are deleted after the load (a merged registrations read)."""
        return self.role == "registrations" and not self.whole

    def ledger_after(self, *, pruned: bool) -> dict[str, dict[str, Any]]:
        """The ledger to save. ``pruned`` False (a merged read that noted a loss prunes
        nothing: it may lack rows): the events read again keep their previous entry (or
        none), so the next run reads them again and prunes then."""
        out = dict(self.entries)
        if pruned or not self.prunes:
            return out
        for eid in self.reread:
            old = self.previous.get(eid)
            if old is None:
                out.pop(eid, None)
            else:
                out[eid] = dict(old)
        return out

    def summary_line(self) -> str:
        """The process log's line, e.g. ``5 listed, 0 new, 1 changed, 1 details read,
        registrations of 2 read (1 changed, 1 live)``."""
        listed = len(self.entries)
        new = sum(1 for e in self.entries if e not in self.previous)
        changed = sum(1 for e, entry in self.entries.items() if e in self.previous
                      and self.previous[e].get("fingerprint") != entry.get("fingerprint"))
        line = f"{listed} listed, {new} new, {changed} changed, {self.details} details read"
        if self.role == "registrations":
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items())
                            if not r.startswith("detail"))
            line += f", registrations of {len(self.reread)} read" + (f" ({why})" if why else "")
        return line


def plan_events(table: str, previous: Mapping[str, Entry], *, now: datetime,
                policy: TrackingPolicy, columns: Collection[str],
                full_refresh: bool) -> EventRun | None:
    """The run's :class:`EventRun` for ``table`` (None when it is not an events table). A
    full refresh or an empty ledger (first load, ``state reset``, a ledger written before
    the planner) reads every event whole."""
    role = EVENT_TABLES.get(table)
    if role is None:
        return None
    whole = full_refresh or not previous
    return EventRun(table, role, {} if whole else previous, now, policy,
                    columns_key(columns), whole=whole)


class EventReader(Protocol):
    """A version's planned read of the events tables (v3 ``read_events``)."""

    def read_events(
        self,
        table: Table,
        client: ApiClient,
        *,
        plan: EventRun,
        now: Callable[[], datetime],
        notes: ReadNotes,
    ) -> Iterator[list[dict[str, Any]]]:
        """The table's records, the detail and registrations read as ``plan`` decides."""
        ...


def event_reader(reader: object) -> EventReader | None:
    """The version's planned events read, None when it has none (v2: EventSpot's list has
    every column, and its registrations are not a table): such tables are read as before."""
    return cast(EventReader, reader) if callable(getattr(reader, "read_events", None)) else None
