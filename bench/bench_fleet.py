"""Benchmark of the worker fleet (issue 11): N ``ctctsync worker`` processes on PostgreSQL +
procrastinate, many integrations sharing ONE Constant Contact application key on a sandbox
limited to 4 requests/s.

    python bench/bench_fleet.py                 # 1, 2 and 3 workers, 30 integrations
    python bench/bench_fleet.py --workers 3 --integrations 30 --concurrency 4

For each worker count: a fresh store (a PostgreSQL schema) and warehouse dataset, the
sandbox (``python -m ctctsync.sandbox``, its own process, the judge of the rate: it refuses
any request that would be a key's fifth within its second), the workers, and this process
as the web process (it writes the store; the workers' periodic tick schedules). One
integration syncs first, alone (it creates the dataset's shared tables); then
``--integrations`` more become due at the same moment, and the bench polls the store and the
sandbox's counters until all have run. It reports:

- integrations synced per hour per worker (the burst's runs / its span / workers);
- scheduling latency, due time to start (median, p95, max; also in ticks): a burst, so it is
  mostly the wait in the queue;
- the share of the key's 4 requests/s the whole fleet used, while runs were waiting in the
  queue (the goal: >= 95 %), and over the whole burst;
- throttling answers (403/429) the sandbox gave: the goal is 0.

Counts and ratios where they can be; the rates depend on the machine (the load average is
printed). Figures and commands are in docs/performance.md ("The worker fleet").
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

STORE_URL = os.environ.get(
    "CTCTSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WAREHOUSE_DSN = os.environ.get("CTCTSYNC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
QPS = 4
"""Constant Contact's requests a second per application key (the sandbox's limit)."""
POLL_SECONDS = 0.5
TABLES = "contact_tracking"
"""The default selection: the campaigns' activity, read per campaign and kind of activity, so
a run makes many small calls (the small account: ~50) for one load. Runs are then bound by
the key's 4 requests/s, as an agency's many accounts are; a selection of one-page tables
(``--tables contact_lists,account_info``: 2 calls a run) measures the workers' CPU instead."""


@dataclass
class Sample:
    """One poll: the time, the key's requests so far, and the runs by status."""

    at: float
    requests: int
    queued: int
    running: int
    finished: int


@dataclass
class Result:
    workers: int
    concurrency: int
    integrations: int
    span_s: float
    per_hour_per_worker: float
    latencies: list[float]
    share_queued: float
    share_span: float
    requests: int
    throttled: int
    failed: int
    calls_per_run: float


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Fleet:
    """One configuration's world: a fresh store schema and warehouse dataset, the sandbox,
    this process as the web process (``plane``) with an admin, and ``workers`` workers."""

    def __init__(self, workers: int, args: argparse.Namespace, work: Path) -> None:
        import psycopg

        from ctctsync.control import services as svc
        from ctctsync.control.plane import ControlPlane
        from ctctsync.control.schemas import WarehouseIn
        from ctctsync.control.settings import ControlSettings
        from ctctsync.sandbox.process import SandboxProcess
        from ctctsync.sandbox.testing import SMALL_SPEC

        self.work, self.timeout = work, args.timeout
        self.tables = args.tables.split(",")
        self.schema = f"bench_fleet_{uuid.uuid4().hex[:10]}"
        self.dataset = f"bench_fleet_wh_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(WAREHOUSE_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        store = f"{STORE_URL}?options=-csearch_path%3D{self.schema}"
        data_dir = work / f"data-{workers}"
        self.sandbox = SandboxProcess(work / f"sandbox-{workers}.log", SMALL_SPEC, QPS)
        self.plane = ControlPlane(ControlSettings(
            data_dir=data_dir, database_url=store, queue="procrastinate",
            cc_base_url=self.sandbox.base_url, cc_qps_limit=QPS,
            scheduler_interval_seconds=args.tick, heartbeat_seconds=2, stale_after_seconds=30,
        ))
        self.procs: list[subprocess.Popen[bytes]] = []
        with self.plane.session() as db:
            user = svc.ensure_first_admin(db, "bench@example.com", "correct horse battery")
            assert user is not None
            self.user_id = user.id
            svc.save_warehouse(db, WarehouseIn(destination="postgres", credentials=WAREHOUSE_DSN,
                                               dataset=self.dataset))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
        env.update(
            CTCTSYNC_DATABASE_URL=store, CTCTSYNC_QUEUE="procrastinate",
            CTCTSYNC_DATA_DIR=str(data_dir), CTCTSYNC_CC_BASE_URL=self.sandbox.base_url,
            CTCTSYNC_CC_QPS_LIMIT=str(QPS), CTCTSYNC_SCHEDULER_INTERVAL_SECONDS=str(args.tick),
            CTCTSYNC_HEARTBEAT_SECONDS="2", CTCTSYNC_STALE_AFTER_SECONDS="30",
        )
        for i in range(workers):
            log = (work / f"worker-{workers}-{i}.log").open("wb")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "ctctsync", "worker", "--concurrency",
                 str(args.concurrency)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            ))

    def connect(self, name: str) -> datetime:
        """A v2 integration on the sandbox's one key, due at once; returns its due time."""
        from ctctsync.control import services as svc
        from ctctsync.control.models import User
        from ctctsync.control.schemas import IntegrationCreate

        with self.plane.session() as db:
            user = db.get(User, self.user_id)
            assert user is not None
            integ = svc.create_integration(db, user, IntegrationCreate(
                name=name, api_version="v2", history_start=date(2000, 1, 1),
                tables=dict.fromkeys(self.tables, None)))
            svc.set_manual_credentials(db, integ, self.sandbox.api_key,
                                       self.sandbox.access_token, check_access=False)
            db.refresh(integ)
            assert integ.next_run_at is not None
            return integ.next_run_at

    def runs(self) -> list[Any]:
        """Every run, oldest first."""
        import sqlalchemy as sa

        from ctctsync.control.models import Run

        with self.plane.session() as db:
            return list(db.scalars(sa.select(Run).order_by(Run.created_at)))

    def names(self) -> dict[int, str]:
        """Integration names by id."""
        import sqlalchemy as sa

        from ctctsync.control.models import Integration

        with self.plane.session() as db:
            return {i.id: i.name for i in db.scalars(sa.select(Integration))}

    def check(self, started: float, what: str) -> None:
        """Fail when a worker exited or the configuration ran out of time."""
        if any(p.poll() is not None for p in self.procs):
            raise RuntimeError(f"a worker exited; logs in {self.work}")
        if time.monotonic() - started > self.timeout:
            raise RuntimeError(f"timed out waiting for {what}; logs in {self.work}")

    def close(self) -> None:
        import psycopg

        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(60)
        self.plane.close()
        self.sandbox.stop()
        with psycopg.connect(WAREHOUSE_DSN, autocommit=True) as conn:
            for s in (self.schema, self.dataset, f"{self.dataset}_staging"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def run_one(workers: int, args: argparse.Namespace, work: Path) -> Result:
    """One configuration: the warm-up run, then the burst, polled until all have run."""
    fleet = Fleet(workers, args, work)
    try:
        fleet.connect("warmup")  # the dataset's first load, alone
        started = time.monotonic()
        while not ((rs := fleet.runs()) and rs[0].finished_at is not None):
            fleet.check(started, "the warm-up run")
            time.sleep(POLL_SECONDS)
        due = {f"i{i:03}": fleet.connect(f"i{i:03}") for i in range(args.integrations)}
        samples: list[Sample] = []
        started = time.monotonic()
        while True:
            found = fleet.runs()
            statuses = [r.status for r in found]
            samples.append(Sample(time.monotonic(), fleet.sandbox.key_counts().get("total", 0),
                                  statuses.count("queued"), statuses.count("running"),
                                  sum(r.finished_at is not None for r in found)))
            if len(found) == len(due) + 1 and all(r.finished_at is not None for r in found):
                break
            fleet.check(started, f"{len(due)} runs")
            time.sleep(POLL_SECONDS)
        final, names = fleet.sandbox.key_counts(), fleet.names()
    finally:
        fleet.close()
    burst = found[1:]
    span = (max(r.finished_at for r in burst) - min(due.values())).total_seconds()
    # While runs wait in the queue the fleet has work for the key: the key's requests over
    # the polls that saw a queued run at both ends.
    busy_t = busy_n = 0.0
    for a, b in itertools.pairwise(samples):
        if a.queued and b.queued:
            busy_t += b.at - a.at
            busy_n += b.requests - a.requests
    requests = samples[-1].requests - samples[0].requests
    return Result(
        workers=workers,
        concurrency=args.concurrency,
        integrations=len(burst),
        span_s=span,
        per_hour_per_worker=len(burst) / span * 3600 / workers,
        latencies=[(r.started_at - due[names[r.integration_id]]).total_seconds() for r in burst],
        share_queued=busy_n / (busy_t * QPS) if busy_t else float("nan"),
        share_span=requests / (span * QPS),
        requests=requests,
        throttled=final.get("403", 0) + final.get("429", 0),
        failed=sum(r.status != "succeeded" for r in burst),
        calls_per_run=statistics.mean(r.api_calls for r in burst),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run, comma-separated")
    parser.add_argument("--integrations", type=int, default=30,
                        help="integrations due at once, all on one key")
    parser.add_argument("--concurrency", type=int, default=2, help="runs per worker at once")
    parser.add_argument("--tables", default=TABLES, help="each integration's tables (v2 names)")
    parser.add_argument("--tick", type=float, default=5.0,
                        help="CTCTSYNC_SCHEDULER_INTERVAL_SECONDS of the workers")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"bench_fleet: {args.integrations} integrations on one key at {QPS} req/s, "
          f"tables {args.tables}, concurrency {args.concurrency}, "
          f"tick {args.tick:g} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for n in counts:
            r = run_one(n, args, Path(tmp))
            results.append(r)
            lat = r.latencies
            print(
                f"\n{n} worker(s) x {r.concurrency}: {r.integrations} runs in {r.span_s:.1f} s"
                f" ({r.failed} not succeeded), {r.calls_per_run:.1f} calls a run"
                f"\n  integrations synced per hour per worker: {r.per_hour_per_worker:,.0f}"
                f"\n  due -> start latency: median {statistics.median(lat):.1f} s,"
                f" p95 {_pct(lat, 0.95):.1f} s, max {max(lat):.1f} s"
                f" (ticks of {args.tick:g} s: {statistics.median(lat) / args.tick:.1f},"
                f" {_pct(lat, 0.95) / args.tick:.1f}, {max(lat) / args.tick:.1f})"
                f"\n  share of the key's {QPS} req/s: {r.share_queued:.1%} while runs were"
                f" queued, {r.share_span:.1%} over the burst ({r.requests} requests)"
                f"\n  throttling answers: {r.throttled}"
                f"; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print("\nworkers | runs/h per worker | latency p50 / p95 / max (s) | share queued | "
          "share burst | throttled")
    for r in results:
        lat = r.latencies
        print(f"{r.workers} x {r.concurrency} | {r.per_hour_per_worker:,.0f} | "
              f"{statistics.median(lat):.1f} / {_pct(lat, 0.95):.1f} / {max(lat):.1f} | "
              f"{r.share_queued:.1%} | {r.share_span:.1%} | {r.throttled}")
    goal = all(r.share_queued >= 0.95 and r.throttled == 0 and r.failed == 0 for r in results)
    print(f"goal (>= 95 % of {QPS} req/s while queued, 0 throttled, all succeeded): "
          f"{'PASS' if goal else 'FAIL'}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
