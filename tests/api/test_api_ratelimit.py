"""The shared rate limiter, on a fake clock (no real sleeps)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ctctsync.api.ratelimit import RateLimiter, clear_registry, fingerprint, limiter_for
from ctctsync.errors import DailyQuotaExhausted


class FakeTime:
    """A monotonic clock, a wall clock that moves with it, and a sleep that advances both."""

    def __init__(self, start: datetime = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) -> None:
        self.t = 0.0
        self.start = start
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        with self.lock:
            self.t += seconds

    def limiter(self, qps: float | None = 4.0, daily: int | None = 10_000, **kw) -> RateLimiter:
        return RateLimiter(
            qps, daily, clock=self.clock, wall_clock=self.now, sleep=self.sleep, **kw
        )


def send_times(time: FakeTime, limiter: RateLimiter, n: int) -> list[float]:
    """``n`` calls, each answered at once (no latency)."""
    out = []
    for _ in range(n):
        limiter.done(limiter.acquire())
        out.append(time.t)
    return out


def max_in_window(times: list[float], window: float) -> int:
    """Most request starts in any closed window of ``window`` seconds."""
    return max(sum(1 for u in times if t <= u <= t + window) for t in times)


@pytest.mark.parametrize(
    "qps",
    [pytest.param(4.0, id="4qps"), pytest.param(10.0, id="10qps"), pytest.param(1.0, id="1qps")],
)
def test_pacing_never_exceeds_qps_in_any_second(qps):
    time = FakeTime()
    times = send_times(time, time.limiter(qps), 200)
    assert max_in_window(times, 1.0) <= int(qps)
    # ...and is not too conservative: at least 95 % of the allowed rate.
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate >= 0.95 * qps


def test_interval_tolerates_network_jitter_of_the_sandbox_window():
    # The sandbox refuses a 5th request within 0.98 s; real arrivals may shift by a few ms.
    time = FakeTime()
    times = send_times(time, time.limiter(4.0), 50)
    assert min(b - a for a, b in zip(times, times[4:], strict=False)) > 1.02


def test_slow_client_is_not_delayed():
    time = FakeTime()
    limiter = time.limiter(4.0)
    limiter.acquire()
    time.t += 5.0  # a slow request
    limiter.acquire()
    assert time.sleeps == []


def test_oversleeping_does_not_accumulate():
    time = FakeTime()
    limiter = time.limiter(4.0)
    overslept = []

    def late_sleep(seconds: float) -> None:
        overslept.append(seconds)
        time.t += seconds + 0.01  # every sleep wakes 10 ms late

    limiter._sleep = late_sleep
    times = send_times(time, limiter, 101)
    # 100 intervals at 0.2575 s, plus one late wake-up at most
    assert times[-1] - times[0] == pytest.approx(100 * 0.2575 + 0.01, abs=0.02)


def test_unlimited_qps_never_sleeps():
    time = FakeTime()
    send_times(time, time.limiter(None), 100)
    assert time.sleeps == []


def test_daily_budget_raises_before_sending():
    time = FakeTime()
    limiter = time.limiter(None, daily=3)
    for _ in range(3):
        limiter.acquire()
    assert limiter.remaining_today == 0
    with pytest.raises(DailyQuotaExhausted) as info:
        limiter.acquire()
    assert info.value.resume_at == datetime(2026, 11, 28, tzinfo=UTC)
    assert "3" in info.value.user_message
    assert "2026-11-28 00:00 UTC" in info.value.user_message
    assert limiter.used_today == 3  # the refused call was not counted


def test_daily_budget_resets_at_utc_midnight():
    time = FakeTime(start=datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC))
    limiter = time.limiter(None, daily=2)
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(DailyQuotaExhausted):
        limiter.acquire()
    time.t += 1.0  # 00:00:00 UTC
    limiter.acquire()
    assert limiter.used_today == 1


def test_mark_exhausted_blocks_until_resume_time():
    time = FakeTime()
    limiter = time.limiter(None, daily=None)
    resume = limiter.mark_exhausted()
    assert resume == datetime(2026, 11, 28, tzinfo=UTC)
    assert limiter.remaining_today == 0
    with pytest.raises(DailyQuotaExhausted) as info:
        limiter.acquire()
    assert info.value.resume_at == resume
    time.t += 12 * 3600
    limiter.acquire()


def test_set_used_today_restores_a_count():
    time = FakeTime()
    limiter = time.limiter(None, daily=10)
    limiter.set_used_today(10)
    with pytest.raises(DailyQuotaExhausted):
        limiter.acquire()


def test_slow_down_halves_rate_and_pauses_at_least_a_second():
    time = FakeTime()
    limiter = time.limiter(4.0)
    limiter.acquire()
    limiter.slow_down()
    assert limiter.current_qps == 2.0
    assert limiter.slowdowns == 1
    before = time.t
    limiter.acquire()
    assert time.t - before >= 1.0
    t1 = time.t
    limiter.acquire()
    assert time.t - t1 == pytest.approx(0.5 * 1.03)


def test_slow_down_has_a_floor():
    time = FakeTime()
    limiter = time.limiter(4.0, min_qps=0.5)
    for _ in range(10):
        limiter.slow_down()
    assert limiter.current_qps == 0.5


def test_rate_recovers_gradually_after_quiet_periods():
    time = FakeTime()
    limiter = time.limiter(4.0, recovery_period=5.0)
    limiter.slow_down()
    assert limiter.current_qps == 2.0
    time.t += 4.9
    assert limiter.current_qps == 2.0
    time.t += 0.1
    assert limiter.current_qps == pytest.approx(2.4)
    time.t += 5.0
    assert limiter.current_qps == pytest.approx(2.8)
    time.t += 100.0
    assert limiter.current_qps == 4.0


def test_slow_down_without_client_limit_still_pauses():
    time = FakeTime()
    limiter = time.limiter(None)
    limiter.slow_down()
    limiter.acquire()
    assert time.sleeps == [1.0]
    assert limiter.current_qps is None
    limiter.acquire()
    assert time.sleeps == [1.0]  # no pacing after the pause


class SharedTime:
    """A fake clock for several threads: sleeping until T moves the clock to at least T."""

    def __init__(self) -> None:
        self.t = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            wake = self.t + seconds
            self.t = max(self.t, wake)


def test_threads_share_one_schedule():
    time = SharedTime()
    limiter = RateLimiter(4.0, None, clock=time.clock, sleep=time.sleep)
    grants: list[float] = []

    def worker() -> None:
        for _ in range(25):
            grant = limiter.acquire()
            grants.append(grant.at)
            limiter.done(grant)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grants) == 100
    assert max_in_window(sorted(grants), 1.0) <= 4


def test_late_wake_up_cannot_crowd_a_window():
    # Booked slots: 0, 0.2575, 0.515, 0.7725, 1.03, 1.2875... The 2nd caller wakes up 0.2 s
    # late (0.4575). Booked slots alone would put 0.4575, 0.515, 0.7725, 1.03 and 1.2875 in
    # one second; the 2nd call's hold keeps the 6th back to 0.4575 + 1.005 (the hold
    # window: 1 s plus 5 ms of slack).
    time = FakeTime()
    limiter = time.limiter(4.0)
    grants: list[float] = []

    def sleepy(seconds: float) -> None:
        time.sleep(seconds + (0.2 if len(grants) == 1 else 0.0))

    limiter._sleep = sleepy
    for _ in range(12):
        grant = limiter.acquire()
        grants.append(grant.at)
        limiter.done(grant)
    assert grants[1] == pytest.approx(0.4575)
    assert grants[5] == pytest.approx(0.4575 + 1.005)
    assert max_in_window(grants, 1.0) <= 4
    gaps = [b - a for a, b in zip(grants, grants[4:], strict=False)]
    assert min(gaps) >= 1.005 - 1e-6


def test_a_late_arrival_holds_the_window_until_its_answer():
    # Four calls granted 0.2575 s apart; the 1st is answered only 0.3 s after its grant (it
    # may have reached the server that late). Its hold, not its grant, starts the window: the
    # 5th call waits until 0.3 + 1.005, not 1.03 (the schedule, which the old rule allowed).
    time = FakeTime()
    limiter = time.limiter(4.0)
    first = limiter.acquire()
    late = [limiter.acquire() for _ in range(3)]
    for grant in late:
        limiter.done(grant)
    time.t = first.at + 0.3
    limiter.done(first)
    fifth = limiter.acquire()
    assert fifth.at == pytest.approx(0.3 + 1.005)


def test_an_unanswered_call_holds_the_window_for_the_send_delay_bound():
    time = FakeTime()
    limiter = time.limiter(4.0, send_delay_bound=0.5)
    grants = [limiter.acquire() for _ in range(4)]  # never answered (a killed process)
    fifth = limiter.acquire()
    assert fifth.at == pytest.approx(grants[0].at + 0.5 + 1.005)
    # with a bound of 0 the rule is the old check of grant times alone
    time2 = FakeTime()
    old = time2.limiter(4.0, send_delay_bound=0.0)
    first = [old.acquire() for _ in range(5)]
    assert first[4].at == pytest.approx(1.03)


def test_slow_answers_widen_the_spacing():
    time = FakeTime()
    limiter = time.limiter(4.0)
    grants = []
    for _ in range(12):
        grant = limiter.acquire()
        grants.append(grant.at)
        time.t += 0.2  # every answer takes 0.2 s
        limiter.done(grant)
    # each call holds the window until its answer: 4 calls per 1.005 + 0.2 s, no faster
    gaps = [b - a for a, b in zip(grants, grants[4:], strict=False)]
    assert min(gaps) == pytest.approx(1.005 + 0.2)
    # and the schedule books at that pace, (1.005 + 0.2) / 4 apart, not 0.2575
    assert limiter._next_slot - grants[-1] == pytest.approx((1.005 + 0.2) / 4)


def test_answers_within_the_margin_cost_nothing():
    time = FakeTime()
    limiter = time.limiter(4.0)
    grants = []
    for _ in range(12):
        grant = limiter.acquire()
        grants.append(grant.at)
        time.t += 0.02  # 20 ms answers: inside the spacing's 3 % margin
        limiter.done(grant)
    assert grants[-1] - grants[0] == pytest.approx(11 * 0.2575)


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match="qps"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="daily"):
        RateLimiter(4, 0)


def test_registry_shares_one_limiter_per_key():
    clear_registry()
    a = limiter_for(fingerprint("key-one"))
    b = limiter_for(fingerprint("key-one"))
    c = limiter_for(fingerprint("key-two"))
    assert a is b
    assert a is not c
    d = limiter_for(fingerprint("key-one"), qps=10.0, daily=250_000)
    assert d is a
    assert (a.qps, a.daily) == (10.0, 250_000)
    assert "key-one" not in fingerprint("key-one")
    clear_registry()
