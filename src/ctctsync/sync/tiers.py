"""When a sent campaign's tracking is checked: the tier policy as pure functions.

A campaign is *due* in a run when it is new to the ledger, changed since its last check (sent
again), or one of its tier slots has come since its last check; the tier is chosen by its
age (time since it was sent, ``TrackingPolicy.tiers``). Independently, every campaign's
tracking is read whole once per ``recheck_days``.

Both kinds of slot are fixed on the calendar by a hash of the campaign's id (a phase within
the period: ``phase + k * period``), so the campaigns of one first load come due spread over
the period instead of all in the same run. Without that, the 411 campaigns older than 90 days
of the 1M/500 bench account, all checked by the first load, came due together in one hourly
run a week later (411 calls at once). A slot never comes later than one period after the
last check, so no campaign waits longer than its tier's interval; the first check after a
first load may come sooner.

Ledger entries (``StateStore.ledger``) are the JSON mappings the planner saves
(``ctctsync.sync.campaigns``); the fields read here are ``sent_at``, ``checked_at`` and
``full_at`` (ISO-8601 instants). Nothing here reads a clock or a store: the control plane's
call estimator uses :func:`count_due` and :func:`simulate_checks` on a saved ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ctctsync.config import TrackingPolicy

Entry = Mapping[str, Any]
"""One campaign's ledger entry."""
Reason = Literal["new", "changed", "tier", "recheck"]
"""Why a campaign is checked in a run (``recheck``: every kind is read whole)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 instant of a ledger entry (naive ones are UTC); None if absent or bad."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def interval(policy: TrackingPolicy, age: timedelta) -> timedelta:
    """How often a campaign sent ``age`` ago is checked (zero: on every run)."""
    hours = 0
    for tier in policy.tiers:  # ordered by age (validated)
        if age >= timedelta(days=tier.older_than_days):
            hours = tier.every_hours
    return timedelta(hours=hours)


def due(campaign_id: str, entry: Entry | None, now: datetime, policy: TrackingPolicy,
        changed_at: datetime | None = None) -> bool:
    """Whether a run at ``now`` checks the campaign by its tier: new to the ledger, changed
    (``changed_at``: the campaign list's modification time) since its last check, or a slot
    of its tier (every ``interval``, at the campaign's own phase) has come since that check.
    A campaign of unknown send time is treated as just sent (checked every run)."""
    return _tier_reason(campaign_id, entry, now, policy, changed_at) is not None


def _tier_reason(campaign_id: str, entry: Entry | None, now: datetime,
                 policy: TrackingPolicy, changed_at: datetime | None) -> Reason | None:
    if entry is None:
        return "new"
    checked_at = parse_instant(entry.get("checked_at"))
    if checked_at is None:
        return "new"
    if changed_at is not None and changed_at > checked_at:
        return "changed"
    sent_at = parse_instant(entry.get("sent_at"))
    age = now - sent_at if sent_at is not None else timedelta(0)
    period = interval(policy, age)
    if period <= timedelta(0):
        return "tier"
    phase = recheck_phase(campaign_id, period)
    return "tier" if _slot(now, phase, period) > _slot(checked_at, phase, period) else None


def recheck_phase(campaign_id: str, period: timedelta) -> timedelta:
    """Where in each ``period`` the campaign's slots lie (its tier checks and its whole
    recheck): a stable hash of its id (the same on every host and run), so campaigns spread
    evenly over the period."""
    digest = hashlib.sha256(campaign_id.encode()).digest()
    seconds = int(period.total_seconds())
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % max(seconds, 1))


def recheck_due(campaign_id: str, entry: Entry | None, now: datetime,
                policy: TrackingPolicy) -> bool:
    """Whether the campaign's tracking is to be read whole at ``now``: a recheck slot of the
    campaign (``phase + k * recheck_days``) lies after its last whole read (``full_at``)
    and at or before ``now``. An entry never read whole is due."""
    full_at = parse_instant(entry.get("full_at")) if entry is not None else None
    if full_at is None:
        return True
    period = timedelta(days=policy.recheck_days)
    phase = recheck_phase(campaign_id, period)
    return _slot(now, phase, period) > _slot(full_at, phase, period)


def _slot(moment: datetime, phase: timedelta, period: timedelta) -> int:
    return (moment - _EPOCH - phase) // period


def check_reason(campaign_id: str, entry: Entry | None, now: datetime,
                 policy: TrackingPolicy, changed_at: datetime | None = None) -> Reason | None:
    """Why a run at ``now`` checks the campaign, None when it does not. A due recheck
    makes the campaign due whatever its tier."""
    reason = _tier_reason(campaign_id, entry, now, policy, changed_at)
    if reason in ("new", "changed"):
        return reason
    if recheck_due(campaign_id, entry, now, policy):
        return "recheck"
    return reason


@dataclass(frozen=True)
class DueCount:
    """What a run would check, counted from a ledger (for the call estimator)."""

    due: int
    """Campaigns of the ledger checked (one scan each in v2; v3 scans 150 per call)."""
    rechecks: int
    """Of those, the ones read whole (every kind: at least 6 tracking calls each)."""
    not_due: int


def count_due(ledger: Mapping[str, Entry], at: datetime, policy: TrackingPolicy) -> DueCount:
    """The campaign checks a run at ``at`` would make, from a table's ledger
    (``StateStore.ledger(integration, "contact_tracking")``). Campaigns sent since the ledger
    was saved are not in it: each of them is one more check (read whole)."""
    due_n = rechecks = 0
    for campaign_id, entry in ledger.items():
        reason = check_reason(campaign_id, entry, at, policy)
        if reason is not None:
            due_n += 1
            rechecks += reason == "recheck"
    return DueCount(due=due_n, rechecks=rechecks, not_due=len(ledger) - due_n)


def simulate_checks(ledger: Mapping[str, Entry], runs: Iterable[datetime],
                    policy: TrackingPolicy) -> list[DueCount]:
    """:func:`count_due` for a series of runs (ascending times), each run's checks moving
    the checked campaigns' ``checked_at`` (and a recheck's ``full_at``) as the planner would:
    e.g. the 24 hourly runs of a day give that day's campaign checks."""
    state: dict[str, dict[str, Any]] = {cid: dict(e) for cid, e in ledger.items()}
    out: list[DueCount] = []
    for at in runs:
        due_n = rechecks = 0
        stamp = at.isoformat()
        for campaign_id, entry in state.items():
            reason = check_reason(campaign_id, entry, at, policy)
            if reason is None:
                continue
            due_n += 1
            entry["checked_at"] = stamp
            if reason in ("recheck", "new"):
                rechecks += reason == "recheck"
                entry["full_at"] = stamp
        out.append(DueCount(due=due_n, rechecks=rechecks, not_due=len(state) - due_n))
    return out


def hourly(start: datetime, hours: int, every_hours: float = 1.0) -> Sequence[datetime]:
    """Run times from ``start``: ``hours`` long, one every ``every_hours`` (for
    :func:`simulate_checks`)."""
    step = timedelta(hours=every_hours)
    n = int(hours / every_hours)
    return [start + step * i for i in range(n)]
