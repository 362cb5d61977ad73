"""Read ahead from an iterator on a helper thread, a bounded number of items.

The API client waits on the network most of the time; reading the next page while the
current one is mapped and written keeps both busy. The queue is bounded, so memory holds at
most ``depth`` items beyond the one being processed; errors raised by the source are
re-raised in the consumer, in order; closing early stops the helper.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@contextmanager
def prefetch(make_source: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[Iterator[T]]:
    """``with prefetch(lambda: pages(), 2) as items: for item in items: ...``

    ``make_source`` is called on the helper thread, so every use of the source (an HTTP
    client, say) stays on that one thread.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def work() -> None:
        try:
            for item in make_source():
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failed(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="ctctsync-prefetch", daemon=True)
    thread.start()

    def items() -> Iterator[T]:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    try:
        yield items()
    finally:
        stop.set()
        thread.join()
