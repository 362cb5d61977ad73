"""Issue 11's "done when" scenario (long lane): three ``ctctsync worker`` processes on the
PostgreSQL store run thirty integrations that share ONE Constant Contact application key on a
sandbox limited to 4 requests/s; then one worker is killed mid-run and its integration's run
completes on another worker.

The web process is the plane in this test process (it only writes the store, as ``serve``
does in fleet mode); the schedule is the workers' periodic tick. The sandbox runs in a
process of its own (``python -m ctctsync.sandbox``), as CC is another machine. Its limiter
is the judge of the rate: it refuses (403) any request that would be a key's fifth within
0.98 s; it exposes counts per status, not a request log, so the rate is read from those.

Measured on the shared 2-core machine (load 5, a CI run beside it): the shared budget books
slots 0.2575 s apart and no 5 sends within 1.03 s, yet requests reached the sandbox bunched
(two 6 ms apart; five within 0.975 s): a request leaves its process up to ~0.25 s after
its slot, beyond the budget's 3 % margin (30 ms a second). Served from a thread of the test
process the sandbox refused a request in 3 of 6 runs; from its own process in 1 of 10. The
budget's hold rule (a call holds the key's second until its answer is in) ended that: 0
throttling answers in the 5 runs since that finished (2 more timed out, at load 19 and 27).
"""

from __future__ import annotations

import itertools
import signal
import statistics
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ctctsync.config import WarehouseConfig
from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.plane import WORKER_DIED, ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.process import SandboxProcess
from ctctsync.sandbox.testing import SMALL_SPEC
from e2e.sync_truth import assert_matches_truth

from .fleet_helpers import (
    FINISHED,
    all_runs,
    fleet_plane,
    start_worker,
    stop_workers,
    wait_runs,
    worker_logs,
)

pytestmark = pytest.mark.postgres

QPS = 4
"""The sandbox's per-key limit, and the installation's (CC's ordinary application)."""
INTEGRATIONS = 30
WORKERS = 3
CONCURRENCY = 2
"""Runs per worker process, as test_fleet."""
Selection = dict[str, list[str] | None]
"""Tables, each with its columns (None: all)."""
CHEAP: Selection = {"contact_lists": None, "account_info": None}
"""One page each on the small account: a sync of a few calls."""
VICTIM_TABLES = ("contact_lists", "contacts")
"""The killed run's integration also reads contacts (260 rows): the kill follows the answer
of its contacts page, while the run still has that table to load."""


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    sb = SandboxProcess(tmp_path / "sandbox.log", SMALL_SPEC, QPS)
    try:
        yield sb
    finally:
        sb.stop()


def _connect(
    plane: ControlPlane,
    sandbox: SandboxProcess,
    user: User,
    name: str,
    tables: Selection,
) -> datetime:
    """A v2 integration of the sandbox's account (every one on the same application key),
    due at once; returns when it became due. The credentials are not checked here: every
    request the sandbox gets is then the fleet's."""
    with plane.session() as db:
        integ = svc.create_integration(
            db,
            user,
            IntegrationCreate(
                name=name, api_version="v2", history_start=date(2000, 1, 1), tables=tables
            ),
        )
        svc.set_manual_credentials(
            db, integ, sandbox.api_key, sandbox.access_token, check_access=False
        )
        db.refresh(integ)
        assert integ.next_run_at is not None
        return integ.next_run_at


def _pid(run: Run) -> int:
    """The process that ran ``run`` (its worker id is ``host:pid:job-N``)."""
    assert run.worker_id is not None
    return int(run.worker_id.split(":")[1])


def _never_two_at_once(runs: list[Run]) -> None:
    spans: dict[int, list[tuple[datetime, datetime]]] = {}
    for run in runs:
        assert run.started_at is not None and run.finished_at is not None, run.status
        spans.setdefault(run.integration_id, []).append((run.started_at, run.finished_at))
    for integration, own in spans.items():
        own.sort()
        overlaps = [(a, b) for a, b in itertools.pairwise(own) if a[1] > b[0]]
        assert not overlaps, f"integration {integration} ran twice at once: {overlaps}"


def _assert_paced(sandbox: SandboxProcess) -> dict[str, int]:
    """No throttling answer: the sandbox refused none of the key's requests, so none was
    the key's fifth within its 0.98 s window (v2's over-QPS answer is a 403)."""
    counts = sandbox.key_counts()
    assert counts.get("403", 0) == 0 and counts.get("429", 0) == 0, counts
    return counts


@pytest.mark.timeout(240)
def test_three_workers_thirty_integrations_one_key_then_a_killed_worker(
    sandbox_process: SandboxProcess,
    pg_url: str,
    pg_dsn: str,
    warehouse_dataset: str,
    tmp_path: Path,
) -> None:
    sandbox = sandbox_process
    plane, user = fleet_plane(
        tmp_path,
        pg_url,
        sandbox.base_url,
        pg_dsn,
        warehouse_dataset,
        cc_qps_limit=QPS,
        # A killed worker's run is swept after 5 s without a beat; 1 s beats leave a live
        # worker on a busy 2-core machine four chances first.
        heartbeat_seconds=1,
        stale_after_seconds=5,
    )
    plane.start()  # the web process: writes the store, runs nothing
    workers = [
        start_worker(plane.settings, tmp_path, f"worker{i}", qps_limit=QPS, concurrency=CONCURRENCY)
        for i in range(WORKERS)
    ]
    by_pid = {w.pid: w for w in workers}
    try:
        # The first load creates dlt's shared tables of the dataset; concurrent first loads
        # race on them (a warehouse limit, not the fleet's: see test_fleet), so "s00" goes
        # first and alone.
        due = {"s00": _connect(plane, sandbox, user, "s00", CHEAP)}
        wait_runs(plane, lambda rs: len(rs) == 1 and rs[0].status in FINISHED, "the first run", 60)
        busy_from, calls_before = time.monotonic(), sandbox.key_counts()["total"]
        for i in range(1, INTEGRATIONS):
            due[f"s{i:02}"] = _connect(plane, sandbox, user, f"s{i:02}", CHEAP)
        runs = wait_runs(
            plane,
            lambda rs: len(rs) == INTEGRATIONS and all(r.status in FINISHED for r in rs),
            f"{INTEGRATIONS} finished runs",
            150,
        )
        busy_until = time.monotonic()
        assert [r.status for r in runs] == ["succeeded"] * INTEGRATIONS, [
            r.error for r in runs if r.status != "succeeded"
        ]
        after_busy = sandbox.key_counts()
        busy_calls = after_busy["total"] - calls_before

        # Then a worker dies (SIGKILL) in the middle of a run.
        latency = sandbox.add_latency(300)  # a run of seconds
        with plane.session() as db:
            names = {i.id: i.name for i in db.scalars(sa.select(Integration))}
        victim_due = _connect(plane, sandbox, user, "victim", dict.fromkeys(VICTIM_TABLES, None))
        running = wait_runs(
            plane,
            lambda rs: any(r.status == "running" for r in rs[INTEGRATIONS:]),
            "the victim's run to start",
            60,
        )[INTEGRATIONS]
        started = time.monotonic()
        # mid-run: a contacts page was answered, so the run has loaded and read part way
        deadline = started + 30
        while sandbox.count("GET /v2/contacts") == 0:
            assert time.monotonic() < deadline, "the victim's run never read contacts"
            assert all_runs(plane)[INTEGRATIONS].status == "running"
            time.sleep(0.05)
        doomed = by_pid[_pid(running)]
        doomed.kill()  # no SIGTERM: its run stays `running`, its job `doing`
        doomed.wait(10)
        killed_at = time.monotonic()
        sandbox.remove_fault(latency)
        victim_runs = wait_runs(
            plane,
            lambda rs: len(rs) == INTEGRATIONS + 2 and rs[-1].status in FINISHED,
            "the killed run's integration to run again elsewhere",
            60,
        )[INTEGRATIONS:]
        recovered_in = time.monotonic() - killed_at
    finally:
        codes = dict(zip(by_pid, stop_workers(workers), strict=True))
        plane.close()
    logs = worker_logs(tmp_path, [f"worker{i}" for i in range(WORKERS)])
    assert [r.status for r in victim_runs] == ["failed", "succeeded"], logs
    assert victim_runs[0].error == WORKER_DIED
    assert _pid(victim_runs[1]) != doomed.pid
    assert codes[doomed.pid] == -signal.SIGKILL
    assert all(code == 0 for pid, code in codes.items() if pid != doomed.pid), (codes, logs)
    _never_two_at_once([*runs, *victim_runs])
    wcfg = WarehouseConfig(
        destination="postgres",
        credentials=SecretStr(pg_dsn),
        dataset=warehouse_dataset,
    )
    for table in VICTIM_TABLES:
        # the truth over HTTP: all assert_matches_truth reads of a Sandbox is truth(table)
        assert_matches_truth(cast(Sandbox, sandbox), wcfg, table, integration="victim")
    print(f"\nthe key's answers after the 30 runs: {after_busy}")
    counts = _assert_paced(sandbox)

    assert running.started_at is not None
    victim_start = (running.started_at - victim_due).total_seconds()
    victim_reads = sandbox.count("GET /v2/contacts")

    # The figures (printed, not asserted: they depend on the machine).
    window = busy_until - busy_from
    scheduled = runs[1:]  # the 29 that ran together
    per_worker: dict[int, int] = {}
    for run in scheduled:
        per_worker[_pid(run)] = per_worker.get(_pid(run), 0) + 1
    latencies = sorted(
        (r.started_at - due[names[r.integration_id]]).total_seconds()
        for r in scheduled
        if r.started_at is not None
    )
    calls = [r.api_calls for r in runs]
    print(
        f"\n{len(scheduled)} runs on {WORKERS} workers x {CONCURRENCY} in {window:.1f} s;"
        f" runs/min per worker: "
        + ", ".join(f"{n / window * 60:.1f}" for n in sorted(per_worker.values(), reverse=True))
        + f"\ndue-to-start latency: median {statistics.median(latencies):.1f} s,"
        f" p90 {latencies[int(0.9 * (len(latencies) - 1))]:.1f} s, max {latencies[-1]:.1f} s"
        f"\nAPI calls per run: {min(calls)}-{max(calls)}; {busy_calls} requests while busy:"
        f" {busy_calls / window:.2f}/s = {busy_calls / window / QPS:.0%} of {QPS}/s;"
        f" the key's answers over the whole test: {counts}"
        f"\nkilled worker's run done elsewhere {recovered_in:.1f} s after the kill"
        f"; the victim's runs read {victim_reads} contacts pages"
        f" (its first run started {victim_start:.1f} s after it was due)"
    )
