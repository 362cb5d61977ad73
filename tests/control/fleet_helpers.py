"""What the fleet's tests share: real ``ctctsync worker`` processes on a test's PostgreSQL
store, and polling the store for outcomes (never a sleep ordering a race)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.fleet import job_conninfo
from ctctsync.control.models import Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import WarehouseIn
from ctctsync.control.settings import ControlSettings

from .conftest import PASSWORD, make_settings

FINISHED = ("succeeded", "failed", "partial", "cancelled")
"""The run statuses a worker leaves behind."""


def fleet_plane(
    tmp_path: Path,
    store_url: str,
    cc_base_url: str,
    warehouse_dsn: str,
    dataset: str,
    **overrides: object,
) -> tuple[ControlPlane, User]:
    """The web process of a fleet (``CTCTSYNC_QUEUE=procrastinate`` on ``store_url``: it
    enqueues, the workers run) with its first admin and a PostgreSQL warehouse saved.

    The workers tick every second; ``overrides`` are more settings (heartbeats, pacing).
    """
    values: dict[str, object] = {
        "database_url": store_url,
        "queue": "procrastinate",
        "cc_base_url": cc_base_url,
        "cc_qps_limit": None,
        "scheduler_interval_seconds": 1,
    }
    values.update(overrides)
    plane = ControlPlane(make_settings(tmp_path, **values))
    with plane.session() as db:
        user = svc.ensure_first_admin(db, "ops@example.com", PASSWORD)
        assert user is not None
        svc.save_warehouse(
            db, WarehouseIn(destination="postgres", credentials=warehouse_dsn, dataset=dataset)
        )
    return plane, user


def start_worker(
    settings: ControlSettings,
    tmp_path: Path,
    name: str,
    *,
    qps_limit: float | None = None,
    concurrency: int = 2,
) -> subprocess.Popen[bytes]:
    """A ``ctctsync worker`` on ``settings``' store, logging to ``tmp_path/<name>.log``.

    Only the settings a worker reads are passed (nothing of the test's own environment):
    the store, the encryption key's folder (so it can read the credentials the test
    stored), the sandbox, the tick and the heartbeats. ``qps_limit`` None: no pacing (1000
    requests/s), for tests about the fleet rather than the key's budget.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env.update(
        CTCTSYNC_DATABASE_URL=settings.resolved_database_url,
        CTCTSYNC_QUEUE="procrastinate",
        CTCTSYNC_DATA_DIR=str(settings.data_dir),
        CTCTSYNC_CC_BASE_URL=settings.cc_base_url,
        CTCTSYNC_CC_QPS_LIMIT=str(qps_limit if qps_limit is not None else 1000),
        CTCTSYNC_SCHEDULER_INTERVAL_SECONDS=str(settings.scheduler_interval_seconds),
        CTCTSYNC_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        CTCTSYNC_STALE_AFTER_SECONDS=str(settings.stale_after_seconds),
    )
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "ctctsync", "worker", "--concurrency", str(concurrency)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_workers(workers: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> list[int]:
    """SIGTERM every worker still alive, then wait for each; returns the exit codes in order
    (a worker killed earlier keeps its ``-SIGKILL``)."""
    procs = list(workers)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    return [proc.wait(timeout) for proc in procs]


def worker_logs(tmp_path: Path, names: Iterable[str]) -> str:
    """The workers' logs, each under its name (for assertion messages)."""
    return "\n".join(f"--- {n}\n" + (tmp_path / f"{n}.log").read_text() for n in names)


def all_runs(plane: ControlPlane) -> list[Run]:
    """Every run of the store, oldest first."""
    with plane.session() as db:
        return list(db.scalars(sa.select(Run).order_by(Run.created_at, Run.id)))


def wait_runs(
    plane: ControlPlane,
    done: Callable[[list[Run]], bool],
    what: str,
    timeout: float = 40.0,
) -> list[Run]:
    """Poll the store until ``done(runs)``; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = all_runs(plane)
        if done(found):
            return found
        if time.monotonic() > deadline:
            states = sorted((r.status, r.worker_id or "-") for r in found)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}: {states}")
        time.sleep(0.1)


def jobs_by_status(store_url: str, task_name: str) -> dict[str, int]:
    """How many procrastinate jobs of ``task_name`` the store holds, per status."""
    with psycopg.connect(job_conninfo(store_url)) as conn:
        rows = conn.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs WHERE task_name = %s GROUP BY 1",
            (task_name,),
        ).fetchall()
    return {status: int(count) for status, count in rows}


__all__ = [
    "FINISHED",
    "all_runs",
    "fleet_plane",
    "jobs_by_status",
    "start_worker",
    "stop_workers",
    "wait_runs",
    "worker_logs",
]
