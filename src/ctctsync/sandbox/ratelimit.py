"""Per-API-key rate limits: requests per second and requests per (UTC) day.

Per second: a sliding window. A request is refused when ``qps_limit`` requests of the same key
were already accepted in the preceding ``1 s - grace`` (grace = 20 ms, absorbing arrival jitter),
so a client that spaces its requests by ``1/qps_limit`` seconds never trips it, while a burst of
``qps_limit + 1`` requests does. Refused requests do not occupy the window.

Per day: accepted requests are counted per key and per UTC calendar day of the sandbox clock;
once ``daily_limit`` is reached, requests are refused until the next UTC midnight.

Both limits are settings per key (:meth:`RateLimiter.set_key_limits`): a key without its own
uses the limiter's defaults (CC's 4/s and 10,000/day, :data:`DEFAULT_LIMITS`); a partner
application's are 10/s and 250,000/day (:data:`PARTNER_LIMITS`). The v2 API key and the v3
client id of one application are the same string, so both APIs spend one budget.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from ctctsync.sandbox.clock import SandboxClock

Verdict = Literal["ok", "qps", "daily"]
GRACE_S = 0.02


@dataclass(frozen=True)
class KeyLimits:
    """One key's limits: requests per second and per UTC day (None: no limit)."""

    qps_limit: int | None
    daily_limit: int | None


DEFAULT_LIMITS = KeyLimits(4, 10_000)
"""Constant Contact's limits of an ordinary application."""
PARTNER_LIMITS = KeyLimits(10, 250_000)
"""Constant Contact's limits of a partner application."""
PROFILES = {"default": DEFAULT_LIMITS, "partner": PARTNER_LIMITS}


def key_limits(value: KeyLimits | str) -> KeyLimits:
    """``value`` itself, or the limits of profile ``value`` (ValueError if unknown)."""
    if isinstance(value, KeyLimits):
        return value
    if value not in PROFILES:
        raise ValueError(f"unknown limits profile {value!r}; known: {', '.join(PROFILES)}")
    return PROFILES[value]


class RateLimiter:
    """Decides, per API key, whether a request is within the limits (None = no limit).
    ``qps_limit``/``daily_limit`` are the defaults of keys without limits of their own."""

    def __init__(self, clock: SandboxClock, qps_limit: int | None = 4,
                 daily_limit: int | None = 10_000) -> None:
        self.clock = clock
        self.qps_limit = qps_limit
        self.daily_limit = daily_limit
        self._own: dict[str, KeyLimits] = {}
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._day: dict[str, tuple[int, int]] = {}

    def configure(self, *, qps_limit: int | None, daily_limit: int | None) -> None:
        """Change both default limits (None disables one); keys with their own keep them."""
        with self._lock:
            self.qps_limit = qps_limit
            self.daily_limit = daily_limit

    def set_key_limits(self, api_key: str, limits: KeyLimits | None) -> None:
        """Give ``api_key`` limits of its own (None: back to the defaults). Its usage so far
        counts against the new limits."""
        with self._lock:
            if limits is None:
                self._own.pop(api_key, None)
            else:
                self._own[api_key] = limits

    def own_limits(self) -> dict[str, KeyLimits]:
        """The keys with limits of their own."""
        with self._lock:
            return dict(self._own)

    def limits_for(self, api_key: str) -> KeyLimits:
        """The limits that apply to ``api_key``."""
        with self._lock:
            return self._limits(api_key)

    def _limits(self, api_key: str) -> KeyLimits:
        own = self._own.get(api_key)
        return own if own is not None else KeyLimits(self.qps_limit, self.daily_limit)

    def check(self, api_key: str) -> Verdict:
        """Admit or refuse one request of ``api_key``; an admitted request is counted."""
        with self._lock:
            now = self.clock.monotonic()
            day = self.clock.now_ms() // 86_400_000
            used_day, used = self._day.get(api_key, (day, 0))
            if used_day != day:
                used = 0
            limits = self._limits(api_key)
            window = self._recent.setdefault(api_key, deque())
            while window and window[0] <= now - (1.0 - GRACE_S):
                window.popleft()
            if limits.qps_limit is not None and len(window) >= limits.qps_limit:
                return "qps"
            if limits.daily_limit is not None and used >= limits.daily_limit:
                return "daily"
            # the window is kept even without a per-second limit, so that setting one later
            # applies at once to the requests of the last second
            window.append(now)
            self._day[api_key] = (day, used + 1)
            return "ok"

    def used_today(self, api_key: str) -> int:
        """Requests of ``api_key`` admitted today (sandbox clock, UTC)."""
        with self._lock:
            day = self.clock.now_ms() // 86_400_000
            used_day, used = self._day.get(api_key, (day, 0))
            return used if used_day == day else 0

    def reset(self) -> None:
        """Forget all usage."""
        with self._lock:
            self._recent.clear()
            self._day.clear()
