"""The sandbox clock: real UTC time plus an adjustable offset, or a frozen clock.

Generated history lies before :data:`ANCHOR_MS` (a fixed instant), so a seed always yields the
same data. By default the clock follows real time so mutations get fresh, increasing
timestamps. A *frozen* clock (``SandboxClock(frozen_at_ms=ANCHOR_MS)``) stands still at its
start instant and moves only by :meth:`SandboxClock.advance` (and by the instants a mutation
reserves): a benchmark or a test then sees the same account at the same sandbox time however
fast the machine is, and can age the account by weeks in no real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

ANCHOR_MS = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)
"""Every generated (seeded) timestamp is at or before this instant (2024-06-01T00:00:00Z)."""


class SandboxClock:
    """Real UTC time shifted by an offset that only moves forward; or, with ``frozen_at_ms``,
    a clock standing at that instant that only :meth:`advance` moves.

    Either way readings never go backwards: :meth:`reserve` hands a mutation ``n`` distinct
    instants and makes later readings at least the last of them, so a reading taken after a
    mutation is never before any timestamp it wrote.
    """

    def __init__(self, offset_seconds: float = 0.0, *, frozen_at_ms: int | None = None) -> None:
        self._offset_ms = int(offset_seconds * 1000)
        self._frozen_at_ms = frozen_at_ms
        self._last_ms = 0
        self._lock = threading.Lock()

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still between :meth:`advance` calls."""
        return self._frozen_at_ms is not None

    def _base_ms(self) -> int:
        if self._frozen_at_ms is not None:
            return self._frozen_at_ms + self._offset_ms
        return int(time.time() * 1000) + self._offset_ms

    def now_ms(self) -> int:
        """The current sandbox time in epoch milliseconds (never goes backwards)."""
        with self._lock:
            now = max(self._base_ms(), self._last_ms)
            self._last_ms = now
            return now

    def reserve(self, n: int) -> int:
        """Return the current time and make the next ``n - 1`` milliseconds "used", so that a
        mutation can stamp ``n`` distinct increasing instants that later readings never precede."""
        with self._lock:
            now = max(self._base_ms(), self._last_ms)
            self._last_ms = now + max(n - 1, 0)
            return now

    def now(self) -> datetime:
        """The current sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC)

    @property
    def offset_seconds(self) -> float:
        """How far the sandbox clock is ahead of real time (of its start instant when frozen)."""
        return self._offset_ms / 1000

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset_ms += int(seconds * 1000)
        return self.now()

    def monotonic(self) -> float:
        """Seconds on a monotonic scale that includes the offset (for rate-limit windows).

        Real monotonic time even when the clock is frozen: a per-second window that never
        slid would refuse every request after the first few, whatever the client's pace."""
        return time.monotonic() + self._offset_ms / 1000
