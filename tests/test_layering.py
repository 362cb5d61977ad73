"""The import layering holds: every part imports on its own, in a fresh interpreter.

`lint-imports` (run by scripts/test, contracts in pyproject.toml) checks the direction of
every import; this checks the symptom a cycle causes at run time: importing one part first
fails with a partially initialised module.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_POINTS = [
    "from ctctsync.warehouse import read_table",
    "from ctctsync.sync import run_sync",
    "from ctctsync.sync.stream import TableStreams",
    "from ctctsync.dlt import constant_contact",
    "from ctctsync.singer import run_tap",
    "from ctctsync.cli.tap import main",
    "from ctctsync.api import ApiClient",
    "from ctctsync.state import StateStore",
    "from ctctsync.config import SyncConfig",
    "from ctctsync.control.worker import RunExecutor",
    "from ctctsync.control.plane import ControlPlane",
    "from ctctsync.web import create_app",
    "from ctctsync.cli.demo import run_demo",
    "from ctctsync.cli import main",
    "from ctctsync.sandbox import Sandbox",
]


@pytest.mark.parametrize("statement", [pytest.param(s, id=s.split()[1]) for s in ENTRY_POINTS])
def test_imports_alone(statement: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", statement], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
