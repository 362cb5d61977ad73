"""The control plane's v3 token vault: each integration's token set, Fernet-encrypted in its
row, refreshed by one process at a time.

v3 refresh tokens rotate (single-use: every refresh voids the one it used) -- v3 reference
§1.2 -- so the web app, the scheduler's workers and other processes sharing the store must
never refresh one integration at the same time, and a rotated pair must be committed
before its access token is used (:mod:`ctctsync.api.v3.tokens` explains why).
:class:`StoreTokenVault` gives :class:`~ctctsync.api.v3.tokens.TokenKeeper` that:

- ``locked()`` is a transaction holding the integration's row: ``SELECT ... FOR UPDATE`` on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite (the store's write lock: SQLite has no row
  locks). A second refresher, thread or process, waits there and then reloads the row --
  finding the fresh token, it does not refresh again;
- what is saved or marked inside is committed when the block exits normally, before the
  keeper hands the new access token out; an exception rolls it back.

The ciphertext holds ``{"access_token", "refresh_token", "expires_at", "scope",
"obtained_at"}`` (and ``needs_reauth`` once Constant Contact refused the refresh token);
``integrations.state`` becomes ``needs_reauth`` with the reason, so the scheduler skips the
integration and its page offers "Re-authorize".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from ctctsync.api.v3.oauth import OAuthApp, TokenSet
from ctctsync.api.v3.tokens import LockedVault, TokenKeeper, VaultRecord
from ctctsync.control.context import ControlContext, attach
from ctctsync.control.database import writer
from ctctsync.control.models import INTEGRATION_TRANSITIONS, Integration, IntegrationState

log = logging.getLogger(__name__)

NEEDS_REAUTH_KEY = "needs_reauth"
"""Key of the refusal reason inside the ciphertext (a paused integration keeps its state)."""


def encrypt_token_set(ctx: ControlContext, tokens: TokenSet) -> str:
    """The ciphertext stored in ``integrations.credentials_encrypted`` for a v3 token set."""
    return ctx.box.encrypt_json(
        {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token or "",
            "expires_at": tokens.expires_at.isoformat(),
            "scope": " ".join(tokens.scope),
            "obtained_at": tokens.obtained_at.isoformat(),
        }
    )


def _token_set(data: dict[str, str]) -> TokenSet | None:
    if not data.get("access_token") and not data.get("refresh_token"):
        return None
    try:
        expires_at = datetime.fromisoformat(data["expires_at"])
        obtained_at = datetime.fromisoformat(data["obtained_at"])
    except (KeyError, ValueError):
        return None  # not a v3 token set (v2 credentials): never authorized with v3
    return TokenSet(
        access_token=data.get("access_token", ""),
        refresh_token=data.get("refresh_token") or None,
        expires_at=expires_at,
        scope=tuple(data.get("scope", "").split()),
        obtained_at=obtained_at,
    )


def vault_record(ctx: ControlContext, integ: Integration) -> VaultRecord | None:
    """The integration's v3 token set and refusal reason (None: no v3 tokens stored)."""
    data = ctx.box.decrypt_json(integ.credentials_encrypted)
    tokens = _token_set(data)
    if tokens is None:
        return None
    reason = data.get(NEEDS_REAUTH_KEY) or (
        integ.state_reason if integ.state == "needs_reauth" else None
    )
    return VaultRecord(tokens, reason or None, integ.updated_at)


def mark_needs_reauth(ctx: ControlContext, integ: Integration, reason: str) -> None:
    """Record that a person must re-authorize ``integ`` (not committed here): the reason in
    the ciphertext, and the state ``needs_reauth`` where the state machine allows it (a
    paused integration stays paused, its reason shown)."""
    data: dict[str, Any] = ctx.box.decrypt_json(integ.credentials_encrypted)
    data[NEEDS_REAUTH_KEY] = reason
    integ.credentials_encrypted = ctx.box.encrypt_json(data)
    state = cast(IntegrationState, integ.state)
    if state == "needs_reauth" or "needs_reauth" in INTEGRATION_TRANSITIONS[state]:
        integ.transition("needs_reauth", reason)
    else:
        integ.state_reason = reason
    integ.updated_at = ctx.now()


class _LockedRow:
    """The vault inside ``locked()``: the integration row held by the open transaction."""

    def __init__(self, ctx: ControlContext, integ: Integration) -> None:
        self._ctx = ctx
        self._integ = integ

    def load(self) -> VaultRecord | None:
        return vault_record(self._ctx, self._integ)

    def save(self, tokens: TokenSet) -> None:
        self._integ.credentials_encrypted = encrypt_token_set(self._ctx, tokens)
        self._integ.updated_at = self._ctx.now()

    def mark_needs_reauth(self, reason: str) -> None:
        mark_needs_reauth(self._ctx, self._integ, reason)


class StoreTokenVault:
    """:class:`~ctctsync.api.v3.tokens.TokenVault` of one integration in the control store.

    Opens its own sessions (never the caller's): on SQLite a session holding the write lock
    while the vault waits for it would wait for itself. So call it with no store
    transaction open in this thread.
    """

    def __init__(self, ctx: ControlContext, integration_id: int) -> None:
        self._ctx = ctx
        self.integration_id = integration_id

    def __repr__(self) -> str:
        return f"StoreTokenVault(integration_id={self.integration_id})"

    @contextmanager
    def _session(self, *, write: bool = True) -> Iterator[Session]:
        # writer(): BEGIN IMMEDIATE on SQLite, so the transaction holds the write lock from
        # its first statement (no-op on PostgreSQL, where FOR UPDATE locks the row). A read
        # takes no lock at all.
        engine = writer(self._ctx.engine) if write else self._ctx.engine
        db = attach(Session(engine, expire_on_commit=False), self._ctx)
        try:
            yield db
        finally:
            db.close()

    def load(self) -> VaultRecord | None:
        """The stored record, without locking (may be stale: the keeper reloads under the
        lock before refreshing)."""
        with self._session(write=False) as db:
            integ = db.get(Integration, self.integration_id)
            record = None if integ is None else vault_record(self._ctx, integ)
            db.rollback()
        return record

    @contextmanager
    def locked(self) -> Iterator[LockedVault]:
        """The row, locked until the block ends; committed when it ends normally."""
        with self._session() as db:
            integ = db.get(Integration, self.integration_id, with_for_update=True)
            if integ is None:
                db.rollback()
                raise LookupError(f"integration {self.integration_id} was deleted")
            try:
                yield _LockedRow(self._ctx, integ)
            except BaseException:
                db.rollback()
                raise
            db.commit()


@dataclass(frozen=True)
class TokenStatus:
    """What may be shown of a v3 authorization (no token values)."""

    expires_at: datetime
    obtained_at: datetime
    """When the token endpoint last issued the set (the last refresh)."""
    scopes: tuple[str, ...]
    has_refresh_token: bool
    needs_reauth: str | None


def token_status(ctx: ControlContext, integ: Integration) -> TokenStatus | None:
    """The integration's v3 authorization as the UI shows it; None without v3 tokens."""
    if integ.api_version != "v3" or not integ.credentials_encrypted:
        return None
    try:
        record = vault_record(ctx, integ)
    except ValueError:  # another encryption key: the page says so elsewhere
        return None
    if record is None:
        return None
    t = record.tokens
    return TokenStatus(
        t.expires_at, t.obtained_at, t.scope, bool(t.refresh_token), record.needs_reauth
    )


def token_keeper(ctx: ControlContext, integration_id: int, app: OAuthApp) -> TokenKeeper:
    """The keeper of one integration's tokens over the store (workers, the access check)."""
    return TokenKeeper(StoreTokenVault(ctx, integration_id), app)


__all__ = [
    "StoreTokenVault",
    "TokenStatus",
    "encrypt_token_set",
    "mark_needs_reauth",
    "token_keeper",
    "token_status",
    "vault_record",
]
