"""The schema page in Chromium (issue 12 §7), at 1280x800 and 390x844: reached from the
integration's details page, it lists each table's columns with their warehouse types,
selection and first appearance, and flags the fields Constant Contact started sending.
The integration is loaded for real (sandbox behind a drift proxy, jobs into DuckDB).

Screenshots: ``test-artifacts/screenshots/schema/``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from control.drift_proxy import drift_proxy
from control.test_schema_view import drifted_integration
from ctctsync.control import services as svc
from ctctsync.sandbox import Sandbox
from web.helpers import WebServer, create_admin
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_ui import browser, signed_in_page

__all__ = ["browser"]

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "schema"


def test_schema_page_in_a_browser(
    browser: Browser, web_factory: Callable[..., WebServer], sandbox: Sandbox
) -> None:
    expect.set_options(timeout=10_000)
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with drift_proxy(sandbox.base_url) as proxy:
        web = web_factory(workers=0, cc_base_url=proxy.base_url, cc_qps_limit=None)
        create_admin(web.plane)
        with web.plane.session() as db:
            user = svc.user_by_email(db, "admin@example.com")
            creds = (sandbox.credentials.api_key, sandbox.credentials.access_token)
            integ, _starts = drifted_integration(web.plane, db, user, proxy, creds)
            details = f"{web.base_url}/integrations/{integ.id}"

    for size, (width, height) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
        page = signed_in_page(browser, web.base_url, width, height, problems)
        page.goto(details)
        page.click("#schema-link")
        expect(page.locator("h1")).to_have_text("Schema")
        expect(page.locator("#new-fields-summary")).to_contain_text("2 new fields")
        summary = page.locator("#schema-tables")
        expect(summary.locator('tr[data-table="contacts"]')).to_contain_text("1 new")
        contacts = page.locator("#columns-contacts")
        ident = contacts.locator('tr[data-column="id"]')
        expect(ident.locator(".type")).to_have_text("BIGINT")
        expect(ident).to_contain_text("always: key")
        fax = contacts.locator('tr[data-column="fax"]')
        expect(fax).to_have_attribute("data-selected", "no")
        expect(fax.locator(".type")).to_contain_text("declared text")
        tier = contacts.locator('tr[data-column="loyalty_tier"]')
        expect(tier.locator('[data-flag="new-field"]')).to_have_text("New field")
        expect(tier).to_contain_text("Field loyaltyTier, first sent")
        expect(tier.locator(".type")).to_have_text("VARCHAR")
        unloaded = page.locator('#columns-contact_lists tr[data-new-field="optInColour"]')
        expect(unloaded).to_contain_text("not loaded")
        # first appeared: a date on loaded columns, the new one later than the key
        first = [
            contacts.locator(f'tr[data-column="{c}"] time').get_attribute("datetime") or ""
            for c in ("id", "loyalty_tier")
        ]
        assert first[0] and first[1] and first[0] < first[1], first

        page.screenshot(path=str(SHOTS / f"{size}-schema.png"), full_page=True)
        tier.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{size}-schema-new-field.png"))
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{size}: the page is {overflow}px wider than the window"
        page.context.close()
    assert problems == [], problems
