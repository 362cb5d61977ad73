"""Read ahead from an iterator on a helper thread, a bounded number of items.

The API client waits on the network most of the time; reading the next page while the
current one is mapped and written keeps both busy. The queue is bounded, so memory holds at
most ``depth`` items beyond the one being processed; errors raised by the source are
re-raised in the consumer, in order; :meth:`Prefetcher.close` stops the helper.

A cancelled run must not wait for the helper: with ``should_stop``, the consumer checks it
every ``STOP_POLL_SECONDS`` while it waits for the next item and raises ``Cancelled``, and
``close`` leaves a helper still waiting on the network behind (a daemon thread whose answer
is dropped) instead of waiting for its request to come back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ctctsync.api.cancel import STOP_POLL_SECONDS, StopCheck, check_stop

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher(Generic[T]):
    """Starts reading ``make_source()`` on a helper thread as soon as it is created.

    ``make_source`` is called on the helper thread, so every use of the source (an HTTP
    client, say) stays on that one thread. Iterate once; always :meth:`close` (or use
    ``with``), which waits for an item being read to arrive and then stops.
    """

    def __init__(
        self,
        make_source: Callable[[], Iterator[T]],
        depth: int = 2,
        should_stop: StopCheck | None = None,
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._should_stop = should_stop
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._work, args=(make_source,), name="ctctsync-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _work(self, make_source: Callable[[], Iterator[T]]) -> None:
        try:
            for item in make_source():
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failed(exc))
            return
        self._put(_DONE)

    def _next(self) -> object:
        if self._should_stop is None:
            return self._queue.get()
        while True:
            check_stop(self._should_stop)
            try:
                return self._queue.get(timeout=STOP_POLL_SECONDS)
            except queue.Empty:
                continue

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._next()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop reading ahead and wait for the helper thread to end -- unless the read was
        cancelled: then a request still on the wire is not waited for (its answer is
        dropped when it comes)."""
        self._stop.set()
        if self._should_stop is not None and self._should_stop():
            return
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
