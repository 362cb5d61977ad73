"""Helpers of the Singer end-to-end tests: real Singer tools in venvs of their own (their
pins conflict with ours: target-jsonl wants jsonschema 2.6 and singer-python 5), and the
target's files read back as typed rows for the truth helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctctsync.tables import Table

ROOT = Path(__file__).resolve().parents[2]
TARGET_JSONL = "target-jsonl==0.1.4"
SINGER_TOOLS = "singer-tools==0.4.1"
TARGET_POSTGRES = "meltanolabs-target-postgres==0.8.1"
MELTANO = "meltano==4.4.1"
"""The versions tried (each installs in 5-20 s here)."""


def tool_venv(where: Path, *packages: str) -> Path:
    """A fresh venv at ``where`` with ``packages`` installed; returns its ``bin`` folder."""
    venv.create(where, with_pip=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check", *packages]
    proc = subprocess.run(pip, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"pip install {packages} failed:\n{proc.stderr[-3000:]}"
    return where / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    return {**env, **extra}


def tap_command(config: Path, *args: str) -> list[str]:
    """``ctctsync tap`` of this checkout (the test process's Python and path)."""
    return [sys.executable, "-m", "ctctsync", "tap", "--config", str(config), *args]


def pipe(tap: list[str], target: list[str], cwd: Path) -> tuple[bytes, str, str]:
    """Run ``tap | target`` as a shell would; returns the target's stdout (its STATE lines)
    and both stderrs. Fails the test if either exits non-zero."""
    env = clean_env(PYTHONPATH=str(ROOT / "src"))
    with subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                          env=env) as t:
        assert t.stdout is not None
        target_proc = subprocess.run(target, stdin=t.stdout, capture_output=True, cwd=cwd,
                                     timeout=300, check=False, env=clean_env())
        t.stdout.close()
        tap_err = t.stderr.read().decode() if t.stderr else ""
        t.wait(timeout=60)
    assert t.returncode == 0, f"tap exited {t.returncode}:\n{tap_err[-3000:]}"
    assert target_proc.returncode == 0, (
        f"target exited {target_proc.returncode}:\n{target_proc.stderr.decode()[-3000:]}")
    return target_proc.stdout, tap_err, target_proc.stderr.decode()


def last_state(target_stdout: bytes) -> dict[str, Any]:
    """The last STATE a target echoed (a Singer target prints each state it committed)."""
    lines = [line for line in target_stdout.decode().splitlines() if line.strip()]
    assert lines, "the target echoed no state"
    state: dict[str, Any] = json.loads(lines[-1])
    return state


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a target-jsonl file, in the order written ([] if it has none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def merged(table: Table, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Appended records as a target merging by key holds them (the last one wins), with
    timestamps typed back from their ISO-8601 text for the truth helpers."""
    stamps = [c.name for c in table.columns if c.type == "timestamp"]
    out: dict[Any, dict[str, Any]] = {}
    for record in records:
        row = dict(record)
        for name in stamps:
            if isinstance(row.get(name), str):
                row[name] = datetime.fromisoformat(row[name]).astimezone(UTC)
        out[tuple(row[k] for k in table.primary_key)] = row
    return list(out.values())
