"""Per-API-key rate limits: requests per second and requests per (UTC) day.

Per second: a sliding window. A request is refused when ``qps_limit`` requests of the same key
were already accepted in the preceding ``1 s - grace`` (grace = 20 ms, absorbing arrival jitter),
so a client that spaces its requests by ``1/qps_limit`` seconds never trips it, while a burst of
``qps_limit + 1`` requests does. Refused requests do not occupy the window.

Per day: accepted requests are counted per key and per UTC calendar day of the sandbox clock;
once ``daily_limit`` is reached, requests are refused until the next UTC midnight.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Literal

from ctctsync.sandbox.clock import SandboxClock

Verdict = Literal["ok", "qps", "daily"]
GRACE_S = 0.02


class RateLimiter:
    """Decides, per API key, whether a request is within the limits (None = no limit)."""

    def __init__(self, clock: SandboxClock, qps_limit: int | None = 4,
                 daily_limit: int | None = 10_000) -> None:
        self.clock = clock
        self.qps_limit = qps_limit
        self.daily_limit = daily_limit
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._day: dict[str, tuple[int, int]] = {}

    def configure(self, *, qps_limit: int | None, daily_limit: int | None) -> None:
        """Change both limits (None disables one)."""
        with self._lock:
            self.qps_limit = qps_limit
            self.daily_limit = daily_limit

    def check(self, api_key: str) -> Verdict:
        """Admit or refuse one request of ``api_key``; an admitted request is counted."""
        with self._lock:
            now = self.clock.monotonic()
            day = self.clock.now_ms() // 86_400_000
            used_day, used = self._day.get(api_key, (day, 0))
            if used_day != day:
                used = 0
            if self.qps_limit is not None:
                window = self._recent.setdefault(api_key, deque())
                while window and window[0] <= now - (1.0 - GRACE_S):
                    window.popleft()
                if len(window) >= self.qps_limit:
                    return "qps"
            if self.daily_limit is not None and used >= self.daily_limit:
                return "daily"
            if self.qps_limit is not None:
                self._recent[api_key].append(now)
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
