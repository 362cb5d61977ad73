"""The whole operator flow in a real browser (Debian's Chromium, headless) against the sandbox.

Set up the first administrator, add a Constant Contact API v2 integration (OAuth login on
the sandbox's v2 authorize page with the account's email and password; the v3 sign-in and
consent pages have their own browser test in ``test_v3_authorize.py``), choose tables and fields,
submit, watch it go Pending -> Active as its first job loads data, open the job and its
log, edit fields, pause, re-activate, run now, re-sync a table, and delete it. Every step
leaves a screenshot in ``test-artifacts/screenshots/``.

Skipped when ``/usr/bin/chromium`` is missing, except in CI (``CI=true``), where that fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)

from ctctsync.control import services as svc
from ctctsync.control.models import Integration
from ctctsync.sandbox import Sandbox
from ctctsync.warehouse import warehouse_tables
from web.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, WebServer

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
JOB_TIMEOUT_MS = 90_000
"""Upper bound for one sync of the small sandbox account (it takes a few seconds)."""


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
def page(browser: Browser) -> Iterator[Page]:
    """A laptop-sized page (1280x800). The test fails on any script error, console error
    (a Content-Security-Policy violation is one), server error, or missing page asset."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    expect.set_options(timeout=10_000)
    pg = context.new_page()
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # 401/422 answers to bad forms are deliberate; the response check below covers the rest
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console: {msg.text}")

    def on_response(resp: Response) -> None:
        if resp.status >= 500 or (resp.status == 404 and "/favicon.ico" not in resp.url):
            problems.append(f"{resp.status} {resp.request.method} {resp.url}")

    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on("console", on_console)
    pg.on("response", on_response)
    yield pg
    context.close()
    assert problems == [], problems


@pytest.fixture
def shot() -> Callable[[Page, str], None]:
    """``shot(page, "03-name")`` saves a full-page screenshot of the current step."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):  # only this run's steps, none left from before
        old.unlink()

    def take(pg: Page, name: str) -> None:
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def live(web_factory: Callable[..., WebServer], sandbox: Sandbox) -> WebServer:
    """The web app with a running scheduler and worker, pointed at the sandbox."""
    creds = sandbox.credentials
    return web_factory(
        start_plane=True,
        workers=1,
        scheduler_interval_seconds=0.5,
        heartbeat_seconds=1.0,
        stale_after_seconds=60.0,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )


def state_badge(pg: Page) -> object:
    return pg.locator("#state-card .badge")


def test_operator_flow(
    live: WebServer, sandbox: Sandbox, page: Page, shot: Callable[[Page, str], None]
) -> None:
    # (``live`` before ``page``: the browser closes before the server stops.)
    base = live.base_url
    creds = sandbox.credentials

    # ---- first administrator (the setup page exists only while no user does)
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.fill("#password_again", ADMIN_PASSWORD)
    shot(page, "01-setup")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Integrations")
    shot(page, "02-integrations-empty")

    # ---- sign out and in again
    page.click("text=Sign out")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", "not the password")
    page.click("main button[type=submit]")
    expect(page.locator(".flash-error")).to_contain_text("do not match")
    page.fill("#password", ADMIN_PASSWORD)
    shot(page, "03-sign-in")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Integrations")

    # ---- add an integration: source, then name / frequency / history / API version
    page.click("text=Add integration")
    page.click("#choose-constant-contact")
    expect(page.locator("#frequency_hours")).to_have_value("24")
    expect(page.locator("#api_version")).to_have_value("v3")  # new integrations: v3
    expect(page.locator(".field .hint").first).to_contain_text(
        "cannot be changed once the setup is finished"
    )
    page.fill("#name", "Acme Newsletter")
    page.fill("#history_start", "2099-01-01")
    page.click("main button[type=submit]")
    expect(page.locator('[data-error-for="name"]')).to_contain_text("lower-case")
    expect(page.locator('[data-error-for="history_start"]')).to_contain_text("future")
    shot(page, "04-new-integration-errors")
    page.fill("#name", "acme")
    page.fill("#history_start", "2020-01-01")
    page.select_option("#frequency_hours", "24")
    page.select_option("#api_version", "v2")  # this flow is v2's OAuth login
    shot(page, "05-new-integration")
    page.click("main button[type=submit]")

    # ---- authorize on the sandbox's Constant Contact (v2) login page
    expect(page.locator("h1")).to_have_text("Authorize ctctsync")
    expect(page.locator("main")).to_contain_text("legacy API v2")
    shot(page, "06-authorize")
    page.click("#authorize")
    expect(page).to_have_url(re.compile(r"/oauth2/oauth/siteowner/authorize"))
    page.fill("input[name=email]", creds.email)
    page.fill("input[name=password]", creds.password)
    shot(page, "07-constant-contact-login")
    page.click("button[value=allow]")

    # ---- tables: every table offered with its purpose and replication type, all checked
    expect(page.locator("h1")).to_have_text("Choose tables")
    boxes = page.locator("#table-picker input[name=tables]")
    expect(boxes).to_have_count(9)
    for i in range(9):
        expect(boxes.nth(i)).to_be_checked()
    expect(page.locator("#table-picker")).to_contain_text("Key-based (lastRunDate)")
    expect(page.locator("#table-picker")).to_contain_text("Full")
    page.click("[data-check-none=table-picker]")
    page.click("text=Continue to fields")
    expect(page.locator('[data-error-for="tables"]')).to_contain_text("at least one table")
    page.click("[data-check-all=table-picker]")
    page.uncheck("#t-trash_files")
    shot(page, "08-tables")
    page.click("text=Continue to fields")

    # ---- fields: all selected, keys locked
    expect(page.locator("h1")).to_have_text("Choose fields")
    expect(page.locator('[data-table="trash_files"]')).to_have_count(0)
    contacts = page.locator('.fields-table[data-table="contacts"]')
    key = contacts.locator('input[data-locked="1"][value="id"]')
    expect(key).to_be_checked()
    expect(key).to_be_disabled()
    expect(contacts.locator('input[value="fax"]')).to_be_checked()
    contacts.locator('input[value="fax"]').uncheck()
    contacts.locator('input[value="notes"]').uncheck()
    shot(page, "09-fields")
    page.click("#submit-integration")

    # ---- Pending, then Active once the first job loaded data (the page polls)
    expect(page.locator("#integration-name")).to_have_text("acme")
    expect(page.locator(".flash-ok")).to_contain_text("is set up")
    shot(page, "10-pending")
    expect(state_badge(page)).to_have_text("Active", timeout=JOB_TIMEOUT_MS)
    # the state's own message follows it (issue 12: no "Pending" words beside Active)
    expect(page.locator("#state-reason")).not_to_contain_text("first job")
    first_job = page.locator("#jobs tbody tr").first
    expect(first_job).to_have_attribute("data-status", "succeeded")
    shot(page, "11-active")
    with live.plane.session() as db:
        integ = db.scalar(sa.select(Integration).where(Integration.name == "acme"))
        assert integ is not None
        assert "trash_files" not in integ.tables
        assert "fax" not in (integ.tables["contacts"] or [])

    # ---- the job and its process log
    first_job.locator("a").first.click()
    expect(page.locator("#job-summary")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#log")).to_contain_text("contacts")
    contacts_row = page.locator('#job-tables tr[data-table="contacts"]')
    expect(contacts_row.locator("td.rows")).not_to_have_text("—")
    expect(contacts_row.locator("td.seconds")).to_contain_text(" s")  # from the log line
    shot(page, "12-job-log")
    assert creds.access_token not in page.content()
    assert creds.client_secret not in page.content()

    # ---- the list shows the state and the last job
    page.click("nav >> text=Integrations")
    row = page.locator('tr[data-integration="acme"]')
    expect(row.locator(".badge").first).to_have_text("Active")
    expect(row).to_contain_text("Succeeded")
    shot(page, "13-integrations-list")

    # ---- edit the fields (the name cannot change)
    row.locator("a").first.click()
    page.click("#edit")
    expect(page.locator("#name")).to_have_attribute("readonly", "")
    page.locator('.fields-table[data-table="contacts"] input[value="job_title"]').uncheck()
    page.select_option("#frequency_hours", "12")
    shot(page, "14-edit")
    page.click("#save")
    expect(page.locator(".flash-ok")).to_contain_text("Changes saved")
    expect(page.locator("dl.facts")).to_contain_text("Every 12 hours")

    # ---- pause, re-activate
    page.click("#pause")
    expect(state_badge(page)).to_have_text("Paused")
    shot(page, "15-paused")
    page.click("#reactivate")
    expect(state_badge(page)).to_have_text("Active")

    # ---- run now: the job page updates live until the job is finished (a slower sandbox
    # keeps the job running long enough to see it)
    sandbox.faults.add("latency", "*", latency_ms=120)
    page.click("#run-now")
    expect(page.locator("h1")).to_contain_text("Job")
    # re-activation made a scheduled job due now: this one may wait for it (one job per
    # integration at a time), so "running" can take as long as a job
    expect(page.locator("#job-summary")).to_have_attribute(
        "data-status", "running", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#log")).to_contain_text("syncing")
    expect(page.locator("#log-live")).to_be_visible()
    shot(page, "16-run-now-running")
    expect(page.locator("#job-summary")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_TIMEOUT_MS
    )
    sandbox.faults.clear()
    expect(page.locator("#log")).to_contain_text("succeeded")
    expect(page.locator("#log-live")).to_have_count(0)
    shot(page, "17-run-now-finished")

    # ---- re-sync one table
    page.click(".crumbs >> text=acme")
    page.locator('#tables tr[data-table="contact_lists"] >> text=Re-sync').click()
    expect(page.locator("#resync-calls")).to_contain_text("~")  # it asks first, with the cost
    page.click("#confirm-resync")
    expect(page.locator(".flash-ok")).to_contain_text("re-read")
    expect(page.locator("#job-summary")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#job-tables tbody tr")).to_have_count(1)
    shot(page, "18-resync")

    # ---- Constant Contact revokes the token: the job fails, the integration needs
    # re-authorization, and "Re-authorize" (OAuth again) brings it back
    with live.plane.session() as db:
        integ = db.scalar(sa.select(Integration).where(Integration.name == "acme"))
        assert integ is not None
        token = svc.integration_credentials(db, integ)["access_token"]
    assert sandbox.revoke_token(token)
    page.click(".crumbs >> text=acme")
    page.click("#run-now")
    expect(page.locator("#job-summary")).to_have_attribute(
        "data-status", "failed", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#job-message[data-message=failed]")).to_be_visible()
    assert token not in page.content()
    shot(page, "19-job-failed")
    page.click(".crumbs >> text=acme")
    expect(state_badge(page)).to_have_text("Needs re-authorization")
    expect(page.locator("#state-reason")).not_to_be_empty()
    shot(page, "20-needs-reauth")
    page.click("#reauthorize")
    page.fill("input[name=email]", creds.email)
    page.fill("input[name=password]", creds.password)
    page.click("button[value=allow]")
    expect(page.locator(".flash-ok")).to_contain_text("authorized again")
    expect(state_badge(page)).to_have_text("Active")
    # new credentials: a job runs right away, and the page follows it to the end
    expect(page.locator("#jobs tbody tr").first).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator('#jobs tbody tr[data-status="failed"]')).to_have_count(1)
    shot(page, "21-reauthorized")

    # ---- API tokens and the warehouse
    page.click("nav >> text=API tokens")
    page.fill("#name", "airflow")
    page.click("#create-token")
    expect(page.locator("#token-value")).to_contain_text("ctct_")
    shot(page, "22-api-token")
    page.click("nav >> text=Warehouse")
    page.click("#test-warehouse")
    expect(page.locator("#test-result")).to_contain_text("Connection works.")
    shot(page, "23-warehouse")

    # ---- delete, dropping the warehouse tables
    with live.plane.session() as db:
        wcfg = svc.warehouse_config(db)
    assert warehouse_tables(wcfg, "acme")["acme_contacts"] > 0
    page.click("nav >> text=Integrations")
    page.click('tr[data-integration="acme"] a')
    page.click("#delete")
    expect(page.locator("h1")).to_have_text("Delete acme?")
    page.check("#drop-tables")
    shot(page, "24-delete-confirm")
    page.click("#confirm-delete")
    expect(page.locator(".flash-ok")).to_contain_text("acme is deleted")
    expect(page.locator('tr[data-integration="acme"]')).to_have_count(0)
    assert warehouse_tables(wcfg, "acme") == {}
    shot(page, "25-deleted")
