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
request starts, because ``qps`` intervals already take ``qps * interval > 1`` s. Slots are
booked on a schedule (``next = previous slot + interval``), not from "now", so oversleeping
never accumulates into a slower rate, and a request that waited for its slot does not lose
its place to another thread.

A booked slot, or even the moment a caller is let go, says nothing about when the request
*reaches the server*: a busy process, a GIL switch, a loaded server's event loop can put it
there a quarter of a second later, so the 5th of four calls let go 1.03 s apart can still
arrive within one second of the 1st. The rule that cannot be fooled by that delay is the
**hold rule** (:func:`arrival_wait`): every granted call *holds* the key's window from its
grant until its answer is in (:meth:`RateLimiter.done`; the server has counted it by then,
whatever the delays), or at most ``send_delay_bound`` seconds (default 1 s,
:data:`DEFAULT_SEND_DELAY_BOUND`) when no answer comes (a killed process, a hung
connection). A call may be granted only while fewer than ``floor(qps)`` holds are still on
or ended within the last ``window = floor(qps) / qps`` seconds (+ 5 ms of slack). Proof
sketch: take any ``floor(qps) + 1`` arrivals within one second and the call among them
granted last, at ``g``; every other one was granted before ``g`` and arrived before its hold
ended, so an ended-before-``g - window`` hold would put its arrival more than a window before
ours (which is after ``g``); hence all of them were counted at ``g``, and ``g`` was refused.
Only the ordering "grant before arrival before answer" is used, not any clock of the server.
The cost is the answer's latency: ``floor(qps)`` calls per ``window + latency``, i.e. no cost while
answers come within the 3 % margin of the spacing (30 ms at 4 qps); the booked spacing
widens by the recent latency (:func:`slot_spacing`) so the schedule does not outrun the hold
rule. With ``send_delay_bound = 0`` the rule is the old "actual send times" check.

Priority
--------
Calls have a class (:data:`Priority`): ``high`` (scheduled incremental runs) and ``low``
(backfills, first loads, re-syncs, manual runs). A high call books the next free slot at
once; a low call books only when the schedule is free up to ``LOW_HORIZON_SLOTS`` slots
ahead (:func:`low_priority_wait`), so low calls never queue up far ahead of a high one. So
that lows are not starved when highs keep the schedule full, the low class books at least
one call every :data:`LOW_FLOOR_PERIOD` seconds regardless. A high call then waits at most
for the high calls booked before it, ``LOW_HORIZON_SLOTS + 1`` low slots and one floor slot
per second of that queue; the low class keeps >= 1 call/s. Within a class there is no
order beyond "who asks first when the schedule opens".

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

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
DEFAULT_SEND_DELAY_BOUND = 1.0
"""Seconds a granted call holds the key's window at most when its answer does not come
(the hold rule, above). A call whose answer takes longer is assumed to have reached the
server by then: lower is faster for slow answers, but a request that reaches the server
later than this after its grant may be counted in a crowded second."""
LOW_HORIZON_SLOTS = 2
"""A low-priority call books only when the schedule is free this many slots ahead."""
LOW_FLOOR_PERIOD = 1.0
"""The low class books at least one call per this many seconds, however busy the highs."""
LATENCY_DECAY = 0.9
"""Per answer, the latency estimate that widens the spacing decays by this factor (it
follows a new maximum at once, a calmer period slowly)."""
CLAIM_RECHECK = 0.25
"""Longest single wait for the hold rule: an answer may end a hold early."""
HOLD_SLACK = 0.005
"""Seconds added to the hold window: clock reads and float rounding, nothing else."""
"""Longest single wait for the hold rule: an answer may end a hold early."""

Priority = Literal["high", "low"]
"""A call's class at its key's budget: ``high`` goes first (see "Priority" above)."""
PRIORITIES: tuple[Priority, ...] = ("high", "low")


@dataclass(frozen=True)
class Grant:
    """A call the limiter let go, at ``at`` (the limiter's clock); hand it back to
    :meth:`RateLimiter.done` when the answer is in."""

    at: float


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
        send_delay_bound: float = DEFAULT_SEND_DELAY_BOUND,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps is not None and qps <= 0:
            raise ValueError("qps must be positive or None")
        if daily is not None and daily <= 0:
            raise ValueError("daily must be positive or None")
        if send_delay_bound < 0:
            raise ValueError("send_delay_bound must be >= 0 seconds")
        self.qps = qps
        self.send_delay_bound = send_delay_bound
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
        # [grant, hold end] of the calls whose hold may still count (the hold rule)
        self._holds: list[list[float]] = []
        self._latency = 0.0  # recent answer latency, decaying (widens the spacing)
        self._low_last: float | None = None  # when the low class last booked
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

    def _spacing(self) -> float:
        assert self._rate is not None and self.qps is not None
        return slot_spacing(self._rate, self.qps, self.margin, self._latency)

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

    def acquire(
        self, should_stop: StopCheck | None = None, priority: Priority = "high"
    ) -> Grant:
        """Wait for the next free slot and count one call against today's budget; returns
        the grant, to be handed to :meth:`done` when the call's answer is in.

        ``priority``: ``low`` calls wait while higher ones fill the schedule (see
        "Priority" above). Raises :class:`DailyQuotaExhausted` *before* anything is sent
        when the budget (or a server-reported exhaustion) says no more calls today, and
        :class:`~ctctsync.api.cancel.Cancelled` (giving the call back to the budget) when
        ``should_stop`` says stop while waiting: a slowed-down limiter may hold a caller
        for seconds, and a cancel must not wait that out.
        """
        check_stop(should_stop)
        while True:
            with self._lock:
                now = self._clock()
                self._recover(now)
                turn = 0.0
                if self._rate is not None and priority == "low":
                    turn = low_priority_wait(now, self._next_slot, self._low_last,
                                             self._spacing())
                if turn == 0.0:
                    self._take_budget()
                    slot = max(now, self._next_slot)
                    if self._rate is not None:
                        self._next_slot = slot + self._spacing()
                        if priority == "low":
                            self._low_last = now
                    # else: no pacing, but a pause set by slow_down() still holds everyone
                    break
            pause(turn, self._sleep, should_stop)  # nothing booked, nothing to give back
        try:
            if slot > now:
                pause(slot - now, self._sleep, should_stop)
            while True:
                extra, grant = self._claim()
                if grant is not None:
                    return grant
                pause(min(extra, CLAIM_RECHECK), self._sleep, should_stop)
        except Cancelled:
            with self._lock:
                self._used = max(0, self._used - 1)  # nothing was sent
            raise

    def _claim(self) -> tuple[float, Grant | None]:
        """Grant the call now under the hold rule (:func:`arrival_wait`), or say how much
        longer to wait. The schedule keeps *booked* slots apart; this keeps the calls'
        *arrivals at the server* within the limit, however late they get there."""
        with self._lock:
            now = self._clock()
            if self.qps is None:
                return 0.0, Grant(now)
            window = hold_window(self.qps)
            self._holds = [e for e in self._holds if e[1] + window - now > _SLACK]
            wait = arrival_wait([e[1] for e in self._holds], now, self.qps)
            if wait > 0.0:
                return wait, None
            self._holds.append([now, now + self.send_delay_bound])
            return 0.0, Grant(now)

    def done(self, grant: Grant) -> None:
        """The answer to a granted call is in (or the call failed): the server has counted
        it, so its hold on the key's window ends now rather than ``send_delay_bound`` after
        the grant; its latency widens the spacing while answers are slow."""
        with self._lock:
            now = self._clock()
            for entry in self._holds:
                if entry[0] == grant.at:
                    entry[1] = min(entry[1], now)
                    break
            observed = min(max(0.0, now - grant.at), self.send_delay_bound)
            self._latency = max(observed, self._latency * LATENCY_DECAY)

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


_SLACK = 1e-6
"""1 us of float slack: n booked intervals add up to the window, not beyond it."""


def hold_window(qps: float) -> float:
    """The window of the hold rule: ``floor(qps)`` calls per ``floor(qps) / qps`` seconds
    plus :data:`HOLD_SLACK` (1.005 s at 4 qps). No margin for delays is needed here: the
    rule rests on "grant before arrival before answer", not on how long either took."""
    return max(1, math.floor(qps)) / qps + HOLD_SLACK


def arrival_wait(holds: Sequence[float], now: float, qps: float) -> float:
    """How long a call at ``now`` must still wait under the hold rule: fewer than
    ``floor(qps)`` of the calls' holds (``holds``: when each ended, or will end at the latest)
    may end after ``now - window``; 0.0 when it may go now. The rule of both
    :class:`RateLimiter` (one process) and the fleet's shared budget
    (``ctctsync.api.shared_budget``)."""
    allowed = max(1, math.floor(qps))
    window = hold_window(qps)
    live = sorted(h for h in holds if h + window - now > _SLACK)
    if len(live) >= allowed:
        return live[-allowed] + window - now
    return 0.0


def slot_spacing(rate: float, qps: float, margin: float, latency: float) -> float:
    """The time between booked slots: ``(1 / rate) * (1 + margin)``, widened when the
    answers' recent ``latency`` makes the hold rule slower (``floor(qps)`` slots per hold
    window plus latency): a schedule running ahead of it would only pile callers up at the
    claim, where no priority applies."""
    allowed = max(1, math.floor(qps))
    return max((1.0 / rate) * (1.0 + margin), (hold_window(qps) + latency) / allowed)


def low_priority_wait(
    now: float, next_slot: float, low_last: float | None, spacing: float
) -> float:
    """0.0 when a low-priority call may book now; else how long until it may ask again:
    when the schedule is free ``LOW_HORIZON_SLOTS`` slots ahead, or when the low class's
    floor (one booking per ``LOW_FLOOR_PERIOD``) is due, whichever comes first."""
    opens = next_slot - LOW_HORIZON_SLOTS * spacing
    floor_due = -math.inf if low_last is None else low_last + LOW_FLOOR_PERIOD
    return max(0.0, min(opens, floor_due) - now)


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
