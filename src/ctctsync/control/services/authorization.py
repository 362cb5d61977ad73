"""Connecting an integration to Constant Contact: the v2 OAuth server flow, or a key and
token entered by hand. Credentials are stored Fernet-encrypted, never in plaintext."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.api.client import ApiClient, RetryPolicy
from ctctsync.api.ratelimit import fingerprint, limiter_for
from ctctsync.api.v2.endpoints import AUTH_BASE_URL, BASE_URL
from ctctsync.api.v2.oauth import authorize_url, check, exchange_code
from ctctsync.control.context import ControlContext, context
from ctctsync.control.errors import PermissionDenied, ValidationFailed
from ctctsync.control.models import AuthMethod, Integration, OAuthState, User
from ctctsync.errors import FAILURES, CtctError, register_secret

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


def _app_credentials(ctx: ControlContext) -> tuple[str, str]:
    api_key = ctx.settings.api_key.get_secret_value() if ctx.settings.api_key else ""
    secret = ctx.settings.client_secret.get_secret_value() if ctx.settings.client_secret else ""
    if not api_key or not secret:
        raise ValidationFailed(
            {
                "credentials": (
                    "This server has no Constant Contact application configured "
                    "(CTCTSYNC_API_KEY and CTCTSYNC_CLIENT_SECRET); enter an API key and "
                    "access token instead, or ask the administrator."
                )
            }
        )
    # The server's own OAuth application: a process-wide secret (an integration's are not)
    register_secret(api_key)
    register_secret(secret)
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


def start_authorization(
    db: Session, integ: Integration, redirect_uri: str | None = None, *, binding: str | None = None
) -> str:
    """Begin OAuth: save a one-time ``state`` and return the URL to send the browser to.

    ``binding`` is the starting browser session's nonce (:func:`new_binding`): only a
    callback presenting it completes the authorization. The REST API passes none; its
    authorizations complete only through the REST API, by a user who may see the integration.
    """
    ctx = context(db)
    api_key, _secret = _app_credentials(ctx)
    now = ctx.now()
    db.execute(sa.delete(OAuthState).where(OAuthState.expires_at < now))
    state = secrets.token_urlsafe(32)
    redirect = redirect_uri or ctx.settings.oauth_redirect_uri
    db.add(
        OAuthState(
            state=state,
            integration_id=integ.id,
            redirect_uri=redirect,
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.oauth_state_ttl_seconds),
            binding_hash=_binding_hash(binding) if binding is not None else None,
        )
    )
    db.commit()
    return authorize_url(api_key, redirect, state, auth_base_url=auth_base_url(ctx))


def complete_authorization(
    db: Session,
    state: str,
    code: str,
    user: User | None = None,
    *,
    binding: str | None = None,
) -> Integration:
    """Finish OAuth: exchange ``code`` for a token and store it on the integration.

    The browser callback passes its session's ``binding`` nonce ("" when it has none); an
    authorization started by another session raises :class:`AuthorizationNotBound` and
    stays pending. With ``user`` (the REST API), the state must belong to an integration
    that user may see.
    """
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
    if not code:
        raise ValidationFailed({"code": "Constant Contact did not send an authorization code."})
    integration_id, redirect = pending.integration_id, pending.redirect_uri
    api_key, secret = _app_credentials(ctx)
    # The state is single-use: consume it before the slow call so a replay cannot win.
    db.delete(pending)
    db.commit()
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
    integ = db.get(Integration, integration_id)
    if integ is None:
        raise ValidationFailed({"state": "The integration was deleted while authorizing."})
    _store(db, integ, "oauth", api_key, token.access_token)
    return integ


def set_manual_credentials(
    db: Session,
    integ: Integration,
    api_key: str,
    access_token: str,
    *,
    check_access: bool = True,
) -> Integration:
    """Store a key and token entered by hand, after proving they work if CC is reachable.

    A rejected key or token raises ``ValidationFailed`` and stores nothing. When CC cannot
    be reached the credentials are stored anyway; the first run reports any problem.
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
    if check_access:
        db.rollback()  # hold no store lock during the network call
        _check(ctx, api_key, access_token)
    _store(db, integ, "manual", api_key, access_token)
    return integ


def _check(ctx: ControlContext, api_key: str, access_token: str) -> None:
    client = ApiClient(
        ctx.settings.cc_base_url,
        api_key,
        access_token,
        # The key's shared limiter (a check during a sync must not push the key over its
        # per-second limit) and a short retry budget: a form submit must answer promptly.
        limiter=limiter_for(fingerprint(api_key), qps=ctx.settings.cc_qps_limit),
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
        raise ValidationFailed({"access_token": exc.user_message}) from None


def _store(
    db: Session, integ: Integration, method: AuthMethod, api_key: str, access_token: str
) -> None:
    ctx = context(db)
    now = ctx.now()
    integ.credentials_encrypted = ctx.box.encrypt_json(
        {"api_key": api_key, "access_token": access_token}
    )
    integ.auth_method = method
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
    "AuthorizationNotBound",
    "auth_base_url",
    "complete_authorization",
    "integration_credentials",
    "new_binding",
    "set_manual_credentials",
    "start_authorization",
]
