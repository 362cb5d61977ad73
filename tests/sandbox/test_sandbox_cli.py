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
         "--qps-limit", "0", "--token-qps-limit", "0", "--fault", "503:/v2/lists:n=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        v3_lines = []
        while not (line := proc.stdout.readline()).startswith("Press Ctrl-C"):
            assert line, "the banner ended early"
            v3_lines.append(line)
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
        _check_v3_banner(v3_lines, port, key, info["client secret"].strip())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0


def _check_v3_banner(lines: list[str], port: int, key: str, secret: str) -> None:
    """The v3 block: API base, authz base, the same client, and a token that works at once."""
    base = f"http://127.0.0.1:{port}"
    assert lines[0].strip() == f"Constant Contact v3 API on {base}/v3"
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert info["authz base"] == f"{base}/oauth2/default/v1"
    assert (info["client id"], info["client secret"]) == (key, secret)
    assert info["sign-in email"].endswith("@example.com")
    assert info["sign-in password"]
    assert info["authorize page"].startswith(f"{base}/oauth2/default/v1/authorize?")
    assert "token endpoint no req/s" in lines[-1]  # --token-qps-limit 0
    r = httpx.get(f"{base}/v3/emails",
                  headers={"Authorization": f"Bearer {info['v3 access token']}"})
    assert r.status_code == 200
    assert "campaigns" in r.json()
    r = httpx.post(f"{info['authz base']}/device/authorize",
                   data={"client_id": key, "scope": "contact_data"})
    assert r.status_code == 200
    assert r.json()["verification_uri"] == f"{base}/activate"


def test_cli_rejects_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fault", "nope"]) == 2
    assert "unknown fault kind" in capsys.readouterr().err
