"""Status at a glance (issue 12 §2), computed from what runs already record: each table's
last successful sync, rows, status and last error; and the sync history chart, a
server-rendered SVG of rows and duration per run over the last 30 days.

Pure functions over :class:`RunPoint` values (no request, no store): the routes read the
runs, these shape them, and the unit tests check every number and every label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Final

CHART_DAYS: Final = 30
"""The history chart covers the last 30 days (issue 12)."""
HISTORY_RUNS: Final = 1000
"""Finished runs read for the per-table summary and the chart: 30 days of hourly runs is
720, so this covers the chart's window for any allowed frequency; a table whose last
success is older than the newest 1,000 runs shows "—"."""

WIDTH: Final = 600
NARROW_WIDTH: Final = 340
"""The chart's viewBox widths, in SVG units: the wide one for screens, the narrow one for
phones (the page shows one of them), so labels stay ~11 px high at either size instead of
shrinking to half on a phone."""
HEIGHT: Final = 250
LEFT: Final = 54
RIGHT: Final = 66
TOP: Final = 16
BOTTOM: Final = 40
"""Height and margins (axis labels live in the margins), in SVG units. The right margin
holds a duration tick ("2.5 min", ~42 units at 11 px) and, beyond it, the rotated Duration
label."""


@dataclass(frozen=True)
class RunPoint:
    """The part of one finished run the summary and the chart need."""

    run_id: str
    status: str
    started_at: datetime | None
    finished_at: datetime
    rows: dict[str, int] = field(default_factory=dict)
    table_status: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def total_rows(self) -> int:
        """Rows loaded by the run, every table."""
        return sum(self.rows.values())

    @property
    def seconds(self) -> float:
        """Wall time of the run (0 when it never started)."""
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class TableSummary:
    """One table on the details page."""

    name: str
    status: str | None
    """The table's status in the newest run that included it (None: no run yet)."""
    last_success: datetime | None
    rows_last_run: int | None
    rows_total: int
    """Rows loaded by every run read (merges count a changed row again)."""
    last_error: str | None
    """The newest failure of the table, if no success came after it."""
    last_run_id: str | None = None


def _table_error(run: RunPoint, table: str) -> str:
    """A failed table's message: the run's error names its table (``<table>: ...``) when the
    failure was the table's own; otherwise the run-wide error (a spent quota) applies."""
    error = run.error or "The job ended before this table finished."
    return error.removeprefix(f"{table}: ")


def table_summaries(tables: Iterable[str], runs: Sequence[RunPoint]) -> list[TableSummary]:
    """Per table, from ``runs`` (newest first): what the details page shows."""
    out = []
    for name in tables:
        status: str | None = None
        last_success: datetime | None = None
        rows_last: int | None = None
        error: str | None = None
        last_run: str | None = None
        total = 0
        for run in runs:
            if name not in run.table_status and name not in run.rows:
                continue
            total += run.rows.get(name, 0)
            table_status = run.table_status.get(name, "skipped")
            if status is None:
                status, rows_last, last_run = table_status, run.rows.get(name, 0), run.run_id
                if table_status in ("failed", "stopped"):
                    error = _table_error(run, name)
            if last_success is None and table_status == "succeeded":
                last_success = run.finished_at
        out.append(TableSummary(name, status, last_success, rows_last, total, error, last_run))
    return out


# ----------------------------------------------------------------------------- the chart


def nice_ceiling(value: float) -> float:
    """The axis maximum: ``value`` rounded up to 1, 2, 2.5 or 5 times a power of ten
    (at least 1), so the tick labels are round numbers."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


SECOND_STEPS: Final = (10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                       21600, 43200, 86400)
"""Duration axis maxima: round in minutes and hours, so half of each is a round label too."""


def nice_seconds(value: float) -> float:
    """The duration axis maximum: the first of :data:`SECOND_STEPS` holding ``value``."""
    for step in SECOND_STEPS:
        if value <= step:
            return float(step)
    return nice_ceiling(value)


def rows_words(n: float) -> str:
    """``950``, ``12k``, ``1.5M``: short tick labels."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000:
        return f"{n / 1_000:g}k"
    return f"{n:g}"


def seconds_words(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1.5 h``: short tick labels and titles."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
    return f"{seconds / 3600:.1f}".rstrip("0").rstrip(".") + " h"


@dataclass(frozen=True)
class Chart:
    """The rendered chart and its text alternative."""

    svg: str
    summary: str
    """One sentence: how many runs, rows in total, the longest run (the SVG's description)."""
    points: list[RunPoint]
    """The runs drawn, oldest first (the page's table alternative lists them)."""


def history_chart(
    runs: Sequence[RunPoint], now: datetime, *, days: int = CHART_DAYS, width: int = WIDTH,
    name: str = "wide",
) -> Chart:
    """Rows (bars, left axis) and duration (dots joined by a line, right axis) per finished
    run over the last ``days`` days, as an accessible SVG ``width`` units wide: ``role="img"``,
    a ``<title>`` and ``<desc>`` (ids suffixed with ``name``, so two charts can share a page),
    a ``<title>`` per run (hover), labelled axes. Styled by classes only (the
    Content-Security-Policy forbids ``style`` attributes)."""
    start, end = now - timedelta(days=days), now

    def x_of(at: datetime) -> float:
        return LEFT + (at - start) / (end - start) * (width - LEFT - RIGHT)

    points = sorted((r for r in runs if start <= r.finished_at <= end),
                    key=lambda r: r.finished_at)
    max_rows = nice_ceiling(max((p.total_rows for p in points), default=0))
    max_secs = nice_seconds(max((p.seconds for p in points), default=0))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    total = sum(p.total_rows for p in points)
    if points:
        longest = max(points, key=lambda p: p.seconds)
        summary = (f"{len(points)} job{'s' if len(points) != 1 else ''} in the last {days} "
                   f"days loaded {total:,} rows; the longest took "
                   f"{seconds_words(longest.seconds)}.")
    else:
        summary = f"No job finished in the last {days} days."
    parts = [
        f'<svg class="history-chart {name}" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-labelledby="history-title-{name} history-desc-{name}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="history-title-{name}">Rows and duration per job, last {days} days</title>',
        f'<desc id="history-desc-{name}">{escape(summary)}</desc>',
    ]
    # grid lines and tick labels: 0, half, full of each axis
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="tick rows" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{rows_words(max_rows * frac)}</text>')
        parts.append(f'<text class="tick secs" x="{width - RIGHT + 6}" y="{y + 4:.1f}">'
                     f'{seconds_words(max_secs * frac)}</text>')
    for back in range(days, -1, -10 if days >= 20 else -5):
        day = end - timedelta(days=back)
        x = x_of(day)
        parts.append(f'<line class="tick-mark" x1="{x:.1f}" y1="{base}" x2="{x:.1f}" '
                     f'y2="{base + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{base + 18}" text-anchor="middle">'
                     f'{day:%b %d}</text>')
    parts.append(f'<text class="axis-label rows" x="12" y="{TOP + plot_h / 2:.1f}" '
                 f'text-anchor="middle" transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">'
                 'Rows</text>')
    parts.append(f'<text class="axis-label secs" x="{width - 8}" y="{TOP + plot_h / 2:.1f}" '
                 f'text-anchor="middle" transform="rotate(90 {width - 8} '
                 f'{TOP + plot_h / 2:.1f})">Duration</text>')
    parts.append(f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
                 'text-anchor="middle">Job finished (UTC)</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{width - RIGHT}" '
                 f'y2="{base}"/>')
    bar_w = max(1.5, min(10.0, plot_w / max(len(points), days) * 0.6))
    line: list[str] = []
    runs_drawn: list[str] = []
    for p in points:
        x = x_of(p.finished_at)
        h = p.total_rows / max_rows * plot_h
        y_secs = base - p.seconds / max_secs * plot_h
        title = (f"{p.finished_at:%Y-%m-%d %H:%M} UTC: {p.total_rows:,} rows in "
                 f"{seconds_words(p.seconds)} ({p.status})")
        runs_drawn.append(
            f'<g class="run run-{escape(p.status)}" data-run="{escape(p.run_id)}">'
            f'<title>{escape(title)}</title>'
            f'<rect class="bar" x="{x - bar_w / 2:.1f}" y="{base - h:.1f}" '
            f'width="{bar_w:.1f}" height="{max(h, 0.0):.1f}"/>'
            f'<circle class="dot" cx="{x:.1f}" cy="{y_secs:.1f}" r="2.5"/></g>'
        )
        line.append(f"{x:.1f},{y_secs:.1f}")
    if len(line) > 1:  # under the dots, so each dot's title stays reachable
        parts.append(f'<polyline class="duration" points="{" ".join(line)}"/>')
    parts.extend(runs_drawn)
    parts.append("</svg>")
    return Chart("".join(parts), summary, points)
