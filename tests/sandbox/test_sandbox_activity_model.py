"""The sandbox's frozen clock, its "decay" activity model, retraction of activities and the
per-key rate limits, over real HTTP (issue 10)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.cli import parse_instant
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.testing import SandboxFactory
from ctctsync.sandbox.v2.render import utc_date


def _v2(sb: Sandbox) -> httpx.Client:
    c = sb.credentials
    return httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                        headers={"Authorization": f"Bearer {c.access_token}",
                                 "Accept": "application/json"}, timeout=10)


def _admin(sb: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{sb.base_url}/_sandbox{path}"
    r = httpx.get(url) if body is None else httpx.post(url, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- frozen clock ------------------------------------------------------------------------------


def test_frozen_clock_moves_only_by_advance(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(frozen_at_ms=ANCHOR_MS)
    first = _admin(sb, "/clock")
    assert first["frozen"] is True
    assert first["now"] == "2024-06-01T00:00:00+00:00"
    assert _admin(sb, "/clock")["now"] == first["now"]  # no real time passes on it
    after = _admin(sb, "/clock/advance", {"seconds": 3 * 86_400})
    assert after["now"] == "2024-06-04T00:00:00+00:00"
    # a mutation is stamped with the frozen time, and a later reading is not before it
    [cid] = sb.account.update_contacts(1)
    with _v2(sb) as client:
        contact = client.get(f"/v2/contacts/{cid}").json()
    assert contact["modified_date"] == utc_date(ANCHOR_MS + 3 * 86_400_000)
    assert sb.account.clock.now_ms() == ANCHOR_MS + 3 * 86_400_000


def test_live_send_on_a_frozen_clock_gets_distinct_instants(
        sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(frozen_at_ms=ANCHOR_MS)
    cid = sb.account.send_campaign(activities=30)
    acts, _ = sb.account.activity_page(campaign_id=cid, limit=10**9)
    stamps = [a.ts_ms for a in acts]
    assert len(set(stamps)) == len(stamps) > 0
    assert min(stamps) == ANCHOR_MS
    assert sb.account.clock.now_ms() >= max(stamps)  # all of it visible at once


def test_frozen_at_option_parses_anchor_and_instants() -> None:
    assert parse_instant("anchor") == ANCHOR_MS
    assert parse_instant("2024-06-01T01:00:00Z") == ANCHOR_MS + 3_600_000
    assert parse_instant("2024-06-01T01:00:00") == ANCHOR_MS + 3_600_000  # UTC when naive
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_instant("yesterday")
