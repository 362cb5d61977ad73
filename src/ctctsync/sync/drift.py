"""Schema drift, reported: a record field the table registry does not know is written to the
run log once per table and run, and remembered in the state store, where ``ctctsync
discover`` and the UI's integration page show it as "new field available".

The row mapper (:mod:`ctctsync.sync.rows`) detects the fields; this is what it calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ctctsync.state import StateStore


class DriftReport:
    """The ``on_new_fields`` callback of one run's row mappers (see ``rows.OnNewFields``)."""

    def __init__(self, log: logging.Logger, state: StateStore, integration: str) -> None:
        self.log = log
        self.state = state
        self.integration = integration

    def __call__(self, table: str, fields: Sequence[str], added: Mapping[str, str]) -> None:
        """Log the new fields of ``table`` and remember them (a failure to remember is
        logged: it must not fail the table whose rows are fine)."""
        for name in fields:
            if name in added:  # loaded: worth knowing, nothing to act on
                self.log.info("new field available: %s.%s (added as column %s)",
                              table, name, added[name])
            else:  # not loaded: the user may want it
                self.log.warning("new field available: %s.%s (not loaded: this integration "
                                 "ignores new fields)", table, name)
        try:
            self.state.record_fields(self.integration, table, fields)
        except Exception:
            self.log.exception("could not remember the new fields of %s", table)
