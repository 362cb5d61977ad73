"""Helpers of the v3 end-to-end tests: a v3 config for a sandbox account, an in-memory token
vault, and the sandbox mutations the account model has no method for."""

from __future__ import annotations

from typing import Any

from ctctsync.config import SyncConfig, WarehouseConfig
from ctctsync.sandbox import Sandbox


def v3_source(sb: Sandbox, **overrides: Any) -> dict[str, Any]:
    """The ``source`` overrides of ``make_config`` for the account's v3 API: the client id
    (= the v2 API key) and a v3 access token with every scope."""
    return {"api_version": "v3", "access_token": sb.credentials.v3_access_token, **overrides}


def make_v3_config(make_config: Any, sb: Sandbox, wcfg: WarehouseConfig,
                   **overrides: Any) -> SyncConfig:
    """``make_config`` for v3: every table v3 fills unless ``tables`` says otherwise."""
    source = v3_source(sb, **overrides.pop("source", {}))
    cfg: SyncConfig = make_config(sb, wcfg, source=source, **overrides)
    return cfg


def delete_campaign(sb: Sandbox, campaign_id: int) -> None:
    """Delete a campaign in the sandbox model (v2 DELETED, v3 ``Removed``): the account has
    no method for it, so the record is changed under the account's lock, its modified time
    bumped like every other mutation."""
    acct = sb.account
    with acct.lock:
        camp = acct.campaigns[campaign_id]
        camp.status = "DELETED"
        acct.version += 1  # the account's cache key for derived views
        camp.modified_ms = acct.clock.now_ms()
