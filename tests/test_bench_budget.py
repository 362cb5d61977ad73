"""bench/bench_budget.py on its tiny account: the calls it prints are the requests the sandbox
served, its goal is computed from them, and its check against the truth sees a lost row."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_budget.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_budget", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_budget"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _calls(line: str) -> int:
    found = re.search(r": ([\d,]+) calls", line)
    assert found is not None, line
    return int(found.group(1).replace(",", ""))


@pytest.mark.slow  # two syncs of 8 tables in process: ~20 CPU-seconds with the imports
def test_printed_calls_goal_and_truth_come_from_real_runs(
        bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = bench.Bench(bench.ACCOUNTS["tiny"], "v2", "default", tmp_path)
    try:
        counters = b.sb.counters
        counters.reset()
        bench.scenario_first(b)
        first = capsys.readouterr().out
        served = counters.snapshot()["total"]
        assert served > b.table_count  # the tracking reads cost more than one call a table
        assert _calls(first.splitlines()[0]) == served == b.runs[-1].calls
        assert ", 0 missing, 0 extra;" in first and "contacts, 0 missing" in first

        counters.reset()
        ok = bench.scenario_unchanged(b)
        text = capsys.readouterr().out
        run_line, goal = text.splitlines()[0], text.splitlines()[1]
        calls = counters.snapshot()["total"]
        assert _calls(run_line) == calls
        bound = b.table_count + b.runs[-1].campaigns_moved + 1
        assert f"= {bound}: {calls:,} calls -> {'PASS' if calls <= bound else 'FAIL'}" in goal
        assert ok is (calls <= bound)

        # the truth check: a row deleted from the warehouse and contacts changed at the
        # source since the last run are both reported
        audit = b.audit()
        assert audit["activities_missing"] == audit["activities_extra"] == 0
        assert audit["contacts_missing"] == audit["contacts_stale"] == 0
        table = '"bench"."b_contact_tracking"'
        with duckdb.connect(str(b.warehouse.path)) as con:
            con.execute(f"DELETE FROM {table} WHERE activity_id = "
                        f"(SELECT min(activity_id) FROM {table})")
        b.advance(60)
        b.change_contacts(3)
        audit = b.audit()
        assert audit["activities_missing"] == 1 and audit["activities_extra"] == 0
        assert audit["contacts_stale"] == 3
    finally:
        b.close()
