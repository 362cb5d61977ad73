"""v3 OAuth2 (constant-contact-v3-api.md §1.2) over real HTTP to the sandbox's authorization
server: the PKCE flow through its sign-in and consent pages, rotating refresh tokens kept by
``TokenKeeper`` in the state store (SQLite and PostgreSQL), refusals marking the vault, the
180-day rule, the device flow step by step, the token endpoint's 1 request/s, the access
check -- and several processes racing to refresh one shared refresh token."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import v3_token_worker  # tests/api is on sys.path (pytest's rootdir-relative import)

from ctctsync.api.client import ApiClient
from ctctsync.api.v3 import oauth
from ctctsync.api.v3.oauth import DeviceGrant, OAuthApp, TokenPacer, TokenSet
from ctctsync.api.v3.tokens import MemoryVault, TokenKeeper, seed_tokens
from ctctsync.errors import ConfigError, ReauthorizeRequired, RetriesExhausted
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import HtmlForm, SandboxFactory
from ctctsync.sandbox.v3.tokens import CAMPAIGN_CREATOR_PRIVILEGES
from ctctsync.tables import tables_for
from ctctsync.token_store import SqlTokenVault

CALLBACK = "http://127.0.0.1:8123/oauth/callback"
PG_URL = os.environ.get("CTCTSYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class CountingPacer(TokenPacer):
    """Our pacer, counting the token requests it lets through (no waiting: the sandbox's
    token limit is off unless a test turns it on)."""

    def __init__(self) -> None:
        super().__init__(interval=0.0)
        self.requests = 0

    def wait_turn(self, client_id: str) -> float:
        self.requests += 1
        return super().wait_turn(client_id)


def _app(sb: Sandbox) -> OAuthApp:
    return OAuthApp(sb.authz_url, sb.credentials.api_key)


def _api_status(sb: Sandbox, access_token: str) -> int:
    r = httpx.get(f"{sb.v3_url}/account/summary", timeout=10,
                  headers={"Authorization": f"Bearer {access_token}"})
    return r.status_code


def _sign_in(sb: Sandbox, url: str) -> httpx.Response:
    """Open ``url`` (our authorize URL) like a browser, sign in as the owner, allow."""
    c = sb.credentials
    with httpx.Client(timeout=10) as client:
        page = client.get(url)
        assert page.status_code == 200, page.text[:300]
        signed_in = HtmlForm.parse(page.text, "signin").submit(
            client, url, email=c.email, password=c.password)
        return HtmlForm.parse(signed_in.text, "consent").submit(client, url, ("decision", "allow"))


def _login(sb: Sandbox, http: httpx.Client, pacer: TokenPacer | None = None) -> TokenSet:
    """The PKCE flow with our library: pkce_pair, authorize_url, the pages, exchange_code."""
    verifier, challenge = oauth.pkce_pair()
    url = oauth.authorize_url(sb.authz_url, sb.credentials.api_key, CALLBACK, oauth.SCOPES,
                              "st4te", challenge)
    back = _sign_in(sb, url)
    assert back.status_code == 302, back.text[:300]
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    return oauth.exchange_code(http, sb.authz_url, sb.credentials.api_key, None, code, CALLBACK,
                               verifier, pacer=pacer)


def _approve(sb: Sandbox, grant: DeviceGrant, decision: str = "allow") -> None:
    """The person at the verification page: the code (prefilled), sign in, decide."""
    c = sb.credentials
    assert grant.verification_uri_complete is not None
    with httpx.Client(timeout=10) as client:
        page = client.get(grant.verification_uri_complete)
        signed_in = HtmlForm.parse(page.text, "activate").submit(
            client, str(page.url), email=c.email, password=c.password)
        done = HtmlForm.parse(signed_in.text, "consent").submit(
            client, str(page.url), ("decision", decision))
    assert done.status_code == 200, done.text[:300]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


# ---------------------------------------------------------------------------- the flows


def test_pkce_login_through_the_sign_in_pages(sandbox: Sandbox, http: httpx.Client) -> None:
    verifier, challenge = oauth.pkce_pair()
    assert 43 <= len(verifier) <= 128 and len(challenge) == 43
    url = oauth.authorize_url(sandbox.authz_url, sandbox.credentials.api_key, CALLBACK,
                              oauth.SCOPES, "st4te", challenge)
    query = parse_qs(urlsplit(url).query)
    assert "scope=account_read%20contact_data%20campaign_data%20offline_access" in url
    assert query["code_challenge_method"] == ["S256"] and query["state"] == ["st4te"]
    back = _sign_in(sandbox, url)
    assert back.status_code == 302
    returned = parse_qs(urlsplit(back.headers["location"]).query)
    assert returned["state"] == ["st4te"]
    code = returned["code"][0]

    before = datetime.now(UTC)
    tokens = oauth.exchange_code(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                                 code, CALLBACK, verifier, pacer=None)
    assert tokens.scope == oauth.SCOPES
    assert tokens.refresh_token
    # expires_in 86400 and the JWT's exp agree (sandbox clock = real time here)
    assert timedelta(hours=23, minutes=59) < tokens.expires_at - before <= timedelta(hours=24)
    assert oauth.token_scopes(tokens.access_token) == tuple(sorted(oauth.SCOPES))
    assert _api_status(sandbox, tokens.access_token) == 200
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)

    with pytest.raises(ReauthorizeRequired) as refused:  # a code is single-use
        oauth.exchange_code(http, sandbox.authz_url, sandbox.credentials.api_key, None, code,
                            CALLBACK, verifier, pacer=None)
    assert refused.value.error_key == "invalid_grant"
    assert refused.value.failure_type == "auth"
    assert "authorization code" in refused.value.user_message


def test_wrong_client_id_is_a_configuration_error(sandbox: Sandbox, http: httpx.Client) -> None:
    with pytest.raises(ConfigError) as wrong:
        oauth.refresh(http, sandbox.authz_url, "no-such-client", "nope", "x", pacer=None)
    assert wrong.value.error_key == "invalid_client"
    assert "nope" not in str(wrong.value)


def test_unreachable_server_is_transient(http: httpx.Client) -> None:
    with pytest.raises(RetriesExhausted) as down:
        oauth.refresh(http, "http://127.0.0.1:9/oauth2/default/v1", "cid", None,
                      "secret-refresh-token", pacer=None)
    assert down.value.failure_type == "transient"
    assert "secret-refresh-token" not in str(down.value)


def test_device_flow_step_by_step(sandbox: Sandbox, http: httpx.Client) -> None:
    app = _app(sandbox)
    grant = oauth.device_authorize(http, app.auth_base_url, app.client_id, oauth.SCOPES)
    assert grant.verification_uri == f"{sandbox.base_url}/activate"
    assert grant.interval == 5.0
    assert grant.device_code not in repr(grant)
    # the sandbox counts the interval on its own clock: polls are spaced by moving it
    assert oauth.poll_device_once(http, app.auth_base_url, app.client_id, grant.device_code,
                                  pacer=None) == "authorization_pending"
    assert oauth.poll_device_once(http, app.auth_base_url, app.client_id, grant.device_code,
                                  pacer=None) == "slow_down"  # too soon
    _approve(sandbox, grant)
    outcomes: list[object] = []
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        sandbox.advance(seconds)

    tokens = oauth.poll_device(http, app.auth_base_url, app.client_id, grant, wait=wait,
                               pacer=None, on_poll=outcomes.append)
    assert waits == [5.0] and outcomes == [tokens]
    assert tokens.scope == oauth.SCOPES and tokens.refresh_token
    assert _api_status(sandbox, tokens.access_token) == 200


def test_device_flow_slow_down_grows_the_interval(sandbox: Sandbox, http: httpx.Client) -> None:
    app = _app(sandbox)
    grant = oauth.device_authorize(http, app.auth_base_url, app.client_id)
    waits: list[float] = []
    outcomes: list[object] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) < 3:
            return  # the first two polls come at once: the second is too soon
        _approve(sandbox, grant)
        sandbox.advance(seconds)

    tokens = oauth.poll_device(http, app.auth_base_url, app.client_id, grant, wait=wait,
                               pacer=None, on_poll=outcomes.append)
    assert outcomes == ["authorization_pending", "slow_down", tokens]
    assert waits == [5.0, 5.0, 10.0]  # slow_down added 5 s for good (RFC 8628 §3.5)


def test_device_flow_denied_and_expired(sandbox: Sandbox, http: httpx.Client) -> None:
    app = _app(sandbox)
    denied = oauth.device_authorize(http, app.auth_base_url, app.client_id)
    _approve(sandbox, denied, "deny")
    with pytest.raises(ReauthorizeRequired) as no:
        oauth.poll_device(http, app.auth_base_url, app.client_id, denied,
                          wait=sandbox.advance, pacer=None)
    assert no.value.error_key == "access_denied"

    late = oauth.device_authorize(http, app.auth_base_url, app.client_id)
    with pytest.raises(ReauthorizeRequired) as expired:  # the server says so
        oauth.poll_device(http, app.auth_base_url, app.client_id, late,
                          wait=lambda s: sandbox.advance(601), pacer=None)
    assert expired.value.error_key == "expired_token"
    gone = replace(late, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(ReauthorizeRequired) as local:  # we know it without asking
        oauth.poll_device(http, app.auth_base_url, app.client_id, gone,
                          wait=lambda s: pytest.fail("waited for an expired code"), pacer=None)
    assert local.value.error_key == "expired_token"


def test_token_endpoint_429_waits_a_second_and_retries_once(
    sandbox_factory: SandboxFactory, http: httpx.Client
) -> None:
    sb = sandbox_factory(token_qps_limit=1)
    tokens = _login(sb, http, pacer=None)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sb.advance(seconds)  # the sandbox's 1/s is measured on its clock

    app = _app(sb)
    assert tokens.refresh_token is not None
    # right after the exchange, twice in the same second: 429, 429 -> a passing failure
    with pytest.raises(RetriesExhausted) as twice:
        oauth.refresh(http, app.auth_base_url, app.client_id, None, tokens.refresh_token,
                      pacer=None, sleep=lambda s: None)
    assert twice.value.failure_type == "transient" and twice.value.status == 429
    # a 429 changed nothing: the same refresh token is still good; this time we wait 1 s
    again = oauth.refresh(http, app.auth_base_url, app.client_id, None, tokens.refresh_token,
                          pacer=None, sleep=sleep)
    assert slept == [1.0]
    assert again.refresh_token != tokens.refresh_token
    # with our pacer (on the sandbox's clock), back-to-back calls need no 429 at all
    sb.advance(1)
    pacer = TokenPacer(clock=sb.v3_tokens.clock.monotonic, sleep=sb.advance)
    assert again.refresh_token is not None
    third = oauth.refresh(http, app.auth_base_url, app.client_id, None, again.refresh_token,
                          pacer=pacer, sleep=lambda s: pytest.fail("429 despite pacing"))
    assert third.refresh_token is not None
    oauth.refresh(http, app.auth_base_url, app.client_id, None, third.refresh_token,
                  pacer=pacer, sleep=lambda s: pytest.fail("429 despite pacing"))


def test_pacer_spaces_one_clients_requests_by_a_second() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = TokenPacer(clock=lambda: now[0], sleep=sleep)
    assert [pacer.wait_turn("a") for _ in range(3)] == [0.0, 1.0, 2.0]
    assert pacer.wait_turn("b") == 0.0  # per client id
    now[0] += 5
    assert pacer.wait_turn("a") == 0.0
    assert waits == [1.0, 2.0]


def test_missing_access_names_scopes_and_privileges(sandbox: Sandbox) -> None:
    token = sandbox.v3_tokens.issue_access_token(["account_read", "campaign_data"])
    sandbox.v3_tokens.privileges = CAMPAIGN_CREATOR_PRIVILEGES
    with ApiClient(sandbox.base_url, sandbox.credentials.api_key, token,
                   send_api_key=False) as client:
        problems = oauth.missing_access(client, oauth.token_scopes(token) or ())
    assert problems == [
        "missing scope contact_data: Contacts, ContactLists, ContactTags, ContactCustomFields, "
        "Segments cannot be read; re-authorize the integration granting contact_data",
        "the authorizing user lacks the privilege ui:campaign:metrics: ContactTracking, "
        "EmailCampaignSummary cannot be read; re-authorize as a user who has it (e.g. the "
        "account owner)",
        "missing scope offline_access: no refresh token, so access ends when the access token "
        "expires (24 h); re-authorize granting it",
    ]
    with ApiClient(sandbox.base_url, sandbox.credentials.api_key, token,
                   send_api_key=False) as client:  # only the selected tables count
        assert oauth.missing_access(client, [*(oauth.token_scopes(token) or ()), "offline_access"],
                                    tables=["account_info", "email_campaigns"]) == []
    sandbox.v3_tokens.privileges = frozenset(sandbox.v3_tokens.privileges | {
        "contacts:read", "contacts:lists:read", "ui:campaign:metrics"})
    full = sandbox.v3_tokens.issue_access_token(oauth.SCOPES)
    with ApiClient(sandbox.base_url, sandbox.credentials.api_key, full,
                   send_api_key=False) as client:
        assert oauth.missing_access(client, oauth.SCOPES) == []


def test_every_v3_table_has_its_access_declared() -> None:
    assert set(tables_for("v3")) <= set(oauth.TABLE_ACCESS)


# ---------------------------------------------------------------------------- the keeper


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlTokenVault]:
    """The CLI's vault on a SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
    v = SqlTokenVault(url, "acme", client_id="cid")
    yield v
    v.close()


def test_keeper_rotates_and_the_old_refresh_token_is_dead(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    first = _login(sandbox, http)
    vault.store(first)
    pacer = CountingPacer()
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=pacer)
    assert keeper.fresh_access_token() == first.access_token  # valid: no request
    assert pacer.requests == 0

    renewed = keeper.renew()  # as after a 401: refresh
    stored = vault.load()
    assert stored is not None and stored.tokens.access_token == renewed != first.access_token
    assert stored.tokens.refresh_token not in (None, first.refresh_token)
    assert stored.tokens.scope == oauth.SCOPES and stored.needs_reauth is None
    assert (pacer.requests, keeper.refreshes) == (1, 1)
    assert _api_status(sandbox, renewed) == 200
    assert keeper.fresh_access_token() == renewed

    assert first.refresh_token is not None
    with pytest.raises(ReauthorizeRequired) as dead:  # rotated away (§1.2)
        oauth.refresh(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                      first.refresh_token, pacer=None)
    assert dead.value.user_message == oauth.REFRESH_REFUSED_MESSAGE

    # a token about to expire is refreshed before use, and stored first
    with vault.locked() as v:
        v.save(replace(stored.tokens, expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    third = keeper.fresh_access_token()
    assert third != renewed and keeper.refreshes == 2
    assert vault.load().tokens.access_token == third  # type: ignore[union-attr]


def test_refused_refresh_marks_the_vault_and_stops_asking(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    tokens = _login(sandbox, http)
    vault.store(tokens)
    assert tokens.refresh_token is not None
    oauth.revoke(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                 tokens.refresh_token, "refresh_token")
    pacer = CountingPacer()
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=pacer)
    with pytest.raises(ReauthorizeRequired) as refused:
        keeper.renew()
    assert refused.value.user_message == oauth.REFRESH_REFUSED_MESSAGE
    assert refused.value.error_key == "invalid_grant" and refused.value.stops_run
    record = vault.load()
    assert record is not None and record.needs_reauth == oauth.REFRESH_REFUSED_MESSAGE
    # marked: neither method spends another token request on the dead grant
    for call in (keeper.renew, keeper.fresh_access_token):
        with pytest.raises(ReauthorizeRequired) as again:
            call()
        assert again.value.user_message == oauth.REFRESH_REFUSED_MESSAGE
    assert pacer.requests == 1
    # a new sign-in clears the mark
    vault.store(_login(sandbox, http))
    assert vault.load().needs_reauth is None  # type: ignore[union-attr]
    assert _api_status(sandbox, keeper.renew()) == 200


def test_refresh_token_unused_for_180_days_is_not_tried(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    tokens = _login(sandbox, http)
    old = datetime.now(UTC) - timedelta(days=181)
    vault.store(replace(tokens, obtained_at=old, expires_at=old + timedelta(days=1)))
    pacer = CountingPacer()
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=pacer)
    with pytest.raises(ReauthorizeRequired) as idle:
        keeper.fresh_access_token()
    assert "more than 180 days ago" in idle.value.user_message
    assert pacer.requests == 0
    assert vault.load().needs_reauth == idle.value.user_message  # type: ignore[union-attr]
    assert tokens.refresh_token is not None  # untouched: the sandbox still takes it
    oauth.refresh(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                  tokens.refresh_token, pacer=None)


def test_not_authorized_and_no_refresh_token(sandbox: Sandbox, http: httpx.Client) -> None:
    with pytest.raises(ReauthorizeRequired) as none:
        TokenKeeper(MemoryVault(), _app(sandbox), http=http).fresh_access_token()
    assert "holds no Constant Contact v3 authorization" in none.value.user_message
    token = sandbox.v3_tokens.issue_access_token(["contact_data"])
    now = datetime.now(UTC)
    bare = TokenSet(token, None, now, ("contact_data",), now)  # expired, no refresh token
    with pytest.raises(ReauthorizeRequired) as no_refresh:
        TokenKeeper(MemoryVault(bare), _app(sandbox), http=http).fresh_access_token()
    assert "offline_access" in no_refresh.value.user_message


def test_seeded_refresh_token_is_refreshed_on_first_use(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    tokens = _login(sandbox, http)
    assert tokens.refresh_token is not None
    vault = MemoryVault(seed_tokens(tokens.refresh_token))
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=None)
    access = keeper.fresh_access_token()
    assert keeper.refreshes == 1 and _api_status(sandbox, access) == 200


def test_renewal_through_the_api_client_after_a_401(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    tokens = _login(sandbox, http)
    vault.store(tokens)
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=None)
    start = keeper.fresh_access_token()
    sandbox.v3_tokens.revoke_access_token(start)  # the API now answers 401 to it
    with ApiClient(sandbox.base_url, sandbox.credentials.api_key, start, send_api_key=False,
                   renew_token=keeper.renew) as client:
        body = client.get_json("/v3/account/summary")
    assert isinstance(body, dict) and keeper.refreshes == 1


def test_clients_of_one_keeper_meeting_a_401_together_refresh_once(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    vault.store(_login(sandbox, http))
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=None)
    start = keeper.fresh_access_token()
    sandbox.v3_tokens.revoke_access_token(start)  # every client's token is now refused
    clients = [ApiClient(sandbox.base_url, sandbox.credentials.api_key, start,
                         send_api_key=False, renew_token=keeper.renew)
               for _ in range(3)]
    try:
        for client in clients:
            assert isinstance(client.get_json("/v3/account/summary"), dict)
    finally:
        for client in clients:
            client.close()
    assert keeper.refreshes == 1  # the second and third client took the first one's token


def test_long_lived_refresh_tokens_come_back_unchanged(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    sandbox.v3_tokens.settings.refresh_token_mode = "long_lived"  # §1.2, per application
    first = _login(sandbox, http)
    vault.store(first)
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=None)
    keeper.renew(refused=keeper.renew(refused=first.access_token))
    stored = vault.load()
    assert stored is not None and keeper.refreshes == 2
    assert stored.tokens.refresh_token == first.refresh_token
    assert stored.tokens.obtained_at > first.obtained_at  # its 180-day clock restarted


def test_threads_with_their_own_keepers_refresh_once(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault
) -> None:
    first = _login(sandbox, http)
    vault.store(replace(first, expires_at=datetime.now(UTC) + timedelta(minutes=2)))
    keepers = [TokenKeeper(vault, _app(sandbox), pacer=None) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        handed = set(pool.map(lambda k: k.fresh_access_token(), keepers))
    assert sum(k.refreshes for k in keepers) == 1
    assert handed == {vault.load().tokens.access_token}  # type: ignore[union-attr]


def test_a_passing_refresh_failure_keeps_a_still_valid_token(http: httpx.Client) -> None:
    now = datetime.now(UTC)
    soon = TokenSet("still-valid-access", "some-refresh", now + timedelta(minutes=5),
                    oauth.SCOPES, now)
    down = OAuthApp("http://127.0.0.1:9/oauth2/default/v1", "cid")  # nothing listens
    keeper = TokenKeeper(MemoryVault(soon), down, http=http, pacer=None)
    # due for a refresh (< 10 min left), which fails: the token is good for 5 more minutes
    assert keeper.fresh_access_token() == "still-valid-access"
    with pytest.raises(RetriesExhausted):  # but the API refused it: no way around
        keeper.renew()
    assert keeper.vault.load().needs_reauth is None  # type: ignore[union-attr]


def test_refreshing_logs_no_token(
    sandbox: Sandbox, http: httpx.Client, vault: SqlTokenVault, caplog: pytest.LogCaptureFixture
) -> None:
    first = _login(sandbox, http)
    vault.store(first)
    keeper = TokenKeeper(vault, _app(sandbox), http=http, pacer=None)
    with caplog.at_level(logging.DEBUG):
        renewed = keeper.renew()
        oauth.revoke(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                     vault.load().tokens.refresh_token or "", "refresh_token")  # type: ignore[union-attr]
        with pytest.raises(ReauthorizeRequired):
            keeper.renew(refused=renewed)
    stored = vault.load()
    assert stored is not None and caplog.records
    secrets = {first.access_token, first.refresh_token, stored.tokens.access_token,
               stored.tokens.refresh_token}
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(s and s in text for s in secrets)


# ---------------------------------------------------------------------------- the race


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards)."""
    admin = sa.create_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI=true")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable")
    schema = f"v3tok_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _race(sb: Sandbox, url: str, methods: list[str]) -> list[dict[str, object]]:
    """One worker process per method, forked from a fork server with the token code
    imported; all wait at one barrier (with us) and go at once. Returns their answers."""
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(["ctctsync.token_store", "v3_token_worker"])
    barrier, results = mp.Barrier(len(methods) + 1), mp.Queue()
    workers = [
        mp.Process(target=v3_token_worker.race_worker, daemon=True,
                   args=(url, sb.authz_url, sb.credentials.api_key, method, barrier, results))
        for method in methods
    ]
    for w in workers:
        w.start()
    try:
        barrier.wait(timeout=60)  # everyone is ready: go
        go = time.monotonic()
        answers = [results.get(timeout=60) for _ in workers]
        print(f"{len(workers)} workers released at once, all answered in "
              f"{time.monotonic() - go:.2f} s")
        for w in workers:
            w.join(timeout=30)
            assert w.exitcode == 0
        return answers
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()


def _run_race(sb: Sandbox, url: str, http: httpx.Client) -> None:
    first = _login(sb, http)
    vault = SqlTokenVault(url, "acme", client_id=sb.credentials.api_key)
    try:
        # an access token about to expire: every worker's fresh_access_token must refresh
        # unless another one just did; renew() workers refresh unless the token changed
        vault.store(replace(first, expires_at=datetime.now(UTC) + timedelta(minutes=2)))
        methods = ["renew", "fresh", "renew", "fresh"]
        started = time.monotonic()
        answers = _race(sb, url, methods)
        elapsed = time.monotonic() - started
        final = vault.load()
    finally:
        vault.close()
    print(f"race of {len(methods)} processes on {url.split(':', maxsplit=1)[0]}: {elapsed:.2f} s")
    assert not [a for a in answers if "error" in a], answers
    assert final is not None and final.needs_reauth is None
    refreshes = sum(int(str(a["refreshes"])) for a in answers)
    handed = {str(a["token"]) for a in answers}
    # one refresh, shared by all: everyone waited for the lock and reloaded
    assert refreshes == 1, answers
    assert handed == {final.tokens.access_token}
    assert final.tokens.access_token != first.access_token
    assert _api_status(sb, final.tokens.access_token) == 200
    # the chain is intact: the first refresh token is spent, the stored one works
    assert first.refresh_token is not None and final.tokens.refresh_token is not None
    with pytest.raises(ReauthorizeRequired):
        oauth.refresh(http, sb.authz_url, sb.credentials.api_key, None, first.refresh_token,
                      pacer=None)
    after = oauth.refresh(http, sb.authz_url, sb.credentials.api_key, None,
                          final.tokens.refresh_token, pacer=None)
    assert _api_status(sb, after.access_token) == 200


def test_processes_racing_on_sqlite_refresh_once(
    sandbox_factory: SandboxFactory, http: httpx.Client, tmp_path: Path
) -> None:
    sb = sandbox_factory(token_qps_limit=1)  # CC's 1/s: a second refresh would meet it
    _run_race(sb, f"sqlite:///{tmp_path / 'state.db'}", http)


@pytest.mark.postgres
def test_processes_racing_on_postgresql_refresh_once(
    sandbox_factory: SandboxFactory, http: httpx.Client, pg_schema_url: str
) -> None:
    sb = sandbox_factory(token_qps_limit=1)
    _run_race(sb, pg_schema_url, http)
