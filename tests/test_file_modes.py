"""Files ctctsync creates are its user's only (issue 8 §2): the control store and its WAL and
SHM, the state store, the DuckDB warehouse and the key files are created 0600, in 0700
folders when ctctsync creates the folder; a folder that existed keeps its mode.

Real parts: a sync against the sandbox into a DuckDB file, a control plane on a SQLite store.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ctctsync.api.ratelimit import clear_registry
from ctctsync.config import SyncConfig
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings
from ctctsync.sandbox import Sandbox
from ctctsync.sync import run_sync


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` (relative name -> permission bits)."""
    return {p.relative_to(root).as_posix(): _mode(p) for p in sorted(root.rglob("*"))}


@pytest.fixture(autouse=True)
def _shared_umask() -> Iterator[None]:
    """The usual umask (022), with which files default to world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_sync_creates_private_state_store_and_warehouse(sandbox: Sandbox, tmp_path: Path) -> None:
    clear_registry()
    tmp_path.chmod(0o755)
    made = tmp_path / "made-by-ctctsync"
    creds = sandbox.credentials
    cfg = SyncConfig.model_validate(
        {
            "integration": "cc",
            "source": {
                "base_url": sandbox.base_url,
                "api_key": creds.api_key,
                "access_token": creds.access_token,
                "qps_limit": None,
                "daily_limit": None,
            },
            "warehouse": {"destination": "duckdb", "path": str(made / "wh" / "cc.duckdb")},
            "state_url": f"sqlite:///{made / 'state' / 'state.db'}",
            "tables": {"contact_lists": None, "contacts": None},
        }
    )
    result = run_sync(cfg)
    assert result.status == "succeeded", result.error
    modes = _modes(made)
    assert {"wh/cc.duckdb", "state/state.db"} <= set(modes), modes
    for name, mode in modes.items():
        expected = 0o700 if (made / name).is_dir() else 0o600
        assert mode == expected, f"{name}: {oct(mode)}"
    assert _mode(made) == 0o700
    assert _mode(tmp_path) == 0o755  # not ctctsync's folder: left alone


def test_a_control_plane_creates_private_store_keys_and_folders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    plane = ControlPlane(ControlSettings(data_dir=data_dir, workers=0))
    try:
        with plane.session() as db:
            db.execute(sa.text("select count(*) from users"))  # the store is open (WAL mode)
        modes = _modes(data_dir)
        assert {"control.db", "control.db-wal", "control.db-shm"} <= set(modes), modes
        for name, mode in modes.items():
            expected = 0o700 if (data_dir / name).is_dir() else 0o600
            assert mode == expected, f"{name}: {oct(mode)}"
        assert _mode(data_dir) == 0o700
    finally:
        plane.close()


def test_existing_folders_and_files_are_left_alone(tmp_path: Path) -> None:
    from ctctsync.db import create_private_file, make_private_dirs

    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    make_private_dirs(mine / "a" / "b")
    assert (_mode(mine), _mode(mine / "a"), _mode(mine / "a" / "b")) == (0o755, 0o700, 0o700)
    existing = mine / "kept.db"
    existing.write_text("")
    existing.chmod(0o644)
    assert not create_private_file(existing) and _mode(existing) == 0o644
    assert create_private_file(mine / "c" / "new.db") and _mode(mine / "c" / "new.db") == 0o600


def test_private_umask_covers_duckdb_wal_and_nests(tmp_path: Path) -> None:
    """DuckDB creates its file and WAL itself (mode 0666 less the umask): the loader writes
    under ``private_umask``; the WAL exists only while a write is not yet checkpointed."""
    import duckdb

    from ctctsync.db import private_umask

    path = tmp_path / "wh.duckdb"
    with private_umask():
        con = duckdb.connect(str(path))
        with private_umask():
            con.execute("create table t (a int)")
            con.execute("insert into t values (1)")
            assert _mode(path) == 0o600 and _mode(tmp_path / "wh.duckdb.wal") == 0o600
        assert os.umask(0o077) == 0o077  # the outer use still holds it
        con.close()
    assert os.umask(0o022) == 0o022  # restored by the last one out
