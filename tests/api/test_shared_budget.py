"""The fleet's rate budget (ctctsync.api.shared_budget) across real, separate processes.

Every test books against the real PostgreSQL (``pg_dsn``) in a schema of its own. Children
are spawned (not forked: pytest's process has threads), so each is a fresh interpreter with
its own connection, as a worker on another machine would be.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import ValidationError

from ctctsync.api import ApiClient
from ctctsync.api.ratelimit import limiter_for
from ctctsync.api.shared_budget import (
    RATE_BUDGET_UNREACHABLE_RULE,
    SharedRateLimiter,
    local_limiter_for,
    shared_limiter_for,
)
from ctctsync.control.settings import ControlSettings
from ctctsync.errors import DailyQuotaExhausted, RetriesExhausted

if TYPE_CHECKING:  # children import this module: keep the sandbox server out of them
    from ctctsync.sandbox import Sandbox

SPAWN = multiprocessing.get_context("spawn")
KEY = "0123456789abcdef"  # a fingerprint, as the worker passes it


@pytest.fixture
def table(budget_table: str) -> str:
    return budget_table


class Outage:
    """A TCP relay in front of PostgreSQL that can go down (refusing and cutting every
    connection) and come back on the same port: a real outage, not a mocked one."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        assert self._listener is not None
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone may not)
        self._listener.close()
        for conn in self._open:
            conn.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: down
            server = socket.create_connection(self.target)
            self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()


# ---------------------------------------------------------------------- children


def _pace(dsn: str, table: str, qps: float, daily: int | None, calls: int, start: Any,
          out: Any) -> None:
    """Child: ``calls`` acquisitions once every child is ready (``start``); reports each
    start time (wall clock: all children run on this machine) and how many the daily budget
    refused."""
    limiter = SharedRateLimiter(dsn, KEY, qps, daily, table=table)
    limiter.used_today  # connect and create before the race  # noqa: B018
    start.wait()
    starts: list[float] = []
    refused = 0
    for _ in range(calls):
        try:
            limiter.done(limiter.acquire())  # answered at once
        except DailyQuotaExhausted:
            refused += 1
            continue
        starts.append(time.time())
    limiter.close()
    out.put((starts, refused))


def _slow_down(dsn: str, table: str, qps: float, out: Any) -> None:
    """Child: one call, then the server (so to speak) says "over qps"; reports when."""
    limiter = SharedRateLimiter(dsn, KEY, qps, None, table=table)
    limiter.acquire()
    at = time.time()
    limiter.slow_down()
    limiter.close()
    out.put(at)


def _call_sandbox(dsn: str, table: str, base_url: str, api_key: str, token: str, calls: int,
                  start: Any, out: Any) -> None:
    """Child: ``calls`` real requests to the sandbox, paced by the fleet's 4 req/s budget."""
    limiter = SharedRateLimiter(dsn, KEY, 4.0, None, table=table)
    limiter.used_today  # noqa: B018
    start.wait()
    with ApiClient(base_url, api_key, token, limiter=limiter) as client:
        for _ in range(calls):
            client.get_json("/v2/account/info")
    out.put(limiter.slowdowns)


def _run(target: Any, *args: Any, n: int) -> list[Any]:
    """Start ``n`` children of ``target`` together; their results, in any order."""
    # every child connects, then all start at once (a fast starter must not run alone)
    start, out = SPAWN.Barrier(n + 1), SPAWN.Queue()
    children = [SPAWN.Process(target=target, args=(*args, start, out)) for _ in range(n)]
    for child in children:
        child.start()
    start.wait(timeout=60)
    results = [out.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    return results


# ---------------------------------------------------------------------- tests


def test_processes_share_one_pacing(pg_dsn: str, table: str) -> None:
    qps, per_child = 20.0, 10
    results = _run(_pace, pg_dsn, table, qps, 1000, per_child, n=3)
    starts = sorted(t for child_starts, _ in results for t in child_starts)
    assert len(starts) == 3 * per_child
    # no 1-second window holds more than floor(qps) starts, whichever process made them; the
    # times are read after acquire() returns, in processes a busy machine may pause for a few
    # ms, hence 50 ms of slack: three unshared budgets would put the 21 starts within 0.35 s
    allowed = int(qps)
    spans = [starts[i + allowed] - starts[i] for i in range(len(starts) - allowed)]
    assert min(spans) >= 0.95, min(spans)
    # each process really raced the others (not one after another)
    first_ends = [max(s) for s, _ in results]
    assert min(first_ends) > min(min(s) for s, _ in results) + 0.5
    assert SharedRateLimiter(pg_dsn, KEY, qps, 1000, table=table).used_today == len(starts)


def test_the_daily_budget_is_the_fleets(pg_dsn: str, table: str) -> None:
    results = _run(_pace, pg_dsn, table, 1000.0, 10, 5, n=3)
    assert sum(len(s) for s, _ in results) == 10
    assert sum(refused for _, refused in results) == 5
    here = SharedRateLimiter(pg_dsn, KEY, 1000.0, 10, table=table)
    assert here.used_today == 10
    assert here.remaining_today == 0
    with pytest.raises(DailyQuotaExhausted):
        here.acquire()
    here.close()


def test_a_slow_down_in_one_process_slows_the_others(pg_dsn: str, table: str) -> None:
    here = SharedRateLimiter(pg_dsn, KEY, 20.0, None, table=table)
    here.acquire()
    out = SPAWN.Queue()
    child = SPAWN.Process(target=_slow_down, args=(pg_dsn, table, 20.0, out))
    child.start()
    slowed_at = out.get(timeout=60)
    here.acquire()
    # the >= 1 s pause the other process set holds this one back too (slack: clock reads)
    assert time.time() - slowed_at >= 0.95
    assert here.current_qps == 10.0  # halved for every process of the key
    child.join(timeout=30)
    assert child.exitcode == 0
    here.close()


def test_an_unreachable_store_waits_then_fails_clearly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # port 1 refuses connections; the password must appear nowhere
    limiter = SharedRateLimiter(
        "postgresql://ctct:s3cret-pw@127.0.0.1:1/test", KEY, 4.0, 100, outage_limit=1.5
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(RetriesExhausted) as info:
        limiter.acquire()
    waited = time.monotonic() - started
    assert 1.5 <= waited < 5
    assert info.value.rule is RATE_BUDGET_UNREACHABLE_RULE
    assert info.value.failure_type == "transient"
    assert info.value.stops_run
    assert "could not be reached" in info.value.user_message
    logged = caplog.text
    assert "unreachable" in logged and "127.0.0.1/test" in logged
    assert "s3cret" not in logged + str(info.value)


def test_a_lost_connection_reconnects_and_keeps_the_schedule(pg_dsn: str, table: str) -> None:
    limiter = SharedRateLimiter(pg_dsn, KEY, 2.0, 100, table=table)
    limiter.acquire()
    limiter.acquire()  # next slot is ~0.5 s after this one
    assert limiter._conn is not None
    pid = limiter._conn.info.backend_pid
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.4  # the booked schedule survived the reconnect
    assert limiter.used_today == 3
    limiter.close()


def test_the_worker_installs_it_for_every_client_of_the_key(pg_dsn: str, table: str) -> None:
    shared = shared_limiter_for(KEY, pg_dsn.replace("postgresql://", "postgresql+psycopg://"),
                                4.0, 10_000, table=table)
    assert limiter_for(KEY, 4.0, 10_000) is shared  # what the engine's clients get
    assert shared_limiter_for(KEY, pg_dsn, 4.0, 10_000, table=table) is shared
    shared.set_used_today(7)
    shared.set_used_today(3)  # never lowers the fleet's count
    assert limiter_for(KEY).used_today == 7
    # CTCTSYNC_RATE_BUDGET=local: a process-local limiter again, the connection closed
    local = local_limiter_for(KEY, 4.0, 10_000)
    assert not isinstance(local, SharedRateLimiter)
    assert limiter_for(KEY, 4.0, 10_000) is local
    assert shared._conn is None


def test_two_processes_share_the_sandbox_limit(pg_dsn: str, table: str,
                                               sandbox_factory: Any) -> None:
    sb: Sandbox = sandbox_factory(qps_limit=4)
    creds = sb.credentials
    slowdowns = _run(_call_sandbox, pg_dsn, table, sb.base_url, creds.api_key,
                     creds.access_token, 5, n=2)
    assert slowdowns == [0, 0]
    statuses = sb.counters.snapshot()["api_keys"][creds.api_key]
    assert statuses.get("403", 0) == 0
    assert statuses["200"] == 10


def test_an_outage_pauses_calls_until_the_store_is_back(
    pg_dsn: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    info = conninfo_to_dict(pg_dsn)
    relay = Outage((str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)))
    dsn = make_conninfo(pg_dsn, host="127.0.0.1", port=relay.port)
    limiter = SharedRateLimiter(dsn, KEY, 4.0, 100, table=table, outage_limit=30)
    limiter.acquire()
    relay.down()
    back = threading.Timer(1.2, relay.up)  # the outage under test lasts ~1.2 s
    started = time.monotonic()
    back.start()
    with caplog.at_level(logging.INFO):
        limiter.acquire()  # waits the outage out: nothing booked, nothing sent meanwhile
    assert time.monotonic() - started >= 1.2
    back.join()
    assert "unreachable" in caplog.text and "reachable again" in caplog.text
    assert limiter.used_today == 2  # the waiting call counted once, when booked
    limiter.close()
    relay.down()


@pytest.mark.parametrize(
    ("database_url", "setting", "resolved"),
    [
        pytest.param(None, "auto", "local", id="sqlite-store-auto-local"),
        pytest.param("postgres://u@db/ctct", "auto", "postgres", id="postgres-store-auto-shared"),
        pytest.param("postgres://u@db/ctct", "local", "local", id="postgres-store-forced-local"),
        pytest.param("postgresql://u@db/ctct", "postgres", "postgres", id="explicit-postgres"),
    ],
)
def test_the_setting_chooses_where_the_budget_lives(
    tmp_path: Path, database_url: str | None, setting: str, resolved: str
) -> None:
    settings = ControlSettings(data_dir=tmp_path, database_url=database_url,
                               rate_budget=setting)  # type: ignore[arg-type]
    assert settings.resolved_rate_budget == resolved


def test_a_shared_budget_needs_a_postgresql_store(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CTCTSYNC_RATE_BUDGET=postgres"):
        ControlSettings(data_dir=tmp_path, rate_budget="postgres")
