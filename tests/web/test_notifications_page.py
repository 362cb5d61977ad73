"""The notifications page (issue 12 §5) over real HTTP: channels (the webhook secret shown
once, targets never shown back), "Send test" to a real SMTP server and a real webhook
receiver, per-integration choices, the deliveries list (own, or everyone's for an admin);
and one Chromium walk at desktop and phone sizes with screenshots."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from control.notify_helpers import SmtpSink, smtp_server, webhook_receiver
from ctctsync.control import services as svc
from ctctsync.control.models import NotificationDelivery, NotificationSubscription
from ctctsync.control.notify import verify_signature
from web.helpers import WebClient, WebServer, create_admin, region_screenshot
from web.test_browser_flow import SCREENSHOTS
from web.test_phone_layout import PHONE
from web.test_quota_api import add_v2_integration
from web.test_quota_ui import browser, signed_in_page

__all__ = ["browser"]

SHOTS = SCREENSHOTS / "notifications"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def nweb(web_factory: Callable[..., WebServer], smtp: SmtpSink) -> WebServer:
    """A served app whose e-mail goes to the local SMTP server."""
    return web_factory(
        workers=0, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
        smtp_from="ctctsync@example.com",
    )


@pytest.fixture
def nadmin(nweb: WebServer) -> WebClient:
    create_admin(nweb.plane)
    client = nweb.client()
    client.sign_in()
    return client


def _secret(page: str) -> str:
    match = re.search(r'id="channel-secret">([^<]+)<', page)
    assert match, "the new webhook's secret is shown once"
    return match.group(1)


def test_channels_tests_and_choices(nweb: WebServer, nadmin: WebClient, smtp: SmtpSink) -> None:
    integration_id = add_v2_integration(nweb, "acme")
    page = nadmin.get("/notifications")
    assert page.status_code == 200
    assert 'id="nav-notifications"' in page.text and "No channel yet" in page.text

    # a bad URL is refused beside its field, with what to type instead
    bad = nadmin.post("/notifications/channels",
                      {"kind": "webhook", "name": "ops", "target": "hooks.example.com"},
                      form_page="/notifications")
    assert bad.status_code == 422
    assert "Enter a full http:// or https:// URL" in bad.text

    with webhook_receiver() as hook:
        made = nadmin.post("/notifications/channels",
                           {"kind": "webhook", "name": "ops", "target": hook.url},
                           form_page="/notifications")
        assert made.status_code == 200
        secret = _secret(made.text)
        mail = nadmin.post("/notifications/channels",
                           {"kind": "email", "name": "me", "target": "admin@example.com"},
                           form_page="/notifications")
        assert mail.status_code == 200 and 'id="channel-secret"' not in mail.text
        page = nadmin.get("/notifications")
        # never shown again: not the secret, not the URL's path
        assert secret not in page.text and "ctctsync-secret-path" not in page.text
        assert "http://127.0.0.1/…" in page.text and "ad…@example.com" in page.text

        ids = re.findall(r'action="/notifications/channels/(\d+)/test"', page.text)
        assert len(ids) == 2
        for channel_id in ids:
            sent = nadmin.post(f"/notifications/channels/{channel_id}/test",
                               form_page="/notifications")
            assert sent.status_code == 303
            assert "Test sent to" in nadmin.get("/notifications").text
        (request,) = hook.requests
    assert verify_signature(secret, request.headers["X-Ctctsync-Timestamp"],
                            request.headers["X-Ctctsync-Signature"], request.body,
                            datetime.now(UTC))
    assert json.loads(request.body)["event"] == "test"
    (message,) = smtp.messages
    assert message["Subject"] == "ctctsync: test notification"

    # the receiver is gone now: the test says why, and the delivery waits for its retry
    failed = nadmin.post(f"/notifications/channels/{ids[0]}/test", form_page="/notifications")
    assert failed.status_code == 303
    page = nadmin.get("/notifications")
    assert "could not be sent: could not reach the webhook at 127.0.0.1" in page.text
    assert "Retrying" in page.text

    saved = nadmin.post("/notifications/choices", [
        ("integration", str(integration_id)),
        (f"events.{integration_id}", "failure"),
        (f"events.{integration_id}", "digest"),
    ], form_page="/notifications")
    assert saved.status_code == 303
    page = nadmin.get("/notifications")
    assert f'id="ev-{integration_id}-failure" checked' in page.text
    assert f'id="ev-{integration_id}-recovery" checked' not in page.text
    with nweb.plane.session() as db:
        events = db.scalars(sa.select(NotificationSubscription.events)).one()
    assert events == ["failure", "digest"]


def test_a_user_sees_own_deliveries_an_admin_sees_all(
    nweb: WebServer, nadmin: WebClient
) -> None:
    with nweb.plane.session() as db:
        svc.create_user(db, "alice@example.com", "correct horse battery")
    alice = nweb.client()
    alice.sign_in("alice@example.com", "correct horse battery")
    with webhook_receiver() as hook:
        for client, name in ((alice, "alice-hook"), (nadmin, "admin-hook")):
            client.post("/notifications/channels",
                        {"kind": "slack", "name": name, "target": hook.url},
                        form_page="/notifications")
            page = client.get("/notifications").text
            (channel_id,) = re.findall(r'action="/notifications/channels/(\d+)/test"', page)
            client.post(f"/notifications/channels/{channel_id}/test", form_page="/notifications")
        assert len(hook.requests) == 2
    own = alice.get("/notifications").text
    assert "alice-hook" in own and "admin-hook" not in own and "Your deliveries" in own
    everyone = nadmin.get("/notifications").text
    assert "alice-hook" in everyone and "alice@example.com" in everyone
    # alice cannot touch the admin's channel
    with nweb.plane.session() as db:
        admin_channel = db.scalars(
            sa.select(NotificationDelivery.channel_id).where(NotificationDelivery.user_id == 1)
        ).first()
    assert alice.post(f"/notifications/channels/{admin_channel}/delete",
                      form_page="/notifications").status_code == 404


def test_choices_form_takes_only_ids_the_user_may_see(
    nweb: WebServer, nadmin: WebClient
) -> None:
    integration_id = add_v2_integration(nweb, "acme")
    with nweb.plane.session() as db:
        svc.create_user(db, "alice@example.com", "correct horse battery")
    alice = nweb.client()
    alice.sign_in("alice@example.com", "correct horse battery")
    # "²" passes str.isdigit() but not int(); the other is beyond the store's integers
    for forged in ("²", "9" * 30):
        answer = alice.post("/notifications/choices", [
            ("integration", forged), (f"events.{forged}", "failure"),
        ], form_page="/notifications")
        assert answer.status_code == 303, forged
    # the admin's integration is not alice's to subscribe to
    refused = alice.post("/notifications/choices", [
        ("integration", str(integration_id)), (f"events.{integration_id}", "failure"),
    ], form_page="/notifications")
    assert refused.status_code == 404
    with nweb.plane.session() as db:
        assert db.scalars(sa.select(NotificationSubscription)).all() == []


@pytest.mark.browser
def test_notifications_page_in_a_browser(browser: Browser, nweb: WebServer) -> None:
    create_admin(nweb.plane)
    add_v2_integration(nweb, "acme")
    add_v2_integration(nweb, "globex_newsletters")
    problems: list[str] = []
    expect.set_options(timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with webhook_receiver(answers=[500]) as hook:
        desktop = signed_in_page(browser, nweb.base_url, 1280, 800, problems)
        desktop.click("#nav-notifications")
        expect(desktop.locator("h1")).to_have_text("Notifications")
        desktop.select_option("#kind", "webhook")
        desktop.fill("#name", "ops webhook")
        desktop.fill("#target", hook.url)
        desktop.click("#add-channel-button")
        expect(desktop.locator("#channel-secret")).to_contain_text("whsec_")
        desktop.screenshot(path=str(SHOTS / "desktop-channel-added.png"), full_page=True)
        desktop.select_option("#kind", "slack")
        desktop.fill("#name", "team room")
        desktop.fill("#target", hook.url)
        desktop.click("#add-channel-button")
        expect(desktop.locator("#channels tbody tr")).to_have_count(2)
        # the first test hits a 500: the page says so and shows the retry
        desktop.locator('tr[data-channel="ops webhook"] [data-action="test"]').click()
        expect(desktop.locator(".flash-error")).to_contain_text("answered 500")
        desktop.locator('tr[data-channel="team room"] [data-action="test"]').click()
        expect(desktop.locator(".flash-ok")).to_contain_text("Test sent to “team room”")
        desktop.check("#ev-1-failure")
        desktop.check("#ev-1-needs_reauth")
        desktop.check("#ev-2-digest")
        desktop.click("#save-choices")
        expect(desktop.locator(".flash-ok")).to_contain_text("choices are saved")
        expect(desktop.locator("#ev-1-failure")).to_be_checked()
        expect(desktop.locator("#ev-1-recovery")).not_to_be_checked()
        expect(desktop.locator('#deliveries tr[data-status="sent"]')).to_have_count(1)
        expect(desktop.locator('#deliveries tr[data-status="pending"]')).to_have_count(1)
        desktop.screenshot(path=str(SHOTS / "desktop.png"), full_page=True)
        desktop.context.close()

        phone = signed_in_page(browser, nweb.base_url, *PHONE, problems)
        phone.goto(nweb.base_url + "/notifications")
        expect(phone.locator("#deliveries")).to_be_visible()
        phone.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"
        # channels and deliveries become one block per row: every button in sight
        expect(phone.locator("#channels thead")).to_be_hidden()
        region_screenshot(phone, "#deliveries", SHOTS / "phone-deliveries.png")
        # the choices grid scrolls inside its own region, to its last column
        region = phone.locator(".table-scroll:has(#choices-grid)")
        region.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
        last = phone.locator("#choices-grid thead th:last-child").bounding_box()
        box = region.bounding_box()
        assert last is not None and box is not None
        assert last["x"] + last["width"] <= box["x"] + box["width"] + 1
        # the Add button and the choices' Save button are inside the screen
        test_buttons = phone.locator('#channels [data-action="test"]')
        buttons = [test_buttons.nth(0), test_buttons.nth(1),
                   phone.locator("#add-channel-button"), phone.locator("#save-choices")]
        for button in buttons:
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
        phone.context.close()
    # 422 answers are deliberate elsewhere; here nothing failed on the page itself
    assert problems == [], problems
