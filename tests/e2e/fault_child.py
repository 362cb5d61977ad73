"""The fault matrix's child: one sync, run in a process forked from a multiprocessing
fork server that has already imported ctctsync, dlt and DuckDB, so a round costs no
interpreter start-up (seconds on a loaded machine) before the kill moment can come."""

from __future__ import annotations

import json

from ctctsync.api import ApiClient, RateLimiter, RetryPolicy
from ctctsync.config import SyncConfig
from ctctsync.sync import run_sync
from ctctsync.warehouse import Loader  # noqa: F401 -- preloaded by the fork server

FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, malformed_attempts=8)
"""Short waits: what is under test is where a run can die, not the backoff's clock. Enough
attempts for the worst a round can combine on one request (a ``malformed`` and a
``truncate`` rule: four broken bodies; three ``drop``/5xx rules: seven failures)."""


def fast_client(cfg: SyncConfig) -> ApiClient:
    """A client for ``cfg.source`` that does not pace (throttling answers must be survived)
    and retries quickly."""
    src = cfg.source
    return ApiClient(src.base_url, src.api_key.get_secret_value(),
                     src.access_token.get_secret_value(), limiter=RateLimiter(None, None),
                     retry=FAST_RETRY)


def run(config_json: str) -> None:
    """Sync once; exit 0 if the run succeeded, 1 if not (the parent usually kills it first)."""
    cfg = SyncConfig.model_validate(json.loads(config_json))
    with fast_client(cfg) as client:
        result = run_sync(cfg, client=client)
    raise SystemExit(0 if result.status == "succeeded" else 1)
