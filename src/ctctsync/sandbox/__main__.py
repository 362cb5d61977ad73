"""``python -m ctctsync.sandbox``."""

from __future__ import annotations

from ctctsync.sandbox.cli import main

raise SystemExit(main())
