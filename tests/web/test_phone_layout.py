"""Phone-width layout (issue 12): at 390 px no page scrolls sideways, every link of the top
navigation lies inside the viewport, and the details page's Jobs table scrolls inside its own
keyboard-focusable region instead of being cut at the card's edge; at 1280 px that table fits
without scrolling.

One Chromium context per width (Debian's, as in ``test_browser_flow.py``); screenshots go to
``test-artifacts/screenshots/phone-layout/``, a folder of its own because the browser-flow
test empties ``test-artifacts/screenshots/*.png`` when it starts.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from ctctsync.control.models import Run
from web.helpers import WebServer, create_admin, region_screenshot
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_api import KEY, NOON, add_v2_integration, freeze
from web.test_quota_ui import browser, signed_in_page

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_quota_ui

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "phone-layout"
PHONE = (390, 844)
LONG_ERROR = (
    "Constant Contact answered 503 Service Unavailable three times for GET /contacts; "
    "the job stops and the next scheduled run tries again from the same bookmark."
)

# Every link and button of the top bar: its box, and whether the nav itself scrolls.
NAV_BOXES = """() => {
  const nav = document.querySelector('header.topnav nav');
  const items = [...document.querySelectorAll('header.topnav a, header.topnav button')];
  return {
    navScrolls: nav.scrollWidth > nav.clientWidth,
    items: items.map(el => {
      const r = el.getBoundingClientRect();
      return {text: el.textContent.trim(), left: r.left, right: r.right, width: r.width};
    }),
  };
}"""

# The Jobs table's scroll region: how it overflows, and the Message header's right edge once
# the region is scrolled to its end (what a reader reaches by swiping).
JOBS_REGION = """() => {
  const table = document.querySelector('#jobs');
  const region = table.parentElement;
  const before = {scrollWidth: region.scrollWidth, clientWidth: region.clientWidth};
  region.scrollLeft = region.scrollWidth;
  const last = table.querySelector('thead th:last-child').getBoundingClientRect();
  return {
    ...before,
    overflowX: getComputedStyle(region).overflowX,
    tabIndex: region.tabIndex,
    label: region.getAttribute('aria-label'),
    lastRight: last.right,
    regionRight: region.getBoundingClientRect().right,
  };
}"""


def add_failed_job(web: WebServer, integration_id: int) -> None:
    """A failed job with a long message, the widest row the Jobs table shows."""
    with web.plane.session() as db:
        db.add(Run(
            integration_id=integration_id, trigger="manual", status="failed",
            kind="incremental", created_at=NOON - timedelta(minutes=5),
            started_at=NOON - timedelta(minutes=5), finished_at=NOON - timedelta(minutes=4),
            rows={"contacts": 12_345}, api_calls=1_234, error=LONG_ERROR,
            key_fingerprint=KEY,
        ))
        db.commit()


def fits_the_phone(page: Page, name: str) -> None:
    """No sideways scrolling of the page, and the whole top bar inside the viewport."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    width = page.evaluate("window.innerWidth")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the phone"
    boxes = page.evaluate(NAV_BOXES)
    assert not boxes["navScrolls"], f"{name}: the nav scrolls sideways"
    texts = [item["text"] for item in boxes["items"]]
    assert "API tokens" in texts and "Sign out" in texts
    for item in boxes["items"]:
        assert item["width"] > 0 and item["left"] >= 0 and item["right"] <= width, (name, item)


def test_pages_fit_a_phone(browser: Browser, web: WebServer) -> None:
    freeze(web, NOON)
    create_admin(web.plane)
    integration_id = add_v2_integration(web, "acme_newsletters_and_events")
    add_failed_job(web, integration_id)
    problems: list[str] = []
    expect.set_options(timeout=10_000)
    details = f"{web.base_url}/integrations/{integration_id}"

    phone = signed_in_page(browser, web.base_url, *PHONE, problems)
    fits_the_phone(phone, "integrations")
    # the links stay links a keyboard reaches: Tab from the brand lands on the first of them
    phone.focus("header.topnav .brand")
    phone.keyboard.press("Tab")
    expect(phone.locator("header.topnav nav a").first).to_be_focused()

    phone.goto(details)
    expect(phone.locator("#jobs tbody tr")).to_have_count(4)
    fits_the_phone(phone, "details")
    region_screenshot(phone, ".table-scroll:has(#jobs)", SHOTS / "details-jobs.png")
    jobs = phone.evaluate(JOBS_REGION)
    assert jobs["scrollWidth"] > jobs["clientWidth"], jobs  # 7 columns are wider than 390 px
    assert jobs["overflowX"] in ("auto", "scroll"), jobs  # so the reader can swipe to them
    assert jobs["tabIndex"] == 0 and jobs["label"], jobs  # and a keyboard can scroll them
    assert jobs["lastRight"] <= jobs["regionRight"] + 1, jobs  # the Message column is reached
    region_screenshot(phone, ".table-scroll:has(#jobs)", SHOTS / "details-jobs-scrolled.png")

    phone.goto(web.base_url + "/quota")
    expect(phone.locator(f"#key-{KEY} .used-today")).to_be_visible()
    fits_the_phone(phone, "quota")
    phone.context.close()

    desktop = signed_in_page(browser, web.base_url, 1280, 800, problems)
    desktop.goto(details)
    jobs = desktop.evaluate(JOBS_REGION)
    assert jobs["scrollWidth"] <= jobs["clientWidth"], jobs  # no scrolling on a laptop
    region_screenshot(desktop, "#jobs", SHOTS / "details-jobs-desktop.png")
    desktop.context.close()
    assert problems == [], problems
