"""pytest plugin: sandbox fixtures. Register with ``pytest_plugins = ["ctctsync.sandbox.testing"]``.

* ``sandbox`` - a running small account (``SMALL_SPEC``), rate limits off, per test.
* ``sandbox_factory`` - ``sandbox_factory(spec=None, qps_limit=None, daily_limit=None,
  faults=(), ...)`` starts more sandboxes; all are stopped at teardown.
* ``sandbox_client`` - an ``httpx.Client`` on the ``sandbox`` with the API key and bearer token
  already set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.server import Sandbox

SMALL_SPEC = AccountSpec(seed=7, contacts=260, lists=5, campaigns=7, activities_per_campaign=60,
                         library_files=14, trash_files=3, events=4)
"""The account of the ``sandbox`` fixture: small, but every table has several pages."""

SandboxFactory = Callable[..., Sandbox]


def authorize_code(sb: Sandbox, redirect_uri: str, *, state: str = "xyz",
                   email: str | None = None, password: str | None = None) -> str:
    """Drive the sandbox's OAuth login page like a browser would (GET the page, POST the
    owner's email and password) and return the authorization code from the redirect."""
    creds = sb.credentials
    params = {"response_type": "code", "client_id": creds.api_key, "redirect_uri": redirect_uri,
              "state": state}
    url = f"{sb.base_url}/oauth2/oauth/siteowner/authorize"
    with httpx.Client(timeout=10) as client:
        page = client.get(url, params=params)
        page.raise_for_status()
        r = client.post(url, data={**params, "email": email or creds.email,
                                   "password": password or creds.password, "action": "allow"})
    if r.status_code != 302:
        raise AssertionError(f"login failed: {r.status_code} {r.text[:200]}")
    query = parse_qs(urlsplit(r.headers["location"]).query)
    return query["code"][0]


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes on demand: ``sandbox_factory(spec, qps_limit=..., daily_limit=...)``.
    Rate limits are off unless given."""
    started: list[Sandbox] = []

    def factory(spec: AccountSpec | None = None, **kwargs: Any) -> Sandbox:
        kwargs.setdefault("qps_limit", None)
        kwargs.setdefault("daily_limit", None)
        sb = Sandbox(spec or SMALL_SPEC, **kwargs).start()
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A running sandbox with the small account and no rate limits."""
    return sandbox_factory()


@pytest.fixture
def sandbox_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client for ``sandbox``: base URL, ``api_key`` and bearer token preset."""
    creds = sandbox.credentials
    with httpx.Client(base_url=sandbox.base_url, params={"api_key": creds.api_key},
                      headers={"Authorization": f"Bearer {creds.access_token}",
                               "Accept": "application/json"}, timeout=10) as client:
        yield client
