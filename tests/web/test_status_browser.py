"""Status at a glance and messages that stay true (issue 12 §2-3), walked in Chromium at
1280x800 and 390x844: the details page's state message, per-table status, next run in the
reader's time zone, sync history chart, today's API use per integration; a job stopped by the
daily quota (one yellow box, "Stopped" not "Failed", per-table calls, seconds and retries);
"Run now" with the quota spent warning before any job exists; the queued job's message; and
the live Jobs box keeping its sideways scroll while it refreshes on a phone.

HTTP tests play the browser for the pages' content; the browser test checks what only a
browser shows (local times, overflow, scroll positions). Screenshots go to
``test-artifacts/screenshots/status/``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from ctctsync.control.models import Integration, Run, RunLog
from ctctsync.errors import next_utc_midnight
from ctctsync.sync.results import TableDone, table_done_line
from web.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    WebServer,
    create_admin,
    region_screenshot,
)
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_api import KEY, NOON, USED_TODAY, add_v2_integration, freeze
from web.test_quota_ui import browser

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_quota_ui

SHOTS = SCREENSHOTS / "status"
RESET = next_utc_midnight(NOON)
QUOTA_ERROR = ("Constant Contact answered that the API key's daily quota is spent. Tables "
               "finished before are kept; the rest is read after 2026-03-11 00:00 UTC.")
STOPPED_CALLS = {"contacts": 180, "contact_lists": 3, "contact_tracking": 1}
"""The quota-stopped job's calls per table (the log's per-table lines say the same)."""


def add_history(web: WebServer, integration_id: int) -> str:
    """Four weeks of daily jobs (rows and durations that vary), a failed one, and this
    morning's job stopped by the daily quota, with its log. Returns the stopped job's id."""
    with web.plane.session() as db:
        for day in range(2, 30, 2):
            finished = NOON - timedelta(days=day, hours=day % 5)
            rows = {"contacts": 40 * day + 7, "contact_lists": day % 3,
                    "contact_tracking": 300 - 9 * day}
            db.add(Run(
                integration_id=integration_id, trigger="schedule", status="succeeded",
                kind="incremental", created_at=finished - timedelta(minutes=3),
                started_at=finished - timedelta(seconds=30 + 11 * day), finished_at=finished,
                rows=rows, table_status=dict.fromkeys(rows, "succeeded"),
                api_calls=6, key_fingerprint=KEY,
            ))
        failed_at = NOON - timedelta(days=1, hours=3)
        db.add(Run(
            integration_id=integration_id, trigger="schedule", status="failed",
            kind="incremental", created_at=failed_at - timedelta(minutes=2),
            started_at=failed_at - timedelta(minutes=2), finished_at=failed_at,
            rows={"contacts": 12, "contact_lists": 0},
            table_status={"contacts": "succeeded", "contact_lists": "succeeded",
                          "contact_tracking": "failed"},
            error="contact_tracking: Constant Contact answered 503 three times.",
            failure_type="transient", api_calls=9, key_fingerprint=KEY,
        ))
        stopped_at = NOON - timedelta(minutes=20)
        started = stopped_at - timedelta(minutes=4)
        run = Run(
            integration_id=integration_id, trigger="schedule", status="partial",
            kind="incremental", created_at=started, started_at=started, finished_at=stopped_at,
            rows={"contacts": 1_250, "contact_lists": 6, "contact_tracking": 0},
            table_status={"contacts": "succeeded", "contact_lists": "succeeded",
                          "contact_tracking": "stopped"},
            table_calls=STOPPED_CALLS, api_calls=sum(STOPPED_CALLS.values()),
            error=QUOTA_ERROR, failure_type="quota", resume_at=RESET, key_fingerprint=KEY,
        )
        db.add(run)
        db.flush()
        lines = [
            ("INFO", table_done_line(TableDone("contacts", 1_250, 3, 180, 212.4, 4))),
            ("WARNING", "contacts: 4 retries (503 x4); 4 extra calls"),
            ("INFO", table_done_line(TableDone("contact_lists", 6, 1, 3, 1.6, 0))),
            ("WARNING", f"contact_tracking stopped (quota): {QUOTA_ERROR}; nothing of it was "
                        "committed"),
        ]
        for seq, (level, message) in enumerate(lines, start=1):
            db.add(RunLog(run_id=run.id, seq=seq, ts=started + timedelta(seconds=seq),
                          level=level, message=message))
        db.commit()
        return run.id


@pytest.fixture
def acme(web: WebServer) -> tuple[int, str]:
    """acme with its history; the id of its quota-stopped job."""
    freeze(web, NOON)
    create_admin(web.plane)
    integration_id = add_v2_integration(web, "acme")
    return integration_id, add_history(web, integration_id)


# ----------------------------------------------------------------------------- over HTTP


def test_details_page_at_a_glance(web: WebServer, acme: tuple[int, str]) -> None:
    integration_id, stopped = acme
    admin = web.client()
    admin.sign_in()
    html = admin.get(f"/integrations/{integration_id}").text
    # one message from the state: the quota is spent, the next job after the reset
    assert 'data-message="quota_spent"' in html
    assert 'datetime="2026-03-11T00:00:00+00:00" data-local-time' in html
    # per table: status, last success, rows last job and in total, last error
    assert 'data-table="contact_tracking"' in html
    row = html[html.index('<tr data-table="contact_tracking"'):]
    row = row[:row.index("</tr>")]
    assert "Stopped (daily quota)" in row and f'href="/jobs/{stopped}"' in row
    assert ">2026-03-10 11:00 UTC<" in row  # the last success: this morning's hourly job
    assert QUOTA_ERROR[:40] in row
    total = sum(300 - 9 * day for day in range(2, 30, 2))
    assert f'class="num rows-total" data-label="Rows, all jobs">{total:,}<' in row
    assert 'class="num rows-last" data-label="Rows, last job">0<' in row
    # the chart, readable without JavaScript: an SVG with a title per run and a table
    assert '<svg class="history-chart wide"' in html and 'class="history-chart narrow"' in html
    assert "<title>2026-03-10 11:40 UTC: 1,256 rows" in html
    assert 'id="history-table"' in html
    # today's calls of this integration against the key's quota
    used = USED_TODAY + sum(STOPPED_CALLS.values())  # the failed job was yesterday
    assert f'id="integration-used-today">{used}<' in html
    assert 'class="share-used">' in html


def test_the_list_says_when_the_next_job_starts(web: WebServer, acme: tuple[int, str]) -> None:
    integration_id, _ = acme
    admin = web.client()
    admin.sign_in()
    html = admin.get("/integrations").text
    # an absolute time (12:30 UTC), not "in 30 min" that goes stale on an open page
    assert 'datetime="2026-03-10T12:30:00+00:00" data-local-time' in html
    with web.plane.session() as db:
        integ = db.get(Integration, integration_id)
        assert integ is not None
        integ.next_run_at = NOON - timedelta(seconds=5)
        db.commit()
    html = admin.get("/integrations").text
    assert '<span class="next-due">Due now</span>' in html and "a few seconds ago" not in html
    # on the details page too: due, and starting at the scheduler's next check
    details = admin.get(f"/integrations/{integration_id}").text
    assert "a few seconds ago" not in details


def test_job_stopped_by_the_quota_is_one_notice(web: WebServer, acme: tuple[int, str]) -> None:
    _, stopped = acme
    admin = web.client()
    admin.sign_in()
    html = admin.get(f"/jobs/{stopped}").text
    assert html.count('class="notice state-message"') == 1
    assert "flash-error" not in html  # the red box said the same in another time format
    assert "2 tables finished before it (1,256 rows) are kept" in html
    tables = html[html.index('id="job-tables"'):]
    contacts = tables[tables.index('data-table="contacts"'):]
    assert '<td class="num calls" data-label="API calls">180</td>' in contacts
    assert '<td class="num seconds" data-label="Duration">212.4 s</td>' in contacts
    assert '<td class="num retries" data-label="Retries">4</td>' in contacts
    tracking = tables[tables.index('data-table="contact_tracking"'):]
    assert "Stopped (daily quota)" in tracking and "Failed" not in tracking[:400]
    assert '<td class="num seconds" data-label="Duration">—</td>' in tracking


def test_run_now_with_the_quota_spent_asks_first(web: WebServer, acme: tuple[int, str]) -> None:
    integration_id, _ = acme
    admin = web.client()
    admin.sign_in()
    details = f"/integrations/{integration_id}"
    r = admin.post(f"{details}/run", form_page=details)
    assert r.status_code == 200 and 'id="quota-reason"' in r.text
    assert "would make no call" in r.text
    with web.plane.session() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Run).where(
            Run.status.in_(("queued", "deferred")))) == 0


# ----------------------------------------------------------------------------- the browser

# What overflows: the page sideways, or any element wider than its scroll container's box
# without that container scrolling (what "cut off" looks like).
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def open_page(browser: Browser, web: WebServer, size: tuple[int, int], tz: str,
              problems: list[str]) -> Page:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]},
                                  timezone_id=tz, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(f"console: {msg.text}")

    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("console", on_console)
    page.goto(web.base_url + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Integrations")
    return page


def fits(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    overflow = page.evaluate(OVERFLOW)
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"


@pytest.mark.browser
def test_status_pages_in_chromium(
    browser: Browser, web: WebServer, acme: tuple[int, str]
) -> None:
    integration_id, stopped = acme
    details = f"{web.base_url}/integrations/{integration_id}"
    problems: list[str] = []
    expect.set_options(timeout=10_000)
    for size, tz, zone, label in (
        ((1280, 800), "Europe/Berlin", "GMT+1", "desktop"),
        ((390, 844), "America/New_York", "EDT", "phone"),
    ):
        page = open_page(browser, web, size, tz, problems)
        page.goto(details)
        reason = page.locator("#state-reason")
        expect(reason).to_have_attribute("data-message", "quota_spent")
        # the reset at 00:00 UTC, in the reader's own zone; UTC stays in the title
        reset = reason.locator("time")
        expect(reset).to_contain_text(zone)
        expect(reset).to_have_attribute("title", "2026-03-11 00:00:00 UTC")
        tracking = page.locator('#tables tr[data-table="contact_tracking"]')
        expect(tracking.locator(".table-status .badge")).to_have_text("Stopped (daily quota)")
        expect(page.locator('#tables tr[data-table="contacts"] .rows-last')).to_have_text("1,250")
        chart = page.locator("svg.history-chart:visible")  # the wide or the phone's
        expect(chart).to_be_visible()
        # 14 daily jobs, the failed one, the stopped one, this morning's 3 (no rows)
        assert chart.locator("g.run").count() == 19
        box = chart.bounding_box()
        assert box is not None and box["height"] > 150, box
        expect(page.locator("#integration-used-today")).to_have_text(str(USED_TODAY + 184))
        fits(page, f"details-{label}")
        region_screenshot(page, "#history", SHOTS / f"history-{label}.png")
        region_screenshot(page, "#tables-card", SHOTS / f"tables-{label}.png")
        if label == "desktop":  # every column in sight on a laptop; a phone swipes
            tables = page.locator(".table-scroll:has(#tables)")
            assert tables.evaluate("el => el.scrollWidth - el.clientWidth") <= 0

        page.goto(f"{web.base_url}/jobs/{stopped}")
        expect(page.locator("#job-message")).to_have_attribute("data-message", "quota_spent")
        expect(page.locator(".flash-error")).to_have_count(0)
        expect(page.locator('#job-tables tr[data-table="contacts"] .seconds')).to_have_text(
            "212.4 s")
        fits(page, f"job-stopped-{label}")

        page.goto(details)
        page.click("#run-now")
        expect(page.locator("#quota-reason")).to_contain_text("would make no call")
        fits(page, f"run-now-spent-{label}")
        page.context.close()

    # ---- a job queued anyway: its message is its state's, and the details page goes live
    phone = open_page(browser, web, (390, 844), "America/New_York", problems)
    phone.goto(details)
    phone.click("#run-now")
    phone.click("#run-when-quota-allows")
    # not "it starts as soon as a worker is free": the spent quota will defer it
    expect(phone.locator("#job-message")).to_have_attribute("data-message", "queued_for_quota")
    expect(phone.locator("#job-message")).to_contain_text("would make no call")
    # no flash to outlive the state: the only message is the state's
    expect(phone.locator(".flash:not(.state-message)")).to_have_count(0)
    fits(phone, "job-queued-phone")
    phone.goto(details)
    expect(phone.locator("#state-reason")).to_have_attribute("data-message", "queued_for_quota")
    region = phone.locator(".table-scroll:has(#jobs)")
    scroll_width = region.evaluate("el => el.scrollWidth - el.clientWidth")
    assert scroll_width > 50, scroll_width  # the Jobs table is wider than the phone
    region.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    kept = region.evaluate("el => el.scrollLeft")
    assert kept > 50
    # two refreshes of the live fragment (every 1.5 s): the reader stays where they were
    for _ in range(2):
        with phone.expect_response(lambda r: r.url.endswith(f"/{integration_id}/status")):
            pass
    phone.wait_for_function(
        "() => document.querySelector('#live-status .live') !== null")
    after = phone.locator(".table-scroll:has(#jobs)").evaluate("el => el.scrollLeft")
    assert after == kept, (after, kept)
    region_screenshot(
        phone, ".table-scroll:has(#jobs)", SHOTS / "details-jobs-scrolled-live-phone.png")
    fits(phone, "details-live-phone")
    phone.context.close()
    assert problems == [], problems
