"""A 1,000,000-contact account: quick to build, pages from the end served fast, RSS < 1 GB."""

from __future__ import annotations

import subprocess
import sys

import httpx

from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.v2 import render
from ctctsync.sandbox.v2.paging import encode_token

MILLION = AccountSpec(seed=11, contacts=1_000_000, lists=20, campaigns=8,
                      activities_per_campaign=500, library_files=20, trash_files=2, events=3)


def test_million_contacts_build_and_serve_the_end() -> None:
    # How fast it builds and serves is measured by bench/sandbox_page.py, not asserted here.
    with Sandbox(MILLION, qps_limit=None, daily_limit=None) as sb:
        c = sb.credentials
        with httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                          headers={"Authorization": f"Bearer {c.access_token}"},
                          timeout=30) as client:
            token = encode_token({"startAt": 999_801, "limit": 500})
            last = client.get("/v2/contacts", params={"next": token}).json()
            assert [r["id"] for r in last["results"]] == [str(i) for i in range(999_801, 1_000_001)]
            assert last["meta"]["pagination"] == {}
            assert client.get("/v2/contacts/1000000").json()["id"] == "1000000"
            before = render.utc_date(sb.account.clock.now_ms())
            ids = sb.account.update_contacts(3)
            changed = client.get("/v2/contacts", params={"modified_since": before}).json()
            assert [r["id"] for r in changed["results"]] == [str(i) for i in ids]


def test_million_contact_sandbox_rss_under_1gb() -> None:
    code = (
        "import psutil, httpx\n"
        "from ctctsync.sandbox import AccountSpec, Sandbox\n"
        f"spec = AccountSpec(**{MILLION.__dict__!r})\n"
        "with Sandbox(spec, qps_limit=None, daily_limit=None) as sb:\n"
        "    c = sb.credentials\n"
        "    r = httpx.get(sb.base_url + '/v2/contacts', params={'api_key': c.api_key, "
        "'limit': 500}, headers={'Authorization': 'Bearer ' + c.access_token})\n"
        "    assert r.status_code == 200\n"
        "    sb.truth('contact_tracking')\n"
        "    print(psutil.Process().memory_info().rss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    rss = int(out.stdout.strip().splitlines()[-1])
    assert rss < 1_000_000_000, f"RSS {rss / 1e6:.0f} MB"
