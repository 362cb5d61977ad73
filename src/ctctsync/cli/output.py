"""Terminal output shared by the CLI's commands and the demo: the console, the progress bars
of a sync, its result table, and the exit code a result maps to.

Exit codes are :class:`ctctsync.errors.ExitCode`, the same for every command: 0 success,
1 failed, 2 bad usage or configuration, 3 stopped early with progress saved (daily quota
spent, or cancelled), 4 re-authorization needed. Which failure gives which code is
:data:`ctctsync.errors.FAILURES`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from ctctsync.errors import ExitCode
from ctctsync.errors import exit_code as outcome_exit_code

if TYPE_CHECKING:
    from ctctsync.config import SyncConfig
    from ctctsync.sync import SyncResult

EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_CONFIG = ExitCode.CONFIG
EXIT_STOPPED = ExitCode.STOPPED
EXIT_REAUTH = ExitCode.REAUTH

# Not a terminal (CI logs, pipes): use a width that fits the result tables unabridged.
console = Console() if sys.stdout.isatty() else Console(width=120)
err_console = Console(stderr=True)


def print_result(result: SyncResult, cfg: SyncConfig) -> None:
    """The result table of a sync, then its warnings (what it could not load), one a line."""
    grid = RichTable(title=f"run {result.run_id}: {result.label}", title_justify="left")
    grid.add_column("table")
    grid.add_column("warehouse table")
    grid.add_column("mode")
    grid.add_column("rows", justify="right")
    grid.add_column("API calls", justify="right")
    grid.add_column("status")
    for name, tr in result.tables.items():
        grid.add_row(
            name,
            cfg.table_name_in_warehouse(name),
            tr.mode,
            f"{tr.rows:,}",
            f"{tr.api_calls:,}",
            tr.status if not tr.error else f"{tr.status}: {tr.error}",
        )
    console.print(grid)
    console.print(f"API calls used: {result.api_calls:,}")
    for warning in result.warnings:
        # "no silent loss": the run succeeded (exit 0), but says what it did not load
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


def exit_code(result: SyncResult) -> int:
    """The exit code of a finished sync (by its status and failure type)."""
    return int(outcome_exit_code(result.status, result.failure_type))


def run_with_progress(cfg: SyncConfig, **kwargs: Any) -> SyncResult:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ctctsync.sync import ProgressEvent, run_sync

    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>10,} rows  {task.fields[calls]:>6,} calls"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(ev: ProgressEvent) -> None:
            if ev.table not in tasks:
                tasks[ev.table] = bar.add_task(ev.table, total=None, rows=0, calls=0)
            task = tasks[ev.table]
            bar.update(task, rows=ev.rows, calls=ev.api_calls)
            if ev.phase in ("done", "failed"):
                bar.update(task, total=1, completed=1)

        return run_sync(cfg, progress=on_progress, **kwargs)
