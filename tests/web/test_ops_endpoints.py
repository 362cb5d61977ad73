"""/healthz, /readyz and /metrics over real HTTP against the real app (SQLite and PostgreSQL).

Runs are made through the services and the plane's claim, then finished as a worker
records them; /metrics must report exactly what the store then holds, and no answer may
carry a secret of the test (API keys, access tokens, the metrics token, the session secret).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ctctsync.control import services as svc
from ctctsync.control.models import RUN_STATUSES, Integration, Run, User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.control.services.quota import key_of
from ctctsync.control.settings import ControlSettings
from ctctsync.web import create_app
from web.helpers import WebServer, bind_loopback, create_admin

SESSION_SECRET = "test-session-secret-" + "x" * 20
METRICS_TOKEN = "metrics-token-" + "q7Zr" * 8
CLOSED_PORT = "http://127.0.0.1:9"
"""Where CC is said to be: nothing listens there."""
UNREACHABLE_STORE = "postgresql+psycopg://ctctsync:hunter2-store-password@127.0.0.1:9/control"
"""A PostgreSQL store nothing answers for (port 9 is closed: refused at once)."""
STORE_PASSWORD = "hunter2-store-password"


@pytest.fixture
def pg_schema_url(pg_dsn: str) -> Iterator[str]:
    """A store URL whose search_path is a fresh PostgreSQL schema (dropped afterwards)."""
    schema = f"ops_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(pg_dsn).set(drivername="postgresql+psycopg")
    try:
        yield f"{url.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._ready.set()


@contextmanager
def served_plane(data_dir: Path, database_url: str) -> Iterator[tuple[str, ControlPlane]]:
    """The app over a plane that does NOT migrate its store (``serve`` would, or refuse to
    start): what a probe sees while the store is missing or behind."""
    sock = bind_loopback()
    settings = ControlSettings(
        data_dir=data_dir, database_url=database_url, secret_key=SESSION_SECRET, workers=0
    )
    plane = ControlPlane(settings, migrate=False)
    config = uvicorn.Config(
        create_app(settings, plane), log_level="warning", access_log=False, lifespan="on",
        http="h11", ws="none", timeout_graceful_shutdown=2,
    )
    ready = threading.Event()
    server = _Server(config, ready)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "the app did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", plane
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        plane.close()


def no_secret_in(response: httpx.Response, *secrets: str) -> None:
    for secret in (SESSION_SECRET, METRICS_TOKEN, STORE_PASSWORD, *secrets):
        assert secret not in response.text
        assert secret not in str(response.headers)
    # Outside sessions: a probe is never handed a cookie.
    assert "set-cookie" not in response.headers


# ----------------------------------------------------------------------------- probes


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_healthz_and_readyz_on_a_migrated_store(
    store: str, web_factory: Callable[..., WebServer], request: pytest.FixtureRequest
) -> None:
    extra = {} if store == "sqlite" else {"database_url": request.getfixturevalue("pg_schema_url")}
    srv = web_factory(workers=0, **extra)
    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        live = http.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        for r in (live, ready):
            no_secret_in(r)
        # Load balancers often probe with HEAD
        assert http.head("/healthz").status_code == 200
        assert http.head("/readyz").status_code == 200


def test_readyz_503_when_the_store_does_not_answer(tmp_path: Path) -> None:
    with served_plane(tmp_path, UNREACHABLE_STORE) as (base_url, _plane), httpx.Client(
        base_url=base_url, timeout=10
    ) as http:
        # Liveness does not depend on the store: restarting the process would not help.
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not ready",
            "reason": "the control store does not answer",
        }
        scrape = http.get("/metrics")
        assert scrape.status_code == 503
        assert scrape.text == "the control store does not answer\n"
        for r in (ready, scrape):
            no_secret_in(r)
            assert "127.0.0.1" not in r.text  # the driver's message stays in the log


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_readyz_503_on_a_store_not_migrated(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'empty.db'}"
        if store == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    with served_plane(tmp_path, url) as (base_url, _plane), httpx.Client(
        base_url=base_url, timeout=10
    ) as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == (
            "the control store's schema is not at this version's head revision (migrate it)"
        )
        no_secret_in(ready)


def test_readyz_503_when_a_plane_thread_has_ended(
    web_factory: Callable[..., WebServer],
) -> None:
    srv = web_factory(workers=1, start_plane=True)
    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        assert http.get("/readyz").status_code == 200
        # End the threads the way stop() does, but leave them listed: what a crashed
        # scheduler or worker looks like to the plane.
        srv.plane._stop.set()
        srv.plane._wake.set()
        srv.plane._notify_wake.set()
        for thread in srv.plane._threads:
            thread.join(30)
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == (
            "thread(s) stopped: ctctsync-notifier, ctctsync-scheduler, ctctsync-worker-1"
        )
        srv.plane.stop()  # stopped on purpose (shutdown): no thread is missed
        assert http.get("/readyz").status_code == 200


# ----------------------------------------------------------------------------- metrics


def scrape(http: httpx.Client, **kw: object) -> dict[str, list[Sample]]:
    """GET /metrics, parsed by prometheus_client's own parser: family name -> samples."""
    r = http.get("/metrics", **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def value(samples: list[Sample], name: str | None = None, **labels: str) -> float:
    found = [
        s.value for s in samples
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def finish_run(plane: ControlPlane, run_id: str, status: str, rows: dict[str, int], calls: int,
               ran: timedelta) -> None:
    """Record a claimed run's outcome as the worker does (status, rows, calls, end)."""
    with plane.session() as db:
        run = db.get(Run, run_id)
        assert run is not None and run.started_at is not None
        run.transition(status)  # type: ignore[arg-type]
        run.rows, run.api_calls = rows, calls
        run.table_calls = dict.fromkeys(rows, 1)
        run.finished_at = run.started_at + ran
        db.commit()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_metrics_report_what_the_store_holds(
    store: str, web_factory: Callable[..., WebServer], request: pytest.FixtureRequest
) -> None:
    extra = {} if store == "sqlite" else {"database_url": request.getfixturevalue("pg_schema_url")}
    srv = web_factory(workers=0, cc_base_url=CLOSED_PORT, **extra)
    plane = srv.plane
    create_admin(plane)
    secrets = ["v2-key-acme-Secret1", "v2-token-acme-Secret2", "v2-key-zeta-Secret3",
               "v2-token-zeta-Secret4"]
    with plane.session() as db:
        admin = db.scalars(sa.select(User)).one()
        acme = svc.create_integration(db, admin, IntegrationCreate(name="acme", api_version="v2"))
        svc.set_manual_credentials(db, acme, secrets[0], secrets[1], check_access=False)
        zeta = svc.create_integration(db, admin, IntegrationCreate(name="zeta", api_version="v2"))
        svc.set_manual_credentials(db, zeta, secrets[2], secrets[3], check_access=False)
        acme_id, zeta_id = acme.id, zeta.id
        refs = {i.name: key_of(db, i) for i in (acme, zeta)}

    def start(integration_id: int) -> str:
        with plane.session() as db:
            integ = db.get(Integration, integration_id)
            assert integ is not None
            run_id = svc.run_now(db, integ).id
        assert plane.claim_next("test-worker", run_id) == run_id
        return run_id

    # acme: one run succeeded, one failed, then one queued; zeta: one running (4 calls so far)
    finish_run(plane, start(acme_id), "succeeded", {"contacts": 7, "contact_lists": 2}, 5,
               timedelta(seconds=42))
    # a table the registry no longer has gets no series (labels stay bounded by the registry)
    finish_run(plane, start(acme_id), "failed", {"contacts": 1, "gone_table": 99}, 3,
               timedelta(seconds=3))
    running = start(zeta_id)
    with plane.session() as db:
        run = db.get(Run, running)
        assert run is not None
        run.api_calls = 4
        db.commit()
        acme_integ = db.get(Integration, acme_id)
        assert acme_integ is not None
        svc.run_now(db, acme_integ)

    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        families = scrape(http)
        raw = http.get("/metrics")
    no_secret_in(raw, *secrets)

    # What the store holds, read with plain SQL
    with plane.engine.connect() as conn:
        by_status = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY status")).all()
        )
        calls = conn.execute(sa.text(
            "SELECT coalesce(sum(api_calls), 0) FROM runs WHERE finished_at IS NOT NULL"
        )).scalar_one()
    assert by_status == {"succeeded": 1, "failed": 1, "running": 1, "queued": 1}
    for status in RUN_STATUSES:
        assert value(families["ctctsync_runs"], status=status) == by_status.get(status, 0)
    assert value(families["ctctsync_queue_depth"], status="queued") == 1
    assert value(families["ctctsync_queue_depth"], status="deferred") == 0
    assert value(families["ctctsync_queue_oldest_seconds"]) >= 0

    finished = families["ctctsync_runs_finished_recent"]
    assert value(finished, status="succeeded", trigger="manual") == 1
    assert value(finished, status="failed", trigger="manual") == 1
    assert sum(s.value for s in finished) == 2  # every other (status, trigger) is 0
    rows = families["ctctsync_rows_loaded_recent"]
    assert {s.labels["table"]: s.value for s in rows} == {"contacts": 8, "contact_lists": 2}
    assert value(families["ctctsync_api_calls_recent"]) == calls == 8

    # Gauge histograms (a sliding window): buckets, then _gcount and _gsum as gauges
    assert value(families["ctctsync_run_queue_wait_seconds_gcount"]) == 3  # three started
    wait = families["ctctsync_run_queue_wait_seconds"]
    assert value(wait, le="+Inf") == 3
    duration = families["ctctsync_run_duration_seconds"]
    assert value(families["ctctsync_run_duration_seconds_gcount"]) == 2  # two finished
    assert value(families["ctctsync_run_duration_seconds_gsum"]) == 45
    assert value(duration, le="1") == 0
    assert value(duration, le="5") == 1
    assert value(duration, le="60") == 2
    assert value(duration, le="+Inf") == 2

    # Quota per key: today's calls (finished runs and the running run's progress)
    used = families["ctctsync_api_quota_used_today"]
    limit = families["ctctsync_api_quota_daily_limit"]
    for name, expected in (("acme", 8), ("zeta", 4)):
        ref = refs[name]
        assert ref is not None and ref.label.startswith("v2 key #")
        assert value(used, key=ref.fingerprint, label=ref.label, api_version="v2") == expected
        assert value(limit, label=ref.label) == srv.settings.cc_daily_limit
    assert value(families["ctctsync_api_keys_omitted"]) == 0


def test_metrics_token_is_required_when_set(web_factory: Callable[..., WebServer]) -> None:
    srv = web_factory(workers=0, metrics_token=METRICS_TOKEN)
    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"},
                        {"Authorization": f"Basic {METRICS_TOKEN}"}):
            refused = http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            no_secret_in(refused)
        families = scrape(http, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert value(families["ctctsync_runs"], status="queued") == 0
        # The probes stay open: they say up or down, nothing else.
        assert http.get("/readyz").status_code == 200


def test_metrics_without_a_token_are_open(web_factory: Callable[..., WebServer]) -> None:
    srv = web_factory(workers=0)
    with httpx.Client(base_url=srv.base_url, timeout=10) as http:
        families = scrape(http)
    assert families["ctctsync_api_quota_used_today"] == []  # no integration, no key


def test_a_scrape_does_not_wait_for_a_writer(web: WebServer) -> None:
    """On SQLite a scrape reads in a plain transaction: a worker holding the write lock
    (the plane's sessions take it up front) neither delays nor fails it."""
    with web.plane.session() as db, httpx.Client(base_url=web.base_url, timeout=10) as http:
        db.execute(sa.text("UPDATE runs SET status = status"))  # BEGIN IMMEDIATE: locked
        families = scrape(http)
        assert value(families["ctctsync_runs"], status="running") == 0
        assert http.get("/readyz").status_code == 200
        db.rollback()
