"""The Admin > Users page and its forms over real HTTP (issue 12 §6): a temporary password
or an invitation link is on the answer once, a forced password change gates the site, a
deactivated user's cookie and token stop working on their next request, and the invitation
page creates the account."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from urllib.parse import urlsplit

from control.notify_helpers import smtp_server
from web.helpers import ADMIN_PASSWORD, WebClient, WebServer, create_admin

SECRET_RE = re.compile(r'id="shown-secret">([^<]+)<')


def _shown(text: str) -> str:
    match = SECRET_RE.search(text)
    assert match, "no secret shown on the page"
    return unescape(match.group(1))


def _user_id(web: WebServer, email: str) -> int:
    from ctctsync.control import services as svc

    with web.plane.session() as db:
        return svc.user_by_email(db, email).id


def test_temporary_password_then_forced_change(admin: WebClient, web: WebServer) -> None:
    r = admin.post("/admin/users", {"email": "Dana@Example.com", "role": "user", "how": "password"})
    assert r.status_code == 200 and "dana@example.com can sign in" in r.text
    temporary = _shown(r.text)
    assert temporary not in admin.get("/admin/users").text  # shown once, on that answer only
    assert r.headers.get("set-cookie") is None or temporary not in r.headers["set-cookie"]

    dana = web.client()
    dana.sign_in("dana@example.com", temporary)
    page = dana.get("/integrations")
    assert page.status_code == 303 and page.headers["location"] == "/account/password"
    form = dana.get("/account/password")
    assert "Choose a new password" in form.text and "At least 8 characters" in form.text
    same = dana.post(
        "/account/password",
        {"current_password": temporary, "new_password": temporary,
         "new_password_again": temporary},
    )  # fmt: skip
    assert same.status_code == 422 and "different from the current one" in same.text
    done = dana.post(
        "/account/password",
        {"current_password": temporary, "new_password": "dana's own passphrase",
         "new_password_again": "dana's own passphrase"},
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/integrations"
    assert dana.get("/integrations").status_code == 200
    assert dana.get("/account/password").status_code == 303  # nothing forced any more

    # a regular user does not reach the admin pages
    assert dana.get("/admin/users").status_code == 403


def test_deactivate_reactivate_and_reset(admin: WebClient, web: WebServer) -> None:
    r = admin.post("/admin/users", {"email": "eve@example.com", "role": "user", "how": "password"})
    temporary = _shown(r.text)
    eve = web.client()
    eve.sign_in("eve@example.com", temporary)
    eve.post("/account/password", {"current_password": temporary,
                                   "new_password": "eve passphrase 1",
                                   "new_password_again": "eve passphrase 1"})  # fmt: skip
    token = eve.post("/tokens", {"name": "script"})
    api_token = _shown_token(token.text)
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert eve.get("/api/v1/me", headers=bearer).status_code == 200
    eve_id = _user_id(web, "eve@example.com")

    r = admin.post(f"/admin/users/{eve_id}/deactivate", {}, form_page="/admin/users")
    assert r.status_code == 303
    page = admin.get("/admin/users").text
    assert "eve@example.com is deactivated; 1 session(s) ended." in page
    assert 'data-status="deactivated"' in page
    assert eve.get("/integrations").status_code == 303  # the cookie is dead at once
    assert eve.get("/api/v1/me", headers=bearer).status_code == 401  # and the token
    again = web.client().post(
        "/login", {"email": "eve@example.com", "password": "eve passphrase 1"}
    )
    assert again.status_code == 403 and "deactivated" in again.text

    admin.post(f"/admin/users/{eve_id}/activate", {}, form_page="/admin/users")
    assert eve.get("/api/v1/me", headers=bearer).status_code == 200
    r = admin.post(f"/admin/users/{eve_id}/reset-password", {}, form_page="/admin/users")
    assert r.status_code == 200 and "New temporary password for eve@example.com" in r.text
    fresh = web.client()
    fresh.sign_in("eve@example.com", _shown(r.text))
    assert fresh.get("/quota").headers["location"] == "/account/password"

    # yourself: refused with a message, nothing changed
    me = _user_id(web, "admin@example.com")
    r = admin.post(f"/admin/users/{me}/deactivate", {}, form_page="/admin/users")
    assert r.status_code == 303
    assert "You cannot deactivate yourself" in admin.get("/admin/users").text
    audit = admin.get("/admin/audit").text
    for label in (
        "User created",
        "User deactivated",
        "User re-activated",
        "Password reset by an administrator",
    ):
        assert label in audit, label


def _shown_token(text: str) -> str:
    match = re.search(r'id="token-value">([^<]+)<', text)
    assert match
    return unescape(match.group(1))


def test_invitation_link(admin: WebClient, web: WebServer) -> None:
    bad = admin.post("/admin/users", {"email": "nope", "role": "user", "how": "invite"})
    assert bad.status_code == 422 and "Enter an email address" in bad.text
    r = admin.post("/admin/users", {"email": "finn@example.com", "role": "admin", "how": "invite"})
    assert r.status_code == 200 and "Invitation for finn@example.com" in r.text
    link = _shown(r.text)
    assert link.startswith(web.base_url + "/invite?token=")
    assert 'data-invite="finn@example.com"' in r.text
    path = urlsplit(link)
    target = f"{path.path}?{path.query}"

    finn = web.client()
    page = finn.get(target)
    assert page.status_code == 200 and 'id="invite-email">finn@example.com<' in page.text
    token = path.query.removeprefix("token=")
    differ = finn.post(
        "/invite",
        {"token": token, "password": ADMIN_PASSWORD, "password_again": "something else"},
        form_page=target,
    )
    assert differ.status_code == 422 and "The two passwords differ." in differ.text
    done = finn.post(
        "/invite",
        {"token": token, "password": ADMIN_PASSWORD, "password_again": ADMIN_PASSWORD},
        form_page=target,
    )
    assert done.status_code == 303
    assert finn.get("/admin/users").status_code == 200  # an administrator, signed in
    used = web.client().get(target)
    assert used.status_code == 404 and "does not work any more" in used.text
    assert 'data-invite="finn@example.com"' not in admin.get("/admin/users").text


def test_setup_page_names_a_real_command_and_shows_the_rules(web: WebServer) -> None:
    page = web.client().get("/setup").text
    assert "ctctsync users create EMAIL --admin" in page
    # the rules are there before anything was typed, beside the field they are about
    assert re.search(r'id="password"[^>]*minlength="8"', page)
    assert "At least 8 characters (at most 1024)" in page


def test_invitation_e_mailed_when_smtp_is_configured(
    web_factory: Callable[..., WebServer],
) -> None:
    with smtp_server() as sink:
        web = web_factory(
            workers=0, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none",
            smtp_from="ctctsync@example.com",
        )  # fmt: skip
        create_admin(web.plane)
        admin = web.client()
        admin.sign_in()
        assert 'id="send-email"' in admin.get("/admin/users").text
        r = admin.post(
            "/admin/users",
            {"email": "gus@example.com", "role": "user", "how": "invite", "send_email": "1"},
        )
        assert r.status_code == 200 and 'id="invite-emailed"' in r.text
        link = _shown(r.text)
        assert sink.received.wait(10)
        (message,) = sink.messages
        assert message["To"] == "gus@example.com"
        assert message["Subject"] == "Your invitation to ctctsync"
        text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert link in text and "admin@example.com invited you" in text

    # the mail server is gone: the page says so and the link is still there to pass on
    r = admin.post(
        "/admin/users",
        {"email": "hal@example.com", "role": "user", "how": "invite", "send_email": "1"},
    )
    assert r.status_code == 200 and 'id="invite-email-failed"' in r.text
    assert "could not reach the mail server" in r.text
    assert _shown(r.text).startswith(web.base_url + "/invite?token=")


def test_no_e_mail_choice_without_smtp(admin: WebClient) -> None:
    page = admin.get("/admin/users").text
    assert 'id="send-email"' not in page
