"""The CLI's vault of Constant Contact v3 tokens: one row of ``cli_oauth_tokens`` per
integration in the state store (SQLite file or PostgreSQL), for
:class:`~ctctsync.api.v3.tokens.TokenKeeper`.

Exclusion across threads and processes is the database's: ``locked()`` is one transaction
that begins with ``BEGIN IMMEDIATE`` on SQLite (the file's write lock, so every other
refresher -- and every other writer of the store, for the few milliseconds to a second a
refresh takes -- waits) and holds ``SELECT ... FOR UPDATE`` on the integration's row on
PostgreSQL. Whatever was saved inside is committed when the block exits normally, before
the new access token is used.

Tokens are stored unencrypted: see ``ctctsync.state.cli_oauth_tokens`` (a 0600 file in a
0700 folder, the user's own). Values never appear in a ``repr`` or a log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ctctsync.api.v3.oauth import OAuthApp, TokenSet
from ctctsync.api.v3.tokens import TokenKeeper, VaultRecord, seed_tokens
from ctctsync.db import create_engine, ensure_schema, writer
from ctctsync.state import cli_oauth_tokens

if TYPE_CHECKING:
    from ctctsync.config import SourceConfig, SyncConfig

_T = cli_oauth_tokens


def _utc(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _record(row: Any) -> VaultRecord:
    tokens = TokenSet(
        access_token=row.access_token,
        refresh_token=row.refresh_token,
        expires_at=_utc(row.expires_at),
        scope=tuple(row.scope.split()),
        obtained_at=_utc(row.obtained_at),
    )
    return VaultRecord(tokens, row.needs_reauth, _utc(row.updated_at))


class SqlTokenVault:
    """One integration's token set in a state store (a
    :class:`~ctctsync.api.v3.tokens.TokenVault`)."""

    def __init__(
        self,
        url_or_engine: str | Engine,
        integration: str,
        *,
        client_id: str = "",
        create: bool = True,
    ) -> None:
        """``client_id``: recorded with each saved token set (whose application it is).
        ``create``: bring the state store's tables to head first (one query when there)."""
        self._owns_engine = isinstance(url_or_engine, str)
        self.engine = (
            create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        self.integration = integration
        self.client_id = client_id
        if create:
            ensure_schema(self.engine, "state")

    def __repr__(self) -> str:
        return f"SqlTokenVault(integration={self.integration!r})"

    def close(self) -> None:
        """Release the engine's connections (only an engine this vault created)."""
        if self._owns_engine:
            self.engine.dispose()

    def load(self) -> VaultRecord | None:
        """The stored record, without locking."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.integration == self.integration)).first()
        return None if row is None else _record(row)

    def stored_client_id(self) -> str | None:
        """The client id the stored tokens were issued to (None: no tokens)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(_T.c.client_id).where(_T.c.integration == self.integration)
            ).scalar_one_or_none()

    @contextmanager
    def locked(self) -> Iterator[_SqlSession]:
        """Exclusive access to the integration's tokens (see the module docstring)."""
        with writer(self.engine).begin() as conn:  # SQLite: BEGIN IMMEDIATE
            session = _SqlSession(conn, self.integration, self.client_id)
            session.load()  # PostgreSQL: takes the row lock now, whatever the caller does
            yield session

    def store(self, tokens: TokenSet) -> None:
        """Save a new token set (after a sign-in), clearing ``needs_reauth``."""
        with self.locked() as vault:
            vault.save(tokens)

    def delete(self) -> bool:
        """Forget the integration's tokens (sign-out); True if there were some."""
        with writer(self.engine).begin() as conn:
            deleted = conn.execute(sa.delete(_T).where(_T.c.integration == self.integration))
            return bool(deleted.rowcount)


class _SqlSession:
    """The vault inside its lock: every statement on the locking transaction's connection
    (another connection would wait for that very lock)."""

    def __init__(self, conn: Connection, integration: str, client_id: str) -> None:
        self._conn = conn
        self._integration = integration
        self._client_id = client_id

    def load(self) -> VaultRecord | None:
        query = sa.select(_T).where(_T.c.integration == self._integration).with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _record(row)

    def seeded_from(self) -> str | None:
        """The SHA-256 of the environment refresh token the row was seeded from, if any."""
        return self._conn.execute(
            sa.select(_T.c.seeded_from).where(_T.c.integration == self._integration)
        ).scalar_one_or_none()

    def save(self, tokens: TokenSet, *, seeded_from: str | None = None) -> None:
        """Replace the token set (clearing ``needs_reauth``); ``seeded_from`` is recorded
        when given and otherwise kept (a refresh continues the seeded chain)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "client_id": self._client_id,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "scope": " ".join(tokens.scope),
            "obtained_at": tokens.obtained_at,
            "needs_reauth": None,
            "updated_at": now,
        }
        if seeded_from is not None:
            values["seeded_from"] = seeded_from
        where = _T.c.integration == self._integration
        if not self._conn.execute(sa.update(_T).where(where).values(**values)).rowcount:
            self._conn.execute(sa.insert(_T).values(integration=self._integration, **values))

    def mark_needs_reauth(self, reason: str) -> None:
        self._conn.execute(
            sa.update(_T)
            .where(_T.c.integration == self._integration)
            .values(needs_reauth=reason, updated_at=datetime.now(UTC))
        )


def oauth_app(source: SourceConfig) -> OAuthApp:
    """The application of a v3 source: its authorization server, client id (the API key,
    ``CTCTSYNC_API_KEY``) and client secret (``CTCTSYNC_CLIENT_SECRET``, if any)."""
    secret = source.client_secret.get_secret_value() if source.client_secret else None
    return OAuthApp(source.resolved_auth_base_url, source.api_key.get_secret_value(),
                    secret or None)


def cli_vault(config: SyncConfig) -> SqlTokenVault:
    """The CLI's vault of ``config``'s integration, in its state store (created if new).

    Seeded from ``CTCTSYNC_REFRESH_TOKEN`` (and ``CTCTSYNC_ACCESS_TOKEN``) when it holds no
    tokens yet, or when its tokens need re-authorizing and the variable holds a refresh token
    it was not seeded from before (a new authorization made elsewhere). Otherwise the stored
    tokens win: the variable's refresh token has most likely been rotated away by an earlier
    run (§1.2).
    """
    source = config.source
    vault = SqlTokenVault(config.state_url, config.integration,
                          client_id=source.api_key.get_secret_value())
    given = source.refresh_token.get_secret_value() if source.refresh_token else ""
    if given:
        digest = hashlib.sha256(given.encode()).hexdigest()
        with vault.locked() as locked:
            record = locked.load()
            if record is None or (record.needs_reauth is not None
                                  and locked.seeded_from() != digest):
                access = source.access_token.get_secret_value() or None
                locked.save(seed_tokens(given, access), seeded_from=digest)
    return vault


def cli_keeper(config: SyncConfig, *, http: httpx.Client | None = None) -> TokenKeeper:
    """The token keeper of a CLI run of ``config`` (v3): :func:`cli_vault` and
    :func:`oauth_app`. Close ``keeper.vault`` (a :class:`SqlTokenVault`) when done."""
    return TokenKeeper(cli_vault(config), oauth_app(config.source), http=http)


CLI_SIGN_IN: Final = "run ctctsync auth login, or set CTCTSYNC_REFRESH_TOKEN"
"""How a CLI user signs in (:func:`cli_authorization_problem`'s default advice)."""


def cli_authorization_problem(config: SyncConfig, *, sign_in: str = CLI_SIGN_IN) -> str | None:
    """None when a CLI run of ``config`` (v3) has something to authenticate with: tokens in
    the state store (or ``config.source.refresh_token``) not marked for re-authorization;
    else the one line that says what to do, ``sign_in`` saying how to sign in where the
    caller takes its refresh token from elsewhere (the dlt source's arguments). No request
    is made (a preflight check)."""
    if not config.source.api_key.get_secret_value().strip():
        return ("Constant Contact credentials are missing: set CTCTSYNC_API_KEY (the "
                "application's client id)")
    vault = cli_vault(config)
    try:
        record = vault.load()
    finally:
        vault.close()
    if record is None:
        return f"not signed in to Constant Contact (API v3): {sign_in}"
    return record.needs_reauth


__all__ = [
    "CLI_SIGN_IN",
    "SqlTokenVault",
    "cli_authorization_problem",
    "cli_keeper",
    "cli_vault",
    "oauth_app",
]
