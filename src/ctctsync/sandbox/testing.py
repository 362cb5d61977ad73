"""pytest plugin: sandbox fixtures. Register with ``pytest_plugins = ["ctctsync.sandbox.testing"]``.

* ``sandbox`` - a running small account (``SMALL_SPEC``), rate limits off, per test.
* ``sandbox_factory`` - ``sandbox_factory(spec=None, qps_limit=None, daily_limit=None,
  faults=(), ...)`` starts more sandboxes; all are stopped at teardown.
* ``sandbox_client`` - an ``httpx.Client`` on the ``sandbox`` with the API key and bearer token
  already set.
* ``sandbox_v3_client`` - an ``httpx.Client`` on the ``sandbox``'s base URL with a v3 bearer
  token of every API scope (paths are ``/v3/...``, like the ``_links`` hrefs).

Helpers for the v3 authorization server: :func:`pkce_pair`, :class:`HtmlForm` (reads a page's
form like a browser), :func:`authorize_v3` (drives the sign-in and consent pages),
:func:`authorize_v3_code` and :func:`v3_tokens_by_pkce` (the whole PKCE flow).

Helpers for the events test hooks (``/_sandbox/events...`` over HTTP; an event is named by its
v3 ``event_id`` or v2 id): :func:`sandbox_events`, :func:`add_event_registrations`,
:func:`update_event_registration`, :func:`modify_event`, :func:`cancel_event`,
:func:`delete_event`. Each answers the event's summary (``docs/sandbox.md``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.server import Sandbox

SMALL_SPEC = AccountSpec(seed=7, contacts=260, lists=5, campaigns=7, activities_per_campaign=60,
                         library_files=14, trash_files=3, events=4)
"""The account of the ``sandbox`` fixture: small, but every table has several pages."""

SandboxFactory = Callable[..., Sandbox]


def authorize_code(sb: Sandbox, redirect_uri: str, *, state: str = "xyz",
                   email: str | None = None, password: str | None = None) -> str:
    """Drive the sandbox's OAuth login page like a browser would (GET the page, POST the
    owner's email and password) and return the authorization code from the redirect."""
    creds = sb.credentials
    params = {"response_type": "code", "client_id": creds.api_key, "redirect_uri": redirect_uri,
              "state": state}
    url = f"{sb.base_url}/oauth2/oauth/siteowner/authorize"
    with httpx.Client(timeout=10) as client:
        page = client.get(url, params=params)
        page.raise_for_status()
        r = client.post(url, data={**params, "email": email or creds.email,
                                   "password": password or creds.password, "action": "allow"})
    if r.status_code != 302:
        raise AssertionError(f"login failed: {r.status_code} {r.text[:200]}")
    query = parse_qs(urlsplit(r.headers["location"]).query)
    return query["code"][0]


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE ``(code_verifier, code_challenge)`` (S256, RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class HtmlForm:
    """A page's form as a browser sees it: where it posts, and its fields' current values
    (hidden, text, email, password; submit buttons are kept apart in ``buttons``)."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, list[str]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    """The ``for`` of every ``<label>`` in the form (each names a field's id)."""
    ids: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, page: str, form_id: str) -> HtmlForm:
        """The form ``id=form_id`` of ``page``; AssertionError if there is none."""
        parser = _FormParser(form_id)
        parser.feed(page)
        if parser.form is None:
            raise AssertionError(f"no form {form_id!r} on the page: {page[:300]}")
        return parser.form

    def submit(self, client: httpx.Client, page_url: str, button: tuple[str, str] | None = None,
               **values: str) -> httpx.Response:
        """Post the form with ``values`` typed in and ``button`` (name, value) pressed."""
        data = {**self.fields, **values}
        if button is not None:
            data[button[0]] = button[1]
        return client.request(self.method.upper(), urljoin(page_url, self.action), data=data)


class _FormParser(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.form: HtmlForm | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.form = HtmlForm(a.get("action", ""), a.get("method", "get"))
            self._inside = True
        elif not self._inside or self.form is None:
            return
        elif tag == "input" and a.get("name"):
            self.form.fields[a["name"]] = a.get("value", "")
            self.form.ids.append(a.get("id", ""))
        elif tag == "button" and a.get("name"):
            self.form.buttons.setdefault(a["name"], []).append(a.get("value", ""))
        elif tag == "label":
            self.form.labels.append(a.get("for", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def authorize_v3(sb: Sandbox, redirect_uri: str, scopes: Iterable[str], *,
                 state: str = "xyz", code_challenge: str | None = None,
                 decision: str = "allow", email: str | None = None,
                 password: str | None = None, extra: dict[str, str] | None = None,
                 ) -> httpx.Response:
    """Drive the v3 authorize pages like a browser: open the sign-in page, post the owner's
    email and password through its form, press ``decision`` on the consent page. Returns the
    last response (the redirect back to ``redirect_uri`` if all went well)."""
    creds = sb.credentials
    params = {"response_type": "code", "client_id": creds.api_key, "redirect_uri": redirect_uri,
              "scope": " ".join(scopes), "state": state, **(extra or {})}
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    url = f"{sb.authz_url}/authorize"
    with httpx.Client(timeout=10) as client:
        page = client.get(url, params=params)
        page.raise_for_status()
        signed_in = HtmlForm.parse(page.text, "signin").submit(
            client, url, email=email or creds.email, password=password or creds.password)
        if signed_in.status_code != 200 or 'id="consent"' not in signed_in.text:
            return signed_in
        return HtmlForm.parse(signed_in.text, "consent").submit(
            client, url, ("decision", decision))


def authorize_v3_code(sb: Sandbox, redirect_uri: str, scopes: Iterable[str], *,
                      state: str = "xyz", code_challenge: str | None = None) -> str:
    """:func:`authorize_v3` allowed; returns the ``code`` of the redirect."""
    r = authorize_v3(sb, redirect_uri, scopes, state=state, code_challenge=code_challenge)
    if r.status_code != 302:
        raise AssertionError(f"authorize failed: {r.status_code} {r.text[:300]}")
    query = parse_qs(urlsplit(r.headers["location"]).query)
    if query.get("state") != [state]:
        raise AssertionError(f"state not returned: {r.headers['location']}")
    return query["code"][0]


def v3_tokens_by_pkce(sb: Sandbox, scopes: Iterable[str] = (
        "account_read", "contact_data", "campaign_data", "offline_access"),
        redirect_uri: str = "http://127.0.0.1:9/callback") -> dict[str, Any]:
    """The whole PKCE flow (no client secret): the token endpoint's JSON answer."""
    verifier, challenge = pkce_pair()
    code = authorize_v3_code(sb, redirect_uri, scopes, code_challenge=challenge)
    r = httpx.post(f"{sb.authz_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": sb.credentials.api_key, "code_verifier": verifier})
    if r.status_code != 200:
        raise AssertionError(f"token exchange failed: {r.status_code} {r.text[:300]}")
    body: dict[str, Any] = r.json()
    return body


def _admin(sb: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    """The JSON answer of an admin route (GET without ``body``, else POST); AssertionError on
    any status but 200."""
    url = f"{sb.base_url}/_sandbox{path}"
    r = httpx.get(url, timeout=10) if body is None else httpx.post(url, json=body, timeout=10)
    if r.status_code != 200:
        raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")
    return r.json()


def sandbox_events(sb: Sandbox) -> list[dict[str, Any]]:
    """Every event's summary (``event_id``, ``v2_id``, ``track_id``, ``status``, ``name``,
    ``title``, ``time_zone``, ``registration_count``, ``ticket_sold``, ``last_update_time``...),
    in account order."""
    events: list[dict[str, Any]] = _admin(sb, "/events")
    return events


def add_event_registrations(sb: Sandbox, event_id: str, n: int = 1) -> dict[str, Any]:
    """``n`` new REGISTERED registrations of the event: its summary plus the new
    ``registration_ids``."""
    body: dict[str, Any] = _admin(sb, f"/events/{event_id}/registrations/add", {"n": n})
    return body


def update_event_registration(sb: Sandbox, event_id: str, registration_id: str, *,
                              payment_status: str | None = None,
                              registration_status: str | None = None,
                              checked_in: bool | int | None = None) -> dict[str, Any]:
    """Change a registration's payment status, registration status and/or check-in: the
    event's summary plus the ``registration``'s new v3 list record."""
    changes = {k: v for k, v in (("payment_status", payment_status),
                                 ("registration_status", registration_status),
                                 ("checked_in", checked_in)) if v is not None}
    body: dict[str, Any] = _admin(
        sb, f"/events/{event_id}/registrations/{registration_id}/update", changes)
    return body


def modify_event(sb: Sandbox, event_id: str, *, name: str | None = None,
                 title: str | None = None, description: str | None = None,
                 time_zone: str | None = None) -> dict[str, Any]:
    """Edit the event (nothing given: its title gains " (edited)"): its new summary."""
    changes = {k: v for k, v in (("name", name), ("title", title), ("description", description),
                                 ("time_zone", time_zone)) if v is not None}
    body: dict[str, Any] = _admin(sb, f"/events/{event_id}/modify", changes)
    return body


def cancel_event(sb: Sandbox, event_id: str) -> dict[str, Any]:
    """Cancel the event (status CANCELLED): its new summary."""
    body: dict[str, Any] = _admin(sb, f"/events/{event_id}/cancel", {})
    return body


def delete_event(sb: Sandbox, event_id: str) -> dict[str, Any]:
    """Delete the event (status DELETED; still listed and served): its new summary."""
    body: dict[str, Any] = _admin(sb, f"/events/{event_id}/delete", {})
    return body


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes on demand: ``sandbox_factory(spec, qps_limit=..., daily_limit=...,
    token_qps_limit=...)``. Rate limits (the v3 token endpoint's too) are off unless given."""
    started: list[Sandbox] = []

    def factory(spec: AccountSpec | None = None, **kwargs: Any) -> Sandbox:
        kwargs.setdefault("qps_limit", None)
        kwargs.setdefault("daily_limit", None)
        kwargs.setdefault("token_qps_limit", None)
        sb = Sandbox(spec or SMALL_SPEC, **kwargs).start()
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A running sandbox with the small account and no rate limits."""
    return sandbox_factory()


@pytest.fixture
def sandbox_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client for ``sandbox``: base URL, ``api_key`` and bearer token preset."""
    creds = sandbox.credentials
    with httpx.Client(base_url=sandbox.base_url, params={"api_key": creds.api_key},
                      headers={"Authorization": f"Bearer {creds.access_token}",
                               "Accept": "application/json"}, timeout=10) as client:
        yield client


@pytest.fixture
def sandbox_v3_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client for ``sandbox``'s v3 API: base URL (call ``/v3/...``) and a bearer token
    with every API scope preset (``sandbox.credentials.v3_access_token``)."""
    token = sandbox.credentials.v3_access_token
    with httpx.Client(base_url=sandbox.base_url,
                      headers={"Authorization": f"Bearer {token}",
                               "Accept": "application/json"}, timeout=10) as client:
        yield client
