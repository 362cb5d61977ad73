"""The API budget in the web UI (issue 10): the API quota page (per key a usage bar, the
limits, each integration's estimated calls), administrators editing a key's limits, the
estimate and the campaign polling tiers on the details page, deferred jobs with their reason,
and "Run now" asking first when the quota will not cover the job.

HTTP tests play the browser with ``httpx`` (forms with their CSRF token); one Playwright test
drives Debian's Chromium through the quota page, the details page and a limit edit at
1280x800 and 390x844, saving screenshots to ``test-artifacts/screenshots/quota-*.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from ctctsync.control import services as svc
from ctctsync.control.models import Run, User
from ctctsync.control.schemas import IntegrationCreate, KeyLimitsIn
from ctctsync.control.services import quota
from ctctsync.web.quota import UsageBar, events_sentence, every_words, polling_sentence
from web.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    WebClient,
    WebServer,
    create_admin,
    region_screenshot,
)
from web.test_browser_flow import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from web.test_quota_api import (
    API_KEY,
    KEY,
    LABEL,
    NOON,
    PER_RUN,
    RUNS_LEFT,
    USED_TODAY,
    add_v2_integration,
    admin_of,
    freeze,
)

DEFAULT_POLLING = (
    "Campaign activity is checked every run for campaigns sent in the last 30 days, daily up "
    "to 90 days, weekly after; every campaign is re-read in full every 30 days."
)


@pytest.fixture
def acme(web: WebServer, admin: WebClient) -> int:
    """acme: v2, hourly, three incremental runs this morning (see test_quota_api)."""
    freeze(web, NOON)
    return add_v2_integration(web, "acme")


def ann(web: WebServer) -> WebClient:
    """A signed-in user who is not an administrator."""
    with web.plane.session() as db:
        svc.create_user(db, "ann@example.com", "correct horse battery")
    client = web.client()
    client.sign_in("ann@example.com", "correct horse battery")
    return client


def set_limits(web: WebServer, **limits: int | float | None) -> None:
    with web.plane.session() as db:
        quota.set_key_limits(db, admin_of(db), KEY, KeyLimitsIn(**limits))  # type: ignore[arg-type]


def cell(html: str, row: str, cls: str) -> str:
    """The text of the ``cls`` cell in the row of integration ``row``."""
    match = re.search(
        rf'data-integration="{row}".*?class="[^"]*\b{cls}\b[^"]*">([^<]*)<', html, re.S
    )
    assert match, f"no {cls} for {row}"
    return match.group(1).strip()


# ----------------------------------------------------------------------------- pure helpers


def test_usage_bar_widths() -> None:
    bar = UsageBar(used=2_500, reserved=5_000, limit=10_000)
    assert (bar.used_width, bar.reserved_width, bar.left, bar.over) == (250, 500, 2_500, False)
    over = UsageBar(used=8_000, reserved=5_000, limit=10_000)
    assert (over.used_width, over.reserved_width, over.left, over.over) == (800, 200, -3_000, True)
    spent = UsageBar(used=12_000, reserved=10, limit=10_000)
    assert (spent.used_width, spent.reserved_width, spent.percent_used) == (1000, 0, 120)


def test_polling_in_plain_words() -> None:
    assert polling_sentence(
        recent_days=30, older_days=90, older_every_hours=24, oldest_every_hours=168,
        recheck_days=30,
    ) == DEFAULT_POLLING
    assert [every_words(h) for h in (1, 6, 48, 24 * 14)] == [
        "hourly", "every 6 hours", "every 2 days", "every 14 days"
    ]
    assert events_sentence(24).endswith("and otherwise daily.")
    assert events_sentence(0).endswith("and otherwise on every run.")


# ----------------------------------------------------------------------------- the quota page


def test_quota_page_needs_sign_in(web: WebServer) -> None:
    create_admin(web.plane)
    r = web.client().get("/quota")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_quota_page_shows_each_key_and_integration(
    admin: WebClient, web: WebServer, acme: int
) -> None:
    r = admin.get("/quota")
    assert r.status_code == 200
    html = r.text
    assert 'id="nav-quota"' in html and 'class="current" id="nav-quota"' in html
    assert f'id="key-{KEY}"' in html and LABEL in html
    assert API_KEY not in html
    assert f'<strong class="used-today">{USED_TODAY}</strong>' in html
    assert f'<strong class="reserved-today">~{RUNS_LEFT * PER_RUN}</strong> for {RUNS_LEFT}' in html
    headroom = 10_000 - USED_TODAY - RUNS_LEFT * PER_RUN
    assert f'<strong class="headroom">{headroom:,}</strong> of 10,000' in html
    assert re.search(r'class="per-second">4 <span class="small muted">\(default\)', html)
    assert cell(html, "acme", "calls-per-run") == f"~{PER_RUN}"
    assert cell(html, "acme", "calls-per-day") == f"~{24 * PER_RUN}"
    assert "median of the last 3 incremental runs" in html
    # the bar, in units of 1000: used 23 of 10,000 = 2, then the reserved 84 up to 11
    bar = UsageBar(USED_TODAY, RUNS_LEFT * PER_RUN, 10_000)
    assert f'class="used" x="0" y="0" height="14" width="{bar.used_width}"' in html
    assert f'width="{bar.reserved_width}"' in html
    assert 'href="/quota/keys/' in html  # admins may edit


def test_quota_page_warns_when_the_schedule_does_not_fit(
    admin: WebClient, web: WebServer, acme: int
) -> None:
    set_limits(web, per_day=100)  # 168 a day planned
    html = admin.get("/quota").text
    assert "more than the limit" in html
    assert 'class="notice small below key-warning"' in html
    assert "~168 calls a day of 100" in html


def test_editing_limits_is_for_admins(web: WebServer, acme: int) -> None:
    user = ann(web)
    assert 'href="/quota/keys/' not in user.get("/quota").text
    assert user.get(f"/quota/keys/{KEY}").status_code == 403
    csrf = user.csrf("/quota")
    r = user.http.post(f"/quota/keys/{KEY}", data={"per_day": "5", "csrf_token": csrf})
    assert r.status_code == 403
    with web.plane.session() as db:
        assert quota.list_key_limits(db, admin_of(db))[0].per_day_is_default


def test_edit_limits_validation_then_save(admin: WebClient, web: WebServer, acme: int) -> None:
    page = f"/quota/keys/{KEY}"
    form = admin.get(page)
    assert form.status_code == 200 and 'id="per_second"' in form.text
    assert API_KEY not in form.text
    bad = admin.post(page, {"per_second": "0", "per_day": "many"})
    assert bad.status_code == 422
    assert 'data-error-for="per_second"' in bad.text and "0.1" in bad.text
    assert 'data-error-for="per_day"' in bad.text and "valid integer" in bad.text
    assert 'value="many"' in bad.text  # what was typed stays to be corrected
    with web.plane.session() as db:
        assert quota.list_key_limits(db, admin_of(db))[0].per_day_is_default  # nothing saved

    saved = admin.post(page, {"per_second": "10", "per_day": "250,000"})
    assert saved.status_code == 303 and saved.headers["location"] == "/quota"
    html = admin.get("/quota").text
    assert "10 per second, 250,000 per day" in html  # the flash
    assert re.search(r'class="per-day">250,000</dd>', html)
    with web.plane.session() as db:
        [limits] = quota.list_key_limits(db, admin_of(db))
        assert (limits.per_second, limits.per_day) == (10.0, 250_000)

    cleared = admin.post(page, {"per_second": "", "per_day": ""})
    assert cleared.status_code == 303
    with web.plane.session() as db:
        [limits] = quota.list_key_limits(db, admin_of(db))
        assert limits.per_second_is_default and limits.per_day_is_default


def test_unknown_key_pages_are_not_found(admin: WebClient, acme: int) -> None:
    assert admin.get("/quota/keys/0123456789abcdef").status_code == 404
    assert admin.get("/quota/keys/NOT-A-KEY").status_code == 404


# ----------------------------------------------------------------------------- details page


def test_details_show_the_estimate_and_polling_tiers(admin: WebClient, acme: int) -> None:
    html = admin.get(f"/integrations/{acme}").text
    assert f'<strong id="calls-per-run">~{PER_RUN}</strong> per run' in html
    assert f'<strong id="calls-per-day">~{24 * PER_RUN}</strong> per day (24 runs a day)' in html
    assert "Median of the last 3 incremental runs." in html
    assert f"{LABEL}: 10,000 calls a day, 4 a second" in html
    share = round(24 * PER_RUN * 100 / 10_000, 1)
    assert f"<strong>{share} %</strong> of the key's daily quota" in html
    assert f'<dd id="campaign-polling">{DEFAULT_POLLING}</dd>' in html
    assert 'id="event-polling"' not in html  # a v2 integration: events are read whole
    assert API_KEY not in html


# ----------------------------------------------------------------------------- deferred jobs


def test_run_now_asks_first_when_the_quota_is_spent(
    admin: WebClient, web: WebServer, acme: int
) -> None:
    set_limits(web, per_day=30)  # 23 used, 7 reserved for the next scheduled run
    details = f"/integrations/{acme}"
    r = admin.post(f"{details}/run", form_page=details)
    assert r.status_code == 200
    assert 'id="quota-reason"' in r.text and "00:00 UTC" in r.text
    with web.plane.session() as db:
        assert db.scalar(sa.select(sa.func.count()).where(Run.status == "queued")) == 0

    queued = admin.post(f"{details}/run", {"when_quota_allows": "1"}, form_page=details)
    assert queued.status_code == 303
    job = queued.headers["location"]
    assert job.startswith("/jobs/")
    assert web.plane.claim_next("w1") is None  # the guard defers it
    page = admin.get(job).text
    assert 'data-status="deferred"' in page and 'data-message="deferred"' in page
    assert "Deferred by the API quota guard" in page
    with web.plane.session() as db:
        run = db.get(Run, job.removeprefix("/jobs/"))
        assert run is not None and run.defer_reason
        reason = run.defer_reason
    assert reason.replace("'", "&#39;") in page
    assert "2026-03-11 00:00:00 UTC" in page
    assert 'data-poll="/jobs/' not in page  # nothing to follow until the reset
    summary = admin.get(f"{job}/summary")
    assert summary.headers.get("X-Poll-Done") == "1"
    assert 'id="cancel-job"' in page

    listed = admin.get("/integrations").text
    assert ">Deferred<" in listed and 'class="small muted defer-reason"' in listed
    status = admin.get(f"{details}/status").text
    assert 'data-status="deferred"' in status and 'class="defer-reason"' in status

    cancelled = admin.post(f"{job}/cancel", form_page=job)
    assert cancelled.status_code == 303
    assert 'data-status="cancelled"' in admin.get(job).text


def test_run_now_without_a_quota_problem_queues_at_once(
    admin: WebClient, web: WebServer, acme: int
) -> None:
    details = f"/integrations/{acme}"
    r = admin.post(f"{details}/run", form_page=details)
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, never a downloaded one (skipped without it, except in CI)."""
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


def signed_in_page(browser: Browser, base: str, width: int, height: int,
                   problems: list[str]) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    pg = context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        # 422 answers to bad forms are deliberate; a CSP violation is an error here
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console: {msg.text}")

    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on("console", on_console)
    pg.on("response", lambda resp: problems.append(f"{resp.status} {resp.url}")
          if resp.status >= 500 or resp.status == 404 else None)
    pg.goto(base + "/login")
    pg.fill("#email", ADMIN_EMAIL)
    pg.fill("#password", ADMIN_PASSWORD)
    pg.click("main button[type=submit]")
    expect(pg.locator("h1")).to_have_text("Integrations")
    return pg


@pytest.mark.browser
def test_quota_pages_in_a_browser(browser: Browser, web: WebServer) -> None:
    freeze(web, NOON)
    create_admin(web.plane)
    integration_id = add_v2_integration(web, "acme")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    expect.set_options(timeout=10_000)

    # ---- desktop: the quota page, then edit the key's daily limit
    page = signed_in_page(browser, web.base_url, 1280, 800, problems)
    page.click("#nav-quota")
    card = page.locator(f"#key-{KEY}")
    expect(card.locator("h2")).to_have_text(LABEL)
    expect(card.locator(".used-today")).to_have_text(str(USED_TODAY))
    expect(card.locator('tr[data-integration="acme"] .calls-per-day')).to_have_text(
        f"~{24 * PER_RUN}")
    page.screenshot(path=str(SCREENSHOTS / "quota-desktop.png"), full_page=True)
    page.click(f"#edit-key-{KEY}")
    page.fill("#per_day", "0")
    page.click("#save-limits")
    expect(page.locator('[data-error-for="per_day"]')).to_contain_text("greater than")
    page.fill("#per_day", "250000")
    page.click("#save-limits")
    expect(page.locator(".flash-ok")).to_contain_text("250,000 per day")
    expect(card.locator(".per-day")).to_have_text("250,000")
    page.screenshot(path=str(SCREENSHOTS / "quota-desktop-edited.png"), full_page=True)

    # ---- the details page: the estimate against the key's quota, the polling tiers
    page.goto(f"{web.base_url}/integrations/{integration_id}")
    expect(page.locator("#calls-per-run")).to_have_text(f"~{PER_RUN}")
    expect(page.locator("#budget-key")).to_contain_text("250,000 calls a day")
    expect(page.locator("#campaign-polling")).to_have_text(DEFAULT_POLLING)
    region_screenshot(page, "#budget", SCREENSHOTS / "quota-details-desktop.png")
    page.context.close()

    # ---- a phone: the quota page fits its width
    phone = signed_in_page(browser, web.base_url, 390, 844, problems)
    phone.goto(web.base_url + "/quota")
    expect(phone.locator(f"#key-{KEY} .used-today")).to_have_text(str(USED_TODAY))
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the quota page is {overflow}px wider than the phone"
    phone.screenshot(path=str(SCREENSHOTS / "quota-phone.png"), full_page=True)
    phone.goto(f"{web.base_url}/integrations/{integration_id}")
    expect(phone.locator("#calls-per-run")).to_be_visible()
    phone.screenshot(path=str(SCREENSHOTS / "quota-details-phone.png"), full_page=True)
    phone.context.close()
    assert problems == [], problems


def test_v3_details_say_how_event_registrations_are_polled(
    web: WebServer, admin: WebClient
) -> None:
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(
            name="events_v3", api_version="v3", frequency_hours=1,
            tables={"events": None, "event_registrations": None}))
        integ_id = integ.id
    html = admin.get(f"/integrations/{integ_id}").text
    assert re.search(r'<dd id="event-polling">Event registrations are read when the event list '
                     r"shows an event changed, .* and otherwise daily\.</dd>", html)
    assert 'id="campaign-polling"' not in html  # no campaign table selected
