"""Bookmarks: per integration and table, the ``lastRunDate`` a key-based table resumes from;
and the fields runs met that the table registry does not know (``discovered_fields``).

The store is a small SQL database (SQLite by default, PostgreSQL when the control plane
shares one). Its tables (``bookmarks``, ``bookmark_columns``, ``discovered_fields`` declared in
``ctctsync.db``; ``cli_oauth_tokens`` below, read and written by ``ctctsync.token_store``) are
created by Alembic, branch ``state``: ``StateStore`` brings
that branch to head when it opens a store by URL (the CLI's ``.ctctsync/state.db``); the
control plane migrates every branch of its store at start.

Rule (docs/architecture.md, "Bookmarks"): a table's bookmark is written only after its data
is committed to the warehouse, and it is the *start* time of that run. A crash between the
two therefore means a harmless re-read, never a gap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ctctsync.db import (
    bookmark_columns,
    bookmarks,
    create_engine,
    discovered_fields,
    ensure_schema,
    metadata,
    writer,
)

cli_oauth_tokens = sa.Table(
    "cli_oauth_tokens",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("obtained_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("needs_reauth", sa.Text, nullable=True),
    sa.Column("seeded_from", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration: the CLI's Constant Contact v3 token set (``ctctsync auth login``), for
``ctctsync.token_store.SqlTokenVault``. ``obtained_at`` is when the refresh token was last
used (its 180-day idle clock); ``needs_reauth`` is why a person must re-authorize (NULL: no
need); ``seeded_from`` is the SHA-256 of the ``CTCTSYNC_REFRESH_TOKEN`` the row was seeded
from (so a spent one is not seeded again). Tokens are stored as they are, not encrypted:
the CLI's state store is a 0600 file in a 0700 folder (``ctctsync.db.create_private_file``),
readable only by the user the tokens belong to; the control plane keeps its integrations'
tokens encrypted in its own tables."""


campaign_ledger = sa.Table(
    "campaign_ledger",
    metadata,
    sa.Column("integration", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("campaign_id", sa.String(64), primary_key=True),
    sa.Column("entry", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Per integration, table and item: a planner's JSON entry, the table's *ledger*. For the
per-campaign tables, one per sent campaign (the campaign planner, ``ctctsync.sync.campaigns``:
counts per tracking kind, the instant each kind was read up to, last check, last whole read,
summary row); for v3's ``events`` and ``event_registrations``, one per event (the event
planner, ``ctctsync.sync.events``: the list record's fingerprint, the detail's fields, when
the detail and the registrations were read), ``campaign_id`` holding the event's id.
Written after the warehouse commit (with the table's bookmark, in one transaction, when it
has one); ``reset`` clears it with the bookmark."""

LedgerEntries = Mapping[str, Mapping[str, Any]]
"""``{item_id: entry}`` (a campaign's or an event's id): a table's ledger (entries are
JSON-ready mappings)."""

SWITCH_MARKER = "_api_switch_v3"
"""The record of a done v2 -> v3 switch (``ctctsync.sync.switch``): a bookmark row of this
pseudo table (when, and the switch's id as its run id). ``state show`` lists it with the
tables; a v3 run of a switched integration puts the v2 ids back after its loads."""


@dataclass(frozen=True)
class Bookmark:
    """One table's saved position."""

    integration: str
    table: str
    last_run_date: datetime
    """Start of the table's last successful run (UTC)."""
    run_id: str | None
    updated_at: datetime


@dataclass(frozen=True)
class DiscoveredField:
    """A record field the table registry does not know, as runs of one integration met it."""

    integration: str
    table: str
    field: str
    first_seen: datetime
    last_seen: datetime

    @property
    def label(self) -> str:
        """``contacts.department_name``."""
        return f"{self.table}.{self.field}"


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class StateStore:
    """Read and write bookmarks. Thread-safe (one short transaction per call)."""

    def __init__(self, url_or_engine: str | Engine, *, create: bool = True) -> None:
        """Open the store at a URL, or on an engine the caller owns.

        ``create``: first bring the bookmark tables to the newest revision (Alembic branch
        ``state``; one query when they are there already). Pass False when the caller has
        migrated the store itself (the control plane, at start).
        """
        self.engine = (
            create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        # Upsert and reset read, then write: take SQLite's write lock up front.
        self._writer = writer(self.engine)
        if create:
            ensure_schema(self.engine, "state")

    def get(self, integration: str, table: str) -> Bookmark | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(bookmarks).where(
                    bookmarks.c.integration == integration, bookmarks.c.table_name == table
                )
            ).first()
        if row is None:
            return None
        return Bookmark(
            integration=row.integration,
            table=row.table_name,
            last_run_date=_utc(row.last_run_date),
            run_id=row.run_id,
            updated_at=_utc(row.updated_at),
        )

    def all(self, integration: str | None = None) -> list[Bookmark]:
        query = sa.select(bookmarks).order_by(bookmarks.c.integration, bookmarks.c.table_name)
        if integration is not None:
            query = query.where(bookmarks.c.integration == integration)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Bookmark(
                integration=r.integration,
                table=r.table_name,
                last_run_date=_utc(r.last_run_date),
                run_id=r.run_id,
                updated_at=_utc(r.updated_at),
            )
            for r in rows
        ]

    def set(
        self,
        integration: str,
        table: str,
        last_run_date: datetime,
        run_id: str | None,
        *,
        columns: Sequence[str] | None = None,
        ledger: LedgerEntries | None = None,
    ) -> None:
        """Save a bookmark (call only after the table's data is committed).

        ``columns``: the columns loaded up to this bookmark, saved in the same transaction
        (see :meth:`columns`); ``ledger``: the table's ledger, which replaces the saved one
        in the same transaction (see :meth:`ledger`)."""
        now = datetime.now(UTC)
        values = {
            "last_run_date": _utc(last_run_date),
            "run_id": run_id,
            "updated_at": now,
        }
        with self._writer.begin() as conn:
            _upsert(conn, bookmarks, integration, table, values)
            if columns is not None:
                _upsert(
                    conn,
                    bookmark_columns,
                    integration,
                    table,
                    {"columns": json.dumps(sorted(columns)), "updated_at": now},
                )
            if ledger is not None:
                _replace_ledger(conn, integration, table, ledger, now)

    def ledger(self, integration: str, table: str) -> dict[str, dict[str, Any]]:
        """The table's ledger, ``{campaign_id or event_id: entry}`` ({} when none was
        saved; see :data:`campaign_ledger`)."""
        tbl = campaign_ledger
        query = sa.select(tbl.c.campaign_id, tbl.c.entry).where(
            tbl.c.integration == integration, tbl.c.table_name == table)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {str(r.campaign_id): json.loads(r.entry) for r in rows}

    def save_ledger(self, integration: str, table: str, ledger: LedgerEntries) -> None:
        """Replace a table's ledger (a full table's: it has no bookmark to save it with).
        Call only after the table's data is committed."""
        with self._writer.begin() as conn:
            _replace_ledger(conn, integration, table, ledger, datetime.now(UTC))

    def columns(self, integration: str, table: str) -> frozenset[str] | None:
        """The columns loaded up to the table's bookmark (None if never recorded)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(bookmark_columns.c.columns).where(
                    bookmark_columns.c.integration == integration,
                    bookmark_columns.c.table_name == table,
                )
            ).first()
        if row is None:
            return None
        return frozenset(json.loads(row[0]))

    def reset(self, integration: str, table: str | None = None) -> int:
        """Forget bookmarks and ledgers (one table, or all of an integration): the
        next run re-reads from the history start. Returns how many bookmarks were removed.
        Resetting a whole integration also forgets its discovered fields."""
        stmt = sa.delete(bookmarks).where(bookmarks.c.integration == integration)
        cols = sa.delete(bookmark_columns).where(bookmark_columns.c.integration == integration)
        entries = sa.delete(campaign_ledger).where(campaign_ledger.c.integration == integration)
        if table is not None:
            stmt = stmt.where(bookmarks.c.table_name == table)
            cols = cols.where(bookmark_columns.c.table_name == table)
            entries = entries.where(campaign_ledger.c.table_name == table)
        with self._writer.begin() as conn:
            conn.execute(cols)
            conn.execute(entries)
            if table is None:
                conn.execute(
                    sa.delete(discovered_fields).where(
                        discovered_fields.c.integration == integration
                    )
                )
            return conn.execute(stmt).rowcount

    def record_fields(
        self, integration: str, table: str, fields: Sequence[str], seen_at: datetime | None = None
    ) -> None:
        """Remember that a run of ``integration`` met ``fields`` of ``table``, unknown to the
        registry (first time: both dates; again: ``last_seen`` moves)."""
        when = _utc(seen_at or datetime.now(UTC))
        tbl = discovered_fields
        with self._writer.begin() as conn:
            for name in fields:
                where = (
                    tbl.c.integration == integration,
                    tbl.c.table_name == table,
                    tbl.c.field == name,
                )
                if not conn.execute(sa.update(tbl).where(*where).values(last_seen=when)).rowcount:
                    conn.execute(
                        sa.insert(tbl).values(
                            integration=integration, table_name=table, field=name,
                            first_seen=when, last_seen=when,
                        )
                    )

    def discovered(self, integration: str) -> list[DiscoveredField]:
        """The fields runs of ``integration`` met that the registry does not know, by table
        and name."""
        tbl = discovered_fields
        query = (
            sa.select(tbl)
            .where(tbl.c.integration == integration)
            .order_by(tbl.c.table_name, tbl.c.field)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DiscoveredField(
                integration=r.integration,
                table=r.table_name,
                field=r.field,
                first_seen=_utc(r.first_seen),
                last_seen=_utc(r.last_seen),
            )
            for r in rows
        ]


def _upsert(
    conn: Connection, tbl: sa.Table, integration: str, table: str, values: Mapping[str, object]
) -> None:
    updated = conn.execute(
        sa.update(tbl)
        .where(tbl.c.integration == integration, tbl.c.table_name == table)
        .values(**values)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(tbl).values(integration=integration, table_name=table, **values))


def _replace_ledger(
    conn: Connection, integration: str, table: str, ledger: LedgerEntries, now: datetime
) -> None:
    tbl = campaign_ledger
    conn.execute(sa.delete(tbl).where(tbl.c.integration == integration,
                                      tbl.c.table_name == table))
    rows = [
        {"integration": integration, "table_name": table, "campaign_id": str(cid),
         "entry": json.dumps(entry, sort_keys=True, default=str), "updated_at": now}
        for cid, entry in ledger.items()
    ]
    if rows:
        conn.execute(sa.insert(tbl), rows)
