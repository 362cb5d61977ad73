"""A v3 test client for the sandbox that checks every answer against the contract
(``v3_contract``), and its pytest fixture. Shared by the campaign and report tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from v3_contract import operation_for, validate

from ctctsync.sandbox import Sandbox


class V3:
    """A v3 client that checks every answer against the contract."""

    def __init__(self, sb: Sandbox, token: str | None = None) -> None:
        self.sb = sb
        token = token or sb.v3_tokens.issue_access_token()
        self.http = httpx.Client(base_url=sb.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, params: Any = None, status: int = 200) -> Any:
        r = self.http.get(path, params=params) if params is not None else self.http.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        template = operation_for(path)
        assert template is not None, path
        validate("GET", template, r.status_code, r.json())
        return r.json()

    def walk(self, path: str, key: str, params: Any = None) -> tuple[list[Any], int]:
        """Follow ``_links.next.href`` to the end: every row and the number of pages."""
        body = self.get(path, params)
        rows, pages, seen = list(body[key]), 1, set()
        while body.get("_links"):  # absent, or {} on bounces/optouts, on the last page
            href = body["_links"]["next"]["href"]
            assert href.startswith("/v3/") and "cursor=" in href  # path-relative (§1.3)
            assert href not in seen, "a paging loop"
            seen.add(href)
            body = self.get(href)  # the cursor carries limit and filters (§1.3)
            rows.extend(body[key])
            pages += 1
        return rows, pages


@pytest.fixture(name="v3")
def v3_fixture(sandbox: Sandbox) -> Iterator[V3]:
    """A :class:`V3` client of the test's sandbox (import ``v3_fixture`` to use ``v3``)."""
    client = V3(sandbox)
    yield client
    client.http.close()
