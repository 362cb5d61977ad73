"""The v3 token lifecycle, the same for the CLI and the control plane.

v3 access tokens live 24 h and refresh tokens are **rotating** by default: every refresh
returns a new refresh token and voids the old one -- constant-contact-v3-api.md §1.2, §6.
So, with several processes (sync workers, the web app, a CLI run) sharing one integration:

- a refresh must be **exclusive**: two processes refreshing with the same refresh token
  would leave one of them (and, rotated away, possibly the stored token) with
  ``invalid_grant``;
- the new token set must be **durably stored before** its access token is used: a crash
  after the use but before the store would lose the only live refresh token;
- a process that waited for the lock must **reload** first: another one may have refreshed
  meanwhile, and then it uses that token instead of refreshing again.

:class:`TokenKeeper` does that over a :class:`TokenVault` (where the tokens live: the CLI's
state store, :class:`ctctsync.token_store.SqlTokenVault`; the control plane's encrypted
store). The vault gives exclusion (``locked()``: across threads *and* processes) and
durability (changes made inside ``locked()`` are committed when it exits normally).

Refusals end in :class:`~ctctsync.errors.ReauthorizeRequired` and mark the vault
``needs_reauth`` (with the reason), so no later call spends a token request on a dead
grant; a refresh token unused for 180 days is not even tried (§1.2).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

import httpx

from ctctsync.api.v3 import oauth
from ctctsync.api.v3.oauth import OAuthApp, TokenPacer, TokenSet
from ctctsync.errors import CtctError, ErrorRule, ReauthorizeRequired, utc_text

log = logging.getLogger("ctctsync.api.v3.tokens")

DEFAULT_MIN_VALID: Final = timedelta(minutes=10)
""":meth:`TokenKeeper.fresh_access_token` refreshes a token expiring sooner than this: a
request started with it must not meet its expiry (§6: refresh "about to expire")."""
RENEWED_MIN_VALID: Final = timedelta(minutes=1)
"""A token another process renewed is taken as it is if it stays valid this long."""
FALLBACK_MIN_VALID: Final = timedelta(minutes=1)
"""When a refresh fails for a passing reason (network, 5xx), a stored token still valid this
long is used meanwhile instead of failing the caller."""

TOKEN_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
"""Timeouts of the keeper's own token requests. A refresh runs under the vault's lock --
on SQLite the state store's write lock, which other writers wait for at most 30 s
(``ctctsync.db.BUSY_TIMEOUT_MS``) -- so even a refresh that meets a 429, waits 1 s and
times out twice stays well within that."""

NOT_AUTHORIZED_RULE: Final = ErrorRule(
    name="v3_not_authorized",
    action="reauthorize",
    failure_type="auth",
    stops_run=True,
    message=(
        "ctctsync holds no Constant Contact v3 authorization for this integration: authorize "
        "it first (ctctsync auth login, or the integration's Authorize button)."
    ),
)
"""No token set at all: never authorized, or signed out."""
NEEDS_REAUTH_RULE: Final = ErrorRule(
    name="v3_needs_reauth",
    action="reauthorize",
    failure_type="auth",
    stops_run=True,
    message="{detail}",
)
"""The vault is marked ``needs_reauth``: the stored reason is the message."""
REFRESH_IDLE_RULE: Final = ErrorRule(
    name="v3_refresh_idle",
    action="reauthorize",
    failure_type="auth",
    stops_run=True,
    message=(
        "The refresh token was last used on {when}, more than 180 days ago, so Constant "
        "Contact has expired it: re-authorize the integration."
    ),
)
"""The refresh token is past its 180-day idle life (§1.2): not even tried."""
NO_REFRESH_TOKEN_RULE: Final = ErrorRule(
    name="v3_no_refresh_token",
    action="reauthorize",
    failure_type="auth",
    stops_run=True,
    message=(
        "The access token expired and there is no refresh token (the offline_access scope was "
        "not granted): re-authorize the integration granting offline_access."
    ),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VaultRecord:
    """What a vault holds for one integration: its token set and, when a person must
    re-authorize, why (``needs_reauth``: the message to show)."""

    tokens: TokenSet
    needs_reauth: str | None = None
    updated_at: datetime | None = None


class LockedVault(Protocol):
    """A vault while its lock is held (see :meth:`TokenVault.locked`)."""

    def load(self) -> VaultRecord | None:
        """The current record (None: never authorized, or signed out)."""
        ...

    def save(self, tokens: TokenSet) -> None:
        """Replace the token set (and clear ``needs_reauth``). Durable once ``locked()``
        exits normally -- before the caller uses the new access token."""
        ...

    def mark_needs_reauth(self, reason: str) -> None:
        """Record that a person must re-authorize, and why (shown as the error message)."""
        ...


class TokenVault(Protocol):
    """Where one integration's v3 tokens live (the CLI's state store, the control plane's
    encrypted store). Implementations keep token values out of logs and ``repr``."""

    def load(self) -> VaultRecord | None:
        """The current record, without locking (a fast path; may be stale)."""
        ...

    def locked(self) -> AbstractContextManager[LockedVault]:
        """Exclusive access across threads **and** processes until the block exits; what was
        saved or marked inside is committed when it exits normally, dropped on an
        exception. (SQL: a transaction holding ``SELECT ... FOR UPDATE`` on PostgreSQL,
        ``BEGIN IMMEDIATE`` on SQLite.)"""
        ...


def seed_tokens(refresh_token: str, access_token: str | None = None,
                now: datetime | None = None) -> TokenSet:
    """A token set from bare values (``CTCTSYNC_REFRESH_TOKEN``/``CTCTSYNC_ACCESS_TOKEN``):
    its expiry is read from the access token's JWT ``exp``, else taken as passed, so the
    keeper's first use refreshes. ``obtained_at`` is ``now``: the idle age of a token given
    this way is unknown, so it is not held against it."""
    when = now or _utcnow()
    claims = oauth.jwt_claims(access_token) if access_token else None
    exp = claims.get("exp") if claims else None
    expires_at = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else when
    scope = oauth.token_scopes(access_token) if access_token else None
    return TokenSet(access_token or "", refresh_token, expires_at, scope or (), when)


def _error(rule: ErrorRule, message: str) -> ReauthorizeRequired:
    return ReauthorizeRequired(message, rule=rule, error_key=rule.name)


class TokenKeeper:
    """Hands out valid access tokens for one integration, refreshing them when needed
    (exclusively, stored before use -- see the module docstring).

    ``fresh_access_token()`` when a client is made, and ``renew`` as the
    :class:`~ctctsync.api.client.ApiClient`'s ``renew_token`` hook (called when the API
    answers 401). Thread-safe; processes coordinate through the vault's lock.
    """

    def __init__(
        self,
        vault: TokenVault,
        app: OAuthApp,
        *,
        http: httpx.Client | None = None,
        min_valid: timedelta = DEFAULT_MIN_VALID,
        now: Callable[[], datetime] = _utcnow,
        pacer: TokenPacer | None = oauth.PACER,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``http``: the client for token requests (when None, a short-lived one per refresh
        with :data:`TOKEN_TIMEOUT`: refreshes are rare). ``now``, ``pacer``, ``sleep``:
        injectable for tests."""
        self.vault = vault
        self.app = app
        self.min_valid = min_valid
        self._http = http
        self._now = now
        self._pacer = pacer
        self._sleep = sleep
        self._lock = threading.Lock()
        self._handed_out: str | None = None
        self.refreshes = 0
        """How many refreshes this keeper made (for tests and run statistics)."""

    def __repr__(self) -> str:
        return f"TokenKeeper(app={self.app!r}, refreshes={self.refreshes})"

    # ------------------------------------------------------------------ public

    def fresh_access_token(self, min_valid: timedelta | None = None) -> str:
        """An access token valid for at least ``min_valid`` (default :attr:`min_valid`).

        Unlocked fast path: the stored token is good. Else, under the vault's lock: reload
        (another process may have refreshed: use theirs), refresh if still needed, save,
        and only then return the new token. Raises
        :class:`~ctctsync.errors.ReauthorizeRequired` when a person must re-authorize.
        """
        margin = self.min_valid if min_valid is None else min_valid
        record = self.vault.load()
        if (record is not None and record.needs_reauth is None
                and record.tokens.valid_for(margin, self._now())):
            return self._hand_out(record.tokens)
        return self._under_lock(lambda t: t.valid_for(margin, self._now()), fallback=True)

    def renew(self, refused: str | None = None) -> str:
        """A new access token because the API refused ``refused`` (401; default: the last
        token this keeper handed out). Under the lock: take the stored token if it differs
        from the refused one (another client, thread or process renewed it meanwhile) and
        is valid; else refresh (also when nothing was handed out yet).

        This is the :class:`~ctctsync.api.client.ApiClient`'s ``renew_token`` hook: the
        client passes the token it was refused, so when a run's clients meet the same expiry
        together, one refreshes and the others take its token (one token request, not one
        per client).
        """
        refused = refused if refused is not None else self._handed_out

        def usable(tokens: TokenSet) -> bool:
            return (refused is not None and tokens.access_token != refused
                    and tokens.valid_for(RENEWED_MIN_VALID, self._now()))

        return self._under_lock(usable, fallback=False)

    # ------------------------------------------------------------------ internals

    def _hand_out(self, tokens: TokenSet) -> str:
        self._handed_out = tokens.access_token
        return tokens.access_token

    def _under_lock(self, usable: Callable[[TokenSet], bool], *, fallback: bool) -> str:
        # threads of this process queue here, processes on the vault's lock
        with self._lock:
            failure: CtctError | None = None
            with self.vault.locked() as vault:
                record = vault.load()
                tokens, failure = self._decide(vault, record, usable, fallback=fallback)
            # the lock is released and what was saved is committed: only now is it used
            if failure is not None:
                raise failure
            assert tokens is not None
            return self._hand_out(tokens)

    def _decide(
        self,
        vault: LockedVault,
        record: VaultRecord | None,
        usable: Callable[[TokenSet], bool],
        *,
        fallback: bool,
    ) -> tuple[TokenSet | None, CtctError | None]:
        """Under the lock: the token to hand out, or the error to raise after the lock
        (a ``needs_reauth`` mark made here must be committed, not rolled back)."""
        if record is None:
            return None, _error(NOT_AUTHORIZED_RULE, NOT_AUTHORIZED_RULE.message)
        if record.needs_reauth is not None:
            return None, _error(NEEDS_REAUTH_RULE, record.needs_reauth)
        current = record.tokens
        if usable(current):
            return current, None  # another thread or process refreshed meanwhile
        refusal = self._refusal_before_trying(current)
        if refusal is not None:
            vault.mark_needs_reauth(refusal.user_message)
            return None, refusal
        return self._refresh_into(vault, current, fallback=fallback)

    def _refresh_into(
        self, vault: LockedVault, current: TokenSet, *, fallback: bool
    ) -> tuple[TokenSet | None, CtctError | None]:
        """Refresh ``current`` and save the result (under the lock); a refusal marks the
        vault. A passing failure with ``fallback`` keeps a still-valid ``current``."""
        assert current.refresh_token is not None
        try:
            renewed = self._refresh(current.refresh_token)
        except ReauthorizeRequired as exc:
            log.warning("refresh refused (%s): the integration needs re-authorizing",
                        exc.error_key)
            vault.mark_needs_reauth(exc.user_message)
            return None, exc
        except CtctError as exc:
            if fallback and exc.failure_type == "transient" and current.valid_for(
                    FALLBACK_MIN_VALID, self._now()):
                log.warning("refresh failed (%s); the current token is used until %s",
                            exc.rule.name, utc_text(current.expires_at))
                return current, None
            raise
        vault.save(renewed)
        self.refreshes += 1
        return renewed, None

    def _refusal_before_trying(self, tokens: TokenSet) -> ReauthorizeRequired | None:
        """Why refreshing cannot work, without asking: no refresh token, or one unused for
        more than 180 days (§1.2)."""
        if not tokens.refresh_token:
            return _error(NO_REFRESH_TOKEN_RULE, NO_REFRESH_TOKEN_RULE.message)
        if tokens.refresh_expired(self._now()):
            return _error(REFRESH_IDLE_RULE,
                          REFRESH_IDLE_RULE.message.format(when=utc_text(tokens.obtained_at)))
        return None

    def _refresh(self, refresh_token: str) -> TokenSet:
        with self._client() as http:
            return oauth.refresh(http, self.app.auth_base_url, self.app.client_id,
                                 self.app.client_secret, refresh_token, pacer=self._pacer,
                                 sleep=self._sleep, now=self._now)

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        if self._http is not None:
            yield self._http
            return
        with httpx.Client(timeout=TOKEN_TIMEOUT) as http:
            yield http


class MemoryVault:
    """A vault in this process's memory (threads only; no durability): for tests, and for
    one-off scripts that hold tokens elsewhere."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._record = VaultRecord(tokens) if tokens is not None else None
        self._lock = threading.Lock()

    def load(self) -> VaultRecord | None:
        return self._record

    @contextmanager
    def locked(self) -> Iterator[LockedVault]:
        with self._lock:
            session = _MemorySession(self._record)
            yield session
            self._record = session.record  # committed only when the block exits normally


class _MemorySession:
    def __init__(self, record: VaultRecord | None) -> None:
        self.record = record

    def load(self) -> VaultRecord | None:
        return self.record

    def save(self, tokens: TokenSet) -> None:
        self.record = VaultRecord(tokens, None, _utcnow())

    def mark_needs_reauth(self, reason: str) -> None:
        if self.record is not None:
            self.record = replace(self.record, needs_reauth=reason, updated_at=_utcnow())


__all__ = [
    "DEFAULT_MIN_VALID",
    "LockedVault",
    "MemoryVault",
    "TokenKeeper",
    "TokenVault",
    "VaultRecord",
    "seed_tokens",
]
