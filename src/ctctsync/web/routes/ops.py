"""Operations endpoints: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``.

They serve load balancers, orchestrators and Prometheus, not people: no sign-in, no session,
no CSRF token, and answers without HTML, stack traces or secrets. The router reads only
``app.state.control_plane``, so any process that holds a plane (``serve``, a worker) can
mount it.

- ``/healthz`` answers 200 from the event loop without touching the store: the process is
  alive. A store outage must not make an orchestrator restart every process.
- ``/readyz`` answers 200 when the store answers within :data:`READY_TIMEOUT_SECONDS`, its
  schema is at the head revision this version ships, and the plane's scheduler and worker
  threads (when this process started them) are alive; else 503 with a one-line reason.
- ``/metrics`` renders ``services.metrics.ops_figures`` in Prometheus' text format, read from
  the store at each scrape (a custom collector: every process reports the same figures).
  With ``CTCTSYNC_METRICS_TOKEN`` set it needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator
from typing import Final

from fastapi import APIRouter, Request
from prometheus_client.core import (
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ctctsync.control.context import attach
from ctctsync.control.database import current_revisions, head_revisions
from ctctsync.control.plane import ControlPlane
from ctctsync.control.services import metrics
from ctctsync.web.deps import get_plane

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

READY_TIMEOUT_SECONDS: Final = 5.0
"""A store that has not answered by then is reported not ready (the check may still run on:
a thread cannot be interrupted, but the probe gets its answer)."""
TEXT_FORMAT: Final = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus' classic text format: every metric and label name here is plain ASCII, so the
body is the same in format 1.0.0 (the library's latest), and every scraper reads 0.0.4."""
NO_STORE: Final = "the control store does not answer"
"""The reason given when the store cannot be reached (the log has the driver's message)."""


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> Response:
    """Liveness: answered on the event loop, so a 200 means the process serves requests."""
    return JSONResponse({"status": "ok"})


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> Response:
    """Readiness: the store answers, its schema is at head, the plane's threads run."""
    plane = get_plane(request)
    try:
        problem = await asyncio.wait_for(
            run_in_threadpool(_store_problem, plane), READY_TIMEOUT_SECONDS
        )
    except TimeoutError:
        problem = f"{NO_STORE} within {READY_TIMEOUT_SECONDS:g} s"
    problem = problem or _thread_problem(plane)
    if problem is not None:
        return JSONResponse({"status": "not ready", "reason": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


def _store_problem(plane: ControlPlane) -> str | None:
    """Why the store is not usable, in one line without detail, or None."""
    try:
        current = current_revisions(plane.engine)
    except (SQLAlchemyError, OSError) as exc:
        # The driver's message names the host and the SQL; it goes to the log, not the probe.
        log.warning("readiness: %s: %s", NO_STORE, exc)
        return NO_STORE
    if not head_revisions() <= current:
        return "the control store's schema is not at this version's head revision (migrate it)"
    return None


def _thread_problem(plane: ControlPlane) -> str | None:
    """Which of the plane's threads has ended while the plane runs, or None."""
    dead = plane.dead_threads()
    if dead:
        return f"thread(s) stopped: {', '.join(sorted(dead))}"
    return None


@router.get("/metrics")
def metrics_page(request: Request) -> Response:
    """Prometheus text format (0.0.4) of the store's figures (see the module's docstring)."""
    plane = get_plane(request)
    token = plane.settings.metrics_token
    if token is not None and not _bearer_matches(request, token.get_secret_value()):
        return PlainTextResponse(
            "a metrics token is required\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        body = generate_latest(StoreCollector(plane))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: %s: %s", NO_STORE, exc)
        return PlainTextResponse(f"{NO_STORE}\n", status_code=503)
    return Response(body, media_type=TEXT_FORMAT)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant-time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class StoreCollector(Collector):
    """Metric families of ``services.metrics.ops_figures``, read at each collection."""

    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane

    def collect(self) -> Iterator[Metric]:
        """Read the store once and yield every family."""
        # Not plane.session(): its transactions take SQLite's write lock up front, which a
        # scrape (reads only) must neither wait for nor hold while workers record progress.
        with Session(self._plane.engine) as db:
            figures = metrics.ops_figures(attach(db, self._plane.context))
        window = f"in the last {metrics.WINDOW.total_seconds() / 3600:g} hours"

        runs = GaugeMetricFamily(
            "ctctsync_runs", "Runs in the control store, by status.", labels=["status"]
        )
        for status, count in figures.runs_by_status.items():
            runs.add_metric([status], count)
        yield runs

        queue = GaugeMetricFamily(
            "ctctsync_queue_depth",
            "Runs waiting to start: queued, or deferred until the daily API quota resets.",
            labels=["status"],
        )
        for status, count in metrics.waiting_runs(figures).items():
            queue.add_metric([status], count)
        yield queue
        yield GaugeMetricFamily(
            "ctctsync_queue_oldest_seconds",
            "Age of the oldest queued run (0 when the queue is empty).",
            value=figures.oldest_queued_seconds,
        )

        finished = GaugeMetricFamily(
            "ctctsync_runs_finished_recent",
            f"Runs finished {window}, by status and trigger.",
            labels=["status", "trigger"],
        )
        for (status, trigger), count in figures.finished_recent.items():
            finished.add_metric([status, trigger], count)
        yield finished

        rows = GaugeMetricFamily(
            "ctctsync_rows_loaded_recent",
            f"Rows loaded by runs finished {window}, by table.",
            labels=["table"],
        )
        for table, count in sorted(figures.rows_recent.items()):
            rows.add_metric([table], count)
        yield rows
        yield GaugeMetricFamily(
            "ctctsync_api_calls_recent",
            f"Constant Contact API calls of runs finished {window}.",
            value=figures.api_calls_recent,
        )

        yield _histogram(
            "ctctsync_run_queue_wait_seconds",
            f"Queued to started, of runs started {window} (deferral included).",
            figures.queue_wait,
        )
        yield _histogram(
            "ctctsync_run_duration_seconds",
            f"Started to finished, of runs finished {window}.",
            figures.duration,
        )

        yield from _key_families(figures)


def _histogram(name: str, doc: str, dist: metrics.Distribution) -> Metric:
    # A histogram of a sliding window can go down: a gauge histogram, not a histogram
    # (written with the histogram type in the 0.0.4 text format).
    family = GaugeHistogramMetricFamily(name, doc)
    family.add_metric(
        [], [(_bound(b), n) for b, n in dist.buckets], gsum_value=dist.total
    )
    return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


def _key_families(figures: metrics.OpsFigures) -> Iterator[Metric]:
    labels = ["key", "label", "api_version"]
    # A gauge: it drops at 00:00 UTC, and a run's progress may be recounted when it ends.
    used = GaugeMetricFamily(
        "ctctsync_api_quota_used_today",
        "API calls counted against each key since 00:00 UTC (the quota page's 'used today').",
        labels=labels,
    )
    per_day = GaugeMetricFamily(
        "ctctsync_api_quota_daily_limit",
        "Each key's daily call limit (no series: no daily budget).",
        labels=labels,
    )
    per_second = GaugeMetricFamily(
        "ctctsync_api_quota_per_second_limit",
        "Each key's calls-per-second limit (no series: no pacing).",
        labels=labels,
    )
    for key in figures.keys:
        values = [key.fingerprint, key.label, key.api_version]
        used.add_metric(values, key.used_today)
        if key.per_day is not None:
            per_day.add_metric(values, key.per_day)
        if key.per_second is not None:
            per_second.add_metric(values, key.per_second)
    yield used
    yield per_day
    yield per_second
    yield GaugeMetricFamily(
        "ctctsync_api_keys_omitted",
        f"Keys in use beyond the {metrics.MAX_KEYS} busiest, which get no series.",
        value=figures.keys_omitted,
    )
