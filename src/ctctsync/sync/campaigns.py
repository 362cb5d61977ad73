"""The campaign planner: which sent campaigns' tracking a run reads, and how much of it.

Reading every tracking kind of every sent campaign on every run costs calls whether or not
anything happened (docs/performance.md, "API budget"). Per run, for the tables that walk the
sent campaigns (:data:`PLANNED`: ``contact_tracking``, ``email_campaign_summary``):

1. *due*: the campaigns each table's ledger (``StateStore.ledger``) says are to be checked
   (:mod:`ctctsync.sync.tiers`: new, sent again, its tier's interval passed, its periodic
   whole read due); every campaign when the table is read whole (first run, full refresh).
2. *scan*: the due campaigns of all planned tables, once per run (the version's
   ``scan_campaigns``: v2 one detail call each), before any of their rows are read.
3. per due campaign and kind (``contact_tracking``): count moved up -> read since the kind's
   mark minus the look-back; count went down, periodic whole read, or new campaign -> read
   the kind whole, then delete the rows of (campaign, kind) this run did not load
   (:mod:`ctctsync.warehouse.prune`); unchanged -> not read. The marks of the kinds read
   become the scan's time (taken before the scan: rows created meanwhile are read again,
   never skipped).
4. ``email_campaign_summary``: scanned campaigns' rows come from the scan, the others' from
   their ledger entry (their ``end_date`` stays the moment their numbers were read).

The ledger is saved with the table's bookmark after the warehouse commit (and after the
prune): a crash before that re-detects everything on the next run. A table that has a
bookmark but no ledger (written by a version before the planner) reads its due campaigns
as before, every kind from the table's since, and starts their entries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from ctctsync.api.client import ApiClient
from ctctsync.api.readers import VersionReader
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.tracking import (
    KINDS,
    SCAN_KEY,
    SUMMARY_KEY,
    TRACKING_KEY,
    CampaignScan,
    TrackingRead,
)
from ctctsync.config import TrackingPolicy
from ctctsync.sync.tiers import Entry, check_reason, due, parse_instant

Role = Literal["tracking", "summary"]

PLANNED: Final[Mapping[str, Role]] = {
    "contact_tracking": "tracking",
    "email_campaign_summary": "summary",
}
"""The per-campaign tables the planner decides for (when their source walks the sent
campaigns and the version can scan): what each keeps in its ledger."""

Clock = Callable[[], datetime]
Campaign = Mapping[str, Any]


def campaign_id(campaign: Campaign) -> str:
    """A listed campaign's id (v2 ``id``, v3 ``campaign_id``)."""
    return str(campaign.get("campaign_id") or campaign.get("id"))


def changed_at(campaign: Campaign) -> datetime | None:
    """When the listing says the campaign last changed (v2 ``modified_date``, v3
    ``updated_at``): a campaign sent again is due whatever its tier."""
    return parse_instant(campaign.get("modified_date") or campaign.get("updated_at"))


@dataclass(frozen=True)
class TableInputs:
    """What the planner needs to know of one planned table in this run."""

    name: str
    role: Role
    ledger: Mapping[str, Entry]
    whole: bool = False
    """The table is read whole this run (first run, full refresh, grown columns): every
    campaign, every kind, and the ledger is rebuilt."""
    since: datetime | None = None
    """The table's since (its bookmark minus the look-back) for campaigns read as before."""
    bookmarked: bool = False
    """The table has a bookmark: with an empty ledger, it was written before the planner."""

    @property
    def upgrading(self) -> bool:
        return self.bookmarked and not self.ledger and not self.whole


@dataclass
class TablePlan:
    """One planned table's read in this run."""

    table: str
    campaigns: list[dict[str, Any]]
    """The campaign mappings handed to the reader (with ``TRACKING_KEY``/``SUMMARY_KEY``/
    ``SCAN_KEY`` as decided); campaigns absent are not read."""
    entries: dict[str, dict[str, Any]]
    """The table's ledger once this run's reads are committed."""
    previous: Mapping[str, Entry]
    """The ledger as the run found it."""
    prune: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Campaign -> the kinds read whole, whose rows not loaded by this run are stale."""
    expected: dict[tuple[str, str], int] = field(default_factory=dict)
    """(campaign, kind) read since its mark -> by how much its count rose: the read must
    return at least that many rows."""
    stats: dict[str, int] = field(default_factory=dict)

    def short_reads(self, read: Mapping[tuple[str, str], int]) -> list[tuple[str, str, int, int]]:
        """The (campaign, kind, count rise, rows read) of the reads since a mark that returned
        fewer rows than the count rose by (``read``: rows per (campaign, kind) of this run):
        rows older than the mark minus the look-back appeared (or the count and the rows
        disagree), so the kind is read whole next run."""
        return [(cid, kind, rise, read.get((cid, kind), 0))
                for (cid, kind), rise in sorted(self.expected.items())
                if read.get((cid, kind), 0) < rise]

    def ledger_after(
        self, *, pruned: bool, short: Sequence[tuple[str, str, int, int]] = ()
    ) -> dict[str, dict[str, Any]]:
        """The ledger to save. ``pruned`` False (a read that noted a loss skips the prune:
        its whole reads may be incomplete): campaigns whose kinds needed a prune keep their
        previous entry (or none), so the next run reads them whole again. ``short``
        (:meth:`short_reads`): those kinds lose their mark, so the next run reads them whole."""
        out = dict(self.entries)
        for cid, kind, _rise, _read in short:
            if cid in out:
                entry = dict(out[cid])
                entry["marks"] = {k: v for k, v in (entry.get("marks") or {}).items()
                                  if k != kind}
                out[cid] = entry
        if pruned or not self.prune:
            return out
        for cid in self.prune:
            old = self.previous.get(cid)
            if old is None:
                out.pop(cid, None)
            else:
                out[cid] = dict(old)
        return out

    def summary_line(self) -> str:
        """The process log's account of the plan."""
        return ", ".join(f"{v} {k}" for k, v in self.stats.items())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def due_ids(sent: Sequence[Campaign], inputs: TableInputs, *, now: datetime,
            policy: TrackingPolicy, recheck_all: bool = False) -> set[str]:
    """The campaigns of ``sent`` the table checks in a run at ``now``."""
    out: set[str] = set()
    for campaign in sent:
        cid = campaign_id(campaign)
        if inputs.whole or recheck_all:
            out.add(cid)
            continue
        entry = inputs.ledger.get(cid)
        if inputs.role == "summary":
            if due(cid, entry, now, policy, changed_at(campaign)):
                out.add(cid)
        elif check_reason(cid, entry, now, policy, changed_at(campaign)) is not None:
            out.add(cid)
    return out


def plan_tracking(
    sent: Sequence[Campaign],
    scans: Mapping[str, CampaignScan],
    inputs: TableInputs,
    *,
    scan_at: datetime,
    now: datetime,
    policy: TrackingPolicy,
    lookback: timedelta,
    recheck_all: bool = False,
) -> TablePlan:
    """contact_tracking's read: per due campaign and kind, whole, since its mark, or not
    at all (the module's rules); the ledger it leaves; the (campaign, kinds) to prune."""
    plan = TablePlan(inputs.name, [], {}, inputs.ledger)
    stats = dict.fromkeys(("sent", "due", "read", "kinds since mark", "kinds whole",
                           "unscanned"), 0)
    stats["sent"] = len(sent)
    due_set = due_ids(sent, inputs, now=now, policy=policy, recheck_all=recheck_all)
    for campaign in sent:
        cid = campaign_id(campaign)
        entry = inputs.ledger.get(cid)
        if cid not in due_set:
            if entry is not None:
                plan.entries[cid] = dict(entry)
            continue
        stats["due"] += 1
        scan = scans.get(cid)
        if scan is None:  # not scanned: read as before, from its marks when it has some
            stats["unscanned"] += 1
            if entry is not None:
                plan.entries[cid] = dict(entry)
            kinds = None if entry is None or inputs.whole else _from_marks(entry, lookback)
            plan.campaigns.append(_with(campaign, kinds, None))
            continue
        whole_all = (inputs.whole or entry is None or recheck_all
                     or check_reason(cid, entry, now, policy, changed_at(campaign)) == "recheck")
        if inputs.upgrading and entry is None:
            # written before the planner: as before (every kind from the table's since)
            plan.campaigns.append(_with(campaign, None, scan))
            plan.entries[cid] = _entry(scan, scan_at, None, KINDS, full=True)
            stats["read"] += 1
            continue
        kinds = _decide(scan, entry, whole_all, lookback)
        whole_kinds = tuple(k for k, since in kinds.items() if since is None)
        old_counts: Mapping[str, Any] = (entry or {}).get("counts") or {}
        for kind, since in kinds.items():
            new, old = scan.counts.get(kind), old_counts.get(kind)
            if since is not None and isinstance(new, int) and isinstance(old, int) and new > old:
                plan.expected[cid, kind] = new - old
        if kinds:
            stats["read"] += 1
            plan.campaigns.append(_with(campaign, kinds, scan))
        stats["kinds whole"] += len(whole_kinds)
        stats["kinds since mark"] += len(kinds) - len(whole_kinds)
        if whole_kinds and not inputs.whole:
            plan.prune[cid] = whole_kinds
        full = len(whole_kinds) == len(KINDS)
        plan.entries[cid] = _entry(scan, scan_at, entry, tuple(kinds), full=full)
    plan.stats = stats
    return plan


def _decide(scan: CampaignScan, entry: Entry | None, whole_all: bool,
            lookback: timedelta) -> dict[str, datetime | None]:
    """Kind -> its ``created_since`` (None: whole) for the kinds to read."""
    if whole_all or entry is None:
        return dict.fromkeys(KINDS)
    old_counts: Mapping[str, Any] = entry.get("counts") or {}
    marks: Mapping[str, Any] = entry.get("marks") or {}
    out: dict[str, datetime | None] = {}
    for kind in KINDS:
        new, old = scan.counts.get(kind), old_counts.get(kind)
        mark = parse_instant(marks.get(kind))
        if new is not None and old is not None and new == old and mark is not None:
            continue  # unchanged: nothing to read
        if new is None and mark is not None:
            out[kind] = mark - lookback  # unknown count: read what may be new
        elif mark is None or old is None or new is None or new < old:
            out[kind] = None  # went down (retracted) or never read: whole, then prune
        else:
            out[kind] = mark - lookback
    return out


def _from_marks(entry: Entry, lookback: timedelta) -> dict[str, datetime | None]:
    marks: Mapping[str, Any] = entry.get("marks") or {}
    out: dict[str, datetime | None] = {}
    for kind in KINDS:
        mark = parse_instant(marks.get(kind))
        out[kind] = mark - lookback if mark is not None else None
    return out


def _with(campaign: Campaign, kinds: Mapping[str, datetime | None] | None,
          scan: CampaignScan | None) -> dict[str, Any]:
    out = dict(campaign)
    if kinds is not None:
        out[TRACKING_KEY] = TrackingRead(kinds=dict(kinds))
    if scan is not None:
        out[SCAN_KEY] = scan
    return out


def _entry(scan: CampaignScan, scan_at: datetime, old: Entry | None, read: Sequence[str],
           *, full: bool) -> dict[str, Any]:
    """A contact_tracking ledger entry after this run's check of the campaign."""
    old = old or {}
    counts = dict(old.get("counts") or {})
    marks = dict(old.get("marks") or {})
    stamp = scan_at.isoformat()
    for kind in KINDS:
        if kind in scan.counts and (kind in read or counts.get(kind) == scan.counts[kind]):
            counts[kind] = scan.counts[kind]
    for kind in read:
        marks[kind] = stamp
    return {
        "sent_at": _iso(scan.sent_at) or old.get("sent_at"),
        "checked_at": stamp,
        "counts": counts,
        "marks": marks,
        "full_at": stamp if full else old.get("full_at"),
        "extra": dict(scan.extra),
    }


def plan_summary(
    sent: Sequence[Campaign],
    scans: Mapping[str, CampaignScan],
    inputs: TableInputs,
    *,
    scan_at: datetime,
    now: datetime,
    policy: TrackingPolicy,
) -> TablePlan:
    """email_campaign_summary's read: every sent campaign, its row from this run's scan,
    else from its ledger entry when it is not due, else read by the reader (as before)."""
    plan = TablePlan(inputs.name, [], {}, inputs.ledger)
    stats = dict.fromkeys(("sent", "from scan", "from ledger", "read"), 0)
    stats["sent"] = len(sent)
    due_set = due_ids(sent, inputs, now=now, policy=policy)
    stamp = scan_at.isoformat()
    for campaign in sent:
        cid = campaign_id(campaign)
        entry = inputs.ledger.get(cid)
        scan = scans.get(cid)
        out = dict(campaign)
        if scan is not None and scan.summary is not None:
            out[SUMMARY_KEY] = dict(scan.summary)
            plan.entries[cid] = {"sent_at": _iso(scan.sent_at), "checked_at": stamp,
                                 "summary": dict(scan.summary)}
            stats["from scan"] += 1
        elif cid not in due_set and entry is not None and isinstance(entry.get("summary"),
                                                                      Mapping):
            out[SUMMARY_KEY] = dict(entry["summary"])
            plan.entries[cid] = dict(entry)
            stats["from ledger"] += 1
        else:
            stats["read"] += 1  # read by the reader; no entry: scanned next run
        plan.campaigns.append(out)
    plan.stats = stats
    return plan


class CampaignRun:
    """One run's campaign planning, shared by its planned tables (thread-safe: tables are
    read on prefetch threads, possibly two at once).

    The sent campaigns are listed once, the due campaigns of every planned table scanned
    once, on the client of the table that needs them first (its calls are counted there).
    """

    def __init__(
        self,
        reader: VersionReader,
        inputs: Mapping[str, Callable[[], TableInputs]],
        *,
        policy: TrackingPolicy,
        lookback: timedelta,
        now: Clock,
        recheck_all: bool = False,
    ) -> None:
        self._reader = reader
        self._input_makers = dict(inputs)
        self._policy = policy
        self._lookback = lookback
        self._now = now
        self._recheck_all = recheck_all
        self._lock = threading.RLock()
        self._inputs: dict[str, TableInputs] | None = None
        self._sent: list[dict[str, Any]] | None = None
        self._plans: dict[str, TablePlan] | None = None

    @property
    def tables(self) -> frozenset[str]:
        """The planned tables of this run."""
        return frozenset(self._input_makers)

    def _all_inputs(self) -> dict[str, TableInputs]:
        if self._inputs is None:
            self._inputs = {name: make() for name, make in self._input_makers.items()}
        return self._inputs

    def sent(self, client: ApiClient) -> list[dict[str, Any]]:
        """The run's one list of sent campaigns."""
        with self._lock:
            if self._sent is None:
                known = {
                    cid: dict(entry.get("extra") or {})
                    for inp in self._all_inputs().values() if inp.role == "tracking"
                    for cid, entry in inp.ledger.items()
                }
                self._sent = self._reader.sent_campaigns(client, known=known or None)
            return self._sent

    def plan(self, table: str, client: ApiClient) -> TablePlan:
        """``table``'s plan (the first call lists, scans and plans every planned table)."""
        with self._lock:
            if self._plans is None:
                self._plans = self._make_plans(client)
            return self._plans[table]

    def _make_plans(self, client: ApiClient) -> dict[str, TablePlan]:
        inputs = self._all_inputs()
        sent = self.sent(client)
        now = self._now()
        wanted: set[str] = set()
        for inp in inputs.values():
            wanted |= due_ids(sent, inp, now=now, policy=self._policy,
                              recheck_all=self._recheck_all)
        to_scan = [c for c in sent if campaign_id(c) in wanted]
        scan_at = self._now()  # before the scan: activity from here on is read next time
        # the scan's own losses are not the tables' to show: a campaign it could not scan is
        # read as without a scan, and that read notes what it misses
        scans = (self._reader.scan_campaigns(client, to_scan, now=self._now, notes=ReadNotes())
                 if to_scan else {})
        plans: dict[str, TablePlan] = {}
        for name, inp in inputs.items():
            if inp.role == "tracking":
                plans[name] = plan_tracking(sent, scans, inp, scan_at=scan_at, now=now,
                                            policy=self._policy, lookback=self._lookback,
                                            recheck_all=self._recheck_all)
            else:
                plans[name] = plan_summary(sent, scans, inp, scan_at=scan_at, now=now,
                                           policy=self._policy)
        return plans
