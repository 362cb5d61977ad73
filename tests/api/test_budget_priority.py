"""Priority at one key's rate budget: a large low-priority consumer (a backfill's many
streams) and a high-priority one (a scheduled incremental run) on one key.

Real threads, real time, at 20 calls/s (slots 51.5 ms apart), so that a test takes seconds;
the assertions count grants and their order, not wall-clock waits. The shared budget's case
uses the real PostgreSQL, with the low and the high consumer on separate connections as two
workers would be.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import pytest

from ctctsync.api.cancel import Cancelled
from ctctsync.api.ratelimit import (
    LOW_FLOOR_PERIOD,
    LOW_HORIZON_SLOTS,
    Priority,
    RateLimiter,
)
from ctctsync.api.shared_budget import SharedRateLimiter

QPS = 20.0
KEY = "0a1b2c3d4e5f6a7b"
LOW_THREADS = 10
HIGH_CALLS = 12
BOUND = LOW_HORIZON_SLOTS + 3
"""Low grants between two consecutive high grants, at most: the low slots booked within the
horizon (LOW_HORIZON_SLOTS + 1), one floor booking, one booked while the high caller was
between its calls."""


def _contest(low_limiter: RateLimiter, high_limiter: RateLimiter, backfill: Priority,
             clock: Callable[[], float] = time.monotonic) -> tuple[list[int], int]:
    """``LOW_THREADS`` threads of a backfill calling as fast as the key allows (with class
    ``backfill``), and one scheduled run making ``HIGH_CALLS`` calls one after the other.
    Returns, per high call, how many backfill calls were granted while it waited (between
    its request, read on ``clock``, and its grant: the limiter's clock); and the backfill's
    calls in all."""
    stop = threading.Event()
    lock = threading.Lock()
    low_grants: list[float] = []
    high_calls: list[tuple[float, float]] = []

    def backfill_stream() -> None:
        while not stop.is_set():
            try:
                grant = low_limiter.acquire(stop.is_set, backfill)
            except Cancelled:
                return  # the experiment is over
            low_limiter.done(grant)  # answered at once: only the schedule paces
            with lock:
                low_grants.append(grant.at)

    streams = [threading.Thread(target=backfill_stream) for _ in range(LOW_THREADS)]
    for t in streams:
        t.start()
    try:
        # let the backfill fill the schedule first: the scheduled run arrives behind it
        while True:
            with lock:
                if len(low_grants) >= LOW_THREADS:
                    break
            stop.wait(0.01)
        for _ in range(HIGH_CALLS):
            asked = clock()
            grant = high_limiter.acquire(None, "high")
            high_limiter.done(grant)
            high_calls.append((asked, grant.at))
    finally:
        stop.set()
        for t in streams:
            t.join(timeout=30)
    passed = [sum(1 for g in low_grants if asked < g < at) for asked, at in high_calls]
    return passed, len(low_grants)


def test_scheduled_calls_pass_a_backfill() -> None:
    limiter = RateLimiter(QPS, None)
    between, _ = _contest(limiter, limiter, "low")
    assert max(between) <= BOUND, between


def test_without_priority_the_scheduled_run_queues_behind_the_backfill() -> None:
    # the same load with the backfill at high priority: first come, first served, so each
    # scheduled call waits behind (nearly) every backfill stream; the bound above is real
    limiter = RateLimiter(QPS, None)
    between, _ = _contest(limiter, limiter, "high")
    assert sorted(between)[len(between) // 2] >= LOW_THREADS - 2, between


def test_a_backfill_keeps_its_floor_under_scheduled_load() -> None:
    # 10 scheduled streams keep the schedule full; the one backfill stream still gets at
    # least one call per LOW_FLOOR_PERIOD (not starved)
    limiter = RateLimiter(QPS, None)
    stop = threading.Event()
    low: list[float] = []
    high: list[float] = []

    def stream(priority: Priority, out: list[float]) -> None:
        while not stop.is_set():
            try:
                grant = limiter.acquire(stop.is_set, priority)
            except Cancelled:
                return
            limiter.done(grant)
            out.append(grant.at)

    threads = [threading.Thread(target=stream, args=("high", high)) for _ in range(10)]
    threads.append(threading.Thread(target=stream, args=("low", low)))
    for t in threads:
        t.start()
    stop.wait(3.0)  # the length of the experiment, not a synchronisation
    stop.set()
    for t in threads:
        t.join(timeout=30)
    span = max(high) - min(high)
    assert len(low) >= math.floor(span / LOW_FLOOR_PERIOD), (len(low), span)
    assert len(high) > 4 * len(low)  # the highs went first all the same


@pytest.fixture
def table(budget_table: str) -> str:
    return budget_table


def test_the_fleets_budget_lets_scheduled_calls_pass(pg_dsn: str, table: str) -> None:
    backfill_worker = SharedRateLimiter(pg_dsn, KEY, QPS, None, table=table)
    scheduled_worker = SharedRateLimiter(pg_dsn, KEY, QPS, None, table=table)
    try:
        # the database's clock is this machine's (clock_timestamp()): time.time() for both
        between, lows = _contest(backfill_worker, scheduled_worker, "low", time.time)
    finally:
        backfill_worker.close()
        scheduled_worker.close()
    assert max(between) <= BOUND, between
    assert lows >= HIGH_CALLS // 2  # the backfill progressed meanwhile
