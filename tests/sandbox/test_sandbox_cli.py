"""``python -m ctctsync.sandbox``: starts, prints its URL and credentials, serves, stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import pytest

from ctctsync.sandbox.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fixed_port", [True, False], ids=["port", "port-0"])
def test_module_cli_serves_and_prints_credentials(fixed_port: bool) -> None:
    port = _free_port() if fixed_port else 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctctsync.sandbox", "--port", str(port), "--contacts", "120",
         "--qps-limit", "0", "--fault", "503:/v2/lists:n=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        base = lines[0].split(" on ")[1].strip()
        if fixed_port:
            assert base == f"http://127.0.0.1:{port}"
        port = int(base.rsplit(":", 1)[1])
        assert port > 0
        info = dict(line.strip().split(":", 1) for line in lines[1:6])
        key = info["API key (client_id)"].strip()
        token = info["access token"].strip()
        assert info["login email"].strip().endswith("@example.com")
        assert info["login password"].strip()
        assert info["client secret"].strip()
        auth = {"Authorization": f"Bearer {token}"}
        # the socket listens before the banner is printed: no retry needed
        r = httpx.get(f"http://127.0.0.1:{port}/v2/lists", params={"api_key": key},
                      headers=auth)
        assert r.status_code == 503  # the --fault
        r = httpx.get(f"http://127.0.0.1:{port}/v2/contacts", params={"api_key": key},
                      headers=auth)
        assert r.status_code == 200
        assert len(r.json()["results"]) == 50
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0


def test_cli_rejects_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fault", "nope"]) == 2
    assert "unknown fault kind" in capsys.readouterr().err
