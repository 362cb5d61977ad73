"""Status at a glance (issue 12 §2): the per-table summary of the details page, the sync
history SVG (axes, labels, a ``<title>`` per run, a text alternative), and the engine's
per-table log line that the job page reads seconds and retries from."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from ctctsync.sync.results import TableDone, parse_table_done, table_done_line
from ctctsync.web.history import (
    RunPoint,
    history_chart,
    nice_ceiling,
    nice_seconds,
    rows_words,
    seconds_words,
    table_summaries,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def point(run_id: str, hours_ago: float, rows: dict[str, int], status: str = "succeeded",
          table_status: dict[str, str] | None = None, seconds: float = 60,
          error: str | None = None) -> RunPoint:
    finished = NOW - timedelta(hours=hours_ago)
    return RunPoint(
        run_id=run_id, status=status, started_at=finished - timedelta(seconds=seconds),
        finished_at=finished, rows=rows,
        table_status=table_status or dict.fromkeys(rows, "succeeded"), error=error,
    )


# newest first, as the route reads them
RUNS = [
    point("r4", 1, {"contacts": 0, "contact_lists": 0}, "partial",
          {"contacts": "succeeded", "contact_lists": "stopped"},
          error="Constant Contact answered that the API key's daily quota is spent."),
    point("r3", 7, {"contacts": 12, "contact_lists": 0}, "failed",
          {"contacts": "succeeded", "contact_lists": "failed"},
          error="contact_lists: the warehouse refused the load"),
    point("r2", 13, {"contacts": 40, "contact_lists": 5}),
    point("r1", 24 * 40, {"contacts": 1000, "contact_lists": 5}),  # older than the chart
]


def test_table_summaries() -> None:
    contacts, lists, events = table_summaries(["contacts", "contact_lists", "events"], RUNS)
    assert (contacts.status, contacts.rows_last_run, contacts.rows_total) == ("succeeded", 0, 1052)
    assert contacts.last_success == RUNS[0].finished_at and contacts.last_error is None
    assert contacts.last_run_id == "r4"
    # stopped by the quota: the last success is two runs back, the error is the run's
    assert (lists.status, lists.last_success) == ("stopped", RUNS[2].finished_at)
    assert lists.last_error == RUNS[0].error
    assert lists.rows_total == 10
    # a table no run included yet
    assert (events.status, events.last_success, events.rows_last_run, events.rows_total) == (
        None, None, None, 0)


def test_a_table_failure_drops_the_table_prefix() -> None:
    (lists,) = table_summaries(["contact_lists"], RUNS[1:])
    assert lists.status == "failed" and lists.last_error == "the warehouse refused the load"


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (7, 10), (12, 20), (230, 250), (4_100, 5_000), (1_000_001, 2_000_000)],
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == ceiling


def test_nice_seconds() -> None:
    assert [nice_seconds(s) for s in (0, 45, 61, 3000, 90_000)] == [10, 60, 120, 3600, 100_000]


def test_short_labels() -> None:
    assert [rows_words(n) for n in (0, 950, 12_000, 2_500_000)] == ["0", "950", "12k", "2.5M"]
    assert [seconds_words(s) for s in (4, 90, 600, 5400)] == ["4 s", "1.5 min", "10 min", "1.5 h"]


def test_history_chart_draws_each_run_of_the_last_30_days() -> None:
    chart = history_chart(RUNS, NOW)
    root = ET.fromstring(chart.svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "history-title-wide history-desc-wide"
    assert root.find(f"{SVG}title").text == "Rows and duration per job, last 30 days"  # type: ignore[union-attr]
    # the text alternative: counts of the three runs inside the window (r1 is 40 days old)
    assert chart.summary == "3 jobs in the last 30 days loaded 57 rows; the longest took 1 min."
    assert root.find(f"{SVG}desc").text == chart.summary  # type: ignore[union-attr]
    assert [p.run_id for p in chart.points] == ["r2", "r3", "r4"]  # oldest first
    groups = root.findall(f"{SVG}g")
    assert [g.get("data-run") for g in groups] == ["r2", "r3", "r4"]
    titles = [g.find(f"{SVG}title").text for g in groups]  # type: ignore[union-attr]
    assert titles[0] == "2026-03-09 23:00 UTC: 45 rows in 1 min (succeeded)"
    assert titles[2].endswith(": 0 rows in 1 min (partial)")  # type: ignore[union-attr]
    # bars scale to the rows axis (0..50): the 45-row bar is 9/10 of the plot, r4's is empty
    heights = [float(g.find(f"{SVG}rect").get("height")) for g in groups]  # type: ignore[union-attr, arg-type]
    assert heights[2] == 0 and heights[0] == pytest.approx(0.9 * (250 - 16 - 40), abs=0.1)
    # the phone's rendering: the same runs and labels in a narrower viewBox, its own ids
    narrow = ET.fromstring(history_chart(RUNS, NOW, width=340, name="narrow").svg)
    assert narrow.get("viewBox") == "0 0 340 250"
    assert narrow.get("aria-labelledby") == "history-title-narrow history-desc-narrow"
    assert [g.get("data-run") for g in narrow.findall(f"{SVG}g")] == ["r2", "r3", "r4"]
    assert max(float(t.get("x") or 0) for t in narrow.iter(f"{SVG}text")) <= 340
    # bars sit in time order, left to right
    xs = [float(g.find(f"{SVG}rect").get("x")) for g in groups]  # type: ignore[union-attr, arg-type]
    assert xs == sorted(xs)
    # axes: tick labels of both axes and the dates, the axis names
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0", "25", "50", "0 s", "30 s", "1 min"} <= set(texts)
    assert {"Rows", "Duration", "Job finished (UTC)", "Feb 08", "Mar 10"} <= set(texts)
    assert root.find(f"{SVG}polyline") is not None  # the duration line joins the dots


def test_history_chart_without_runs() -> None:
    chart = history_chart([], NOW)
    assert chart.summary == "No job finished in the last 30 days."
    root = ET.fromstring(chart.svg)
    assert root.findall(f"{SVG}g") == [] and root.find(f"{SVG}polyline") is None


def test_history_chart_escapes_and_has_no_style_attributes() -> None:
    odd = point("<x>", 2, {"contacts": 1}, status='"><script>')
    svg = history_chart([odd], NOW).svg
    assert "<script>" not in svg and "<x>" not in svg
    assert not re.search(r"\sstyle=", svg)  # the Content-Security-Policy forbids them
    ET.fromstring(svg)  # still well-formed


def test_table_done_line_round_trips() -> None:
    done = TableDone("email_campaign_summary", 1_234, 3, 7, 32.84, 2)
    line = table_done_line(done)
    assert line == "email_campaign_summary: 1234 rows in 3 pages, 7 API calls, 32.8 s, 2 retried"
    parsed = parse_table_done(line)
    assert parsed == TableDone("email_campaign_summary", 1_234, 3, 7, 32.8, 2)
    for other in ("run 1f succeeded: 270 rows, 4 API calls, 1.0 s",
                  "contacts: full read (first run), 24 columns",
                  "contacts: 12 retries (500 x9, timeout x3); 12 extra calls"):
        assert parse_table_done(other) is None
