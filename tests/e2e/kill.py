"""SIGKILL a sync mid-run: the child (``sync_child.py``) prints each progress event; the parent
kills it at the chosen one. Shared by the v2 and v3 crash tests."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("sync_child.py")


def run_and_kill(config_json: str, table: str, phase: str) -> list[str]:
    """Start the child, SIGKILL it as soon as it reports ``table phase``; returns its lines."""
    proc = subprocess.Popen([sys.executable, str(CHILD), config_json], stdout=subprocess.PIPE,
                            text=True)
    seen: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            seen.append(line.strip())
            if line.startswith(f"{table} {phase} "):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=120)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed: {seen[-3:]}"
    return seen
