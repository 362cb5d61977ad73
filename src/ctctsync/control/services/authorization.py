"""Connecting an integration to Constant Contact. Credentials are stored Fernet-encrypted,
never in plaintext.

- v3 (the default for new integrations): the authorization-code flow with PKCE (S256; the
  verifier stays server-side on the pending :class:`OAuthState`), scopes
  :data:`ctctsync.api.v3.oauth.SCOPES`; the token set goes to the integration's vault
  (:mod:`ctctsync.control.services.tokens`) and what the grant lacks for the selected tables
  is checked at once (``missing_access``) -- v3 reference §1.2, §3.10.
- v2 (legacy): the v2 OAuth server flow, or an API key and access token entered by hand.

The application (client id = the developer portal's "API key", secret, redirect URI) is
entered once by an administrator (:func:`save_app_registration`) or pinned by ``CTCTSYNC_*``
variables, which win.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.api.client import ApiClient, RetryPolicy
from ctctsync.api.v2.endpoints import AUTH_BASE_URL, BASE_URL
from ctctsync.api.v2.oauth import authorize_url, check, exchange_code
from ctctsync.api.v3 import oauth as v3oauth
from ctctsync.control.context import ControlContext, context
from ctctsync.control.errors import Conflict, PermissionDenied, ValidationFailed
from ctctsync.control.models import (
    ApiVersion,
    AppRegistration,
    AuthMethod,
    Integration,
    OAuthState,
    User,
)
from ctctsync.control.ratebudget import key_limiter, limits_of_key
from ctctsync.control.schemas import (
    AppRegistrationIn,
    AppRegistrationPublic,
    selection_problems_for,
)
from ctctsync.control.services.tokens import encrypt_token_set
from ctctsync.errors import FAILURES, CtctError, register_secret
from ctctsync.tables import TABLES, tables_for

log = logging.getLogger(__name__)


def auth_base_url(ctx: ControlContext) -> str:
    """Where the OAuth pages live: as configured, else CC's, else (a sandbox) the API's host."""
    settings = ctx.settings
    if settings.cc_auth_base_url:
        return settings.cc_auth_base_url
    if settings.cc_base_url.rstrip("/") == BASE_URL:
        return AUTH_BASE_URL
    # The sandbox serves the OAuth pages on the same host as the API.
    return settings.cc_base_url


# ----------------------------------------------------------------------------- the application


@dataclass(frozen=True)
class Application:
    """This installation's Constant Contact application, as ctctsync uses it: the
    environment's ``CTCTSYNC_*`` values over the administrator's stored ones over defaults."""

    client_id: str
    client_secret: str
    """"" when none is configured (v3 then authorizes as a public PKCE client)."""
    redirect_uri: str
    authz_base_url: str
    """The v3 authorization server."""
    from_environment: frozenset[str]
    """The fields a ``CTCTSYNC_*`` variable pins (the admin page shows them read-only)."""

    def __repr__(self) -> str:
        return f"Application(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r})"

    @property
    def v3(self) -> v3oauth.OAuthApp:
        """The application as the v3 OAuth functions take it."""
        return v3oauth.OAuthApp(self.authz_base_url, self.client_id, self.client_secret or None)


def _stored_registration(db: Session) -> AppRegistration | None:
    return db.get(AppRegistration, 1)


def _stored_secret(ctx: ControlContext, row: AppRegistration | None) -> str:
    """The administrator's stored secret; "" (shown "not set", so it is entered again)
    when there is none or the encryption key changed since it was stored."""
    if row is None or not row.client_secret_encrypted:
        return ""
    try:
        return ctx.box.decrypt(row.client_secret_encrypted)
    except ValueError as exc:
        log.warning("the stored client secret of the application is unusable: %s", exc)
        return ""


def application(db: Session) -> Application:
    """The application to authorize with (see :class:`Application`)."""
    ctx = context(db)
    settings = ctx.settings
    row = _stored_registration(db)
    env_id = settings.client_id or (settings.api_key.get_secret_value() if settings.api_key else "")
    env_secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
    stored_secret = _stored_secret(ctx, row)
    pinned = {
        "client_id": bool(env_id),
        "client_secret": bool(env_secret),
        "redirect_uri": bool(settings.oauth_redirect_url),
        "authz_base_url": bool(settings.cc_authz_base_url),
    }
    app = Application(
        client_id=env_id or (row.client_id if row is not None else ""),
        client_secret=env_secret or stored_secret,
        redirect_uri=settings.oauth_redirect_url
        or (row.redirect_uri if row is not None and row.redirect_uri else "")
        or settings.oauth_redirect_uri,
        authz_base_url=settings.cc_authz_base_url
        or (row.authz_base_url if row is not None and row.authz_base_url else "")
        or settings.v3_authz_base_url,
        from_environment=frozenset(k for k, v in pinned.items() if v),
    )
    # The server's own OAuth application: process-wide secrets (an integration's are not).
    register_secret(app.client_id or None)
    register_secret(app.client_secret or None)
    return app


def app_registration(db: Session) -> AppRegistrationPublic:
    """The application as the admin page and the REST API show it (never the secret)."""
    app = application(db)
    return AppRegistrationPublic(
        client_id=app.client_id,
        client_secret="set" if app.client_secret else "not set",
        redirect_uri=app.redirect_uri,
        authz_base_url=app.authz_base_url,
        from_environment=sorted(app.from_environment),
    )


def save_app_registration(
    db: Session, admin: User, data: AppRegistrationIn
) -> AppRegistrationPublic:
    """Store the application an administrator entered (the secret encrypted; ``None`` keeps
    the stored secret, "" clears it). Values pinned by the environment still win."""
    if not admin.is_admin:
        raise PermissionDenied("Only an administrator can change the application.")
    ctx = context(db)
    row = _stored_registration(db) or AppRegistration(id=1)
    row.client_id = data.client_id.strip()
    if data.client_secret is not None:
        secret = data.client_secret.strip()
        row.client_secret_encrypted = ctx.box.encrypt(secret) if secret else None
    row.redirect_uri = (data.redirect_uri or "").rstrip("/") or None
    row.authz_base_url = (data.authz_base_url or "").rstrip("/") or None
    row.updated_at = ctx.now()
    row.updated_by_id = admin.id
    db.add(row)
    db.commit()
    return app_registration(db)


def _app_credentials(ctx: ControlContext, db: Session) -> tuple[str, str]:
    app = application(db)
    api_key, secret = app.client_id, app.client_secret
    if not api_key or not secret:
        raise ValidationFailed(
            {
                "credentials": (
                    "This server has no Constant Contact application configured "
                    "(Admin > Constant Contact application, or CTCTSYNC_API_KEY and "
                    "CTCTSYNC_CLIENT_SECRET); enter an API key and access token instead, or "
                    "ask the administrator."
                )
            }
        )
    return api_key, secret


class AuthorizationNotBound(PermissionDenied):
    """An OAuth callback arrived from another session than the one that started it.

    Nothing is stored and the pending authorization stays usable by the session that
    started it: completing it here could attach the approver's Constant Contact account to
    someone else's integration (a victim who approves an authorize URL an attacker began).
    """

    def __init__(self) -> None:
        super().__init__(
            "This authorization was started in another browser session, so ctctsync did "
            "not connect the Constant Contact account: finishing it here could attach your "
            "account to someone else's integration. To connect your account, start the "
            "authorization again from your integration's page, in this browser.",
            {"state": "started by another session"},
        )


def new_binding() -> str:
    """A random nonce for a browser session: kept in its signed cookie, hashed into each
    authorization it starts (:func:`start_authorization`)."""
    return secrets.token_urlsafe(32)


def _binding_hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


def _bound_to(pending: OAuthState, binding: str | None) -> bool:
    """Whether ``binding`` (the caller's session nonce; None for the REST API) is the one
    the authorization was started with."""
    if pending.binding_hash is None or binding is None:
        return pending.binding_hash is None and binding is None
    return hmac.compare_digest(pending.binding_hash, _binding_hash(binding))


V3_SCOPES: Final = v3oauth.SCOPES
"""``account_read contact_data campaign_data offline_access`` (v3 reference §1.2)."""


def start_authorization(
    db: Session, integ: Integration, redirect_uri: str | None = None, *, binding: str | None = None
) -> str:
    """Begin OAuth: save a one-time ``state`` and return the URL to send the browser to.

    A v3 integration gets the authorization-code flow with PKCE: a fresh verifier is kept
    (encrypted) with the state and only its S256 challenge goes to the URL. ``binding`` is
    the starting browser session's nonce (:func:`new_binding`): only a callback presenting
    it completes the authorization. The REST API passes none; its authorizations complete
    only through the REST API, by a user who may see the integration.
    """
    ctx = context(db)
    if integ.api_version == "v3":
        app = application(db)
        if not app.client_id:
            raise ValidationFailed({"credentials": NO_V3_APP})
        verifier, challenge = v3oauth.pkce_pair()
        redirect = redirect_uri or app.redirect_uri
        state = _new_state(db, ctx, integ, redirect, binding, ctx.box.encrypt(verifier))
        return v3oauth.authorize_url(
            app.authz_base_url, app.client_id, redirect, V3_SCOPES, state, challenge
        )
    api_key, _secret = _app_credentials(ctx, db)
    redirect = redirect_uri or application(db).redirect_uri
    state = _new_state(db, ctx, integ, redirect, binding, None)
    return authorize_url(api_key, redirect, state, auth_base_url=auth_base_url(ctx))


NO_V3_APP = (
    "This server has no Constant Contact application configured: an administrator enters "
    "its client id (the developer portal's API key) under Admin > Constant Contact "
    "application, or sets CTCTSYNC_CLIENT_ID (or CTCTSYNC_API_KEY)."
)


def _new_state(
    db: Session,
    ctx: ControlContext,
    integ: Integration,
    redirect: str,
    binding: str | None,
    verifier_encrypted: str | None,
) -> str:
    now = ctx.now()
    db.execute(sa.delete(OAuthState).where(OAuthState.expires_at < now))
    state = secrets.token_urlsafe(32)
    db.add(
        OAuthState(
            state=state,
            integration_id=integ.id,
            redirect_uri=redirect,
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.oauth_state_ttl_seconds),
            binding_hash=_binding_hash(binding) if binding is not None else None,
            code_verifier_encrypted=verifier_encrypted,
        )
    )
    db.commit()
    return state


def _pending(db: Session, state: str, user: User | None, binding: str | None) -> OAuthState:
    """The pending authorization ``state`` names, checked: unexpired, visible to ``user``
    (REST), started by the session presenting ``binding`` (browser)."""
    ctx = context(db)
    pending = db.get(OAuthState, state) if state else None
    if pending is not None and user is not None and not user.is_admin:
        owner = db.scalar(
            sa.select(Integration.created_by_id).where(Integration.id == pending.integration_id)
        )
        if owner != user.id:
            pending = None
    if pending is None or pending.expires_at < ctx.now():
        raise ValidationFailed(
            {
                "state": (
                    "This authorization has expired or was already used. "
                    "Start the authorization again from the integration's page."
                )
            }
        )
    if not _bound_to(pending, binding):
        log.warning(
            "OAuth callback for integration %s refused: not the session that started it",
            pending.integration_id,
        )
        raise AuthorizationNotBound
    return pending


def complete_authorization(
    db: Session,
    state: str,
    code: str,
    user: User | None = None,
    *,
    binding: str | None = None,
) -> Integration:
    """Finish OAuth: exchange ``code`` for tokens and store them on the integration.

    The browser callback passes its session's ``binding`` nonce ("" when it has none); an
    authorization started by another session raises :class:`AuthorizationNotBound` and
    stays pending. With ``user`` (the REST API), the state must belong to an integration
    that user may see.
    """
    ctx = context(db)
    pending = _pending(db, state, user, binding)
    if not code:
        raise ValidationFailed({"code": "Constant Contact did not send an authorization code."})
    integration_id, redirect = pending.integration_id, pending.redirect_uri
    verifier = (
        ctx.box.decrypt(pending.code_verifier_encrypted)
        if pending.code_verifier_encrypted
        else None
    )
    if verifier is None:
        api_key, secret = _app_credentials(ctx, db)
    # The state is single-use: consume it before the slow call so a replay cannot win.
    db.delete(pending)
    db.commit()
    if verifier is not None:
        return _complete_v3(db, integration_id, code, redirect, verifier)
    try:
        token = exchange_code(
            code,
            api_key=api_key,
            client_secret=secret,
            redirect_uri=redirect,
            auth_base_url=auth_base_url(ctx),
        )
    except CtctError as exc:
        log.warning("OAuth code exchange failed: %s", exc)
        raise ValidationFailed({"code": exc.user_message}) from None
    integ = _still_there(db, integration_id)
    _store(
        db,
        integ,
        "oauth",
        ctx.box.encrypt_json({"api_key": api_key, "access_token": token.access_token}),
    )
    return integ


def _still_there(db: Session, integration_id: int) -> Integration:
    integ = db.get(Integration, integration_id)
    if integ is None:
        raise ValidationFailed({"state": "The integration was deleted while authorizing."})
    return integ


def _complete_v3(
    db: Session, integration_id: int, code: str, redirect: str, verifier: str
) -> Integration:
    """The v3 code exchange (PKCE), the token set stored, then the access check."""
    ctx = context(db)
    app = application(db)
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
            tokens = v3oauth.exchange_code(
                http,
                app.authz_base_url,
                app.client_id,
                app.client_secret or None,
                code,
                redirect,
                verifier,
            )
    except CtctError as exc:
        log.warning("v3 code exchange failed: %s", exc)
        raise ValidationFailed({"code": exc.user_message}) from None
    integ = _still_there(db, integration_id)
    _store(db, integ, "oauth", encrypt_token_set(ctx, tokens))
    check_v3_access(db, integ, tokens.access_token, tokens.scope)
    return integ


def check_v3_access(
    db: Session, integ: Integration, access_token: str, scopes: tuple[str, ...]
) -> list[str] | None:
    """What the v3 grant lacks for the integration's selected tables (scopes, the
    authorizing user's privileges -- §1.2, §3.10), stored in ``access_problems`` and
    returned; None when Constant Contact could not be asked (then nothing is stored)."""
    ctx = context(db)
    selected = [t for t in integ.tables if TABLES[t].available_in("v3")] if integ.tables else []
    client_id = application(db).client_id
    # v3 spends the application's budget (its client id), the fleet's when it is shared
    limiter = (
        key_limiter(ctx.settings, client_id, *limits_of_key(db, ctx.settings, client_id))
        if client_id
        else None
    )
    db.commit()  # hold no store lock during the network call
    client = ApiClient(
        ctx.settings.v3_base_url,
        "",
        access_token,
        limiter=limiter,
        priority="high",
        send_api_key=False,
        retry=RetryPolicy(max_attempts=2, max_delay=2.0, max_retry_after=5.0, throttle_attempts=2),
        timeout=15.0,
    )
    try:
        with client:
            problems = v3oauth.missing_access(
                client, scopes, selected or tuple(v3oauth.TABLE_ACCESS)
            )
    except CtctError as exc:
        log.warning("could not check what the v3 authorization allows: %s", exc)
        return None
    integ.access_problems = problems
    db.commit()
    return problems


def abandon_authorization(db: Session, state: str, *, binding: str | None) -> Integration | None:
    """The person refused on Constant Contact's page (``error=access_denied``) or CC sent
    another error back: forget the pending authorization ``state`` names and return its
    integration, so the caller can offer to try again; None when the state is unknown or
    not this session's (nothing then tells whose integration it was). An expired one is
    forgotten just the same: it would not have completed either."""
    return _forget_own(db, state, binding)


def expired_authorization(db: Session, state: str, *, binding: str | None) -> Integration | None:
    """When ``state`` names an authorization this browser session started that expired
    before Constant Contact sent the browser back: forget it and return its integration
    (to start again); None otherwise (unknown, already used, someone else's, unexpired)."""
    pending = db.get(OAuthState, state) if state else None
    if pending is None or pending.expires_at >= context(db).now():
        db.rollback()
        return None
    return _forget_own(db, state, binding)


def _forget_own(db: Session, state: str, binding: str | None) -> Integration | None:
    """Delete the pending authorization ``state`` (expired or not) if this browser session
    (``binding``) started it; its integration, or None."""
    pending = db.get(OAuthState, state) if state else None
    if pending is None or binding is None or not _bound_to(pending, binding):
        db.rollback()
        return None
    integ = db.get(Integration, pending.integration_id)
    db.delete(pending)
    db.commit()
    return integ


# ----------------------------------------------------------------------------- API version


def _default_selection(version: ApiVersion) -> dict[str, list[str] | None]:
    return dict.fromkeys(tables_for(version))


def check_selection(integ: Integration, tables: dict[str, list[str] | None] | None) -> None:
    """Refuse (``ValidationFailed``) a selection the integration's API version cannot read."""
    if tables is None:
        return
    problems = selection_problems_for(integ.api_version, tables)  # type: ignore[arg-type]
    if problems:
        raise ValidationFailed(problems)


def settle_new_integration(
    db: Session, integ: Integration, version: ApiVersion, *, tables_given: bool
) -> Integration:
    """Right after ``create_integration``: the chosen API version and, when no selection
    was given, every table that version fills (a given one was checked with
    :func:`selection_problems_for` before creating)."""
    integ.api_version = version
    if not tables_given:
        integ.tables = _default_selection(version)
    db.commit()
    return integ


def set_api_version(db: Session, integ: Integration, version: ApiVersion) -> Integration:
    """Choose the API an integration reads, before it has run: its credentials (which
    belong to one version) are forgotten and its selection follows -- every table of the
    new version if it had every table of the old one, else the selected tables the new
    version has (all of them if none is left).

    Refused (``Conflict``) once a run has loaded data: the two versions name records
    differently (UUIDs in v3, §1.1), so the warehouse tables would mix both.
    """
    if integ.api_version == version:
        return integ
    if integ.activated_at is not None or integ.last_run_id is not None:
        raise Conflict(
            f"{integ.name} has already run with API {integ.api_version}; create a new "
            f"integration to read API {version}."
        )
    old = integ.api_version
    selection = dict(integ.tables or {})
    if selection == _default_selection(old):  # type: ignore[arg-type]
        selection = _default_selection(version)
    else:
        available = tables_for(version)
        selection = {t: c for t, c in selection.items() if t in available}
        if selection_problems_for(version, selection) or not selection:
            selection = dict.fromkeys(selection) or _default_selection(version)
    integ.api_version = version
    integ.tables = selection
    # an authorization begun for the old version must not complete onto the new one
    db.execute(sa.delete(OAuthState).where(OAuthState.integration_id == integ.id))
    integ.credentials_encrypted = None
    integ.auth_method = None
    integ.access_problems = None
    integ.updated_at = context(db).now()
    db.commit()
    return integ


def set_manual_credentials(
    db: Session,
    integ: Integration,
    api_key: str,
    access_token: str,
    *,
    check_access: bool = True,
) -> Integration:
    """Store a v2 key and token entered by hand, after proving they work if CC is reachable.

    A rejected key or token raises ``ValidationFailed`` and stores nothing. When CC cannot
    be reached the credentials are stored anyway; the first run reports any problem.

    An API key with an access token is a v2 credential (v3 sends no ``api_key``, §1.1):
    a v3 integration that has not run yet becomes a v2 one (:func:`set_api_version`);
    one that has run is refused (``Conflict``).
    """
    api_key, access_token = api_key.strip(), access_token.strip()
    errors = {}
    if not api_key:
        errors["api_key"] = "Enter the API key."
    if not access_token:
        errors["access_token"] = "Enter the access token."  # noqa: S105
    if errors:
        raise ValidationFailed(errors)
    ctx = context(db)
    if integ.api_version != "v2" and (integ.activated_at or integ.last_run_id):
        set_api_version(db, integ, "v2")  # raises Conflict: it has run with v3
    if check_access:
        limits = limits_of_key(db, ctx.settings, api_key)
        db.rollback()  # hold no store lock during the network call
        _check(ctx, api_key, access_token, limits)
    if integ.api_version != "v2":
        set_api_version(db, integ, "v2")
    _store(
        db,
        integ,
        "manual",
        ctx.box.encrypt_json({"api_key": api_key, "access_token": access_token}),
    )
    return integ


def _check(ctx: ControlContext, api_key: str, access_token: str,
           limits: tuple[float | None, int | None]) -> None:
    client = ApiClient(
        ctx.settings.cc_base_url,
        api_key,
        access_token,
        # The key's budget, the fleet's when it is shared (a check during a sync must not
        # push the key over its limits: the web process spends the workers' budget), at
        # high priority (a person waits), and a short retry budget: a form submit must
        # answer promptly.
        limiter=key_limiter(ctx.settings, api_key, *limits),
        priority="high",
        retry=RetryPolicy(max_attempts=2, max_delay=2.0, max_retry_after=5.0, throttle_attempts=2),
        timeout=15.0,
    )
    try:
        with client:
            check(client)
    except CtctError as exc:
        if FAILURES[exc.failure_type].who_acts == "nobody":  # transient, or quota spent
            log.warning("could not verify credentials (stored anyway): %s", exc)
            return
        raise ValidationFailed(_refusal(exc)) from None


def _refusal(exc: CtctError) -> dict[str, str]:
    """What to tell the person who just pasted a key and token that Constant Contact
    refused, by field. Not the run's wording ("revoked or expired, re-authorize"): these
    credentials never worked, so the advice is to check what was pasted."""
    if exc.failure_type == "auth":
        return {
            "access_token": (
                "Constant Contact did not accept this access token. Check that you copied "
                "all of it, and that it was issued for the API key above."
            )
        }
    if exc.rule.name in ("inactive_api_key", "api_key_not_authorized"):
        return {
            "api_key": (
                "Constant Contact did not accept this API key (inactive or unknown). Check "
                "the key of your application in Constant Contact's developer portal."
            )
        }
    return {"access_token": exc.user_message}


def _store(db: Session, integ: Integration, method: AuthMethod, ciphertext: str) -> None:
    """Store new credentials (``ciphertext``: v2's key and token, or a v3 token set): the
    integration can run again, at the next tick."""
    ctx = context(db)
    now = ctx.now()
    integ.credentials_encrypted = ciphertext
    integ.auth_method = method
    integ.access_problems = None
    integ.updated_at = now
    if integ.state in ("needs_reauth", "failed"):
        integ.transition("active" if integ.activated_at else "pending")
    if integ.state in ("pending", "active") and (
        integ.next_run_at is None or integ.next_run_at > now
    ):
        # New credentials: run at the next tick rather than waiting out the interval.
        integ.next_run_at = now
    db.commit()


def integration_credentials(db: Session, integ: Integration) -> dict[str, str]:
    """The decrypted ``{"api_key", "access_token"}`` (for the worker only)."""
    return context(db).box.decrypt_json(integ.credentials_encrypted)


__all__ = [
    "NO_V3_APP",
    "V3_SCOPES",
    "Application",
    "AuthorizationNotBound",
    "abandon_authorization",
    "app_registration",
    "application",
    "auth_base_url",
    "check_selection",
    "check_v3_access",
    "complete_authorization",
    "expired_authorization",
    "integration_credentials",
    "new_binding",
    "save_app_registration",
    "selection_problems_for",
    "set_api_version",
    "set_manual_credentials",
    "settle_new_integration",
    "start_authorization",
]
