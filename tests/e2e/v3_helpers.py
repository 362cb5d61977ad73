"""Helpers of the v3 end-to-end tests: a v3 config for a sandbox account, an in-memory token
vault, and the sandbox mutations the account model has no method for."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ctctsync.api import ApiClient, RateLimiter, RetryPolicy
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


def config_json(cfg: SyncConfig) -> str:
    """The config as JSON for a child process, with its secrets in clear (a dump masks
    them): the child's ``SyncConfig.model_validate`` reads it back."""
    raw = cfg.model_dump(mode="json")
    source = cfg.source
    raw["source"]["api_key"] = source.api_key.get_secret_value()
    raw["source"]["access_token"] = source.access_token.get_secret_value()
    for name in ("refresh_token", "client_secret"):
        secret = getattr(source, name)
        raw["source"][name] = secret.get_secret_value() if secret is not None else None
    creds = cfg.warehouse.credentials
    raw["warehouse"]["credentials"] = creds.get_secret_value() if creds else None
    return json.dumps(raw)


def fast_v3_client(sb: Sandbox, *, qps: float | None = None, daily: int | None = None,
                   retry: RetryPolicy | None = None, token: str | None = None,
                   renew_token: Callable[[], str] | None = None,
                   wall_clock: Callable[[], datetime] | None = None) -> ApiClient:
    """A v3 client with its own limiter and short retry waits (the policy, not the clock, is
    what fault tests check): bearer token only, no ``api_key`` parameter. ``wall_clock``:
    the sandbox's clock, so a spent quota's ``resume_at`` is its next 00:00 UTC."""
    return ApiClient(
        sb.base_url, sb.credentials.api_key, token or sb.credentials.v3_access_token,
        limiter=RateLimiter(qps, daily),
        retry=retry or RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05),
        send_api_key=False, renew_token=renew_token,
        wall_clock=wall_clock or (lambda: datetime.now(UTC)),
    )
