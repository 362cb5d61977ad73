"""Run one sync in a child process and print each progress event as a line, so a test can
kill the process (SIGKILL) at a chosen moment. Usage: ``python sync_child.py CONFIG_JSON``."""

from __future__ import annotations

import json
import sys

from ctctsync.config import SyncConfig
from ctctsync.sync import ProgressEvent, run_sync


def main() -> None:
    cfg = SyncConfig.model_validate(json.loads(sys.argv[1]))

    def show(ev: ProgressEvent) -> None:
        print(f"{ev.table} {ev.phase} {ev.rows}", flush=True)

    result = run_sync(cfg, progress=show)
    print(f"END {result.status}", flush=True)


if __name__ == "__main__":
    main()
