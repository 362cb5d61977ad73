"""A rate limiter shared by every stream that uses one API key.

Constant Contact limits each API key (not each account or token) to 4 calls per second and
10,000 calls per day -- constant-contact-api.md §1.7. Every :class:`ApiClient` of one key
takes its slots from the same :class:`RateLimiter` (see :func:`limiter_for`), so parallel
streams never add up to more than the key's limit.

Why the pacing is safe
----------------------
Requests are spaced evenly, ``interval = (1 / qps) * (1 + margin)`` apart (default margin
3 %: 0.2575 s at 4 qps, i.e. 3.88 req/s, 97 % of the limit). Any window of one second --
sliding or aligned to the clock, open or closed -- then holds at most ``floor(qps)``
request starts, because ``qps`` intervals already take ``qps * interval > 1`` s: the
window can contain the first and the ``qps``-th of a run but never the next one. The
margin (``qps * interval - 1`` = 30 ms at 4 qps) absorbs differences in network delay
between the requests of a window. Slots are booked on a schedule (``next = previous slot +
interval``), not from "now", so oversleeping never accumulates into a slower rate, and a
request that waited for its slot does not lose its place to another thread. Because a
booked slot says nothing about when a caller really woke up (a busy process, a GIL switch),
the *actual* send times are checked too: no ``floor(qps)`` + 1 sends within
``floor(qps) / qps * (1 + margin)`` seconds, whatever the schedule said.

If the server still answers "over qps", :meth:`RateLimiter.slow_down` halves the rate and
pauses everyone for at least a second (the reference says back off >= 1 s); the rate then
climbs back by a tenth of the limit for every ``recovery_period`` without another warning.

This limiter holds the budget of one process. Several processes or machines on one key share
it through :class:`~ctctsync.api.shared_budget.SharedRateLimiter` (same rules, state in
PostgreSQL), installed in this registry by :func:`install_limiter`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from ctctsync.api.cancel import Cancelled, StopCheck, check_stop, pause
from ctctsync.errors import (
    RULES_BY_NAME,
    DailyQuotaExhausted,
    next_utc_midnight,
    quota_message,
)

DEFAULT_QPS = 4.0
"""Standard v2 API key: 4 calls per second -- constant-contact-api.md §1.7."""
DEFAULT_DAILY = 10_000
"""Standard v2 API key: 10,000 calls per day -- constant-contact-api.md §1.7."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RateLimiter:
    """Paces calls under ``qps`` and counts them against a daily budget (UTC days).

    Thread-safe. Clocks and sleep are injectable so tests never sleep for real:
    ``clock`` is a monotonic seconds counter, ``wall_clock`` the current UTC time.
    """

    def __init__(
        self,
        qps: float | None = DEFAULT_QPS,
        daily: int | None = DEFAULT_DAILY,
        *,
        margin: float = 0.03,
        min_qps: float = 0.5,
        slow_down_pause: float = 1.0,
        recovery_period: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps is not None and qps <= 0:
            raise ValueError("qps must be positive or None")
        if daily is not None and daily <= 0:
            raise ValueError("daily must be positive or None")
        self.qps = qps
        self.daily = daily
        self.margin = margin
        self.min_qps = min_qps
        self.slow_down_pause = slow_down_pause
        self.recovery_period = recovery_period
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = qps  # current rate; below qps after slow_down()
        self._next_slot = -math.inf
        self._sent: deque[float] = deque()  # actual times of the latest sends
        self._last_slowdown: float | None = None
        self._day: date = wall_clock().astimezone(UTC).date()
        self._used = 0
        self._exhausted_until: datetime | None = None
        self.slowdowns = 0
        """How many times the server said "over qps" (for run statistics)."""

    # ------------------------------------------------------------------ pacing

    @property
    def current_qps(self) -> float | None:
        """The rate the limiter paces at right now (None = unlimited)."""
        with self._lock:
            self._recover(self._clock())
            return self._rate

    def _interval(self) -> float:
        assert self._rate is not None
        return (1.0 / self._rate) * (1.0 + self.margin)

    def _recover(self, now: float) -> None:
        """Raise a slowed-down rate by qps/10 per quiet ``recovery_period``."""
        if self.qps is None or self._rate is None or self._last_slowdown is None:
            return
        steps = int((now - self._last_slowdown) // self.recovery_period)
        if steps <= 0:
            return
        self._rate = min(self.qps, self._rate + steps * self.qps / 10)
        self._last_slowdown += steps * self.recovery_period
        if self._rate >= self.qps:
            self._last_slowdown = None

    def acquire(self, should_stop: StopCheck | None = None) -> None:
        """Wait for the next free slot and count one call against today's budget.

        Raises :class:`DailyQuotaExhausted` *before* anything is sent when the budget (or a
        server-reported exhaustion) says no more calls today, and
        :class:`~ctctsync.api.cancel.Cancelled` (giving the call back to the budget) when
        ``should_stop`` says stop while waiting: a slowed-down limiter may hold a caller
        for seconds, and a cancel must not wait that out.
        """
        with self._lock:
            check_stop(should_stop)
            self._take_budget()
            now = self._clock()
            slot = max(now, self._next_slot)
            if self._rate is not None:
                self._recover(now)
                self._next_slot = slot + self._interval()
            # else: no pacing, but a pause set by slow_down() still holds everyone back
        try:
            if slot > now:
                pause(slot - now, self._sleep, should_stop)
            while (extra := self._claim_window()) > 0:
                pause(extra, self._sleep, should_stop)
        except Cancelled:
            with self._lock:
                self._used = max(0, self._used - 1)  # nothing was sent
            raise

    def _claim_window(self) -> float:
        """Record a send now, or say how much longer to wait.

        The schedule keeps *booked* slots apart; this checks the *actual* send times: a
        caller that woke up late (a busy process, a GIL switch) must not end up within the
        same one-second window as ``qps`` later calls. No window may hold more than
        ``floor(qps)`` sends, measured over ``window`` = ``floor(qps) / qps * (1 + margin)``.
        """
        with self._lock:
            if self.qps is None:
                return 0.0
            now = self._clock()
            wait = send_window_wait(self._sent, now, self.qps, self.margin)
            if wait == 0.0:
                self._sent.append(now)
                while len(self._sent) > max(1, math.floor(self.qps)):
                    self._sent.popleft()
            return wait

    def slow_down(self) -> None:
        """The server said "over qps": halve the rate and pause every caller >= 1 s.

        constant-contact-api.md §1.7: back off at least a second on ``…over.qps``.
        """
        with self._lock:
            self.slowdowns += 1
            now = self._clock()
            if self.qps is None:
                # No client-side limit configured: still honour the server's pause.
                self._next_slot = max(self._next_slot, now + self.slow_down_pause)
                return
            assert self._rate is not None
            self._recover(now)
            self._rate = max(self.min_qps, self._rate / 2)
            self._last_slowdown = now
            self._next_slot = max(self._next_slot, now + self.slow_down_pause)

    # ------------------------------------------------------------------ daily budget

    def _roll_day(self) -> datetime:
        now = self._wall_clock().astimezone(UTC)
        if now.date() != self._day:
            self._day = now.date()
            self._used = 0
        if self._exhausted_until is not None and now >= self._exhausted_until:
            self._exhausted_until = None
        return now

    def _take_budget(self) -> None:
        now = self._roll_day()
        if self._exhausted_until is not None:
            raise self._exhausted(self._exhausted_until)
        if self.daily is not None and self._used >= self.daily:
            raise self._exhausted(next_utc_midnight(now))
        self._used += 1

    def _exhausted(self, resume_at: datetime) -> DailyQuotaExhausted:
        return DailyQuotaExhausted(
            quota_message(self.daily, resume_at),
            resume_at=resume_at,
            rule=RULES_BY_NAME["daily_quota"],
            detail=f"{self._used} calls counted today ({self._day.isoformat()})",
        )

    def mark_exhausted(self, resume_at: datetime | None = None) -> datetime:
        """The server said the daily quota is spent: refuse calls until ``resume_at``
        (default: the next 00:00 UTC). Returns the resume time."""
        with self._lock:
            now = self._roll_day()
            resume = resume_at or next_utc_midnight(now)
            self._exhausted_until = resume
            return resume

    @property
    def used_today(self) -> int:
        """Calls counted against today's (UTC) budget, retries included."""
        with self._lock:
            self._roll_day()
            return self._used

    @property
    def remaining_today(self) -> int | None:
        """Calls left today, or None when no daily budget is configured."""
        with self._lock:
            self._roll_day()
            if self._exhausted_until is not None:
                return 0
            return None if self.daily is None else max(0, self.daily - self._used)

    def set_used_today(self, calls: int) -> None:
        """Restore today's count (e.g. calls a previous process made today)."""
        with self._lock:
            self._roll_day()
            self._used = calls

    def reconfigure(self, qps: float | None, daily: int | None) -> None:
        """Change the limits (a key's settings changed); keeps today's count."""
        with self._lock:
            self.qps = qps
            self.daily = daily
            self._rate = qps
            self._last_slowdown = None

    def close(self) -> None:
        """Release what the limiter holds (nothing here; a shared budget's connection)."""


def send_window_wait(sent: Sequence[float], now: float, qps: float, margin: float) -> float:
    """How long a send at ``now`` must still wait so that no window of ``floor(qps) / qps *
    (1 + margin)`` seconds holds more than ``floor(qps)`` sends (``sent``: the latest send
    times, oldest first); 0.0 when it may go now. The rule of both :class:`RateLimiter` (one
    process) and the fleet's shared budget (``ctctsync.api.shared_budget``)."""
    allowed = max(1, math.floor(qps))
    window = allowed / qps * (1.0 + margin)
    # 1 us of float slack: n booked intervals add up to the window, not beyond it
    if len(sent) >= allowed and sent[-allowed] + window - now > 1e-6:
        return sent[-allowed] + window - now
    return 0.0


# ---------------------------------------------------------------------- registry

_registry: dict[str, RateLimiter] = {}
_registry_lock = threading.Lock()


def fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for an API key (the registry never holds the key)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def limiter_for(
    api_key_fingerprint: str,
    qps: float | None = DEFAULT_QPS,
    daily: int | None = DEFAULT_DAILY,
) -> RateLimiter:
    """The process-wide limiter of one API key; created on first use.

    All clients of one key share it. If the limits differ from the existing limiter's, the
    limiter is reconfigured (the newest settings win; today's count is kept).
    """
    with _registry_lock:
        limiter = _registry.get(api_key_fingerprint)
        if limiter is None:
            limiter = RateLimiter(qps, daily)
            _registry[api_key_fingerprint] = limiter
        elif (limiter.qps, limiter.daily) != (qps, daily):
            limiter.reconfigure(qps, daily)
        return limiter


def install_limiter(
    api_key_fingerprint: str, choose: Callable[[RateLimiter | None], RateLimiter]
) -> RateLimiter:
    """Make ``choose(current)`` the process-wide limiter of one API key, under the registry
    lock: ``choose`` gets the registered limiter (or None) and returns the one to keep, e.g.
    a budget shared by the fleet (:mod:`ctctsync.api.shared_budget`) replacing the local
    one. :func:`limiter_for` then hands it to every client of the key."""
    with _registry_lock:
        current = _registry.get(api_key_fingerprint)
        chosen = choose(current)
        if current is not None and chosen is not current:
            current.close()
        _registry[api_key_fingerprint] = chosen
        return chosen


def clear_registry() -> None:
    """Forget every shared limiter (tests, or a process that switches accounts)."""
    with _registry_lock:
        for limiter in _registry.values():
            limiter.close()
        _registry.clear()
