"""The warehouse preflight: can a run load into this warehouse at all?

Checked before a run's first API call (``run_sync``) and by ``ctctsync check``, so that a
wrong host, port, user or database, an unparseable connection string, a role that cannot
create tables or a missing driver ends the run at once with one line that says what to fix,
instead of after the whole account was read.

What is checked, per destination (:data:`PROBES`, data rather than branches):

- every server destination: the connection string parses (when it is a URL), the
  destination's driver imports, and a connection opens (``SELECT 1``);
- PostgreSQL: the role can create the dataset's schema and its staging schema and a table
  in each, tried inside a transaction that is rolled back (PostgreSQL's DDL is
  transactional), so the check leaves nothing behind and works on a fresh database;
- a local DuckDB file is not opened (another process may hold it for a whole run; loads
  take turns, ``warehouse/filelock.py``) nor created: it, or its folder, must be writable.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ctctsync.config import WarehouseConfig
from ctctsync.destinations import capabilities_of
from ctctsync.errors import redact
from ctctsync.warehouse.destination import WarehouseError, scratch_pipeline

log = logging.getLogger("ctctsync.warehouse")

PREFLIGHT_PIPELINE: Final = "ctctsync_preflight"

INSTALL_HINTS: Final[dict[str, str]] = {"postgres": "pip install 'ctctsync[postgres]'"}
"""The command that installs a destination's driver (others: dlt's own extra)."""


def install_hint(destination: str) -> str:
    """The full command that installs ``destination``'s driver."""
    return INSTALL_HINTS.get(destination, f"pip install 'dlt[{destination}]'")


def describe(wcfg: WarehouseConfig) -> str:
    """Where the warehouse is, for messages: the file, or the host, port and database of the
    connection string (never its user or password)."""
    caps = capabilities_of(wcfg.destination)
    if caps.local_file:
        return f"{caps.label or wcfg.destination} file {wcfg.path}, schema {wcfg.dataset}"
    where = wcfg.destination
    text = wcfg.credentials.get_secret_value() if wcfg.credentials is not None else ""
    if "://" in text:
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            url = None
        if url is not None:
            port = f":{url.port}" if url.port else ""
            database = f"/{url.database}" if url.database else ""
            where = f"{where} at {url.host or '?'}{port}{database}"
    return f"{where}, dataset {wcfg.dataset}"


def _first_line(exc: BaseException, wcfg: WarehouseConfig) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    line = " ".join(line.split())  # drivers pad their messages ("FATAL:  role ...")
    detail = redact(line, (wcfg.credentials,))[:300]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _check_url(wcfg: WarehouseConfig) -> None:
    """A connection string that looks like a URL must parse (without echoing it)."""
    if wcfg.credentials is None:
        return
    text = wcfg.credentials.get_secret_value()
    if "://" not in text:
        return
    try:
        make_url(text)
    except (ArgumentError, ValueError) as exc:
        reason = redact(str(exc).splitlines()[0] if str(exc) else "", (wcfg.credentials,))
        raise WarehouseError(
            "the warehouse connection string (CTCTSYNC_WAREHOUSE_CREDENTIALS) is not a valid "
            f"URL ({type(exc).__name__}: {reason}); expected e.g. "
            "postgresql://user:password@host:5432/database"
        ) from None


def _check_file(wcfg: WarehouseConfig) -> str:
    """A local file can be written (or created: its nearest existing folder is writable).

    It is not opened: another process may hold it open for a whole run (the loader waits
    for it, see ``warehouse/filelock.py``), and a check must neither wait nor create it.
    """
    path = Path(wcfg.path).expanduser()
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise WarehouseError(f"the warehouse file {wcfg.path} is not writable by this user")
        return f"{describe(wcfg)}: writable"
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WarehouseError(
            f"cannot create the warehouse file {wcfg.path}: the folder {folder} is not writable"
        )
    return f"{describe(wcfg)} (created on the first sync)"


def _select_one(client: Any, wcfg: WarehouseConfig) -> None:
    client.execute_sql("SELECT 1")


def _can_create(client: Any, wcfg: WarehouseConfig) -> None:
    """Create the dataset and staging schemas (if missing) and a table in each, then roll
    it all back."""
    probe = f"_ctctsync_preflight_{uuid.uuid4().hex[:12]}"
    client.execute_sql("SELECT 1")
    try:
        with client.begin_transaction() as tx:
            for staging in (False, True):
                with client.with_staging_dataset() if staging else nullcontext():
                    if not client.has_dataset():
                        client.create_dataset()
                    qualified = client.make_qualified_table_name(probe)
                    client.execute_sql(f"CREATE TABLE {qualified} (probe integer)")
            tx.rollback_transaction()
    except Exception as exc:
        raise WarehouseError(
            f"the warehouse user cannot create tables ({describe(wcfg)}, and "
            f"{wcfg.dataset}_staging): {_first_line(exc, wcfg)}; grant it CREATE on the "
            "database, or on both schemas"
        ) from None


Probe = Callable[[Any, WarehouseConfig], None]

PROBES: Final[dict[str, Probe]] = {"postgres": _can_create}
"""What is tried on an open connection, per destination (any other: ``SELECT 1``). Only
destinations whose DDL rolls back get a create probe: on others it would leave tables."""


def _missing_driver(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a failed import: dlt's
    ``MissingDependencyException`` is an ``ImportError`` too."""
    seen: BaseException | None = exc
    for _ in range(10):  # causes do not loop, but a chain is never walked unbounded
        if seen is None:
            return False
        if isinstance(seen, ImportError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_warehouse(wcfg: WarehouseConfig) -> str:
    """Check that a run can load into ``wcfg``: see the module docstring.

    Returns a one-line description of the warehouse (no secrets); raises
    :class:`WarehouseError` with one line saying what failed and what to do.
    """
    _check_url(wcfg)
    if capabilities_of(wcfg.destination).local_file:
        return _check_file(wcfg)
    return connect(wcfg, PROBES.get(wcfg.destination, _select_one))


def connect(wcfg: WarehouseConfig, probe: Probe = _select_one) -> str:
    """Open a connection to ``wcfg`` and run ``probe`` on it (default ``SELECT 1``).
    Returns ``connected to ...``; raises :class:`WarehouseError` with one line."""
    try:
        with scratch_pipeline(wcfg, PREFLIGHT_PIPELINE) as pipeline, pipeline.sql_client() as c:
            probe(c, wcfg)
    except WarehouseError:
        raise
    except Exception as exc:
        log.debug("warehouse preflight failed", exc_info=True)  # the traceback, with -v only
        if _missing_driver(exc):
            raise WarehouseError(
                f"the driver for {capabilities_of(wcfg.destination).label or wcfg.destination} "
                f"is not installed; install it with: {install_hint(wcfg.destination)}"
            ) from None
        raise WarehouseError(
            f"cannot connect to the warehouse ({describe(wcfg)}): {_first_line(exc, wcfg)}"
        ) from None
    return f"connected to {describe(wcfg)}"
