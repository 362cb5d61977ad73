"""Users administration in Chromium (issue 12 §6), at 1280x800 and 390x844: an administrator
creates a user with a temporary password and invites another; the first is forced to choose
a password at sign-in, the second accepts the link; the administrator deactivates one and the
audit log shows it all. The first-administrator page shows the password rule before anything
is typed. Every page fits a phone without sideways scrolling.

Screenshots: ``test-artifacts/screenshots/users/``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from web.helpers import WebServer, create_admin
from web.test_browser_flow import SCREENSHOTS
from web.test_quota_ui import browser, signed_in_page

__all__ = ["browser"]

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS / "users"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot, and check the page does not scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"


def fresh_page(browser: Browser, size: tuple[int, int], problems: list[str]) -> Page:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    return page


@pytest.mark.parametrize("size", list(SIZES))
def test_users_admin_in_a_browser(
    browser: Browser, web_factory: Callable[..., WebServer], size: str
) -> None:
    expect.set_options(timeout=10_000)
    problems: list[str] = []
    width, height = SIZES[size]

    # the first-administrator page, before any user exists
    first = web_factory(workers=0)
    setup = fresh_page(browser, SIZES[size], problems)
    setup.goto(first.base_url + "/setup")
    expect(setup.locator("main")).to_contain_text("ctctsync users create EMAIL --admin")
    expect(setup.locator(".field:has(#password) .hint")).to_contain_text("At least 8 characters")
    shot(setup, f"{size}-setup")
    setup.context.close()

    web = web_factory(workers=0)
    create_admin(web.plane)
    admin = signed_in_page(browser, web.base_url, width, height, problems)
    admin.goto(web.base_url + "/admin/users")
    shot(admin, f"{size}-users-empty")

    # create with a temporary password
    admin.fill("#email", "dana@example.com")
    admin.click("#create-user")
    expect(admin.locator("#shown-once h2")).to_have_text("dana@example.com can sign in")
    temporary = admin.locator("#shown-secret").inner_text().strip()
    assert len(temporary) >= 16
    expect(admin.locator('tr[data-user="dana@example.com"] [data-status]')).to_have_text(
        "Temporary password"
    )
    shot(admin, f"{size}-users-created")

    # invite an administrator
    admin.fill("#email", "finn@example.com")
    admin.check('input[name="role"][value="admin"]')
    admin.click("#invite-user")
    expect(admin.locator("#shown-once h2")).to_have_text("Invitation for finn@example.com")
    link = admin.locator("#shown-secret").inner_text().strip()
    assert link.startswith(web.base_url + "/invite?token=")
    expect(admin.locator('tr[data-invite="finn@example.com"]')).to_contain_text("Administrator")
    shot(admin, f"{size}-users-invited")

    # Dana signs in with the temporary password and must choose her own first
    dana = fresh_page(browser, SIZES[size], problems)
    dana.goto(web.base_url + "/login")
    dana.fill("#email", "dana@example.com")
    dana.fill("#password", temporary)
    dana.click("main button[type=submit]")
    expect(dana.locator("h1")).to_have_text("Choose a new password")
    expect(dana).to_have_url(web.base_url + "/account/password")
    shot(dana, f"{size}-forced-password-change")
    dana.fill("#current_password", temporary)
    dana.fill("#new_password", "dana's own passphrase")
    dana.fill("#new_password_again", "dana's own passphrase")
    dana.click("#change-password")
    expect(dana.locator("h1")).to_have_text("Integrations")
    dana.context.close()

    # Finn opens the link and creates his account
    finn = fresh_page(browser, SIZES[size], problems)
    finn.goto(link)
    expect(finn.locator("#invite-email")).to_have_text("finn@example.com")
    expect(finn.locator(".field:has(#password) .hint")).to_contain_text("At least 8 characters")
    shot(finn, f"{size}-invite")
    finn.fill("#password", "finn's own passphrase")
    finn.fill("#password_again", "finn's own passphrase")
    finn.click("#accept-invite")
    expect(finn.locator(".flash")).to_contain_text(
        "signed in as finn@example.com, an administrator"
    )
    finn.goto(link)
    expect(finn.locator("#invite-problem")).to_contain_text("does not work any more")
    shot(finn, f"{size}-invite-used")

    # the administrator deactivates Dana, then cannot deactivate themselves
    admin.goto(web.base_url + "/admin/users")
    expect(admin.locator("#invites")).to_have_count(0)
    admin.locator('tr[data-user="dana@example.com"] [data-action="deactivate"]').click()
    expect(admin.locator(".flash")).to_contain_text("dana@example.com is deactivated")
    expect(admin.locator('tr[data-user="dana@example.com"] [data-status]')).to_have_text(
        "Deactivated"
    )
    expect(admin.locator('tr[data-user="admin@example.com"] [data-action]')).to_have_count(0)
    shot(admin, f"{size}-users-deactivated")
    # every row's buttons are reachable: inside the table's region once it is scrolled
    region = admin.locator(".table-scroll:has(#users)")
    region.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    button = admin.locator('tr[data-user="dana@example.com"] [data-action="activate"]')
    box, area = button.bounding_box(), region.bounding_box()
    assert box is not None and area is not None
    assert box["x"] + box["width"] <= area["x"] + area["width"] + 1, (box, area)
    button.click()
    expect(admin.locator(".flash")).to_contain_text("dana@example.com can sign in again")

    admin.goto(web.base_url + "/admin/audit")
    for label in ("User created", "User invited", "Invitation accepted", "User deactivated",
                  "User re-activated"):  # fmt: skip
        expect(admin.locator("main")).to_contain_text(label)
    deactivated = admin.locator('#audit tr[data-event="user_deactivated"]')
    expect(deactivated.locator(".by")).to_have_text("admin@example.com")
    shot(admin, f"{size}-audit")
    admin.context.close()
    assert problems == [], problems
