"""A cancelled sync stops within the request in flight (issue 8): not after the current page,
the current table, or a retry's backoff; and the run log says what retries cost."""

from __future__ import annotations

import logging
import threading
import time

from ctctsync.config import WarehouseConfig
from ctctsync.sandbox import Sandbox
from ctctsync.sync import ProgressEvent, run_sync

TRACKING = "/v2/emailmarketing/campaigns/*/tracking/*"
TABLES = {"email_campaigns": None, "contact_tracking": None, "events": None}


def _answers(sb: Sandbox, status: str = "total") -> int:
    return sum(row.get(status, 0) for row in sb.counters.snapshot()["endpoints"].values())


def test_cancel_during_a_retry_backoff_sends_at_most_the_call_in_flight(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config
) -> None:
    # The tracking reads answer 500 four times: the client backs off (0.5, 1, 2, 4 s, with
    # jitter) between them. The cancel comes right after the first 500. Before issue 8 the
    # client slept out every backoff, retried, and read on to the next page (>= 4 calls).
    sandbox.faults.add("500", TRACKING, count=4)
    stop = threading.Event()
    cancelled_at: dict[str, float] = {}

    def cancel_after_first_500() -> None:
        deadline = time.monotonic() + 30
        while _answers(sandbox, "500") == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        cancelled_at["calls"] = _answers(sandbox)
        cancelled_at["t"] = time.monotonic()
        stop.set()

    watcher = threading.Thread(target=cancel_after_first_500, daemon=True)
    watcher.start()
    config = make_config(sandbox, duckdb_warehouse, tables=TABLES, history_start="2000-01-01")
    result = run_sync(config, should_stop=stop.is_set)
    ended = time.monotonic()
    watcher.join(5)
    time.sleep(0.3)  # a request still on the wire would be counted by now

    assert result.status == "cancelled" and result.failure_type == "cancelled"
    assert _answers(sandbox) - cancelled_at["calls"] <= 1  # at most the one in flight
    assert ended - cancelled_at["t"] < 3.0  # before: the backoffs, 0.5 + 1 + 2 + 4 s at most
    assert result.tables["email_campaigns"].status == "succeeded"
    assert result.tables["contact_tracking"].status == "cancelled"
    assert result.tables["events"].status == "cancelled"  # never begun: cancelled, not skipped


def test_cancel_mid_table_stops_its_reader_at_once(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config
) -> None:
    # A slow API: each tracking call takes 150 ms. The cancel comes with the table's first
    # page; the prefetcher must not go on reading the table's other pages.
    sandbox.faults.add("latency", TRACKING, latency_ms=150)
    stop = threading.Event()
    cancelled_at: dict[str, float] = {}

    def on_progress(event: ProgressEvent) -> None:
        if event.table == "contact_tracking" and event.phase == "page" and not stop.is_set():
            cancelled_at["calls"] = _answers(sandbox)
            cancelled_at["t"] = time.monotonic()
            stop.set()

    config = make_config(sandbox, duckdb_warehouse, tables=TABLES, history_start="2000-01-01")
    result = run_sync(config, should_stop=stop.is_set, progress=on_progress)
    ended = time.monotonic()
    time.sleep(0.4)
    assert result.status == "cancelled"
    assert _answers(sandbox) - cancelled_at["calls"] <= 1
    assert ended - cancelled_at["t"] < 3.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_run_log_warns_once_per_table_with_retries(
    sandbox: Sandbox, duckdb_warehouse: WarehouseConfig, make_config
) -> None:
    # Before issue 8 a run that retried said nothing in its log about the calls it spent.
    sandbox.faults.add("500", "/v2/contacts*", count=2)
    sandbox.faults.add("522", "/v2/lists*", count=1)
    logger = logging.getLogger("test.run_log.retries")
    logger.setLevel(logging.INFO)
    handler = _Records()
    logger.addHandler(handler)
    tables = {"contacts": None, "contact_lists": None, "events": None}
    config = make_config(sandbox, duckdb_warehouse, tables=tables, history_start="2000-01-01",
                         source={"max_retries": 6})
    try:
        result = run_sync(config, logger=logger)
    finally:
        logger.removeHandler(handler)
    assert result.status == "succeeded", result.error
    warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING]
    assert "contacts: 2 retries (500 x2); 2 extra calls" in warnings
    assert "contact_lists: 1 retry (522 x1); 1 extra call" in warnings
    assert not [w for w in warnings if w.startswith("events:")]
