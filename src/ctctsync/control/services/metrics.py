"""Operations figures for ``GET /metrics``, read from the control store at scrape time.

Every process of a fleet (``serve``, workers) shares one store, so figures read from it are
the same whichever process a scraper asks: nothing here is counted in process memory.
This module only reads and adds up; the web layer renders the figures in Prometheus' text
format (``ctctsync.web.routes.ops``), so the control layer needs no metrics library.

Two kinds of figure:

- **now**: runs in the store by status (queued and deferred are the queue), the age of the
  oldest queued run, each API key's calls counted today against its daily limit (the quota
  page's ``used today``, ``services.quota.used_today_by_key``).
- **the last 24 hours** (:data:`WINDOW`): runs finished by status and trigger, rows loaded
  per table, API calls, and two latency distributions -- queued to started (a deferred run's
  wait included), started to finished. They are gauges of a sliding window, not counters:
  finished runs are pruned by retention, so a total over the store could go down.

Label values are bounded: statuses and triggers are closed sets, tables are the registry's,
and at most :data:`MAX_KEYS` API keys are reported (the busiest today).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.models import (
    FINISHED_RUN_STATUSES,
    RUN_STATUSES,
    RUN_TRIGGERS,
    WAITING_RUN_STATUSES,
    Integration,
    Run,
)
from ctctsync.control.services.quota import KeyRef, key_limits, key_of, used_today_by_key
from ctctsync.tables import TABLES

WINDOW: Final = timedelta(hours=24)
"""The sliding window of the run figures: long enough to hold a daily integration's run."""
MAX_KEYS: Final = 100
"""At most this many API keys get series (the busiest today): one series set per key."""
LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600,
)
"""Upper bounds (seconds) of the latency histograms: a second to a day, as runs take."""

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_KEYS",
    "WINDOW",
    "Distribution",
    "KeyFigures",
    "OpsFigures",
    "ops_figures",
    "waiting_runs",
]


@dataclass(frozen=True)
class Distribution:
    """Observations bucketed by :data:`LATENCY_BUCKETS` (cumulative, as Prometheus counts)."""

    buckets: tuple[tuple[float, int], ...]
    """``(upper bound, observations <= it)``, the last bound ``inf``."""
    count: int
    total: float
    """The sum of the observations (seconds)."""

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        """Bucket ``values``."""
        bounds = (*LATENCY_BUCKETS, float("inf"))
        buckets = tuple((b, sum(1 for v in values if v <= b)) for b in bounds)
        return cls(buckets=buckets, count=len(values), total=float(sum(values)))


@dataclass(frozen=True)
class KeyFigures:
    """One API key's use today: named by its fingerprint and label (hashes of the key,
    never the key: ``services.quota.key_of``)."""

    fingerprint: str
    label: str
    api_version: str
    used_today: int
    per_day: int | None
    """The daily limit in effect (None: no daily budget, e.g. a sandbox)."""
    per_second: float | None


@dataclass(frozen=True)
class OpsFigures:
    """What ``GET /metrics`` reports (see the module's docstring)."""

    runs_by_status: dict[str, int]
    """Every status (zero included) -> runs in the store."""
    oldest_queued_seconds: float
    """Age of the oldest queued run (0 when none is)."""
    finished_recent: dict[tuple[str, str], int]
    """``(status, trigger)`` -> runs finished in the window (zero included)."""
    rows_recent: dict[str, int]
    """Table -> rows loaded by runs finished in the window (tables that loaded any)."""
    api_calls_recent: int
    """API calls of runs finished in the window."""
    queue_wait: Distribution
    """Queued -> started, of runs started in the window."""
    duration: Distribution
    """Started -> finished, of runs finished in the window."""
    keys: list[KeyFigures]
    keys_omitted: int
    """Keys in use beyond :data:`MAX_KEYS` (not reported)."""


def ops_figures(db: Session) -> OpsFigures:
    """Read the figures from the store (read-only: a few queries, plus two per API key)."""
    now = context(db).now()
    since = now - WINDOW
    by_status: dict[str, int] = dict.fromkeys(RUN_STATUSES, 0)
    for status, count in db.execute(
        sa.select(Run.status, sa.func.count()).group_by(Run.status)
    ):
        by_status[status] = int(count)
    oldest = db.scalar(sa.select(sa.func.min(Run.created_at)).where(Run.status == "queued"))

    finished: dict[tuple[str, str], int] = {
        (s, t): 0 for s in FINISHED_RUN_STATUSES for t in RUN_TRIGGERS
    }
    rows: Counter[str] = Counter()
    calls = 0
    waits: list[float] = []
    durations: list[float] = []
    recent = db.execute(
        sa.select(
            Run.status, Run.trigger, Run.rows, Run.api_calls,
            Run.created_at, Run.started_at, Run.finished_at,
        ).where(sa.or_(Run.finished_at >= since, Run.started_at >= since))
    )
    for status, trigger, run_rows, run_calls, created, started, ended in recent:
        if started is not None and started >= since:
            waits.append(_seconds(started - created))
        if ended is None or ended < since or status not in FINISHED_RUN_STATUSES:
            continue
        finished[status, trigger] = finished.get((status, trigger), 0) + 1
        calls += run_calls or 0
        # Tables outside the registry (a row from a removed table) would be unbounded labels.
        rows.update({t: int(n) for t, n in (run_rows or {}).items() if t in TABLES})
        if started is not None:
            durations.append(_seconds(ended - started))

    keys, omitted = _key_figures(db)
    return OpsFigures(
        runs_by_status=by_status,
        oldest_queued_seconds=_seconds(now - oldest) if oldest is not None else 0.0,
        finished_recent=finished,
        rows_recent=dict(rows),
        api_calls_recent=calls,
        queue_wait=Distribution.of(waits),
        duration=Distribution.of(durations),
        keys=keys,
        keys_omitted=omitted,
    )


def _seconds(delta: timedelta) -> float:
    # Clocks of two processes may disagree a little: a negative wait is none.
    return max(0.0, delta.total_seconds())


def _key_figures(db: Session) -> tuple[list[KeyFigures], int]:
    """The busiest :data:`MAX_KEYS` keys in use today, and how many more there are."""
    refs: dict[str, KeyRef] = {}
    for integ in db.scalars(sa.select(Integration).order_by(Integration.id)):
        ref = key_of(db, integ)
        if ref is not None:
            refs.setdefault(ref.fingerprint, ref)
    today = used_today_by_key(db)  # one read of today's runs, not one per key
    used = {fp: today.get(fp, 0) for fp in refs}
    busiest = sorted(refs.values(), key=lambda r: (-used[r.fingerprint], r.label))
    shown = []
    for ref in busiest[:MAX_KEYS]:
        limits = key_limits(db, ref)
        shown.append(
            KeyFigures(
                fingerprint=ref.fingerprint,
                label=ref.label,
                api_version=ref.api_version,
                used_today=used[ref.fingerprint],
                per_day=limits.per_day,
                per_second=limits.per_second,
            )
        )
    return shown, max(0, len(busiest) - MAX_KEYS)


def waiting_runs(figures: OpsFigures) -> dict[str, int]:
    """The queue: runs not started yet, by status (queued, deferred)."""
    return {s: figures.runs_by_status.get(s, 0) for s in WAITING_RUN_STATUSES}
