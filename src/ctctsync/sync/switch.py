"""Switching an integration from API v2 to v3 without breaking its warehouse.

v3 names contacts, lists and campaigns by UUID where v2 used sequence numbers
(constant-contact-v3-api.md §1.1), so the tables v2 loaded cannot simply go on with v3 rows.
:func:`switch_to_v3` turns each of them into its v3 shape, one table at a time, each table in
one transaction (``ctctsync.warehouse.switch``):

=======================  ==============================================================
contacts, contact_lists,  the v2 ids in the warehouse are mapped to UUIDs through CC's
email_campaigns           cross-reference endpoints (§3.1, §3.2, §3.6); the table is read
                          whole from v3 once; each row keeps its v2 id in ``v2_id``; v2
                          rows the v3 read does not return are kept under their UUID.
contact_tracking,         read whole from v3 and replaced (see :data:`PLANS` for why).
email_campaign_summary
my_library_files,         no v3 source (§3.12): kept as v2 loaded them, no longer updated.
trash_files
account_info, events      untouched: same key type; the first v3 sync re-reads them (they
                          are full tables).
=======================  ==============================================================

Why read the remapped tables whole once, rather than rewrite only their ids and continue
from the v2 bookmark? v3 encodes most columns differently (a contact's ``status`` is its
``permission_to_send``, ``lists`` holds list UUIDs, ``custom_fields`` custom-field UUIDs)
and adds columns v2 never filled (``deleted_at``, ``permission_to_send``...). Rows left as v2
wrote them would mix both encodings in one column for ever, and the engine's own rule
(``sync.bookmarks``: a column added since the bookmark forces a full read) would re-read
the table at the first v3 sync anyway, without the v2 ids. The whole read costs
``ceil(contacts/500)`` calls, as many as the contact cross-references themselves.

After a table is swapped, its v3 bookmark (the start of the v3 read, with the v3 columns) is
saved, so the next sync reads only what changed. A crash leaves each table either as v2
loaded it or wholly v3; running the switch again completes the tables still in v2 shape.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from ctctsync.api import ApiClient
from ctctsync.config import SyncConfig, config_error
from ctctsync.state import SWITCH_MARKER, StateStore
from ctctsync.sync.engine import make_client, run_sync
from ctctsync.tables import warehouse_table_name
from ctctsync.warehouse.switch import SwitchWarehouse, is_v2_shaped, v2_shaped_tables

Action = Literal["remapped", "re-read", "kept", "already v3", "not loaded"]


SIDE_PREFIX: Final = "v3switch_"
"""The side integration the v3 reads load into: ``v3switch_<hash>_<table>``. A hash of the
integration's name rather than the name itself: a 40-character name plus the longest table
name already fills PostgreSQL's 63 characters (``validation.INTEGRATION_NAME_MAX``)."""


@dataclass(frozen=True)
class Xref:
    """One of CC's cross-reference endpoints (v2 sequence id -> v3 UUID)."""

    path: str
    param: str
    batch: int
    """The most ids one call accepts."""
    v2_field: str
    v3_field: str


XREFS: Final[dict[str, Xref]] = {
    # <= 500 sequence ids per call; the answer is sorted by sequence_id, which CC may send
    # zero-padded ("0016633325") -- constant-contact-v3-api.md §3.1
    "contacts": Xref("/v3/contacts/contact_id_xrefs", "sequence_ids", 500,
                     "sequence_id", "contact_id"),
    # same shape as contacts -- §3.2
    "contact_lists": Xref("/v3/contact_lists/list_id_xrefs", "sequence_ids", 500,
                          "sequence_id", "list_id"),
    # <= 50 campaign ids per call -- §3.6
    "email_campaigns": Xref("/v3/emails/campaign_id_xrefs", "v2_email_campaign_ids", 50,
                            "v2_email_campaign_id", "campaign_id"),
}
"""The tables whose rows v2 and v3 share: mapped id by id, their v2 id kept in ``v2_id``."""

REREAD: Final = ("contact_tracking", "email_campaign_summary")
"""Tables read whole from v3 and replaced.

contact_tracking: its key ``activity_id`` is a hash of contact, campaign, type, date and link
(``sync.rows.activity_id``); in v3 the first two are UUIDs and clicks name their link by
``url_id``, which v2 rows do not carry, so old rows cannot be given the key a v3 read computes:
continuing from the v2 bookmark would load the look-back's activities a second time under new
keys. The whole read costs 1 + 1 per sent campaign + 6 per campaign activity + pages of 500
activities (the v3 reports have no date filter anyway, §1.9). Activities of campaigns deleted
before the switch are no longer readable (v2 answered 404 for them too).
email_campaign_summary: a full table, replaced by every run; one call per 500 campaigns."""

KEPT: Final = ("my_library_files", "trash_files")
"""No v3 source (constant-contact-v3-api.md §3.12): left as v2 loaded them."""

ORDER: Final = ("contact_lists", "contacts", "email_campaigns", *REREAD)
"""The order tables are switched in (each in its own transaction)."""


@dataclass
class TableSwitch:
    """What the switch did to one table."""

    action: Action
    rows_before: int | None = None
    rows_after: int | None = None
    mapped: int = 0
    """v2 ids CC's cross-reference mapped to a UUID."""
    unmapped: int = 0
    """v2 ids CC's cross-reference did not know (their rows kept under ``v2:<id>``)."""
    kept_v2_rows: int = 0
    """v2 rows the v3 read did not return, kept with their mapped id."""
    note: str = ""


@dataclass
class SwitchReport:
    """The outcome of :func:`switch_to_v3`."""

    switch_id: str
    started_at: datetime
    tables: dict[str, TableSwitch] = field(default_factory=dict)
    xref_calls: dict[str, int] = field(default_factory=dict)
    """Calls per cross-reference endpoint template."""
    read_calls: int = 0
    """Calls of the v3 reads of the switched tables."""
    done: bool = False

    @property
    def api_calls(self) -> int:
        return sum(self.xref_calls.values()) + self.read_calls


def expected_xref_calls(v2_ids: dict[str, int]) -> int:
    """Cross-reference calls for ``{table: distinct v2 ids}``: one per batch."""
    return sum(math.ceil(n / XREFS[t].batch) for t, n in v2_ids.items() if t in XREFS)


def map_v2_ids(client: ApiClient, table: str, ids: Sequence[int]) -> dict[int, str]:
    """``{v2 id: UUID}`` for ``ids`` of ``table`` through its cross-reference endpoint, in
    batches of the most ids a call accepts. Ids CC does not know are left out."""
    xref = XREFS[table]
    found: dict[int, str] = {}
    for start in range(0, len(ids), xref.batch):
        chunk = ids[start:start + xref.batch]
        body = client.get_json(xref.path, {xref.param: ",".join(str(i) for i in chunk)})
        for row in (body or {}).get("xrefs") or ():
            v2, v3 = row.get(xref.v2_field), row.get(xref.v3_field)
            if v2 is None or not v3:
                continue
            # int() also drops the zero padding CC may send (§3.1)
            found[int(str(v2))] = str(v3)
    return found


def pending_tables(config: SyncConfig) -> list[str]:
    """The integration's warehouse tables still in v2 shape that a v3 run cannot load into
    (a v3 sync must not start before :func:`switch_to_v3`: its UUIDs do not fit the v2
    BIGINT ids). Empty for an integration never loaded by v2, or already switched."""
    return v2_shaped_tables(config.warehouse, config.integration,
                            [n for n in ORDER if n in config.tables])


class _Switch:
    """One switch: the collaborators, so each step is a short method."""

    def __init__(self, config: SyncConfig, store: StateStore, report: SwitchReport,
                 log: logging.Logger, clock: Callable[[], datetime] | None,
                 on_table: Callable[[str], None] | None,
                 renew_token: Callable[[str], str] | None = None) -> None:
        self.config = config
        self.renew_token = renew_token
        self.store = store
        self.report = report
        self.log = log
        self.clock = clock
        self.on_table = on_table
        digest = hashlib.blake2b(config.integration.encode(), digest_size=4).hexdigest()
        self.side = f"{SIDE_PREFIX}{digest}"
        self.side_pipeline = f"ctctsync_{self.side}"  # the Loader's pipeline name

    def pending(self, wh: SwitchWarehouse) -> list[str]:
        """The tables still in v2 shape (reported as such, or as already done)."""
        todo = []
        for name in ORDER:
            types = wh.column_types(wh.name(name))
            if not types:
                self.report.tables[name] = TableSwitch("not loaded")
            elif is_v2_shaped(types, name):
                todo.append(name)
            else:
                self.report.tables[name] = TableSwitch("already v3")
        for name in KEPT:
            n = wh.count(wh.name(name))
            self.report.tables[name] = TableSwitch(
                "kept" if n is not None else "not loaded", rows_before=n, rows_after=n,
                note="kept as loaded by v2, no longer updated (no v3 source, §3.12)")
        return todo

    def map_ids(self, wh: SwitchWarehouse, todo: Sequence[str]) -> dict[str, dict[int, str]]:
        maps: dict[str, dict[int, str]] = {}
        with make_client(self.config.source, renew_token=self.renew_token) as client:
            for name in todo:
                if name in XREFS:
                    ids = wh.ids(wh.name(name))
                    maps[name] = map_v2_ids(client, name, ids)
                    self.report.tables[name] = TableSwitch(
                        "remapped", mapped=len(maps[name]), unmapped=len(ids) - len(maps[name]))
            self.report.xref_calls = {
                k: v for k, v in client.calls.snapshot().items() if "xrefs" in k
            }
        return maps

    def read_v3(self, wh: SwitchWarehouse, todo: Sequence[str], state_dir: Path) -> StateStore:
        """Read ``todo`` whole from v3 into the side tables; returns the side's state store
        (its bookmarks become the integration's once a table is swapped). When a table fails,
        no table is switched and the side tables are dropped."""
        self.clean_side(wh, todo)  # what a crashed attempt left
        side_store = StateStore(f"sqlite:///{state_dir / 'switch-state.db'}")
        side_cfg = self.config.model_copy(update={"integration": self.side})
        result = run_sync(side_cfg, state=side_store, only_tables=list(todo),
                          full_refresh=True, clock=self.clock, logger=self.log,
                          renew_token=self.renew_token)
        self.report.read_calls = result.api_calls
        if result.status != "succeeded":
            self.clean_side(wh, todo)
            raise SwitchError(f"the v3 read failed, nothing was switched: {result.error}")
        return side_store

    def clean_side(self, wh: SwitchWarehouse, todo: Sequence[str]) -> None:
        """Drop the side tables and dlt's record of their schema: dlt skips creating the
        tables of a schema it has recorded, so a dropped side table must be forgotten too."""
        wh.drop_tables([warehouse_table_name(self.side, n) for n in todo])
        wh.forget_schema(self.side_pipeline)

    def swap(self, wh: SwitchWarehouse, name: str, maps: dict[str, dict[int, str]],
             side_store: StateStore) -> None:
        before = wh.count(wh.name(name))
        ts = self.report.tables.get(name) or TableSwitch("re-read")
        kept = wh.swap(name, warehouse_table_name(self.side, name), maps.get(name))
        # dlt skips creating the tables of a schema whose hash it has recorded: a v3 schema
        # recorded by a v3 run tried before the switch would skip the dropped staging copy
        wh.forget_schema(f"ctctsync_{self.config.integration}")
        ts.rows_before, ts.rows_after, ts.kept_v2_rows = before, wh.count(wh.name(name)), kept
        self.report.tables[name] = ts
        bookmark = side_store.get(self.side, name)
        if bookmark is not None:  # data committed first, then the bookmark (as a sync does)
            columns = side_store.columns(self.side, name)
            self.store.set(self.config.integration, name, bookmark.last_run_date,
                           bookmark.run_id, columns=sorted(columns) if columns else None)
        self.log.info("switch %s: %s %s (%s -> %s rows)", self.report.switch_id, name,
                      ts.action, before, ts.rows_after)
        if self.on_table is not None:
            self.on_table(name)


class SwitchError(Exception):
    """The switch could not complete; the message says why. Tables switched before stay v3,
    the others stay v2; running the switch again completes it."""


def switch_to_v3(
    config: SyncConfig,
    *,
    state: StateStore | None = None,
    clock: Callable[[], datetime] | None = None,
    logger: logging.Logger | None = None,
    on_table: Callable[[str], None] | None = None,
    renew_token: Callable[[str], str] | None = None,
) -> SwitchReport:
    """Switch ``config``'s integration, loaded so far by API v2, to API v3.

    ``config`` is the integration's configuration *for v3* (``source.api_version = "v3"``,
    v3 credentials, the same warehouse and integration name). Idempotent: tables already in
    v3 shape are left alone, so a switch that failed half-way is completed by running it
    again. ``on_table`` is called with each table's name once it is switched (progress).
    ``renew_token``: a fresh v3 access token when the API refuses the current one (as for
    :func:`~ctctsync.sync.engine.run_sync`).

    Raises :class:`SwitchError` (the v3 read failed), the API client's ``CtctError`` (a
    cross-reference call failed), dlt's database errors (the warehouse) or ``ConfigError``.
    """
    if config.source.api_version != "v3":
        raise config_error("switch-api v3 needs the v3 configuration: set "
                           "source.api_version = \"v3\" and the v3 credentials first")
    log = logger or logging.getLogger("ctctsync.switch")
    store = state if state is not None else StateStore(config.state_url)
    now = (clock or (lambda: datetime.now(UTC)))()
    report = SwitchReport(switch_id=uuid.uuid4().hex, started_at=now)
    job = _Switch(config, store, report, log, clock, on_table, renew_token)
    with SwitchWarehouse(config.warehouse, config.integration) as wh:
        todo = [n for n in job.pending(wh) if n in config.tables]
        if todo:
            maps = job.map_ids(wh, todo)
            with tempfile.TemporaryDirectory(prefix="ctctsync-switch-") as tmp:
                side_store = job.read_v3(wh, todo, Path(tmp))
                for name in todo:
                    job.swap(wh, name, maps, side_store)
                side_store.engine.dispose()
            wh.forget_schema(job.side_pipeline)
    if any(t.action != "not loaded" for t in report.tables.values()):
        # an integration v2 never loaded has nothing to switch: no record
        store.set(config.integration, SWITCH_MARKER, now, report.switch_id)
    report.done = True
    return report
