"""Page-level tests over real HTTP: sign-in gate, CSRF, form validation, secrets, actions.

No browser here: an ``httpx`` client plays the browser (cookies, forms with their CSRF
token). The full flow in Chromium is ``test_browser_flow.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ctctsync.control import services as svc
from ctctsync.control.models import ApiToken, Integration, Run, RunLog, User
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.tables import TABLES, tables_for
from web.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    WebClient,
    WebServer,
    as_form,
    create_admin,
)

NEW_FORM = "/integrations/new/constant-contact"


def integrations(web: WebServer) -> list[Integration]:
    with web.plane.session() as db:
        return list(db.scalars(sa.select(Integration).order_by(Integration.id)))


def make_integration(web: WebServer, name: str = "acme", **kw: Any) -> int:
    """An integration made through the service (as the setup pages would leave it)."""
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(name=name, **kw))
        return integ.id


def errors_in(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-error-for="([^"]+)">([^<]+)<', html)


# --------------------------------------------------------------------------- sign-in gate


SIGNED_IN_PAGES = [
    "/integrations",
    "/integrations/new",
    NEW_FORM,
    "/integrations/1",
    "/integrations/1/edit",
    "/integrations/1/delete",
    "/integrations/1/setup/tables",
    "/jobs/abc",
    "/jobs/abc/log",
    "/warehouse",
    "/tokens",
]


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_signed_out_pages_redirect_to_login(web: WebServer, path: str) -> None:
    create_admin(web.plane)
    r = web.client().get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_setup_only_while_no_user_exists(web: WebServer) -> None:
    client = web.client()
    assert client.get("/login").headers["location"] == "/setup"
    assert client.get("/setup").status_code == 200
    r = client.post(
        "/setup",
        {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "password_again": ADMIN_PASSWORD},
    )
    assert r.status_code == 303 and r.headers["location"] == "/integrations"
    assert client.get("/integrations").status_code == 200  # signed in by setup
    other = web.client()
    assert other.get("/setup").headers["location"] == "/login"
    assert other.get("/login").status_code == 200
    with web.plane.session() as db:
        users = svc.list_users(db)
    assert [u.email for u in users] == [ADMIN_EMAIL] and users[0].is_admin


def test_setup_validation_changes_nothing(web: WebServer) -> None:
    client = web.client()
    r = client.post(
        "/setup",
        {"email": "nope", "password": "short", "password_again": "short"},
        form_page="/setup",
    )
    assert r.status_code == 422
    fields = dict(errors_in(r.text))
    assert "email" in fields and "password" in fields
    r = client.post(
        "/setup",
        {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "password_again": "something else"},
        form_page="/setup",
    )
    assert r.status_code == 422 and "differ" in dict(errors_in(r.text))["password_again"]
    with web.plane.session() as db:
        assert svc.list_users(db) == []


def test_login_wrong_password_and_logout(web: WebServer) -> None:
    create_admin(web.plane)
    client = web.client()
    r = client.post("/login", {"email": ADMIN_EMAIL, "password": "wrong"})
    assert r.status_code == 401 and "do not match" in r.text
    client.sign_in()
    assert client.get("/integrations").status_code == 200
    r = client.post("/logout", form_page="/integrations")
    assert r.status_code == 303
    assert client.get("/integrations").status_code == 303


def test_login_next_is_local_only(web: WebServer) -> None:
    create_admin(web.plane)
    client = web.client()
    r = client.post(
        "/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "//evil.example/x"}
    )
    assert r.headers["location"] == "/integrations"
    client2 = web.client()
    r = client2.post(
        "/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "/tokens"}
    )
    assert r.headers["location"] == "/tokens"


def test_session_cookie_flags(web: WebServer) -> None:
    create_admin(web.plane)
    r = web.client().http.get("/login")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "ctctsync_session=" in cookie


def test_session_cookie_is_secure_behind_https(web_factory: Any) -> None:
    server = web_factory(workers=0, public_base_url="https://ctctsync.example.com")
    create_admin(server.plane)
    cookie = server.client().http.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie


def test_static_and_callback_reachable_signed_out(web: WebServer) -> None:
    create_admin(web.plane)
    client = web.client()
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    r = client.get("/oauth/callback", params={"state": "forged", "code": "x"})
    assert r.status_code == 400
    assert "expired or was already used" in r.text


# --------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_csrf_refused_and_nothing_changes(
    admin: WebClient, web: WebServer, token: str | None
) -> None:
    integ_id = make_integration(web, "keepme")
    extra = [] if token is None else [("csrf_token", token)]

    def post(path: str, data: list[tuple[str, str]]) -> int:
        return admin.http.post(path, data=as_form(data + extra)).status_code

    assert (
        post(
            NEW_FORM,
            [("name", "other"), ("frequency_hours", "24"), ("history_start", "2024-01-01")],
        )
        == 403
    )
    assert post(f"/integrations/{integ_id}/pause", []) == 403
    assert (
        post(f"/integrations/{integ_id}/edit", [("frequency_hours", "1"), ("tables", "contacts")])
        == 403
    )
    assert post(f"/integrations/{integ_id}/delete", [("warehouse_tables", "drop")]) == 403
    assert post("/tokens", [("name", "ci")]) == 403
    assert (
        post(
            "/warehouse",
            [
                ("destination", "postgres"),
                ("dataset", "x"),
                ("credentials", "postgresql://u:p@h/db"),
            ],
        )
        == 403
    )
    assert post("/logout", []) == 403
    assert admin.get("/integrations").status_code == 200  # still signed in
    [integ] = integrations(web)
    assert (integ.name, integ.state, integ.frequency_hours) == ("keepme", "pending", 24)
    assert set(integ.tables) == set(tables_for("v3"))  # a new integration's: every v3 table
    with web.plane.session() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0
        assert svc.get_warehouse(db).destination == "duckdb"


def test_csrf_page_is_html(admin: WebClient) -> None:
    r = admin.http.post("/tokens", data={"name": "x"})
    assert r.status_code == 403
    assert "security token" in r.text and "<html" in r.text


# --------------------------------------------------------------------------- add integration


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        pytest.param({"name": ""}, "name", "Enter a name", id="empty-name"),
        pytest.param({"name": "Acme Corp"}, "name", "lower-case", id="bad-name"),
        pytest.param({"name": "taken"}, "name", "already exists", id="duplicate-name"),
        pytest.param({"frequency_hours": "5"}, "frequency_hours", "Choose one of", id="freq-5"),
        pytest.param(
            {"frequency_hours": "daily"}, "frequency_hours", "Choose one of", id="freq-text"
        ),
        pytest.param({"history_start": "2024-13-45"}, "history_start", "YYYY-MM-DD", id="bad-date"),
        pytest.param({"history_start": "last year"}, "history_start", "YYYY-MM-DD", id="text-date"),
        pytest.param(
            {"history_start": (date.today() + timedelta(days=3)).isoformat()},
            "history_start",
            "future",
            id="future-date",
        ),
        pytest.param({"history_start": "1990-01-01"}, "history_start", "1996", id="old-date"),
    ],
)
def test_new_integration_validation(
    admin: WebClient, web: WebServer, form: dict[str, str], field: str, message: str
) -> None:
    make_integration(web, "taken")
    data = {"name": "fresh", "frequency_hours": "24", "history_start": "2024-01-01", **form}
    r = admin.post(NEW_FORM, data)
    assert r.status_code == 422
    fields = dict(errors_in(r.text))
    assert field in fields, fields
    assert message in fields[field]
    assert "Nothing was saved" in r.text
    # what was typed is shown again
    if form.get("name"):
        assert f'value="{form["name"]}"' in r.text
    assert [i.name for i in integrations(web)] == ["taken"]


def test_new_integration_form_defaults(admin: WebClient) -> None:
    html = admin.get(NEW_FORM).text
    assert '<option value="24" selected>' in html
    for hours in (1, 2, 3, 4, 6, 8, 12, 24):
        assert f'<option value="{hours}"' in html
    assert "cannot be changed once the setup is finished" in html
    a_year_ago = (datetime.now(UTC).date() - timedelta(days=365)).isoformat()
    assert f'value="{a_year_ago}"' in html


def test_new_integration_is_a_draft_until_submitted(admin: WebClient, web: WebServer) -> None:
    r = admin.post(
        NEW_FORM, {"name": "acme", "frequency_hours": "6", "history_start": "2024-02-01"}
    )
    assert r.status_code == 303
    [integ] = integrations(web)
    assert r.headers["location"] == f"/integrations/{integ.id}/setup/authorize"
    assert integ.state == "draft"  # the scheduler cannot run a half-made selection
    assert not integ.schedulable
    assert (integ.frequency_hours, integ.history_start) == (6, date(2024, 2, 1))
    page = admin.get(r.headers["location"]).text
    assert "Authorize with Constant Contact" in page
    assert "Enter API key and access token instead" in page
    # tables before credentials: back to authorize
    r = admin.get(f"/integrations/{integ.id}/setup/tables")
    assert r.headers["location"] == f"/integrations/{integ.id}/setup/authorize"


# --------------------------------------------------------------------------- edit, actions


def test_edit_validation_changes_nothing(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    path = f"/integrations/{integ_id}/edit"
    r = admin.post(path, [("frequency_hours", "24")])  # no table
    assert r.status_code == 422
    assert "at least one table" in dict(errors_in(r.text))["tables"]
    r = admin.post(path, [("frequency_hours", "7"), ("tables", "contacts")])
    assert r.status_code == 422
    assert "Choose one of" in dict(errors_in(r.text))["frequency_hours"]
    [integ] = integrations(web)
    assert integ.frequency_hours == 24 and set(integ.tables) == set(tables_for("v3"))


def test_edit_saves_frequency_tables_and_fields(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    page = admin.get(f"/integrations/{integ_id}/edit").text
    assert "cannot be changed" in page
    # the key of contacts is locked: disabled and checked, not submitted
    assert 'checked disabled data-locked="1" value="id"' in page
    r = admin.post(
        f"/integrations/{integ_id}/edit",
        [
            ("frequency_hours", "12"),
            ("tables", "contacts"),
            ("fields.contacts", "first_name"),
            ("fields.contacts", "email_addresses"),
            ("tables", "account_info"),
            *[("fields.account_info", c) for c in TABLES["account_info"].column_names],
        ],
    )
    assert r.status_code == 303, r.text
    [integ] = integrations(web)
    assert integ.frequency_hours == 12
    assert integ.tables == {
        "contacts": ["id", "email_addresses", "first_name", "modified_date"],
        "account_info": None,
    }
    assert "Changes saved" in admin.get(f"/integrations/{integ_id}").text
    r = admin.post(
        f"/integrations/{integ_id}/edit",
        [("frequency_hours", "12"), ("tables", "contacts"), ("tables", "events")],
    )
    assert r.status_code == 303
    details = admin.get(f"/integrations/{integ_id}").text
    assert "Newly selected tables and fields are read from" in details
    assert "events." in details
    assert integrations(web)[0].tables["contacts"] == ["id", "modified_date"]


def test_pause_reactivate_and_run_now_need_credentials(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    details = f"/integrations/{integ_id}"
    r = admin.post(f"{details}/pause", form_page=details)
    assert r.status_code == 303
    assert integrations(web)[0].state == "paused"
    assert "Re-activate" in admin.get(details).text
    admin.post(f"{details}/reactivate", form_page=details)
    assert integrations(web)[0].state == "pending"
    r = admin.post(f"{details}/run", form_page=details)
    assert r.headers["location"] == details
    assert "Authorize acme with Constant Contact first" in admin.get(details).text


def test_delete_confirmation_keeps_or_drops(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    page = admin.get(f"/integrations/{integ_id}/delete").text
    assert "Keep them" in page and "Drop them" in page and "cannot be undone" in page
    r = admin.post(f"/integrations/{integ_id}/delete", {"warehouse_tables": "keep"})
    assert r.status_code == 303 and r.headers["location"] == "/integrations"
    assert integrations(web) == []
    assert "Its warehouse tables were kept" in admin.get("/integrations").text


# --------------------------------------------------------------------------- jobs


def test_job_page_and_log_endpoint(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        run = svc.enqueue_run(db, integ, "manual")
        run_id = run.id
    page = admin.get(f"/jobs/{run_id}").text
    assert "Queued" in page and f'data-log="/jobs/{run_id}/log"' in page
    log = admin.get(f"/jobs/{run_id}/log", params={"after": 0}).json()
    assert log["finished"] is False and log["lines"] == [] and log["status"] == "queued"
    summary = admin.get(f"/jobs/{run_id}/summary")
    assert summary.status_code == 200 and "X-Poll-Done" not in summary.headers
    r = admin.post(f"/jobs/{run_id}/cancel", form_page=f"/jobs/{run_id}")
    assert r.status_code == 303
    with web.plane.session() as db:
        assert db.get(Run, run_id).status == "cancelled"  # type: ignore[union-attr]
    assert admin.get(f"/jobs/{run_id}/summary").headers["X-Poll-Done"] == "1"
    assert admin.get(f"/jobs/{run_id}/log").json()["finished"] is True
    assert admin.get("/jobs/nope").status_code == 404


# --------------------------------------------------------------------------- tokens, warehouse


def test_api_token_shown_once_then_revoked(admin: WebClient, web: WebServer) -> None:
    r = admin.post("/tokens", {"name": ""})
    assert r.status_code == 422 and "name" in dict(errors_in(r.text))
    r = admin.post("/tokens", {"name": "airflow"})
    assert r.status_code == 200
    plaintext = re.search(r'id="token-value">([^<]+)<', r.text)
    assert plaintext is not None
    token = plaintext.group(1)
    listing = admin.get("/tokens").text
    assert "airflow" in listing and token not in listing
    assert (
        admin.http.get(
            "/api/v1/integrations", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    with web.plane.session() as db:
        token_id = db.scalar(sa.select(ApiToken.id))
    admin.post(f"/tokens/{token_id}/revoke", form_page="/tokens")
    assert (
        admin.http.get(
            "/api/v1/integrations", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_warehouse_form(admin: WebClient, web: WebServer) -> None:
    page = admin.get("/warehouse").text
    assert 'value="duckdb" checked' in page
    r = admin.post(
        "/warehouse",
        {
            "destination": "other",
            "other_destination": "",
            "dataset": "constant_contact",
            "action": "save",
        },
    )
    assert r.status_code == 422
    assert "other_destination" in dict(errors_in(r.text))
    r = admin.post(
        "/warehouse", {"destination": "duckdb", "path": "", "dataset": "Bad Name", "action": "save"}
    )
    assert r.status_code == 422
    r = admin.post(
        "/warehouse",
        {"destination": "duckdb", "path": "", "dataset": "constant_contact", "action": "test"},
    )
    assert r.status_code == 200 and "Connection works." in r.text
    secret = "postgresql://u:sup3rsecret@127.0.0.1:1/db"
    r = admin.post(
        "/warehouse",
        {"destination": "postgres", "credentials": secret, "dataset": "cc", "action": "save"},
    )
    assert r.status_code == 303
    page = admin.get("/warehouse").text
    assert "sup3rsecret" not in page and 'value="postgres" checked' in page
    assert "stored — leave blank to keep" in page


# --------------------------------------------------------------------------- with the sandbox


@pytest.fixture
def cc_web(web_factory: Any, sandbox: Any) -> WebServer:
    """A served app (no workers) whose Constant Contact is the sandbox."""
    creds = sandbox.credentials
    return web_factory(  # type: ignore[no-any-return]
        workers=0,
        cc_base_url=sandbox.base_url,
        api_key=creds.api_key,
        client_secret=creds.client_secret,
        cc_qps_limit=None,
    )


def test_setup_with_manual_credentials_keeps_secrets_out_of_pages(
    cc_web: WebServer, sandbox: Any
) -> None:
    create_admin(cc_web.plane)
    client = cc_web.client()
    client.sign_in()
    creds = sandbox.credentials
    r = client.post(
        NEW_FORM, {"name": "acme", "frequency_hours": "2", "history_start": "2023-05-01"}
    )
    integ_id = integrations(cc_web)[0].id
    form = f"/integrations/{integ_id}/credentials"
    r = client.post(form, {"api_key": creds.api_key, "access_token": "not-a-token"})
    assert r.status_code == 422
    assert "access_token" in dict(errors_in(r.text))
    assert "not-a-token" not in r.text  # what was typed is not echoed back
    assert not integrations(cc_web)[0].has_credentials
    r = client.post(form, {"api_key": creds.api_key, "access_token": creds.access_token})
    assert r.headers["location"] == f"/integrations/{integ_id}/setup/tables"
    tables_page = f"/integrations/{integ_id}/setup/tables"
    r = client.post(tables_page, {"tables": ""})
    assert r.status_code == 422
    assert "at least one table" in dict(errors_in(r.text))["tables"]
    r = client.post(tables_page, [("tables", "contacts"), ("tables", "events")])
    assert r.headers["location"] == f"/integrations/{integ_id}/setup/fields"
    fields = client.get(r.headers["location"]).text
    assert 'data-table="contacts"' in fields and 'data-table="email_campaigns"' not in fields
    r = client.post(
        f"/integrations/{integ_id}/setup/fields",
        [
            ("fields.contacts", "first_name"),
            ("fields.contacts", "last_name"),
            *[("fields.events", c) for c in TABLES["events"].column_names if c != "id"],
        ],
    )
    assert r.headers["location"] == f"/integrations/{integ_id}"
    [integ] = integrations(cc_web)
    assert integ.state == "pending"
    assert integ.tables == {
        "contacts": ["id", "first_name", "last_name", "modified_date"],
        "events": None,
    }
    assert integ.next_run_at is not None  # the scheduler picks it up at its next tick
    for page in (
        f"/integrations/{integ_id}",
        f"/integrations/{integ_id}/edit",
        f"/integrations/{integ_id}/setup/authorize",
        form,
        "/integrations",
    ):
        html = client.get(page).text
        assert creds.access_token not in html and creds.api_key not in html, page
    details = client.get(f"/integrations/{integ_id}").text
    assert "API key and access token" in details and "Pending" in details
    # the live part keeps polling while the first job is awaited
    status = client.get(f"/integrations/{integ_id}/status")
    assert "X-Poll-Done" not in status.headers


def test_oauth_callback(cc_web: WebServer, sandbox: Any) -> None:
    from ctctsync.sandbox.testing import authorize_code

    create_admin(cc_web.plane)
    client = cc_web.client()
    client.sign_in()
    # the v2 OAuth flow (tests/web/test_v3_authorize.py drives v3's)
    form = {"name": "acme", "frequency_hours": "24", "history_start": "", "api_version": "v2"}
    client.post(NEW_FORM, form)
    [integ] = integrations(cc_web)
    integ_id = integ.id
    assert integ.api_version == "v2"
    setup_page = f"/integrations/{integ_id}/setup/authorize"

    def start() -> str:
        r = client.post(f"/integrations/{integ_id}/authorize", form_page=setup_page)
        authorize_url = r.headers["location"]
        assert authorize_url.startswith(sandbox.base_url + "/oauth2/oauth/siteowner/authorize")
        return re.search(r"state=([^&]+)", authorize_url).group(1)  # type: ignore[union-attr]

    state = start()
    # a refusal names no integration to anyone but the session that started it ...
    stranger = cc_web.client()
    for params in ({"error": "access_denied", "state": state}, {"error": "access_denied"}):
        denied = stranger.get("/oauth/callback", params=params)
        assert denied.status_code == 400 and "Deny was chosen" in denied.text
        assert "access_denied" not in denied.text.split("Constant Contact&#39;s answer")[0]
    # ... which is sent back to the authorize step, the refused authorization forgotten
    denied = client.get("/oauth/callback", params={"error": "access_denied", "state": state})
    assert denied.headers["location"] == setup_page + "?outcome=denied"
    assert 'id="try-again"' in client.get(denied.headers["location"]).text
    code = authorize_code(sandbox, cc_web.settings.oauth_redirect_uri, state=state)
    gone = client.get("/oauth/callback", params={"state": state, "code": code})
    assert gone.status_code == 400 and not integrations(cc_web)[0].has_credentials
    # try again: a different browser cannot complete it (tests/web/test_oauth_binding.py);
    # this one can
    state = start()
    code = authorize_code(sandbox, cc_web.settings.oauth_redirect_uri, state=state)
    r = stranger.get("/oauth/callback", params={"state": state, "code": code})
    assert r.status_code == 403 and "another browser session" in r.text
    r = client.get("/oauth/callback", params={"state": state, "code": code})
    assert r.headers["location"] == f"/integrations/{integ_id}/setup/tables"
    [integ] = integrations(cc_web)
    assert integ.has_credentials and integ.auth_method == "oauth"
    assert integ.state == "draft"  # still in setup: nothing runs before the tables are chosen
    replay = client.get("/oauth/callback", params={"state": state, "code": code})
    assert replay.status_code == 400 and "already used" in replay.text


def test_failed_and_needs_reauth_show_reason_and_remedy(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        integ.transition("needs_reauth", "Constant Contact rejected the access token.")
        db.commit()
    page = admin.get(f"/integrations/{integ_id}").text
    assert "Needs re-authorization" in page
    assert "Constant Contact rejected the access token." in page
    assert 'id="reauthorize"' in page
    fragment = admin.get(f"/integrations/{integ_id}/status")
    assert fragment.status_code == 200 and 'id="reauthorize"' in fragment.text
    assert fragment.headers["X-Poll-Done"] == "1"
    listing = admin.get("/integrations").text
    assert "Needs re-authorization" in listing and "rejected the access token" in listing
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        integ.transition("pending")
        integ.transition("failed", "The warehouse refused the connection.")
        db.commit()
    page = admin.get(f"/integrations/{integ_id}").text
    assert "The warehouse refused the connection." in page and 'id="reactivate"' in page


def test_warehouse_changes_are_for_admins(web: WebServer) -> None:
    with web.plane.session() as db:
        svc.create_user(db, "ana@example.com", "ana's long password")
    client = web.client()
    client.sign_in("ana@example.com", "ana's long password")
    page = client.get("/warehouse").text
    assert "Only an administrator" in page and 'id="save-warehouse"' not in page
    r = client.post(
        "/warehouse",
        {"destination": "postgres", "credentials": "postgresql://u:p@h/db", "action": "save"},
    )
    assert r.status_code == 403
    with web.plane.session() as db:
        assert svc.get_warehouse(db).destination == "duckdb"


def test_authorize_without_a_constant_contact_app(admin: WebClient, web: WebServer) -> None:
    r = admin.post(NEW_FORM, {"name": "acme", "frequency_hours": "24", "history_start": ""})
    step = r.headers["location"]
    integ_id = integrations(web)[0].id
    r = admin.post(f"/integrations/{integ_id}/authorize", form_page=step)
    assert r.headers["location"] == step
    page = admin.get(step).text
    assert "no Constant Contact application configured" in page
    assert "Enter API key and access token instead" in page


def test_long_log_is_paged_to_the_end(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    now = datetime.now(UTC)
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        run = svc.enqueue_run(db, integ, "manual")
        run_id = run.id
        svc.cancel_run(db, run)
        db.add_all(
            RunLog(run_id=run_id, seq=i, ts=now, level="INFO", message=f"line {i}")
            for i in range(1, 5204)
        )
        db.add(RunLog(run_id=run_id, seq=5204, ts=now, level="ERROR", message="<b>bold</b>"))
        db.commit()
    page = admin.get(f"/jobs/{run_id}").text
    assert "line 5000\n" in page and "line 5001\n" not in page
    assert f'data-log="/jobs/{run_id}/log" data-after="5000"' in page
    rest = admin.get(f"/jobs/{run_id}/log", params={"after": 5000}).json()
    assert [ln["seq"] for ln in rest["lines"]] == list(range(5001, 5205))
    assert rest["finished"] is True and rest["next"] == 5204
    assert rest["lines"][-1]["message"] == "<b>bold</b>"  # the script shows it as text
    first = admin.get(f"/jobs/{run_id}/log", params={"after": 0}).json()
    assert len(first["lines"]) == 500 and first["finished"] is False and first["next"] == 500


def test_messages_are_escaped(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None
        run = svc.enqueue_run(db, integ, "manual")
        run.transition("running")
        run.transition("failed")  # a failed job's page shows its error
        run.error = "<script>alert(1)</script>"
        db.add(
            RunLog(
                run_id=run.id,
                seq=1,
                ts=datetime.now(UTC),
                level="INFO",
                message="<img src=x onerror=alert(1)>",
            )
        )
        db.commit()
        run_id = run.id
    for path in (f"/jobs/{run_id}", f"/integrations/{integ_id}"):
        html = admin.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
    job = admin.get(f"/jobs/{run_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in job
    assert "&lt;img src=x onerror=alert(1)&gt;" in job


def test_an_unfinished_setup_continues_in_another_browser(admin: WebClient, web: WebServer) -> None:
    admin.post(NEW_FORM, {"name": "acme", "frequency_hours": "24", "history_start": ""})
    [integ] = integrations(web)
    other = web.client()
    other.sign_in()
    details = other.get(f"/integrations/{integ.id}").text
    assert "Continue setup" in details and "The setup is not finished" in details
    r = other.get(f"/integrations/{integ.id}/setup")
    assert r.headers["location"] == f"/integrations/{integ.id}/setup/authorize"
    assert "Authorize with Constant Contact" in other.get(r.headers["location"]).text
    # an integration that has run is edited, not set up again
    with web.plane.session() as db:
        row = db.get(Integration, integ.id)
        assert row is not None
        row.state, row.activated_at = "active", datetime.now(UTC)
        db.commit()
    assert other.get(f"/integrations/{integ.id}/setup").headers["location"].endswith("/edit")


# --------------------------------------------------------------------------- new fields (issue 8)


def test_edit_sets_the_new_field_policy(admin: WebClient, web: WebServer) -> None:
    integ_id = make_integration(web, "acme")
    path = f"/integrations/{integ_id}/edit"
    page = admin.get(path).text
    assert '<option value="ignore" selected>' in page
    r = admin.post(path, [("frequency_hours", "24"), ("tables", "contacts"),
                          ("new_columns", "everything")])
    assert r.status_code == 422
    assert "Choose ignore" in dict(errors_in(r.text))["new_columns"]
    assert integrations(web)[0].new_columns == "ignore"
    r = admin.post(path, [("frequency_hours", "24"), ("tables", "contacts"),
                          ("new_columns", "add")])
    assert r.status_code == 303, r.text
    assert integrations(web)[0].new_columns == "add"
    assert '<option value="add" selected>' in admin.get(path).text
    assert "Added as new columns" in admin.get(f"/integrations/{integ_id}").text


def test_details_show_new_fields_and_how_tables_are_really_read(
    admin: WebClient, web: WebServer
) -> None:
    from ctctsync.state import StateStore

    integ_id = make_integration(web, "acme")
    details = admin.get(f"/integrations/{integ_id}").text
    assert "New fields available" not in details
    row = details.split('data-table="contact_lists"')[1].split("</tr>")[0]
    assert "Full (read whole; key-based in the spec)" in row
    assert "Key-based" not in row
    StateStore(web.plane.engine, create=False).record_fields(
        "acme", "contacts", ["source_is_url"]
    )
    details = admin.get(f"/integrations/{integ_id}").text
    assert 'data-new-field="contacts.source_is_url"' in details
    assert "new field available" in details
    picker_page = admin.get(f"/integrations/{integ_id}/edit").text
    assert "Full (read whole; key-based in the spec)" in picker_page


def test_rest_schemas_carry_the_new_field_policy() -> None:
    from ctctsync.control.schemas import IntegrationPublic, IntegrationUpdate

    prop = IntegrationUpdate.model_json_schema()["properties"]["new_columns"]
    assert {"enum": ["ignore", "add"], "type": "string"} in prop["anyOf"]
    assert IntegrationCreate(name="acme").new_columns == "ignore"
    assert "new_columns" in IntegrationPublic.model_fields
