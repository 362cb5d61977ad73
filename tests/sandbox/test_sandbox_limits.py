"""Rate limits: 403 over.qps on bursts, 403 over.ratelimit past the daily quota; limits per key
(CC's default 4/s and 10,000/day, a partner's 10/s and 250,000/day), settable over admin HTTP."""

from __future__ import annotations

import httpx
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.ratelimit import DEFAULT_LIMITS, PARTNER_LIMITS, KeyLimits, RateLimiter
from ctctsync.sandbox.testing import SandboxFactory


class FakeClock(SandboxClock):
    """A clock that only moves when told (for the limiter's window arithmetic)."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 1000.0
        self.ms = 1_700_000_000_000

    def monotonic(self) -> float:
        return self.t

    def now_ms(self) -> int:
        return self.ms


def _client(sb: Sandbox) -> httpx.Client:
    c = sb.credentials
    return httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                        headers={"Authorization": f"Bearer {c.access_token}"})


def test_burst_trips_qps(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(qps_limit=4)
    statuses: list[httpx.Response] = []
    with _client(sb) as client:
        # back-to-back requests: 5 of them land within a second unless the box is very slow
        while len(statuses) < 40 and not any(r.status_code == 403 for r in statuses):
            statuses.append(client.get("/v2/account/info"))
    codes = [r.status_code for r in statuses]
    assert codes[:4] == [200] * 4
    rejected = [r for r in statuses if r.status_code == 403]
    assert rejected
    assert rejected[0].json()[0]["error_key"] == "mashery.not.authorized.over.qps"
    snap = sb.counters.snapshot()["endpoints"]["GET /v2/account/info"]
    assert snap["403"] == len(rejected)  # rejected requests are counted


def test_pacing_at_exactly_the_limit_never_trips() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, qps_limit=4, daily_limit=None)
    for _ in range(200):
        assert limiter.check("k") == "ok"
        clock.t += 0.25
    # ... while five requests inside one second do
    for _ in range(4):
        assert limiter.check("k2") == "ok"
        clock.t += 0.2
    assert limiter.check("k2") == "qps"
    clock.t += 0.2
    assert limiter.check("k2") == "ok"  # the window slid past the first request


def test_pacing_tolerates_small_arrival_jitter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, qps_limit=4, daily_limit=None)
    for i in range(100):
        assert limiter.check("k") == "ok"
        clock.t += 0.25 - (0.004 if i % 2 else -0.004)


def test_limits_are_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, qps_limit=1, daily_limit=None)
    assert limiter.check("a") == "ok"
    assert limiter.check("a") == "qps"
    assert limiter.check("b") == "ok"


def test_daily_quota_and_utc_midnight(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(daily_limit=5)
    with _client(sb) as client:
        codes = [client.get("/v2/lists").status_code for _ in range(5)]
        assert codes == [200] * 5
        over = client.get("/v2/lists")
        assert over.status_code == 403
        assert over.json()[0]["error_key"] == "mashery.not.authorized.over.ratelimit"
        now = sb.account.clock.now_ms()
        to_midnight = 86_400 - (now // 1000) % 86_400 + 1
        sb.advance(to_midnight - 4 if to_midnight > 5 else 0)
        if to_midnight > 5:
            assert client.get("/v2/lists").status_code == 403  # still the same UTC day
        sb.advance(5)
        assert client.get("/v2/lists").status_code == 200  # a new UTC day


def test_fake_clock_day_boundary() -> None:
    clock = FakeClock()
    clock.ms = 1_700_006_399_000  # 2023-11-14T23:59:59Z
    limiter = RateLimiter(clock, qps_limit=None, daily_limit=2)
    assert [limiter.check("k") for _ in range(3)] == ["ok", "ok", "daily"]
    clock.ms += 1_000  # midnight UTC
    assert limiter.check("k") == "ok"


@pytest.mark.parametrize("qps", [None, 4])
def test_limits_can_be_changed_at_runtime(sandbox_factory: SandboxFactory, qps: int | None) -> None:
    sb = sandbox_factory(qps_limit=qps)
    sb.set_limits(qps_limit=None, daily_limit=1)
    with _client(sb) as client:
        assert client.get("/v2/lists").status_code == 200
        assert client.get("/v2/lists").status_code == 403
    r = httpx.post(f"{sb.base_url}/_sandbox/limits", json={"qps_limit": None, "daily_limit": None})
    assert r.json() == {"qps_limit": None, "daily_limit": None}
    with _client(sb) as client:
        assert all(client.get("/v2/lists").status_code == 200 for _ in range(6))


def test_limits_are_settings_per_key() -> None:
    clock = FakeClock()  # one instant: the count, not the timing, decides
    limiter = RateLimiter(clock, qps_limit=4, daily_limit=10_000)
    limiter.set_key_limits("partner", PARTNER_LIMITS)
    limiter.set_key_limits("small", KeyLimits(qps_limit=None, daily_limit=3))
    assert [limiter.check("partner") for _ in range(11)] == ["ok"] * 10 + ["qps"]
    assert [limiter.check("default") for _ in range(5)] == ["ok"] * 4 + ["qps"]
    assert [limiter.check("small") for _ in range(5)] == ["ok"] * 3 + ["daily"] * 2
    assert limiter.limits_for("default") == DEFAULT_LIMITS == KeyLimits(4, 10_000)
    assert limiter.limits_for("partner") == KeyLimits(10, 250_000)
    limiter.set_key_limits("small", None)  # back to the defaults; today's usage still counts
    assert limiter.limits_for("small") == DEFAULT_LIMITS
    assert limiter.used_today("small") == 3
    assert limiter.check("small") == "ok"


def test_partner_key_is_not_throttled_where_a_default_key_is(
        sandbox_factory: SandboxFactory) -> None:
    partner = sandbox_factory(qps_limit=4, daily_limit=None, app_limits="partner")
    with _client(partner) as client:
        # ten back to back: never more than the partner's 10 in any second, however fast
        assert [client.get("/v2/account/info").status_code for _ in range(10)] == [200] * 10
    default = sandbox_factory(qps_limit=4, daily_limit=None, app_limits="default")
    codes: list[int] = []
    with _client(default) as client:
        while len(codes) < 40 and 403 not in codes:
            codes.append(client.get("/v2/account/info").status_code)
    assert codes[:4] == [200] * 4 and 403 in codes


def test_key_limits_over_admin_http_shared_by_v2_and_v3(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory()
    url = f"{sb.base_url}/_sandbox/limits/keys/application"
    key = sb.credentials.api_key
    set_ = httpx.post(url, json={"qps_limit": None, "daily_limit": 6}).json()
    assert set_ == {"key": key, "qps_limit": None, "daily_limit": 6, "own": True,
                    "used_today": 0}
    v3 = httpx.Client(base_url=sb.base_url,
                      headers={"Authorization": f"Bearer {sb.credentials.v3_access_token}"})
    with _client(sb) as v2, v3:
        assert [v2.get("/v2/lists").status_code for _ in range(3)] == [200] * 3
        assert [v3.get("/v3/contact_lists").status_code for _ in range(3)] == [200] * 3
        assert v2.get("/v2/lists").status_code == 403  # one application, one budget
        over = v3.get("/v3/contact_lists")
        assert over.status_code == 429 and over.json()["error_key"] == "quota_exceeded"
        assert httpx.get(url).json()["used_today"] == 6
        listed = httpx.get(f"{sb.base_url}/_sandbox/limits/keys").json()
        assert [k["key"] for k in listed["keys"]] == [key]
        partner = httpx.post(url, json={"profile": "partner"}).json()
        assert (partner["qps_limit"], partner["daily_limit"]) == (10, 250_000)
        assert v2.get("/v2/lists").status_code == 200
        back = httpx.delete(url).json()  # the sandbox's defaults (off in the fixture)
        assert (back["own"], back["qps_limit"], back["daily_limit"]) == (False, None, None)
    for bad in ({"qps_limit": 0}, {"daily_limit": "lots"}, {"profile": "gold"}):
        assert httpx.post(url, json=bad).status_code == 400, bad
    sb.set_key_limits("partner")  # the same from Python
    assert sb.limiter.limits_for(key) == PARTNER_LIMITS
    sb.set_key_limits(None)
    assert sb.limiter.own_limits() == {}
