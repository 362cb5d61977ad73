"""A dlt source of Constant Contact: ``constant_contact()``, for your own ``dlt.pipeline``.

>>> import dlt
>>> from ctctsync.dlt import constant_contact
>>> pipeline = dlt.pipeline("cc", destination="duckdb", dataset_name="constant_contact")
>>> info = pipeline.run(constant_contact().with_resources("contacts", "contact_lists"))
... # doctest: +SKIP

One resource per table the chosen API version fills (``docs/tables.md``), named as the
table, with its primary key, its column types from the registry (not inferred), and a write
disposition: key-based tables are read since their bookmark and merged by primary key; full
tables (and key-based ones the registry reads whole) are read whole and replace the table.
Each key-based table's bookmark (``last_run_date``: when its last complete read started) is
kept in dlt's resource state, so it lives wherever the pipeline's state does (the pipeline
folder and the destination's ``_dlt_pipeline_state``); ``pipeline.run(...,
refresh="drop_sources")`` starts over.

Reading is ctctsync's own: the same client, rate limiter (4 requests/s and the daily quota
per API key, shared by every resource and every source of the key in the process), retries,
readers and row mapping as ``ctctsync sync`` (:mod:`ctctsync.sync.stream`). Credentials come
through dlt's conventions: ``sources.constant_contact.api_key`` and ``access_token`` in
``.dlt/secrets.toml``, or ``SOURCES__CONSTANT_CONTACT__API_KEY`` /
``SOURCES__CONSTANT_CONTACT__ACCESS_TOKEN`` in the environment (docs/integrations.md). They
are never logged.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource
from pydantic import SecretStr, ValidationError

from ctctsync.api.v3.tokens import TokenKeeper
from ctctsync.config import SourceConfig, SyncConfig, TrackingPolicy, config_error
from ctctsync.errors import ErrorRule, ReauthorizeRequired
from ctctsync.sync.bookmarks import ReadPlan
from ctctsync.sync.stream import (
    DEFAULT_HISTORY_START,
    LedgerInputs,
    TableStreams,
    is_incremental,
    plan_since,
)
from ctctsync.tables import ApiVersion, Table, tables_for
from ctctsync.token_store import cli_authorization_problem, cli_keeper
from ctctsync.warehouse.loader import column_hints

log = logging.getLogger("ctctsync.dlt")

BOOKMARK_KEY = "last_run_date"
"""The key of a table's bookmark in its dlt resource state (an ISO 8601 UTC instant)."""
LEDGER_KEY = "campaigns"
"""The key of a per-campaign table's campaign ledger in its dlt resource state (what the
campaign planner saw of each sent campaign at its last check: counts, marks, tier)."""
DEFAULT_LOOKBACK_MINUTES = 10.0
"""How far before its bookmark a key-based table's read starts (changes written while the
previous read ran, and clock skew, are read again; the merge absorbs them)."""

NOT_SIGNED_IN_RULE = ErrorRule(
    name="dlt_v3_not_signed_in",
    action="reauthorize",
    failure_type="auth",
    message="{detail}",
)
"""A v3 source given a refresh token or token store with no usable token set in it."""


@dlt.source(name="constant_contact", section="constant_contact", max_table_nesting=0)
def constant_contact(
    api_key: TSecretStrValue = dlt.secrets.value,
    access_token: TSecretStrValue | None = None,
    refresh_token: TSecretStrValue | None = None,
    client_secret: TSecretStrValue | None = None,
    api_version: str = "v3",
    base_url: str | None = None,
    history_start: date = DEFAULT_HISTORY_START,
    lookback_minutes: float = DEFAULT_LOOKBACK_MINUTES,
    qps_limit: float | None = 4.0,
    daily_limit: int | None = 10_000,
    max_retries: int = 6,
    token_store: str | None = None,
    integration: str = "constant_contact",
    tracking: dict[str, Any] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[DltResource]:
    """The Constant Contact account's tables, one dlt resource per table.

    Every argument can come from dlt's configuration (``sources.constant_contact.<name>``
    in ``.dlt/config.toml`` or ``.dlt/secrets.toml``, or ``SOURCES__CONSTANT_CONTACT__<NAME>``
    in the environment); an argument given in the call wins.

    Args:
        api_key: v2: the API key; v3: the application's client id (the developer portal's
            "API key"). A secret.
        access_token: the OAuth access token (v2: long-lived; v3: lives 24 h and is used as
            it is unless a refresh token or token store is given). A secret.
        refresh_token: v3: a refresh token to get access tokens with. Constant Contact
            rotates it on every refresh, so the rotated one is kept in ``token_store`` and,
            once stored, wins over this value. A secret.
        client_secret: v3: the application's client secret, if it has one. A secret.
        api_version: ``v3`` (every application registered since 2024) or ``v2``.
        base_url: the API origin (default: Constant Contact's for the version); e.g. a
            ``ctctsync sandbox`` URL to try the source without an account.
        history_start: where the first read of a key-based table starts (a date, UTC).
        lookback_minutes: how far before its bookmark each key-based read starts.
        qps_limit: requests per second for this API key (None: no pacing, a sandbox).
        daily_limit: the key's daily request quota (None: no limit).
        max_retries: attempts per request on retryable answers (429, 5xx, timeouts).
        token_store: v3: the SQLAlchemy URL of the ctctsync state store holding the token
            set (default: ctctsync's, ``sqlite:///.ctctsync/state.db``, where ``ctctsync
            auth login`` stores it; used only with a refresh token or when given).
        integration: the integration name the token set is stored under (``ctctsync auth
            login`` of a config with the same ``integration``).
        tracking: how often each sent campaign's tracking is checked, as ``[tracking]`` in
            ``ctctsync.toml`` (``tiers``, ``recheck_days``; docs/operations.md); default
            ctctsync's: young campaigns on every run, older ones less often.
        clock: "now" of the source, for bookmarks (default: this machine's UTC clock); a
            test against a simulator with its own clock passes that one.

    Returns:
        A dlt source; pick tables with ``.with_resources("contacts", ...)``.

    Raises:
        ConfigError: an argument is not valid (the message names it, never its value).
    """
    config = _sync_config(
        api_key=api_key, access_token=access_token, refresh_token=refresh_token,
        client_secret=client_secret, api_version=api_version, base_url=base_url,
        qps_limit=qps_limit, daily_limit=daily_limit, max_retries=max_retries,
        token_store=token_store, integration=integration,
    )
    if lookback_minutes < 0:
        raise config_error("lookback_minutes must be 0 or more")
    try:
        policy = TrackingPolicy.model_validate(tracking or {})
    except ValidationError as exc:
        raise config_error(f"constant_contact source: tracking: {_problems(exc)}") from None
    start = date(history_start.year, history_start.month, history_start.day)
    reading = _Reading(start, timedelta(minutes=lookback_minutes), policy)
    account = _Account(config, use_token_store=refresh_token is not None
                       or token_store is not None, clock=clock, reading=reading)
    for table in tables_for(config.source.api_version).values():
        yield _resource(account, table)


def _sync_config(*, api_key: str, access_token: str | None, refresh_token: str | None,
                 client_secret: str | None, api_version: str, base_url: str | None,
                 qps_limit: float | None, daily_limit: int | None, max_retries: int,
                 token_store: str | None, integration: str) -> SyncConfig:
    """The source's arguments as a ctctsync configuration, validated by its models."""
    if api_version not in ("v2", "v3"):
        raise config_error(f"api_version must be 'v2' or 'v3', not {api_version!r}")
    source: dict[str, Any] = {
        "api_version": api_version, "api_key": api_key, "access_token": access_token or "",
        "refresh_token": refresh_token, "client_secret": client_secret,
        "qps_limit": qps_limit, "daily_limit": daily_limit, "max_retries": max_retries,
    }
    if base_url:
        source["base_url"] = base_url
    raw: dict[str, Any] = {"integration": integration, "source": source}
    if token_store:
        raw["state_url"] = token_store
    try:
        return SyncConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"constant_contact source: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    """A validation error's problems, each named by its argument and rule, never by the
    value given (it may be a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'] if p != 'source') or 'source'}: {err['msg']}"
        for err in exc.errors()
    )


@dataclass(frozen=True)
class _Reading:
    """How the source reads: where first reads start, the look-back, the campaign tiers."""

    history_start: date
    lookback: timedelta
    tracking: TrackingPolicy

    def plan(self, table: Table, state: Mapping[str, Any], now: datetime) -> ReadPlan:
        """``table``'s read in this run, from its resource ``state``."""
        bookmark = _parse_bookmark(state.get(BOOKMARK_KEY)) if is_incremental(table) else None
        return plan_since(table, bookmark, history_start=self.history_start,
                          lookback=self.lookback, now=now)


class _Account:
    """The account's :class:`TableStreams`, one per extraction (dlt load package): made by
    the first resource that reads in it, so building the source, or listing its resources,
    makes no request and opens no store; and a source object run again (a long-lived process:
    an orchestrator's code location) lists the sent campaigns again and takes a fresh access
    token, instead of reusing the last run's."""

    def __init__(self, config: SyncConfig, *, use_token_store: bool,
                 clock: Callable[[], datetime] | None, reading: _Reading) -> None:
        self.config = config
        self.reading = reading
        self._clock = clock
        self._use_token_store = use_token_store and config.source.api_version == "v3"
        self._streams: TableStreams | None = None
        self._load_id: str | None = None
        self._lock = threading.Lock()

    def streams(self) -> TableStreams:
        """The current extraction's streams; ``_ctctsync_run_id`` is its dlt load id."""
        load_id = _current_load_id()
        with self._lock:
            if self._streams is None or load_id is None or load_id != self._load_id:
                source, renew = self._credentials()
                streams = TableStreams(source, run_id=load_id, renew_token=renew,
                                       clock=self._clock, tracking=self.reading.tracking,
                                       lookback=self.reading.lookback)
                streams.plan_campaigns({name: functools.partial(self._ledger_inputs, streams,
                                                                name)
                                        for name in _selected(streams)})
                self._streams = streams
                self._load_id = load_id
            return self._streams

    def _ledger_inputs(self, streams: TableStreams, name: str) -> LedgerInputs:
        """A per-campaign table's ledger and bookmark, from its own resource state (read by
        the first planned resource of the extraction, for all of them)."""
        state = dlt.current.resource_state(name)
        table = streams.table(name)
        plan = self.reading.plan(table, state, streams.now())
        ledger = state.get(LEDGER_KEY)
        first = is_incremental(table) and state.get(BOOKMARK_KEY) is None
        return LedgerInputs(ledger=ledger if isinstance(ledger, Mapping) else {},
                            since=plan.since, first=first)

    def _credentials(self) -> tuple[SourceConfig, Callable[[str], str] | None]:
        source = self.config.source
        if not source.api_key.get_secret_value().strip():
            raise config_error("constant_contact source: api_key is empty (v2: the API key; "
                               "v3: the application's client id)")
        if not self._use_token_store:
            if not source.access_token.get_secret_value().strip():
                raise config_error(
                    "constant_contact source: no access_token (v3: or a refresh_token, or "
                    "the token_store of `ctctsync auth login`)")
            return source, None
        problem = cli_authorization_problem(self.config, sign_in=(
            "give the source a refresh_token (sources.constant_contact.refresh_token, or "
            "SOURCES__CONSTANT_CONTACT__REFRESH_TOKEN), or run ctctsync auth login for the "
            f"integration {self.config.integration!r} (its state_url this token_store)"))
        if problem is not None:
            raise ReauthorizeRequired(problem, rule=NOT_SIGNED_IN_RULE)
        keeper: TokenKeeper = cli_keeper(self.config)
        # the vault's engine lives as long as the keeper that renews tokens through it
        weakref.finalize(keeper, keeper.vault.close)  # type: ignore[attr-defined]
        token = keeper.fresh_access_token()
        fresh = source.model_copy(update={"access_token": SecretStr(token)})
        return fresh, keeper.renew


def _selected(streams: TableStreams) -> list[str]:
    """The tables of the extraction being run (its source's selected resources)."""
    try:
        selected = set(dlt.current.source().selected_resources)
    except Exception:  # outside an extraction (a resource iterated by hand): every table
        return list(streams.tables)
    return [name for name in streams.tables if name in selected]


def _current_load_id() -> str | None:
    """The load id of the dlt extraction running this resource (None outside of one)."""
    try:
        return str(dlt.current.load_package_state()["load_id"])
    except CurrentLoadPackageStateNotAvailable:  # a resource iterated by hand, outside dlt
        return None


def _parse_bookmark(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _resource(account: _Account, table: Table) -> DltResource:
    """The dlt resource of one table (see :func:`constant_contact`)."""
    incremental = is_incremental(table)

    def rows() -> Iterator[pa.Table]:
        streams = account.streams()
        state = dlt.current.resource_state()
        plan = account.reading.plan(table, state, streams.now())
        first = incremental and state.get(BOOKMARK_KEY) is None
        read = streams.read(table.name, plan.since)
        log.info("%s: %s read (%s)%s", table.name, plan.mode, plan.reason,
                 f" since {plan.since.isoformat()}" if plan.since else "")
        yielded = False
        for batch in read.batches():
            yielded = True
            yield batch
        if not yielded and (not incremental or first):
            # a replaced table must be emptied, and a first read create its table, even
            # when the account has no rows of it
            yield read.arrow_schema.empty_table()
        held = read.hold_bookmark
        if incremental and not held:
            state[BOOKMARK_KEY] = read.started_at.isoformat()
        elif held:
            log.warning("%s: bookmark not moved, so the next run reads these rows again",
                        table.name)
        ledger = read.ledger()
        if ledger is not None and not held:
            state[LEDGER_KEY] = ledger
        log.info("%s: %d rows, %d API calls", table.name, read.rows, read.api_calls)

    return dlt.resource(
        rows,
        name=table.name,
        table_name=table.name,
        primary_key=list(table.primary_key),
        write_disposition="merge" if incremental else "replace",
        columns=column_hints(table, table.column_names),
    )


def table_names(api_version: ApiVersion = "v3") -> Sequence[str]:
    """The resource names :func:`constant_contact` has for ``api_version``."""
    return tuple(tables_for(api_version))


__all__ = ["BOOKMARK_KEY", "LEDGER_KEY", "constant_contact", "table_names"]
