"""``ctctsync serve`` in a real process: web app + REST API + scheduler, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")},
        "CTCTSYNC_DATA_DIR": str(tmp_path / "data"),
        "CTCTSYNC_PORT": str(port),
        "CTCTSYNC_WORKERS": "1",
    }
    code = "import sys; from ctctsync.cli.control_commands import serve; sys.exit(serve())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # waiting for the server to listen
            try:
                me = httpx.get(f"{base}/api/v1/me", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert me.status_code == 401  # the REST API answers, signed out
        page = httpx.get(f"{base}/login", timeout=5, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower()  # and the web UI
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert (tmp_path / "data" / "control.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
