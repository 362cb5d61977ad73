"""API v3 authorization in the web UI and the REST API, against the sandbox's v3 OAuth2
server (sign-in and consent pages, PKCE S256) over real HTTP.

HTML flow with an httpx browser stand-in (fast), then a real headless Chromium
(``/usr/bin/chromium``, Playwright): create an integration -> Authorize -> the sandbox's
sign-in page (the account owner's email and password) -> consent Allow -> back in ctctsync,
authorized, on the table step with v3's tables; and Deny -> back with "Try again".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from control.test_v3_auth import consent, query_of
from ctctsync.control.models import AppRegistration, Integration
from ctctsync.control.services.tokens import StoreTokenVault
from ctctsync.sandbox import Sandbox
from web.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, WebClient, WebServer, create_admin

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots-v3"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def v3_web(web_factory: Any, sandbox: Sandbox) -> WebServer:
    """The app (no workers) with the sandbox as Constant Contact and its application id
    and secret from the environment (``CTCTSYNC_CLIENT_ID`` / ``CTCTSYNC_CLIENT_SECRET``)."""
    creds = sandbox.credentials
    return web_factory(  # type: ignore[no-any-return]
        workers=0,
        cc_base_url=sandbox.base_url,
        client_id=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )


@pytest.fixture
def signed_in(v3_web: WebServer) -> WebClient:
    create_admin(v3_web.plane)
    client = v3_web.client()
    client.sign_in()
    return client


def _integration(web: WebServer, name: str = "acme") -> Integration:
    with web.plane.session() as db:
        return db.scalars(sa.select(Integration).where(Integration.name == name)).one()


def _create(client: WebClient, name: str = "acme", version: str | None = None) -> httpx.Response:
    form = {"name": name, "frequency_hours": "24", "history_start": ""}
    if version:
        form["api_version"] = version
    return client.post("/integrations/new/constant-contact", form)


def _authorize(client: WebClient, integ_id: int) -> str:
    r = client.post(
        f"/integrations/{integ_id}/authorize", form_page=f"/integrations/{integ_id}/setup/authorize"
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


# ----------------------------------------------------------------------------- HTML, httpx


def test_html_flow_allow(v3_web: WebServer, signed_in: WebClient, sandbox: Sandbox) -> None:
    creds = sandbox.credentials
    form = signed_in.get("/integrations/new/constant-contact").text
    assert re.search(r'<option value="v3" selected>', form)  # new integrations: v3
    assert _create(signed_in).status_code == 303
    integ = _integration(v3_web)
    assert integ.api_version == "v3" and "trash_files" not in integ.tables
    page = signed_in.get(f"/integrations/{integ.id}/setup/authorize").text
    assert "account_read" in page and "offline_access" in page
    url = _authorize(signed_in, integ.id)
    assert url.startswith(sandbox.authz_url + "/authorize?")
    back = consent(url, creds.email, creds.password, "allow")
    assert back.startswith(v3_web.settings.oauth_redirect_uri + "?")
    r = signed_in.get(back.removeprefix(v3_web.base_url))
    assert (
        r.status_code == 303 and r.headers["location"] == f"/integrations/{integ.id}/setup/tables"
    )
    tables = signed_in.get(r.headers["location"]).text
    assert 'id="authorized"' in tables and "API v3" in tables
    # v3's tables offered; MyLibrary and Trash shown unavailable, with the registry's reason
    assert 'name="tables" value="contact_tags"' in tables
    assert 'name="tables" value="my_library_files"' not in tables
    assert re.search(r'id="t-my_library_files" value="my_library_files" disabled', tables)
    assert "no MyLibrary endpoint" in tables
    done = _integration(v3_web)
    assert done.has_credentials and done.access_problems == []
    # choosing an unavailable table anyway is refused, naming why
    refused = signed_in.post(
        f"/integrations/{integ.id}/setup/tables",
        [("tables", "contacts"), ("tables", "trash_files")],
    )
    assert refused.status_code == 422 and "v3" in refused.text


def test_html_flow_deny_offers_try_again(
    v3_web: WebServer, signed_in: WebClient, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    _create(signed_in)
    integ = _integration(v3_web)
    back = consent(_authorize(signed_in, integ.id), creds.email, creds.password, "deny")
    assert "error=access_denied" in back
    r = signed_in.get(back.removeprefix(v3_web.base_url))
    assert r.status_code == 303
    assert r.headers["location"] == f"/integrations/{integ.id}/setup/authorize?outcome=denied"
    page = signed_in.get(r.headers["location"])
    assert page.status_code == 200
    assert 'id="try-again"' in page.text and "You chose <strong>Deny</strong>" in page.text
    assert not _integration(v3_web).has_credentials
    # "Try again" starts a new authorization (the denied one was consumed)
    again = _authorize(signed_in, integ.id)
    back = consent(again, creds.email, creds.password, "allow")
    r = signed_in.get(back.removeprefix(v3_web.base_url))
    assert r.headers["location"].endswith("/setup/tables")


def test_rest_flow_and_api_version(
    v3_web: WebServer, signed_in: WebClient, sandbox: Sandbox
) -> None:
    from ctctsync.control import services as svc

    with v3_web.plane.session() as db:
        admin = svc.get_user(db, 1)
        assert admin is not None
        _token, plaintext = svc.create_api_token(db, admin, "test")
    api = httpx.Client(
        base_url=v3_web.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {plaintext}"},
        timeout=20,
    )
    with api:
        assert {t["name"] for t in api.get("/tables", params={"api_version": "v3"}).json()} >= {
            "contact_tags",
            "segments",
            "contacts",
        }
        made = api.post("/integrations", json={"name": "acme"}).json()
        assert made["api_version"] == "v3" and "my_library_files" not in made["tables"]
        legacy = api.post("/integrations", json={"name": "old", "api_version": "v2"}).json()
        assert legacy["api_version"] == "v2" and "my_library_files" in legacy["tables"]
        bad = api.post("/integrations", json={"name": "nope", "tables": {"trash_files": None}})
        assert bad.status_code == 422 and "trash_files: " in bad.json()["errors"]["tables"]
        url = api.post(f"/integrations/{made['id']}/authorize").json()["authorize_url"]
        back = query_of(consent(url, sandbox.credentials.email, sandbox.credentials.password))
        done = api.post("/oauth/complete", json={"state": back["state"], "code": back["code"]})
        assert done.status_code == 200, done.text
        assert done.json()["credentials"]["method"] == "oauth"
        assert done.json()["access_problems"] == []
        # the application as the API shows it: never the secret
        shown = api.get("/oauth/application").json()
        assert shown["client_secret"] == "set" and sandbox.credentials.client_secret not in str(
            shown
        )
        assert shown["from_environment"] == ["client_id", "client_secret"]
        # a table the integration's version cannot read clashes with its state: 409
        clash = api.patch(f"/integrations/{made['id']}", json={"tables": {"trash_files": None}})
        assert clash.status_code == 409 and "tables.trash_files" in clash.json()["errors"]
        # switching versions is for integrations that have not run
        patched = api.patch(f"/integrations/{legacy['id']}", json={"api_version": "v3"})
        assert patched.status_code == 200 and patched.json()["api_version"] == "v3"


def test_admin_enters_the_application_once(web_factory: Any, sandbox: Sandbox) -> None:
    """No CTCTSYNC_CLIENT_* in the environment: the admin page's values are used, the
    secret stored encrypted and never shown back."""
    web = web_factory(workers=0, cc_base_url=sandbox.base_url, cc_qps_limit=None)
    create_admin(web.plane)
    client = web.client()
    client.sign_in()
    creds = sandbox.credentials
    _create(client)
    integ = _integration(web)
    refused = client.post(
        f"/integrations/{integ.id}/authorize", form_page=f"/integrations/{integ.id}/setup/authorize"
    )
    assert refused.status_code == 303 and "/setup/authorize" in refused.headers["location"]
    assert "Admin &gt; Constant Contact application" in client.get(refused.headers["location"]).text

    page = client.get("/admin/application")
    assert page.status_code == 200 and 'id="client_secret"' in page.text
    saved = client.post(
        "/admin/application",
        {
            "client_id": creds.api_key,
            "client_secret": creds.client_secret,
            "redirect_uri": "",
            "authz_base_url": "",
        },
    )
    assert saved.status_code == 303
    shown = client.get("/admin/application").text
    assert creds.client_secret not in shown and "A secret is stored" in shown
    with web.plane.session() as db:
        row = db.get(AppRegistration, 1)
        assert row is not None and row.client_id == creds.api_key
        assert (
            row.client_secret_encrypted and creds.client_secret not in row.client_secret_encrypted
        )
    url = _authorize(client, integ.id)
    back = consent(url, creds.email, creds.password)
    r = client.get(back.removeprefix(web.base_url))
    assert r.headers["location"].endswith("/setup/tables")
    # what the store holds is ciphertext only
    tokens = StoreTokenVault(web.plane.context, integ.id).load()
    assert tokens is not None
    with web.plane.engine.connect() as conn:
        dump = str(conn.execute(sa.text("SELECT * FROM integrations")).all())
    assert tokens.tokens.access_token not in dump
    assert (tokens.tokens.refresh_token or "-") not in dump


def test_needs_reauth_shows_the_reason_and_reauthorize(
    v3_web: WebServer, signed_in: WebClient, sandbox: Sandbox
) -> None:
    creds = sandbox.credentials
    _create(signed_in)
    integ = _integration(v3_web)
    back = consent(_authorize(signed_in, integ.id), creds.email, creds.password)
    signed_in.get(back.removeprefix(v3_web.base_url))
    reason = "Constant Contact refused the refresh token (it was used already): re-authorize."
    with v3_web.plane.session() as db:
        row = db.get(Integration, integ.id)
        assert row is not None
        row.transition("pending")  # setup done (it was paused while being set up)
        row.transition("needs_reauth", reason)
        db.commit()
    page = signed_in.get(f"/integrations/{integ.id}").text
    assert reason in page and 'id="reauthorize"' in page
    assert 'id="api-version">v3' in page and 'id="token-status"' in page


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium from Debian, never a downloaded one."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(v3_web: WebServer, browser: Browser) -> Iterator[Page]:
    """A page signed in to ctctsync as the administrator; fails on any script error or
    server error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    expect.set_options(timeout=10_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    create_admin(v3_web.plane)
    pg.goto(v3_web.base_url + "/login")
    pg.fill("#email", ADMIN_EMAIL)
    pg.fill("#password", ADMIN_PASSWORD)
    pg.click("main button[type=submit]")
    expect(pg.locator("h1")).to_have_text("Integrations")
    yield pg
    context.close()
    assert problems == [], problems


def shot(pg: Page, name: str) -> None:
    """A full-page screenshot of the step in ``test-artifacts/screenshots-v3/``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _add_and_authorize(pg: Page, web: WebServer, sandbox: Sandbox, name: str) -> None:
    """New integration (v3 by default) -> Authorize -> the sandbox's sign-in page."""
    pg.goto(web.base_url + "/integrations/new/constant-contact")
    expect(pg.locator("#api_version")).to_have_value("v3")
    pg.fill("#name", name)
    pg.click("main button[type=submit]")
    expect(pg.locator("h1")).to_have_text("Authorize ctctsync")
    expect(pg.locator("#v3-scopes")).to_contain_text("offline_access")
    shot(pg, "01-authorize")
    pg.click("#authorize")
    expect(pg).to_have_url(re.compile(re.escape(sandbox.authz_url) + r"/authorize\?"))
    pg.fill("#email", sandbox.credentials.email)
    pg.fill("#password", sandbox.credentials.password)
    pg.click("#sign-in")
    expect(pg.locator("#scopes")).to_contain_text("contact_data")
    shot(pg, "02-consent")


@pytest.mark.browser
def test_browser_v3_authorize_allow(page: Page, v3_web: WebServer, sandbox: Sandbox) -> None:
    _add_and_authorize(page, v3_web, sandbox, "acme")
    page.click("#allow")
    expect(page.locator("h1")).to_have_text("Choose tables")
    expect(page.locator("#authorized")).to_contain_text("API v3")
    expect(page.locator("#t-contact_tags")).to_be_enabled()
    expect(page.locator("#t-my_library_files")).to_be_disabled()
    expect(page.locator("#t-trash_files")).to_be_disabled()
    expect(page.locator("#table-picker")).to_contain_text("no MyLibrary endpoint")
    shot(page, "03-tables")
    integ = _integration(v3_web)
    assert integ.has_credentials and integ.auth_method == "oauth" and integ.api_version == "v3"
    page.click("text=Continue to fields")
    expect(page.locator("h1")).to_have_text("Choose fields")
    page.click("#submit-integration")
    expect(page.locator("#api-version")).to_have_text("v3 (OAuth2)")
    expect(page.locator("#token-status")).to_contain_text("valid until")
    shot(page, "04-details")
    page.goto(v3_web.base_url + "/admin/application")
    expect(page.locator("#client_id")).to_have_value(sandbox.credentials.api_key)
    shot(page, "05-admin-application")


@pytest.mark.browser
def test_browser_v3_authorize_deny_then_try_again(
    page: Page, v3_web: WebServer, sandbox: Sandbox
) -> None:
    _add_and_authorize(page, v3_web, sandbox, "acme")
    page.click("#deny")
    expect(page.locator("h1")).to_have_text("Authorize ctctsync")
    expect(page.locator("#authorize-denied")).to_contain_text("You chose Deny")
    shot(page, "06-denied")
    assert not _integration(v3_web).has_credentials
    page.click("#try-again")
    expect(page).to_have_url(re.compile(re.escape(sandbox.authz_url) + r"/authorize\?"))
    page.fill("#email", sandbox.credentials.email)
    page.fill("#password", sandbox.credentials.password)
    page.click("#sign-in")
    page.click("#allow")
    expect(page.locator("h1")).to_have_text("Choose tables")
    assert _integration(v3_web).has_credentials
