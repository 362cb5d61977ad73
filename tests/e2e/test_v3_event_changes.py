"""v3 events and registrations read by the event planner (sync/events.py) end to end, over
real HTTP into DuckDB (the first scenario into PostgreSQL too): an unchanged run reads only
the event list (one call per table); added registrations, a modified event and a deleted
event are read at the next run, and rows CC no longer lists are pruned; a payment change on
a quiet event waits for its daily slot, one on a live event is read at the next run; a read
that noted a loss prunes nothing and reads its events again next run; a full refresh reads
every event. After each step both tables equal the sandbox's truth.

The account (seed 42, five events) is frozen three days before event 0 starts, when no event
is live: event 0 (paid) becomes live when the clock is moved to its start; events 3 and 4
are past paid events with registrations.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import psycopg
import pytest
from pydantic import SecretStr
from v3_helpers import make_v3_config
from v3_truth import V3Truth, assert_v3_matches, read_warehouse

from ctctsync.config import SyncConfig, TrackingPolicy, WarehouseConfig
from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.generator import build_event
from ctctsync.sandbox.testing import (
    add_event_registrations,
    delete_event,
    modify_event,
    sandbox_events,
    update_event_registration,
)
from ctctsync.sync import SyncResult, run_sync
from ctctsync.tables import METADATA_COLUMNS, warehouse_table_name

SEED = 42
SPEC = AccountSpec(seed=SEED, contacts=60, lists=1, campaigns=1, activities_per_campaign=5,
                   library_files=0, trash_files=0, events=5)
DAY = 86_400
LIVE, DELETED, MODIFIED, QUIET, ADDED = range(5)
"""Event indexes: event 0 goes live; 1 is deleted, 2 edited, 3 gets a payment change while
quiet, 4 new registrations."""
STALE, GONE = "stale-registration", "registration-of-a-gone-event"
TABLES = {"events": "*", "event_registrations": "*"}
LIST = "GET /v3/events"
DETAIL = "GET /v3/events/{event_id}"
REGISTRATIONS = "GET /v3/events/{event_id}/tracks/{track_id}/registrations"


@pytest.fixture
def sb(sandbox_factory: Any) -> Sandbox:
    start_ms = build_event(SEED, LIVE).start_ms
    sandbox: Sandbox = sandbox_factory(SPEC, frozen_at_ms=start_ms - 3 * DAY * 1000)
    return sandbox


def _sync(sb: Sandbox, cfg: SyncConfig, **kwargs: Any) -> SyncResult:
    """A run with a token fresh at the sandbox's now (a v3 token lives 24 h: the clock
    moves days here), its calls counted alone."""
    token = SecretStr(sb.v3_tokens.issue_access_token())
    cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"access_token": token})})
    sb.counters.reset()
    result = run_sync(cfg, clock=sb.account.clock.now, **kwargs)
    assert result.status == "succeeded", result.error
    assert result.tables["events"].warnings == []
    return result


def _match(sb: Sandbox, wcfg: WarehouseConfig) -> None:
    truth = V3Truth(sb)  # its reads are counted: _sync resets the counters
    assert assert_v3_matches(truth, wcfg, "events") == SPEC.events
    assert assert_v3_matches(truth, wcfg, "event_registrations") > 0


def _pages(sb: Sandbox, *indexes: int) -> int:
    """Registration pages (100 a page, at least one) of the events ``indexes``."""
    return sum(max(1, math.ceil(len(sb.account.event_registrations(i)) / 100))
               for i in indexes)


def _plant_stale_rows(wcfg: WarehouseConfig, event_id: str) -> None:
    """Rows as an earlier run left them that CC no longer lists: a registration of
    ``event_id`` and a registration of an event gone from the list (the sandbox keeps deleted
    events listed, as CC may)."""
    table = f"{wcfg.dataset}.{warehouse_table_name('cc', 'event_registrations')}"
    # new keys, and the run columns of one of the event's rows (the others stay NULL)
    meta = ", ".join(METADATA_COLUMNS)
    insert = (f"INSERT INTO {table} (registration_id, event_id, {meta}) "
              f"SELECT {{0}}, {{0}}, {meta} FROM {table} WHERE event_id = {{0}} LIMIT 1")
    rows = [(registration, event, event_id)
            for registration, event in ((STALE, event_id), (GONE, "gone-event"))]
    if wcfg.destination == "duckdb":
        with duckdb.connect(str(wcfg.path)) as con:
            con.executemany(insert.format("?"), rows)
        return
    assert wcfg.credentials is not None
    with psycopg.connect(wcfg.credentials.get_secret_value()) as pg:
        pg.cursor().executemany(insert.format("%s"), rows)


def _loaded_ids(wcfg: WarehouseConfig) -> set[str]:
    return {r["registration_id"] for r in read_warehouse(wcfg, "cc", "event_registrations")}


def _registration(wcfg: WarehouseConfig, event_id: str, payment: str) -> dict[str, Any]:
    """A loaded registration of the event with that payment status."""
    return next(r for r in read_warehouse(wcfg, "cc", "event_registrations")
                if r["event_id"] == event_id and r["payment_status"] == payment)


def _first(sb: Sandbox, wcfg: WarehouseConfig, make_config: Any) -> tuple[SyncConfig, list[str]]:
    """The first load of both tables: every detail, every event's registrations."""
    cfg = make_v3_config(make_config, sb, wcfg, tables=TABLES)
    ids = [e["event_id"] for e in sandbox_events(sb)]
    first = _sync(sb, cfg)
    assert sb.counters.count(DETAIL) == 2 * len(ids)  # each table reads every detail
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, *range(len(ids)))
    assert first.tables["event_registrations"].mode == "full"
    _match(sb, wcfg)
    return cfg, ids


def test_unchanged_and_changed_events_then_a_full_refresh(
        sb: Sandbox, warehouse: WarehouseConfig, make_config: Any) -> None:
    wcfg = warehouse
    cfg, ids = _first(sb, wcfg, make_config)

    sb.advance(60)  # nothing changed, no event live: the list only
    again = _sync(sb, cfg)
    assert sb.counters.count(LIST) == 2
    assert sb.counters.count(DETAIL) == sb.counters.count(REGISTRATIONS) == 0
    assert again.api_calls == 2
    assert again.tables["event_registrations"].mode == "incremental"

    add_event_registrations(sb, ids[ADDED], n=2)
    modify_event(sb, ids[MODIFIED], title="Edited title", time_zone="US/Pacific")
    delete_event(sb, ids[DELETED])
    _plant_stale_rows(wcfg, ids[ADDED])
    sb.advance(60)
    _sync(sb, cfg)
    changed = (ADDED, MODIFIED, DELETED)
    assert sb.counters.count(DETAIL) == 2 * len(changed)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, *changed)
    _match(sb, wcfg)  # the changes loaded, the planted rows pruned

    sb.advance(60)
    refreshed = _sync(sb, cfg, full_refresh=True)
    assert sb.counters.count(DETAIL) == 2 * len(ids)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, *range(len(ids)))
    assert refreshed.tables["event_registrations"].mode == "full"
    _match(sb, wcfg)


@pytest.mark.slow  # ~8 s: seven runs
def test_payments_wait_for_the_slot_unless_live_and_a_lossy_read_prunes_nothing(
        sb: Sandbox, duckdb_warehouse: WarehouseConfig, make_config: Any) -> None:
    wcfg = duckdb_warehouse
    cfg, ids = _first(sb, wcfg, make_config)

    # a payment change moves no count: a quiet event's registrations wait for its slot
    paid = _registration(wcfg, ids[QUIET], "PAID")["registration_id"]
    update_event_registration(sb, ids[QUIET], paid, payment_status="REFUNDED")
    sb.advance(60)
    _sync(sb, cfg)
    assert sb.counters.count(REGISTRATIONS) == 0
    assert _registration(wcfg, ids[QUIET], "PAID")["registration_id"] == paid
    sb.advance(DAY)  # every event's daily slot comes within a day
    _sync(sb, cfg)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, *range(len(ids)))
    _match(sb, wcfg)

    # a live event's registrations are read on every run, whatever the slots
    rarely = cfg.model_copy(update={"tracking": TrackingPolicy(events_every_hours=24 * 366)})
    sb.advance(2 * DAY)  # event 0 starts tomorrow: live
    _sync(sb, rarely)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, LIVE)
    paid = _registration(wcfg, ids[LIVE], "PAID")["registration_id"]
    update_event_registration(sb, ids[LIVE], paid, payment_status="REFUNDED")
    sb.advance(60)
    _sync(sb, rarely)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, LIVE)
    _match(sb, wcfg)

    # a read that noted a loss prunes nothing, and reads the event again next run
    _plant_stale_rows(wcfg, ids[ADDED])
    new = add_event_registrations(sb, ids[ADDED], n=1)["registration_ids"]
    sb.faults.add("404", f"/v3/events/{ids[ADDED]}/tracks/*", count=1)
    sb.advance(60)
    lossy = _sync(sb, rarely)
    assert lossy.tables["event_registrations"].warnings == [
        f"1 event deleted during the run: {ids[ADDED]}"]
    assert {STALE, GONE} <= _loaded_ids(wcfg)
    assert not set(new) & _loaded_ids(wcfg)
    sb.advance(60)
    _sync(sb, rarely)
    assert sb.counters.count(REGISTRATIONS) == _pages(sb, LIVE, ADDED)
    _match(sb, wcfg)
