"""The bookmark rules: where a table's read starts and how it is loaded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ctctsync.state import Bookmark, StateStore
from ctctsync.sync.bookmarks import plan_read
from ctctsync.tables import tables_for

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HISTORY = date(2020, 1, 1)
LOOKBACK = timedelta(minutes=10)


def _bm(at: datetime) -> Bookmark:
    return Bookmark("cc", "contacts", at, "r0", at)


def _plan(table: str = "contacts", *, bookmark: Bookmark | None = None,
          loaded: frozenset[str] | None = None, selected: tuple[str, ...] | None = None,
          full_refresh: bool = False):
    spec = V2_TABLES[table]
    return plan_read(spec, bookmark=bookmark, loaded_columns=loaded,
                     selected_columns=selected or spec.column_names, full_refresh=full_refresh,
                     history_start=HISTORY, lookback=LOOKBACK, now=NOW)


@pytest.mark.parametrize("table", [pytest.param(n, id=n) for n, t in V2_TABLES.items()
                                   if t.replication == "full"])
def test_full_tables_are_replaced_without_filter(table: str) -> None:
    plan = _plan(table, bookmark=_bm(NOW - timedelta(days=1)))
    assert (plan.mode, plan.disposition, plan.since) == ("full", "replace", None)


def test_first_run_reads_from_history_start_and_replaces() -> None:
    plan = _plan(bookmark=None)
    assert plan.mode == "full" and plan.disposition == "replace"
    assert plan.since == datetime(2020, 1, 1, tzinfo=UTC)


def test_bookmark_minus_lookback_then_merge() -> None:
    plan = _plan(bookmark=_bm(NOW - timedelta(days=1)))
    assert plan.mode == "incremental" and plan.disposition == "merge"
    assert plan.since == NOW - timedelta(days=1) - LOOKBACK


def test_bookmark_in_the_future_is_capped_at_now() -> None:
    plan = _plan(bookmark=_bm(NOW + timedelta(hours=5)))
    assert plan.since == NOW - LOOKBACK


def test_since_never_before_history_start() -> None:
    plan = _plan(bookmark=_bm(datetime(2020, 1, 1, 0, 5, tzinfo=UTC)))
    assert plan.since == datetime(2020, 1, 1, tzinfo=UTC)


def test_full_refresh_replaces_from_history_start() -> None:
    plan = _plan(bookmark=_bm(NOW - timedelta(days=1)), full_refresh=True)
    assert (plan.mode, plan.disposition) == ("full", "replace")
    assert plan.since == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("loaded", "selected", "backfill"),
    [
        pytest.param(frozenset({"id", "modified_date"}), ("id", "modified_date", "first_name"),
                     True, id="grown-selection-backfills"),
        pytest.param(frozenset({"id", "modified_date", "first_name"}), ("id", "modified_date"),
                     False, id="shrunk-selection-stays-incremental"),
        pytest.param(frozenset({"id", "modified_date"}), ("id", "modified_date"),
                     False, id="same-selection"),
        pytest.param(None, ("id", "modified_date", "first_name"), False,
                     id="unrecorded-selection"),
    ],
)
def test_column_growth_resets_the_bookmark(loaded: frozenset[str] | None,
                                           selected: tuple[str, ...], backfill: bool) -> None:
    plan = _plan(bookmark=_bm(NOW - timedelta(days=1)), loaded=loaded, selected=selected)
    assert (plan.mode == "full") is backfill
    if backfill:
        assert "first_name" in plan.reason and plan.disposition == "replace"


def test_state_store_records_columns_with_the_bookmark(tmp_path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 's.db'}")
    assert store.columns("cc", "contacts") is None
    store.set("cc", "contacts", NOW, "r1", columns=("id", "modified_date"))
    assert store.columns("cc", "contacts") == {"id", "modified_date"}
    bm = store.get("cc", "contacts")
    assert bm is not None and bm.last_run_date == NOW and bm.run_id == "r1"
    store.set("cc", "contacts", NOW + timedelta(1), "r2", columns=("id",))
    assert store.columns("cc", "contacts") == {"id"}
    assert store.reset("cc", "contacts") == 1
    assert store.get("cc", "contacts") is None and store.columns("cc", "contacts") is None


def test_read_whole_tables_ignore_the_bookmark() -> None:
    plan = _plan("contact_lists", bookmark=_bm(NOW - timedelta(days=1)))
    assert (plan.mode, plan.disposition, plan.since) == ("full", "replace", None)
