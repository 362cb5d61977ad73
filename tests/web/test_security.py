"""Control-plane hardening over real HTTP (issue 8 §2): sessions that end on sign-out and on
password change, sign-in throttling with 429 + Retry-After, the admin lockout and audit log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from argon2 import PasswordHasher

from ctctsync.control import crypto
from ctctsync.control import services as svc
from ctctsync.control.services import users
from web.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, WebClient, WebServer, create_admin

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Many sign-ins below: argon2 at its production cost would take ~0.1 s each."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024)
    monkeypatch.setattr(crypto, "_hasher", cheap)
    # what an unknown email is checked against, so that it takes as long as a known one
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("not-a-real-password"))
    yield


def _copy_of(web: WebServer, client: WebClient) -> WebClient:
    """Another browser holding a copy of ``client``'s cookies (a stolen cookie)."""
    thief = web.client()
    thief.http.cookies.update(client.http.cookies)
    return thief


def test_sign_out_ends_the_session_server_side(admin: WebClient, web: WebServer) -> None:
    thief = _copy_of(web, admin)
    assert thief.get("/integrations").status_code == 200
    assert admin.post("/logout", form_page="/integrations").status_code == 303
    # The copied cookie is still validly signed, but its session is gone.
    r = thief.get("/integrations")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_password_change_ends_other_sessions(admin: WebClient, web: WebServer) -> None:
    other = web.client()
    other.sign_in()
    r = admin.post(
        "/account/password",
        {
            "current_password": ADMIN_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        form_page="/account",
    )
    assert r.status_code == 303, r.text
    assert admin.get("/integrations").status_code == 200  # this browser stays signed in
    assert other.get("/integrations").status_code == 303
    fresh = web.client()
    fresh.sign_in(password=NEW_PASSWORD)


def test_sessions_page_and_sign_out_everywhere_else(admin: WebClient, web: WebServer) -> None:
    laptop = web.client()
    laptop.http.headers["User-Agent"] = "LaptopBrowser/1.0"
    laptop.sign_in()
    page = admin.get("/account")
    assert page.status_code == 200
    assert "LaptopBrowser/1.0" in page.text and "127.0.0.1" in page.text
    assert page.text.count('data-session="') == 2
    r = admin.post("/account/sessions/revoke-others", form_page="/account")
    assert r.status_code == 303
    assert laptop.get("/integrations").status_code == 303
    assert admin.get("/account").text.count('data-session="') == 1


def test_wrong_passwords_are_throttled_with_retry_after(web: WebServer) -> None:
    create_admin(web.plane)
    client = web.client()
    codes = [
        client.post("/login", {"email": ADMIN_EMAIL, "password": f"wrong {i}"}).status_code
        for i in range(svc.ACCOUNT_FREE_FAILURES)
    ]
    assert codes == [401] * svc.ACCOUNT_FREE_FAILURES
    r = client.post("/login", {"email": ADMIN_EMAIL, "password": "wrong again"})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # Even the right password waits: a guess that happens to be right is not let through.
    r = client.post("/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_one_address_guessing_many_accounts_is_throttled(web: WebServer) -> None:
    create_admin(web.plane)
    client = web.client()
    for i in range(svc.ADDRESS_FREE_FAILURES):
        r = client.post("/login", {"email": f"user{i}@example.com", "password": "guess"})
        assert r.status_code == 401
    r = client.post("/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def _api(web: WebServer, client: WebClient) -> httpx.Client:
    r = client.post("/tokens", {"name": "audit reader"})
    token = r.text.split('id="token-value">')[1].split("<")[0]
    return httpx.Client(
        base_url=web.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


def test_lockout_cleared_by_admin_and_audited(admin: WebClient, web: WebServer) -> None:
    with web.plane.session() as db:
        svc.create_user(db, "ana@example.com", ADMIN_PASSWORD)
        svc.lock_account(db, "ana@example.com", address="203.0.113.9")
    ana = web.client()
    r = ana.post("/login", {"email": "ana@example.com", "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and "locked" in r.text
    page = admin.get("/admin/users")
    assert page.status_code == 200 and 'data-locked="ana@example.com"' in page.text
    r = admin.post("/admin/users/unlock", {"email": "ana@example.com"}, form_page="/admin/users")
    assert r.status_code == 303
    ana.sign_in("ana@example.com", ADMIN_PASSWORD)
    audit = admin.get("/admin/audit")
    assert audit.status_code == 200
    for event in ("locked_out", "unlocked", "sign_in"):
        assert f'data-event="{event}"' in audit.text
    # Regular users see neither page.
    assert ana.get("/admin/audit").status_code == 403
    with _api(web, admin) as api:
        events = api.get("/api/v1/audit").json()
        assert {"locked_out", "unlocked", "sign_in"} <= {e["event"] for e in events}
        assert all("password" not in str(e).lower() for e in events)
        with web.plane.session() as db:
            svc.lock_account(db, "ana@example.com", address="203.0.113.9")
        r = api.post("/api/v1/users/unlock", json={"email": "ana@example.com"})
        assert r.status_code == 200, r.text
    with _api(web, ana) as api:
        assert api.get("/api/v1/audit").status_code == 403
