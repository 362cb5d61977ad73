"""The sandbox in a process of its own (``python -m ctctsync.sandbox``), as Constant Contact
is another machine: what the fleet's scale test and ``bench/bench_fleet.py`` run their
workers against. Driven over its ``/_sandbox`` admin routes (docs/sandbox.md).

A sandbox served from a thread of a busy process answers late and bunches its answers;
served from its own process, its limiter judges the rate the clients really sent.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ctctsync.sandbox.account import AccountSpec

SPEC_FIELDS = (
    "seed",
    "contacts",
    "lists",
    "campaigns",
    "activities_per_campaign",
    "library_files",
    "trash_files",
    "events",
)
"""The account's size, as the sandbox command takes it."""

START_TIMEOUT_SECONDS = 60.0
"""How long the child may take to print its start lines (imports on a loaded machine)."""


class SandboxProcess:
    """``python -m ctctsync.sandbox`` serving ``spec`` on a free port, limiting each API key
    to ``qps_limit`` requests a second (None: no limit); no daily limit, no limit on the
    token endpoint. Its output goes to ``log``. Stop it with :meth:`stop`."""

    def __init__(self, log: Path, spec: AccountSpec, qps_limit: float | None) -> None:
        args = [f"--{n.replace('_', '-')}={getattr(spec, n)}" for n in SPEC_FIELDS]
        self.log = log
        # our own interpreter and module, with the spec's numbers: no outside input
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "ctctsync.sandbox",
                "--port=0",
                f"--qps-limit={qps_limit or 0}",
                "--daily-limit=0",
                "--token-qps-limit=0",
                *args,
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "Press Ctrl-C" not in (text := log.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"the sandbox did not start; its output:\n{text}")
            time.sleep(0.1)
        self.base_url = _announced(text, r"v2 sandbox on (\S+)")
        self.api_key = _announced(text, r"API key \(client_id\): +(\S+)")
        self.access_token = _announced(text, r"  access token: +(\S+)")
        self.http = httpx.Client(base_url=f"{self.base_url}/_sandbox", timeout=10)

    def key_counts(self) -> dict[str, int]:
        """The key's requests so far: ``total``, per status (``"403"``) and class."""
        counts: dict[str, int] = self.http.get("/counters").json()["api_keys"].get(self.api_key, {})
        return counts

    def count(self, endpoint: str) -> int:
        """Requests to ``endpoint`` (``GET /v2/contacts``) so far."""
        row = self.http.get("/counters").json()["endpoints"].get(endpoint, {})
        return int(row.get("total", 0))

    def add_latency(self, ms: int) -> int:
        """Every API request waits ``ms``; returns the rule's id."""
        r = self.http.post("/faults", json={"kind": "latency", "path": "*", "latency_ms": ms})
        r.raise_for_status()
        return int(r.json()["id"])

    def remove_fault(self, fault_id: int) -> None:
        """Drop a fault rule :meth:`add_latency` added."""
        self.http.delete(f"/faults/{fault_id}").raise_for_status()

    def truth(self, table: str) -> list[dict[str, Any]]:
        """The table's truth (what the tests' ``assert_matches_truth`` reads of a sandbox)."""
        rows: list[dict[str, Any]] = self.http.get(f"/truth/{table}").json()
        return rows

    def stop(self) -> None:
        """Stop the child and wait for it."""
        self.http.close()
        self.proc.terminate()
        self.proc.wait(15)


def _announced(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"{pattern!r} not in the sandbox's start lines: {text}")
    return found.group(1)


__all__ = ["SPEC_FIELDS", "SandboxProcess"]
