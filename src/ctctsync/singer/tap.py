"""The Singer tap's run: SCHEMA, RECORD and STATE messages for the selected streams.

Stdout carries the messages and nothing else (one JSON object a line); logs go to stderr.

Per stream, in the registry's order (an interrupted run's ``currently_syncing`` stream
first, then on around the order, as Singer taps resume):

1. STATE with ``currently_syncing`` set to the stream, then its SCHEMA (the selected
   columns) with ``key_properties`` and, for a key-based stream, ``bookmark_properties``;
2. the read is planned by the engine's bookmark rules (:func:`ctctsync.sync.bookmarks.plan_read`):
   a key-based stream with a bookmark reads the rows changed since it (less the look-back),
   one without (first run, or more columns selected than the bookmark was taken with) reads
   from ``start_date``; a FULL_TABLE stream reads everything;
3. a RECORD per row (:class:`ctctsync.sync.stream.TableStreams`, the read layer the dlt
   source shares: our client, rate limiter, readers and registry mapping), each with the
   ``time_extracted`` of its batch;
4. for a key-based stream, the new bookmark -- the instant its read *began* -- in the next
   STATE; a read that noted a loss a later read can recover keeps the old bookmark.

The STATE value::

    {"bookmarks": {"contacts": {"last_run_date": "2026-12-02T17:30:00.123456Z",
                                "columns": ["id", "modified_date", ...]}},
     "currently_syncing": null}

A run that fails part-way has emitted the STATE of every stream it finished; resumed with
the last STATE the target received, it re-reads only the stream it was in (whose rows it
may have sent in part: targets merge them by ``key_properties``) and what changed since.

Full-table streams are sent whole on every run without ``ACTIVATE_VERSION`` messages (an
optional part of the spec that ``target-jsonl`` does not know): a row deleted at the source
stays in a target that merges by key; v3 contacts are soft-deleted (``deleted_at``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import pyarrow as pa
from pydantic import SecretStr

from ctctsync.config import SourceConfig
from ctctsync.errors import STANDARD_PATTERNS, ReauthorizeRequired, Redactor
from ctctsync.errors.rules import ErrorRule
from ctctsync.singer.catalog import Selection, stream_schema
from ctctsync.singer.config import TapConfig
from ctctsync.state import Bookmark
from ctctsync.sync.bookmarks import plan_read
from ctctsync.sync.stream import TableStreams
from ctctsync.tables import Table
from ctctsync.token_store import cli_authorization_problem, cli_keeper

Clock = Callable[[], datetime]

log = logging.getLogger("ctctsync.singer")


NOT_SIGNED_IN_RULE = ErrorRule(
    name="tap_v3_not_signed_in",
    action="reauthorize",
    failure_type="auth",
    message="{detail}",
)
"""A v3 tap given a refresh token or token store with no usable token set in it."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``moment`` as ISO-8601 UTC text with a ``Z`` (what records and STATE carry)."""
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def json_records(table: Table, batch: pa.Table) -> list[dict[str, Any]]:
    """A mapped batch's rows as JSON-ready records: timestamps as ISO-8601 UTC text, nested
    (``json``) columns as the objects or lists they hold, without our load stamps (a Singer
    target adds its own)."""
    names = [n for n in batch.column_names if not n.startswith("_ctctsync_")]
    stamps = [n for n in names if table.column(n).type == "timestamp"]
    nested = [n for n in names if table.column(n).type == "json"]
    rows: list[dict[str, Any]] = batch.select(names).to_pylist()
    for row in rows:
        for name in stamps:
            if row[name] is not None:
                row[name] = iso_utc(row[name])
        for name in nested:
            if row[name] is not None:
                row[name] = orjson.loads(row[name])  # nested values travel as JSON text
    return rows


class StateError(ValueError):
    """A ``--state`` file the tap cannot use; says why."""


class MessageWriter:
    """Writes Singer messages, one JSON line each, to a binary stream (the tap's stdout).
    Records are buffered; every STATE is flushed, so a target that has a STATE has every
    record before it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.counts: dict[str, int] = {}
        """Messages written, by type (the run's summary line; tests)."""

    def _write(self, message: Mapping[str, Any]) -> None:
        self._out.write(orjson.dumps(message) + b"\n")
        kind = str(message["type"])
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def schema(self, stream: str, schema: Mapping[str, Any], key_properties: Iterable[str],
               bookmark_properties: Iterable[str] = ()) -> None:
        """A SCHEMA message."""
        message: dict[str, Any] = {"type": "SCHEMA", "stream": stream, "schema": schema,
                                   "key_properties": list(key_properties)}
        marks = list(bookmark_properties)
        if marks:
            message["bookmark_properties"] = marks
        self._write(message)

    def records(self, stream: str, records: Iterable[Mapping[str, Any]],
                time_extracted: str) -> int:
        """A RECORD message per record; returns how many."""
        n = 0
        for record in records:
            self._write({"type": "RECORD", "stream": stream, "record": record,
                         "time_extracted": time_extracted})
            n += 1
        return n

    def state(self, value: Mapping[str, Any]) -> None:
        """A STATE message, flushed with every record before it."""
        self._write({"type": "STATE", "value": value})
        self._out.flush()


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_state(state: Any) -> dict[str, Any]:
    """A usable copy of a ``--state`` value; raises :class:`StateError` saying what is wrong.
    Meltano and other runners pass the last STATE's ``value`` as it was emitted."""
    if not isinstance(state, dict):
        raise StateError("the state must be a JSON object (the value of a STATE message)")
    out = copy.deepcopy(state)
    bookmarks = out.setdefault("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError('the state\'s "bookmarks" must be an object of streams')
    for name, mark in bookmarks.items():
        if not isinstance(mark, dict):
            raise StateError(f"the bookmark of stream {name!r} must be an object")
        if "last_run_date" in mark and _parse_instant(mark["last_run_date"]) is None:
            raise StateError(f"the bookmark of stream {name!r} has a last_run_date that is not "
                             "an ISO-8601 instant")
    return out


def _order(selections: list[Selection], current: Any) -> list[Selection]:
    """The streams, the interrupted run's current one first and then on around the order."""
    names = [s.table.name for s in selections]
    if current not in names:
        return selections
    i = names.index(current)
    return selections[i:] + selections[:i]


@contextmanager
def credentials(cfg: TapConfig) -> Iterator[tuple[SourceConfig, Callable[[str], str] | None]]:
    """The source to read with and, for v3 with a token store, the renewer its clients call
    on a 401 (the ``ctctsync sync`` rules: ``ctctsync.token_store``); the store is closed
    when the block ends. Raises ``ReauthorizeRequired`` when it has no usable token set."""
    source = cfg.source()
    if not cfg.uses_token_store:
        yield source, None
        return
    config = cfg.sync_config()
    problem = cli_authorization_problem(config)
    if problem is not None:
        raise ReauthorizeRequired(problem, rule=NOT_SIGNED_IN_RULE)
    keeper = cli_keeper(config)
    try:
        token = keeper.fresh_access_token()
        yield source.model_copy(update={"access_token": SecretStr(token)}), keeper.renew
    finally:
        keeper.vault.close()  # type: ignore[attr-defined]


def run_tap(
    cfg: TapConfig,
    selections: list[Selection],
    state: Mapping[str, Any],
    out: IO[bytes],
    *,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Send the selected streams' SCHEMA, RECORD and STATE messages to ``out``.

    Args:
        cfg: the checked ``--config``.
        selections: the streams to send (:func:`ctctsync.singer.catalog.select`).
        state: the ``--state`` value (``{}`` on a first run), checked by :func:`check_state`.
        out: where the messages go (the process's binary stdout).
        clock: "now" (bookmarks are instants of it); default this machine's UTC clock.

    Returns:
        The last STATE value sent. A failure (``CtctError`` and others) propagates after the
        STATE of every finished stream was sent.
    """
    now = clock or _utcnow
    value = check_state(state)
    bookmarks: dict[str, Any] = value["bookmarks"]
    writer = MessageWriter(out)
    secrets = (cfg.api_key, cfg.access_token, cfg.refresh_token, cfg.client_secret)
    redactor = Redactor(secrets, patterns=STANDARD_PATTERNS)
    try:
        with redactor.in_use(), credentials(cfg) as (source, renew):
            redactor = Redactor((*secrets, source.access_token), patterns=STANDARD_PATTERNS)
            with redactor.in_use():
                streams = TableStreams(source, clock=now, renew_token=renew, redactor=redactor)
                for sel in _order(selections, value.get("currently_syncing")):
                    value["currently_syncing"] = sel.table.name
                    writer.state(value)
                    _stream(cfg, sel, bookmarks, writer, streams)
                value["currently_syncing"] = None
                writer.state(value)
    finally:
        out.flush()
    log.info("tap done: %s", ", ".join(f"{n} {k}" for k, n in sorted(writer.counts.items())))
    return value


def _stream(cfg: TapConfig, sel: Selection, bookmarks: dict[str, Any], writer: MessageWriter,
            streams: TableStreams) -> None:
    """One stream: its SCHEMA, its RECORDs, and its new bookmark in ``bookmarks``."""
    table, name = sel.table, sel.table.name
    incremental = sel.method == "INCREMENTAL"
    marks = [table.cursor_column] if incremental and table.cursor_column else []
    writer.schema(name, stream_schema(table, sel.columns), table.primary_key, marks)
    saved = bookmarks.get(name) or {}
    last = _parse_instant(saved.get("last_run_date")) if incremental else None
    bookmark = (Bookmark(integration="singer", table=name, last_run_date=last, run_id=None,
                         updated_at=last) if last is not None else None)
    loaded = saved.get("columns") if isinstance(saved.get("columns"), list) else None
    started = streams.now()
    plan = plan_read(table, bookmark=bookmark, loaded_columns=loaded,
                     selected_columns=sel.columns,
                     full_refresh=sel.method == "FULL_TABLE" and table.replication != "full",
                     history_start=cfg.start_date, lookback=cfg.lookback, now=started)
    log.info("%s: %s read (%s)%s", name, plan.mode, plan.reason,
             f" since {iso_utc(plan.since)}" if plan.since else "")
    read = streams.read(name, plan.since, columns=sel.columns)
    sent = 0
    for batch in read.batches():
        sent += writer.records(name, json_records(table, batch), iso_utc(streams.now()))
    if incremental and read.hold_bookmark:
        log.warning("%s: bookmark not moved, so the next run reads these rows again", name)
    elif incremental:
        # the instant the read began (before its first call), not the plan's: rows changed
        # during the read are read again next time
        bookmarks[name] = {"last_run_date": iso_utc(read.started_at),
                           "columns": list(sel.columns)}
    log.info("%s: %d records, %d API calls", name, sent, read.api_calls)
