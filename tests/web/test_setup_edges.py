"""The add-integration setup's edges (issue 12 §4) and the accessibility items, in Chromium.

Real parts: the app served on loopback, the sandbox as Constant Contact (its v2 login page
and v3 sign-in and consent pages, each with a Deny), Debian's Chromium driven by
Playwright. Each flow runs at 1280x800; every page it stops on is also shown at 390x844,
where nothing may scroll sideways, and both are saved to
``test-artifacts/screenshots/setup-edges/<step>-desktop.png`` / ``-phone.png``. Every page
it stops on also has its live regions checked (``aria-live`` on each).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from ctctsync.control.models import Integration, Run
from ctctsync.sandbox import Sandbox
from web.helpers import WebServer, create_admin, region_screenshot
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_api import freeze
from web.test_quota_ui import browser, signed_in_page

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_quota_ui

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "setup-edges"
DESKTOP = (1280, 800)
PHONE = (390, 844)

# Every element a screen reader should follow as it changes, and whether it says so.
LIVE_REGIONS = """() => [...document.querySelectorAll(
    '[role=status], [role=alert], [role=log], [data-poll]')].map(el => ({
  what: el.id || el.className || el.tagName, live: el.getAttribute('aria-live')}))"""


# What sticks out past the window's right edge (named in a failure).
WIDEST = """() => [...document.querySelectorAll('main *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(-3).map(el => el.tagName + '#' + el.id + '.' + el.className + ' '
                 + Math.round(el.getBoundingClientRect().right))"""


def shots(page: Page, name: str) -> None:
    """``name`` at desktop and phone size (nothing sideways on the phone), and its live
    regions each marked ``aria-live``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (f"{name} at {label}: {overflow}px wider", page.evaluate(WIDEST))
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    regions = page.evaluate(LIVE_REGIONS)
    assert all(r["live"] in ("polite", "assertive") for r in regions), (name, regions)


@pytest.fixture
def edge_web(web_factory: Any, sandbox: Sandbox) -> WebServer:
    """The app (no workers) with the sandbox as Constant Contact for API v2 (its OAuth
    login page, key checks) and v3 (the PKCE sign-in and consent pages)."""
    creds = sandbox.credentials
    web: WebServer = web_factory(
        workers=0,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_id=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )
    create_admin(web.plane)
    return web


@pytest.fixture
def page(browser: Browser, edge_web: WebServer) -> Any:
    problems: list[str] = []
    pg = signed_in_page(browser, edge_web.base_url, *DESKTOP, problems)
    expect.set_options(timeout=10_000)
    yield pg
    pg.context.close()
    assert problems == [], problems


def _integration(web: WebServer, name: str) -> Integration:
    with web.plane.session() as db:
        return db.scalars(sa.select(Integration).where(Integration.name == name)).one()


def _new(page: Page, web: WebServer, name: str, version: str = "v3") -> None:
    """Steps 1-2: a new integration (history from 2020: the sandbox's account), up to the
    authorize step."""
    page.goto(web.base_url + "/integrations/new/constant-contact")
    page.fill("#name", name)
    page.select_option("#api_version", version)
    page.fill("#history_start", "2020-01-01")
    page.click("#continue-authorize")
    expect(page.locator("h1")).to_have_text("Authorize ctctsync")


def _v3_sign_in(page: Page, sandbox: Sandbox) -> None:
    expect(page).to_have_url(re.compile(re.escape(sandbox.authz_url) + r"/authorize\?"))
    page.fill("#email", sandbox.credentials.email)
    page.fill("#password", sandbox.credentials.password)
    page.click("#sign-in")
    expect(page.locator("#allow")).to_be_visible()


def test_deny_on_constant_contacts_page(page: Page, edge_web: WebServer, sandbox: Sandbox) -> None:
    """Deny, on v3's consent page and on v2's login page: back on the authorize step with
    what happened in plain words and "Try again", nothing stored; trying again works."""
    _new(page, edge_web, "acme")
    page.click("#authorize")
    _v3_sign_in(page, sandbox)
    page.click("#deny")
    denied = page.locator("#authorize-denied")
    expect(denied).to_contain_text("You chose Deny")
    expect(denied).to_have_attribute("role", "alert")
    assert "access_denied" not in page.content()  # no raw OAuth words
    shots(page, "01-v3-denied")
    assert not _integration(edge_web, "acme").has_credentials
    page.click("#try-again")
    _v3_sign_in(page, sandbox)
    page.click("#allow")
    expect(page.locator("h1")).to_have_text("Choose tables")
    assert _integration(edge_web, "acme").has_credentials

    _new(page, edge_web, "legacy", "v2")
    page.click("#authorize")
    expect(page).to_have_url(re.compile(r"/oauth2/oauth/siteowner/authorize\?"))
    page.click("button[value=deny]")
    expect(page.locator("#authorize-denied")).to_contain_text("You chose Deny")
    expect(page.locator(".steps li[aria-current=step]")).to_contain_text("3. Authorize")
    shots(page, "02-v2-denied")
    assert not _integration(edge_web, "legacy").has_credentials
    page.click("#try-again")
    page.fill("#email", sandbox.credentials.email)
    page.fill("#password", sandbox.credentials.password)
    page.click("button[value=allow]")
    expect(page.locator("h1")).to_have_text("Choose tables")


def test_callback_errors_each_get_a_way_forward(
    page: Page, edge_web: WebServer, sandbox: Sandbox
) -> None:
    """Other callback errors: Constant Contact's error on a known authorization, a state
    nobody issued, no code at all, and an authorization left open past its lifetime."""
    base = edge_web.base_url
    _new(page, edge_web, "acme", "v2")
    page.click("#authorize")
    state = re.search(r"state=([^&]+)", page.url).group(1)  # type: ignore[union-attr]
    # an error CC sends for this browser's authorization: the step, explained
    page.goto(f"{base}/oauth/callback?state={state}&error=invalid_scope&error_description=x")
    expect(page.locator("#authorize-error")).to_contain_text("would not grant the access")
    expect(page.locator("#cc-answer")).to_contain_text("invalid_scope: x")
    shots(page, "03-cc-error")
    # Deny with no state (or someone else's): no integration is named, the way on is
    for url, words, name in (
        ("/oauth/callback?error=access_denied", "Deny was chosen", "04-denied-unknown"),
        ("/oauth/callback?state=forged&code=abc", "expired or was already used", "05-bad-state"),
        ("/oauth/callback", "brought no authorization code", "06-no-code"),
    ):
        response = page.goto(base + url)
        assert response is not None and response.status == 400
        expect(page.locator("h1")).to_have_text("Constant Contact was not connected")
        expect(page.locator("#problem")).to_contain_text(words)
        expect(page.locator("#problem-next")).to_have_attribute("href", "/integrations")
        expect(page.locator("header.topnav")).to_be_visible()  # still signed in, and shown so
        shots(page, name)
    # an authorization left open longer than its lifetime: back to the step, say why
    clock = freeze(edge_web, datetime.now(UTC))
    page.goto(f"{base}/integrations/{_integration(edge_web, 'acme').id}/setup/authorize")
    page.click("#authorize")
    page.fill("#email", sandbox.credentials.email)
    page.fill("#password", sandbox.credentials.password)
    clock.advance(timedelta(seconds=edge_web.settings.oauth_state_ttl_seconds + 60))
    page.click("button[value=allow]")
    expect(page.locator("#authorize-expired")).to_contain_text("more than 15 minutes")
    shots(page, "07-expired")
    assert not _integration(edge_web, "acme").has_credentials
    page.click("#try-again")
    page.fill("#email", sandbox.credentials.email)
    page.fill("#password", sandbox.credentials.password)
    page.click("button[value=allow]")
    expect(page.locator("h1")).to_have_text("Choose tables")


def _step_links(page: Page) -> dict[str, str]:
    links = page.locator(".steps a")
    return {
        links.nth(i).get_attribute("data-step") or "": links.nth(i).get_attribute("href") or ""
        for i in range(links.count())
    }


def test_an_unfinished_setup_is_a_draft(
    page: Page, edge_web: WebServer, sandbox: Sandbox
) -> None:
    """A setup left half-way: "Setup not finished" with Continue, no tables claimed, never
    scheduled; the step pills go back (Authorize -> step 2), Continue returns to the step
    it stopped at, Submit makes it Pending, Delete removes a draft."""
    base = edge_web.base_url
    _new(page, edge_web, "acme")
    integ = _integration(edge_web, "acme")
    assert integ.state == "draft"
    setup = f"/integrations/{integ.id}/setup"
    # step 3's pills: back to step 2 only (the source is not revisited)
    assert _step_links(page) == {"2": f"{setup}/details"}
    page.click(".steps a[data-step='2']")
    expect(page.locator("#name")).to_have_value("acme")
    expect(page.locator("#frequency_hours")).to_have_value("24")
    page.fill("#name", "acme_news")
    page.select_option("#frequency_hours", "6")
    shots(page, "08-back-to-step-2")
    page.click("#continue-authorize")
    expect(page.locator("h1")).to_have_text("Authorize ctctsync")
    integ = _integration(edge_web, "acme_news")
    assert (integ.id, integ.frequency_hours, integ.state) == (integ.id, 6, "draft")

    page.goto(base + "/integrations")
    row = page.locator("tr[data-integration=acme_news]")
    expect(row.locator(".badge")).to_have_text("Setup not finished")
    expect(row).to_contain_text("Next: authorize")
    expect(row).to_contain_text("Not scheduled")
    shots(page, "09-list-draft")
    page.click(f"a[href='/integrations/{integ.id}']")
    expect(page.locator("#state-card .badge")).to_have_text("Setup not finished")
    expect(page.locator("#draft-tables")).to_contain_text("None chosen yet")
    assert page.locator("#tables, #budget, #run-now, #pause, #edit, #schema-link").count() == 0
    shots(page, "10-details-draft")
    assert edge_web.plane.tick().enqueued == []  # never scheduled

    # Continue returns to where it stopped: authorize, then (authorized) the tables
    page.click("#continue-setup")
    expect(page.locator("h1")).to_have_text("Authorize ctctsync")
    page.click("#manual-credentials")
    page.fill("#api_key", sandbox.credentials.api_key)
    page.fill("#access_token", sandbox.credentials.access_token)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Choose tables")
    assert _step_links(page) == {"2": f"{setup}/details", "3": f"{setup}/authorize"}
    page.goto(base + "/integrations")
    expect(page.locator("tr[data-integration=acme_news]")).to_contain_text("Next: choose tables")
    page.click("#continue-acme_news")
    expect(page.locator("h1")).to_have_text("Choose tables")
    page.click("text=Continue to fields")
    expect(page.locator("h1")).to_have_text("Choose fields")
    assert set(_step_links(page)) == {"2", "3", "4"}
    shots(page, "11-fields-pills")
    assert edge_web.plane.tick().enqueued == []
    page.click("#submit-integration")
    expect(page.locator("#state-card .badge")).to_have_text("Pending")
    assert _integration(edge_web, "acme_news").state == "pending"
    assert len(edge_web.plane.tick().enqueued) == 1

    # a draft is deleted like any integration
    _new(page, edge_web, "halfway")
    page.goto(f"{base}/integrations/{_integration(edge_web, 'halfway').id}")
    page.click("#delete")
    page.click("#confirm-delete")
    expect(page.locator(".flash-ok")).to_contain_text("halfway is deleted")
    expect(page.locator("tr[data-integration=halfway]")).to_have_count(0)


def test_a_bad_token_in_first_setup(page: Page, edge_web: WebServer, sandbox: Sandbox) -> None:
    """A token Constant Contact refuses: "not accepted" (not "revoked, re-authorize"), the
    API key still filled in, the token never echoed; the right token then goes through."""
    _new(page, edge_web, "acme", "v2")
    page.click("#manual-credentials")
    bad = "not-a-real-token-" + "x" * 20
    page.fill("#api_key", sandbox.credentials.api_key)
    page.fill("#access_token", bad)
    page.click("main button[type=submit]")
    error = page.locator("#access_token-error")
    expect(error).to_contain_text("did not accept this access token")
    text = error.inner_text()
    assert "revoked" not in text and "Re-authorize" not in text
    expect(page.locator("#api_key")).to_have_value(sandbox.credentials.api_key)
    expect(page.locator("#access_token")).to_have_value("")
    assert bad not in page.content()
    shots(page, "12-bad-token")
    assert not _integration(edge_web, "acme").has_credentials
    page.fill("#access_token", sandbox.credentials.access_token)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Choose tables")


# --------------------------------------------------------------------------- badges

BADGES = """() => [...document.querySelectorAll('.badge[data-state]')].map(el => {
  const s = getComputedStyle(el), b = getComputedStyle(el, '::before');
  return {state: el.dataset.state, color: s.color, background: s.backgroundColor,
          borderStyle: s.borderTopStyle, mark: [b.content, b.borderRadius, b.backgroundColor,
          b.backgroundImage, b.borderTopWidth, b.clipPath, b.transform].join(' | ')};
})"""


def _rgb(css: str) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


def _luminance(css: str) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = _rgb(css)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two opaque ``rgb(...)`` colours."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_status_badges_differ_by_more_than_a_shade(page: Page, edge_web: WebServer) -> None:
    """Each state a job or an integration shows: its own mark, and text at >= 4.5:1; Waiting
    (queued) and Running differ in fill, border and mark, not in a shade of blue."""
    from ctctsync.control import services as svc
    from ctctsync.control.schemas import IntegrationCreate

    with edge_web.plane.session() as db:
        admin = svc.get_user(db, 1)
        assert admin is not None
        integ = svc.create_integration(db, admin, IntegrationCreate(name="acme"))
        now = datetime.now(UTC)
        for status in ("succeeded", "failed", "cancelled", "partial", "deferred", "running",
                       "queued"):
            # the running job is on its first table: the others read Waiting on its page
            db.add(Run(integration_id=integ.id, trigger="manual", status=status,
                       created_at=now, rows={},
                       table_status={"contacts": "running"} if status == "running" else {},
                       started_at=None if status in ("queued", "deferred") else now))
        db.commit()
        integ_id = integ.id
        running_id = db.scalar(sa.select(Run.id).where(Run.status == "running"))
    page.goto(f"{edge_web.base_url}/integrations/{integ_id}")
    expect(page.locator("#jobs tbody tr")).to_have_count(7)
    shots(page, "13-badges")
    region_screenshot(page, "#jobs", SHOTS / "13-badges-jobs.png")
    page.goto(f"{edge_web.base_url}/integrations")
    badges = page.evaluate(BADGES)
    page.goto(f"{edge_web.base_url}/integrations/{integ_id}")
    badges += page.evaluate(BADGES)
    page.goto(f"{edge_web.base_url}/jobs/{running_id}")
    expect(page.locator("#job-tables .badge-waiting").first).to_have_text("Waiting")
    shots(page, "13-badges-job-waiting")
    badges += page.evaluate(BADGES)
    seen = {b["state"]: b for b in badges}
    assert {"pending", "queued", "waiting", "running", "succeeded", "failed", "deferred"} <= set(
        seen
    )
    for b in badges:
        ratio = contrast(b["color"], b["background"])
        assert ratio >= 4.5, (b["state"], round(ratio, 2), b)
    running = seen["running"]
    for waiting in (seen["queued"], seen["waiting"]):
        # not a shade apart: one is a white dashed pill, the other a solid dark one
        gap = abs(_luminance(waiting["background"]) - _luminance(running["background"]))
        assert gap > 0.5, (waiting, running)
        assert (waiting["borderStyle"], running["borderStyle"]) == ("dashed", "solid")
        assert waiting["mark"] != running["mark"]
    marks = {b["state"]: b["mark"] for b in badges if b["state"] not in ("full", "incremental")}
    assert marks["queued"] != marks["running"] != marks["succeeded"] != marks["failed"]
    assert len({marks[s] for s in ("queued", "running", "succeeded", "failed", "pending")}) == 5


# --------------------------------------------------------------------------- risky actions


@pytest.fixture
def live_web(web_factory: Any, sandbox: Sandbox) -> WebServer:
    """The app with a running scheduler and one worker, the sandbox as Constant Contact."""
    creds = sandbox.credentials
    web: WebServer = web_factory(
        start_plane=True,
        workers=1,
        scheduler_interval_seconds=0.5,
        heartbeat_seconds=1.0,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )
    create_admin(web.plane)
    return web


def test_risky_actions_say_what_they_cost(
    browser: Browser, live_web: WebServer, sandbox: Sandbox
) -> None:
    """Re-sync asks first with its estimated API calls; unticking a table in Edit says what
    becomes of its warehouse table; Delete lists the tables and rows it keeps or drops."""
    from ctctsync.control.services.warehouse import warehouse_config
    from ctctsync.warehouse import warehouse_tables

    problems: list[str] = []
    page = signed_in_page(browser, live_web.base_url, *DESKTOP, problems)
    expect.set_options(timeout=10_000)
    base = live_web.base_url
    _new(page, live_web, "acme", "v2")
    page.click("#manual-credentials")
    page.fill("#api_key", sandbox.credentials.api_key)
    page.fill("#access_token", sandbox.credentials.access_token)
    page.click("main button[type=submit]")
    page.click("[data-check-none=table-picker]")  # a small account: three tables
    for table in ("contacts", "contact_lists", "email_campaigns"):
        page.check(f"#t-{table}")
    page.click("text=Continue to fields")
    page.click("#submit-integration")
    expect(page.locator("#state-card .badge")).to_have_text("Active", timeout=90_000)
    integ_id = _integration(live_web, "acme").id
    with live_web.plane.session() as db:
        truth = warehouse_tables(warehouse_config(db), "acme")
    assert truth["acme_contacts"] > 0

    # re-sync: a confirm step with the planner's estimate, the key's day, the table's rows
    page.click("#tables tr[data-table=contacts] >> text=Re-sync")
    expect(page.locator("h1")).to_have_text("Re-sync Contacts?")
    with live_web.plane.session() as db:
        from ctctsync.control.services import quota

        integ = db.get(Integration, integ_id)
        assert integ is not None
        expected = quota.admit(
            db, integ, trigger="resync", tables=["contacts"], full_refresh=["contacts"]
        ).estimate.calls
    expect(page.locator("#resync-calls")).to_have_text(f"~{expected:,}")
    expect(page.locator("#resync-share")).to_contain_text("calls a day")
    expect(page.locator("#resync-table")).to_contain_text(
        f"acme_contacts ({truth['acme_contacts']:,} rows now) is replaced"
    )
    shots(page, "14-resync-confirm")
    with live_web.plane.session() as db:
        runs_before = db.scalar(sa.select(sa.func.count()).select_from(Run))
    page.click("#resync-cancel")  # asking costs nothing
    with live_web.plane.session() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Run)) == runs_before
    page.click("#tables tr[data-table=contacts] >> text=Re-sync")
    page.click("#confirm-resync")
    expect(page.locator(".flash-ok")).to_contain_text("re-read")
    expect(page.locator("#job-summary")).to_have_attribute(
        "data-status", "succeeded", timeout=90_000
    )

    # edit: unticking a table says what becomes of its warehouse table
    page.goto(f"{base}/integrations/{integ_id}/edit")
    note = page.locator("#untick-contact_lists")
    expect(note).to_be_hidden()
    page.uncheck("#t-contact_lists")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"acme_contact_lists keeps its {truth['acme_contact_lists']:,}")
    shots(page, "15-edit-untick")
    page.locator(".fields-table[data-table=contact_lists]").screenshot(
        path=str(SHOTS / "15-edit-untick-card.png")
    )
    page.click("#save")
    flash = page.locator(".flash-ok")
    expect(flash).to_contain_text("No longer replicated: contact_lists")
    expect(flash).to_contain_text("acme_contact_lists) keep the rows loaded so far")

    # delete: every warehouse table with its rows, and what each choice does with them
    page.click("#delete")
    with live_web.plane.session() as db:
        now = warehouse_tables(warehouse_config(db), "acme")
    listed = page.locator("#warehouse-tables tbody tr")
    expect(listed).to_have_count(len(now))
    for name, rows in now.items():
        expect(page.locator(f"tr[data-warehouse-table={name}]")).to_contain_text(f"{rows:,}")
    total = sum(now.values())
    expect(page.locator("#keep-effect")).to_contain_text(f"their {total:,} rows stay")
    expect(page.locator("#drop-effect")).to_contain_text(f"their {total:,} rows are dropped")
    shots(page, "16-delete")
    page.check("#drop-tables")
    page.click("#confirm-delete")
    expect(page.locator(".flash-ok")).to_contain_text(f"with {len(now)} warehouse table(s)")
    page.context.close()
    assert problems == [], problems
