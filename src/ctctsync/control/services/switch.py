"""Switching an integration from API v2 to v3 in the control plane (docs/switching-to-v3.md).

Two steps, because the switch needs the v3 authorization the integration does not have yet:

1. :func:`begin_switch_to_v3` (the UI's/REST's "Switch to API v3"): the integration now
   reads v3. For one that has never run this is ``set_api_version``; for one v2 has loaded,
   ``set_api_version`` refuses (its tables would mix v2 and v3 ids) -- here the same change
   is made, and the warehouse migration is owed. The user then authorizes v3 as for any v3
   integration.
2. :func:`complete_switch` (the worker, before a v3 run): migrates the tables still in v2
   shape (``ctctsync.sync.switch.switch_to_v3``); nothing when there are none.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from ctctsync.config import SyncConfig
from ctctsync.control.context import context
from ctctsync.control.errors import Conflict
from ctctsync.control.models import Integration
from ctctsync.control.services.authorization import selection_problems_for, set_api_version
from ctctsync.sync.switch import SwitchReport, pending_tables, switch_to_v3
from ctctsync.tables import tables_for


def has_loaded(integ: Integration) -> bool:
    """Whether a run of the integration may have loaded data (what ``set_api_version``
    refuses to change the version of)."""
    return integ.activated_at is not None or integ.last_run_id is not None


def begin_switch_to_v3(db: Session, integ: Integration) -> Integration:
    """Make a v2 integration read API v3, keeping its warehouse tables for the migration.

    Its v2 credentials are forgotten (they do not open v3) and its selection follows: every
    v3 table if it had every v2 table, else the selected tables v3 has (the library tables
    are dropped from it; their warehouse tables stay as v2 loaded them). Refused
    (``Conflict``) for a v3 integration: only v2 -> v3 exists.
    """
    if integ.api_version == "v3":
        raise Conflict(f"{integ.name} already reads API v3.")
    if not has_loaded(integ):
        return set_api_version(db, integ, "v3")
    v2_all, v3_all = tables_for("v2"), tables_for("v3")
    selection = dict(integ.tables or {})
    if set(selection) >= set(v2_all):
        selection = dict.fromkeys(v3_all)
    else:
        selection = {t: c for t, c in selection.items() if t in v3_all}
        if selection_problems_for("v3", selection) or not selection:
            # columns only v2 had: every column of the tables kept
            selection = dict.fromkeys(selection) or dict.fromkeys(v3_all)
    integ.api_version = "v3"
    integ.tables = selection
    integ.credentials_encrypted = None
    integ.auth_method = None
    integ.access_problems = None
    integ.updated_at = context(db).now()
    db.commit()
    return integ


def complete_switch(
    config: SyncConfig, renew_token: Callable[[str], str] | None = None
) -> SwitchReport | None:
    """Before a v3 run: migrate the integration's tables still in v2 shape (None when there
    are none, the usual case); ``renew_token`` is the run's token renewer. Raises
    ``ctctsync.sync.switch.SwitchError`` or the API's ``CtctError``; the run should then
    fail with that message (re-running completes it)."""
    if config.source.api_version != "v3" or not pending_tables(config):
        return None
    return switch_to_v3(config, renew_token=renew_token)
