"""The sandbox clock: real UTC time plus an adjustable offset.

Generated history lies before :data:`ANCHOR_MS` (a fixed instant), so a seed always yields the
same data; the clock itself follows real time so mutations get fresh, increasing timestamps.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

ANCHOR_MS = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)
"""Every generated (seeded) timestamp is at or before this instant (2024-06-01T00:00:00Z)."""


class SandboxClock:
    """Real UTC time shifted by an offset that only moves forward."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset_ms = int(offset_seconds * 1000)
        self._last_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        """The current sandbox time in epoch milliseconds (never goes backwards)."""
        with self._lock:
            now = int(time.time() * 1000) + self._offset_ms
            now = max(now, self._last_ms)
            self._last_ms = now
            return now

    def reserve(self, n: int) -> int:
        """Return the current time and make the next ``n - 1`` milliseconds "used", so that a
        mutation can stamp ``n`` distinct increasing instants that later readings never precede."""
        with self._lock:
            now = max(int(time.time() * 1000) + self._offset_ms, self._last_ms)
            self._last_ms = now + max(n - 1, 0)
            return now

    def now(self) -> datetime:
        """The current sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC)

    @property
    def offset_seconds(self) -> float:
        """How far the sandbox clock is ahead of real time."""
        return self._offset_ms / 1000

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset_ms += int(seconds * 1000)
        return self.now()

    def monotonic(self) -> float:
        """Seconds on a monotonic scale that includes the offset (for rate-limit windows)."""
        return time.monotonic() + self._offset_ms / 1000
