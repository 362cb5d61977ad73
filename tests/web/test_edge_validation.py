"""Input is validated where it enters (issue 8 §2): what the store cannot hold or a header
cannot carry is a 4xx with a message, never a 500 - over real HTTP, on SQLite and on
PostgreSQL, for the REST API and the pages alike; and the sandbox answers odd keys as CC."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.models import User
from ctctsync.sandbox import Sandbox
from web.helpers import WebClient, WebServer, create_admin

CLOSED_PORT = "http://127.0.0.1:9"
"""Where CC is said to be in these tests: nothing listens, so credential checks are skipped."""


@pytest.fixture
def pg_schema_url(pg_dsn: str) -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema (dropped afterwards)."""
    schema = f"edge_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(pg_dsn).set(drivername="postgresql+psycopg")
    try:
        yield f"{url.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> str:
    """Which store the served app runs on."""
    return str(request.param)


@pytest.fixture
def served(
    store: str, web_factory: Callable[..., WebServer], request: pytest.FixtureRequest
) -> WebServer:
    extra = {} if store == "sqlite" else {"database_url": request.getfixturevalue("pg_schema_url")}
    srv = web_factory(workers=0, cc_base_url=CLOSED_PORT, **extra)
    create_admin(srv.plane)
    return srv


@pytest.fixture
def browser(served: WebServer) -> WebClient:
    """A signed-in admin's browser."""
    client = served.client()
    client.sign_in()
    return client


@pytest.fixture
def api(served: WebServer) -> httpx.Client:
    """A REST client with the admin's personal API token."""
    with served.plane.session() as db:
        admin = db.scalars(sa.select(User)).one()
        _token, plaintext = svc.create_api_token(db, admin, "edge tests")
    # Connection: close, so that one 500 (which drops the connection) shows as a 500 for
    # that request rather than as a reset of the next one.
    headers = {"Authorization": f"Bearer {plaintext}", "Connection": "close"}
    client = httpx.Client(base_url=served.base_url, headers=headers, timeout=20)
    served.clients.append(client)
    return client


def too_big(store: str) -> int:
    """The smallest id the store's integer cannot hold."""
    return 2**63 if store == "sqlite" else 2**31


def _integration(api: httpx.Client) -> int:
    r = api.post("/api/v1/integrations", json={"name": "acme"})
    assert r.status_code == 201, r.text
    iid: int = r.json()["id"]
    return iid


# ----------------------------------------------------------------------------- ids in paths


def test_out_of_range_ids_are_refused_not_500(
    store: str, api: httpx.Client, browser: WebClient
) -> None:
    big = too_big(store)
    iid = _integration(api)
    api_paths = [
        ("GET", f"/api/v1/integrations/{big}"),
        ("PATCH", f"/api/v1/integrations/{big}"),
        ("POST", f"/api/v1/integrations/{big}/pause"),
        ("GET", f"/api/v1/integrations/{big}/runs"),
        ("DELETE", f"/api/v1/tokens/{big}"),
        ("GET", "/api/v1/integrations/0"),
        ("GET", "/api/v1/integrations/-1"),
    ]
    for method, path in api_paths:
        r = api.request(method, path, json={})
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert "integration_id" in r.json()["errors"] or "token_id" in r.json()["errors"]
    # a query number beyond the store's integer: refused as well
    r = api.get(f"/api/v1/integrations/{iid}/runs", params={"limit": big})
    assert r.status_code == 422, r.text
    for path in (f"/integrations/{big}", f"/integrations/{big}/edit", f"/integrations/{big}/setup"):
        page = browser.get(path, headers={"Connection": "close"})
        assert page.status_code == 404, (path, page.status_code)
        assert "There is no page at this address." in page.text
    r = browser.post(f"/tokens/{big}/revoke", {}, form_page="/tokens")
    assert r.status_code == 404, r.text[:200]


def test_nul_and_malformed_run_ids_are_refused_not_500(
    store: str, api: httpx.Client, browser: WebClient
) -> None:
    for path in ("/api/v1/runs/a%00b", "/api/v1/runs/a%00b/logs", "/api/v1/runs/x%0Ay"):
        r = api.get(path)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "run_id" in r.json()["errors"]
    assert api.post("/api/v1/runs/a%00b/cancel").status_code == 422
    for path in ("/jobs/a%00b", "/jobs/a%00b/log", "/jobs/a%00b/summary"):
        page = browser.get(path, headers={"Connection": "close"})
        assert page.status_code == 404, (path, page.status_code)


# ----------------------------------------------------------------------------- NUL in text


def test_nul_bytes_in_text_are_422_not_500(
    store: str, api: httpx.Client, browser: WebClient
) -> None:
    refused = [
        ("POST", "/api/v1/tokens", {"name": "a\x00b"}, "name"),
        (
            "POST",
            "/api/v1/users",
            {"email": "a\x00b@example.com", "password": "long enough"},
            "email",
        ),
        ("PUT", "/api/v1/warehouse", {"path": "/tmp/a\x00b.duckdb"}, "path"),
        ("POST", "/api/v1/warehouse/test", {"path": "/tmp/a\x00b.duckdb"}, "path"),
        ("POST", "/api/v1/oauth/complete", {"state": "a\x00b", "code": "c"}, "state"),
    ]
    for method, path, body, field in refused:
        r = api.request(method, path, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert field in r.json()["errors"], r.text
    # the token form says the same, on its page
    r = browser.post("/tokens", {"name": "a\x00b"})
    assert r.status_code == 422
    assert "control characters" in r.text
    # nothing of it was stored
    assert [t["name"] for t in api.get("/api/v1/tokens").json()] == ["edge tests"]


def test_nul_in_the_sign_in_email_is_4xx_not_500(served: WebServer) -> None:
    # the sign-in form is open to anyone: a NUL byte must not reach the store (PostgreSQL)
    client = served.client()
    r = client.post("/login", {"email": "a\x00@example.com", "password": "whatever"})
    assert 400 <= r.status_code < 500, r.status_code


# ----------------------------------------------------------------------------- credentials


BAD_CREDENTIALS = [
    pytest.param({"api_key": "ké", "access_token": "good-token"}, "api_key", id="non-ascii-key"),
    pytest.param({"api_key": "key", "access_token": "tök"}, "access_token", id="non-ascii-token"),
    pytest.param(
        {"api_key": "key", "access_token": "tok\r\nX-Injected: 1"}, "access_token", id="crlf-token"
    ),
    pytest.param({"api_key": "k e y", "access_token": "tok"}, "api_key", id="space-in-key"),
    pytest.param({"api_key": "key", "access_token": "t" * 600}, "access_token", id="too-long"),
]


@pytest.mark.parametrize("store", ["sqlite"])
@pytest.mark.parametrize(("body", "field"), BAD_CREDENTIALS)
def test_credentials_cc_cannot_take_are_refused_at_the_edge(
    api: httpx.Client, browser: WebClient, body: dict[str, str], field: str
) -> None:
    iid = _integration(api)
    r = api.put(f"/api/v1/integrations/{iid}/credentials", json=body)
    assert r.status_code == 422, r.text
    message = r.json()["errors"][field]
    assert "printable ASCII" in message
    # never echoed: the answer does not carry the value
    assert body[field] not in r.text
    form = f"/integrations/{iid}/credentials"
    page = browser.post(form, body)
    assert page.status_code == 422
    assert "printable ASCII" in page.text
    # nothing was stored: the integration still has no credentials
    assert api.get(f"/api/v1/integrations/{iid}").json()["credentials"]["access_token"] == "not set"


# ----------------------------------------------------------------------------- settings


def test_zero_qps_limit_refused_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env.update(CTCTSYNC_DATA_DIR=str(tmp_path / "data"), CTCTSYNC_CC_QPS_LIMIT="0")
    done = subprocess.run(
        [sys.executable, "-m", "ctctsync", "serve", "--port", "9"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "CTCTSYNC_CC_QPS_LIMIT" in lines[0]
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------- the sandbox


@pytest.mark.parametrize("key", ["ké", "\u2603" * 24, "key\x7f"])
def test_sandbox_answers_a_non_ascii_api_key_as_cc_does(sandbox: Sandbox, key: str) -> None:
    token = sandbox.credentials.access_token
    r = httpx.get(
        f"{sandbox.base_url}/v2/account/info",
        params={"api_key": key},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403, r.text
    assert r.json()[0]["error_key"] == "mashery.not.authorized.inactive"
    authorize = httpx.get(
        f"{sandbox.base_url}/oauth2/oauth/siteowner/authorize",
        params={"response_type": "code", "client_id": key, "redirect_uri": "http://x/cb"},
    )
    assert authorize.status_code < 500, authorize.text
