"""Reading ahead on a helper thread: order, errors, early close."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ctctsync.sync.prefetch import Prefetcher


def test_items_in_order_on_the_helper_thread() -> None:
    threads: set[str] = set()

    def source() -> Iterator[int]:
        threads.add(threading.current_thread().name)
        yield from range(10)

    with Prefetcher(source, depth=2) as pages:
        assert list(pages) == list(range(10))
    assert threads == {"ctctsync-prefetch"}


def test_error_reaches_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("page 3 failed")

    got: list[int] = []
    with Prefetcher(source) as pages, pytest.raises(LookupError, match="page 3"):
        for item in pages:
            got.append(item)
    assert got == [1, 2]


def test_close_early_stops_reading() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(1_000):
            produced.append(i)
            yield i

    with Prefetcher(source, depth=2) as pages:
        for item in pages:
            if item == 3:
                break
    # bounded: the helper read at most depth + 1 items past the last one consumed
    assert len(produced) <= 3 + 1 + 2 + 1
