"""The warehouse as dlt sees it: a destination built from ``WarehouseConfig``, and a SQL
client for the few statements ctctsync runs itself (counts, reads, drops).

Every dlt setting ctctsync depends on is passed here explicitly, never through dlt's
environment-variable/config-file injection, so a stray ``.dlt/config.toml`` cannot change
how a table is replaced.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.utils import get_resolved_traces
from dlt.common.destination import Destination
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ctctsync.config import WarehouseConfig
from ctctsync.db import make_private_dirs
from ctctsync.destinations import capabilities_of

# dlt phones home by default; a connector that promises to keep account data private must
# not (set before any pipeline runs; an explicit user setting still wins).
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

REPLACE_STRATEGY = "insert-from-staging"
"""Full tables load into a staging table and are copied over in one transaction: a reader
never sees an empty or half-loaded table (dlt docs, general-usage/full-loading)."""


class WarehouseError(Exception):
    """The warehouse cannot be reached or used; the message says what to fix."""


class _ArrowHintNoise(logging.Filter):
    """dlt warns on every page that our JSON columns travel as Arrow strings: that is by
    design (the column is declared ``json``), so the warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


_dlt_logger = logging.getLogger("dlt")
if not any(isinstance(f, _ArrowHintNoise) for f in _dlt_logger.filters):
    _dlt_logger.addFilter(_ArrowHintNoise())


def make_destination(wcfg: WarehouseConfig) -> Destination[Any, Any]:
    """A dlt destination for ``wcfg`` with ctctsync's settings (atomic replace)."""
    build = _BUILDERS.get(wcfg.destination, _by_reference)
    return build(wcfg)


def _duckdb(wcfg: WarehouseConfig) -> Destination[Any, Any]:
    path = Path(wcfg.path).expanduser()
    make_private_dirs(path.parent)  # 0700; the file is created 0600 (Loader's private_umask)
    # DuckDB otherwise takes up to 80% of RAM for its buffers: a sync's memory must stay
    # bounded whatever the account size (it spills to disk past the limit)
    creds = DuckDbCredentials(str(path), global_config={"memory_limit": wcfg.duckdb_memory_limit})
    return dlt.destinations.duckdb(creds, replace_strategy=REPLACE_STRATEGY)


def _by_reference(wcfg: WarehouseConfig) -> Destination[Any, Any]:
    """Any destination dlt knows by name, reached with the configured connection string."""
    name = wcfg.destination
    credentials = wcfg.credentials.get_secret_value() if wcfg.credentials else None
    if credentials is None and capabilities_of(name).needs_credentials:
        raise WarehouseError(
            f"destination {name!r} needs credentials (warehouse.credentials or "
            "CTCTSYNC_WAREHOUSE_CREDENTIALS), e.g. postgresql://user:password@host:5432/db"
        )
    try:
        dest = Destination.from_reference(
            name,
            credentials=_explicit_password(credentials) if credentials is not None else None,
            replace_strategy=REPLACE_STRATEGY,
        )
    except Exception as exc:
        raise WarehouseError(
            f"{name!r} is not a destination dlt knows (or its extra is not installed): "
            f"{type(exc).__name__}"
        ) from None
    if dest is None:
        raise WarehouseError(f"{name!r} is not a destination dlt knows")
    return dest


_BUILDERS: dict[str, Callable[[WarehouseConfig], Destination[Any, Any]]] = {"duckdb": _duckdb}
"""Destinations that need more than dlt's defaults; any other is built by its name."""


def _explicit_password(credentials: str) -> str:
    """``scheme://user@host/db`` -> ``scheme://user:@host/db``.

    dlt treats a connection string without a password as incomplete configuration, but a
    server with trust or peer authentication (a local PostgreSQL) needs none. Credentials
    that are not a URL (a service-account JSON, say) pass unchanged.
    """
    if "://" not in credentials:
        return credentials
    try:
        url = make_url(credentials)
    except (ArgumentError, ValueError):  # not a URL, or a port that is not a number
        return credentials
    if url.username is None or url.password is not None:
        return credentials
    return url.set(password="").render_as_string(hide_password=False)


_WORKDIR_PREFIX = "ctctsync-dlt-"
STALE_WORKDIR_SECONDS = 24 * 3600
"""A scratch folder this old was left by a killed process (no run lasts a day)."""


def _sweep_stale_workdirs() -> None:
    # a SIGKILLed sync cannot delete its scratch folder; the next one does
    cutoff = time.time() - STALE_WORKDIR_SECONDS
    for path in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        try:
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


@contextmanager
def scratch_pipeline(wcfg: WarehouseConfig, name: str) -> Iterator[dlt.Pipeline]:
    """A dlt pipeline in a throw-away working folder.

    ctctsync keeps no dlt working state between runs: the bookmarks live in the state store,
    the table schemas in the warehouse. A fresh folder per run means a crash never leaves a
    half-written load package behind that a later run would have to finish or discard.
    """
    _sweep_stale_workdirs()
    workdir = tempfile.mkdtemp(prefix=_WORKDIR_PREFIX)
    try:
        pipeline = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=workdir,
            destination=make_destination(wcfg),
            dataset_name=wcfg.dataset,
        )
        # the state store, not dlt's pipeline state, decides where a table resumes
        pipeline.config.restore_from_destination = False
        yield pipeline
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        # dlt logs every configuration lookup of this thread, for ever: each entry holds the
        # resolved configuration (the warehouse's credentials) and the traceback of a lookup
        # that failed over to a default, hence the frames of the run (its secrets). Forget it.
        get_resolved_traces().clear()
