"""One worker process of the refresh race in ``test_v3_oauth_client.py``, forked from a
multiprocessing fork server that has imported this module (and so ctctsync's token code)
already: a worker costs no interpreter start-up, so the race is between refreshes, not
between imports.

:func:`race_worker` opens the shared vault (integration ``acme``), hands out the stored token
when it plays ``renew`` (like a run that then got a 401 for it), waits at the barrier with
every other worker and the parent, then calls ``TokenKeeper.renew()`` or
``fresh_access_token()`` and puts ``{"token", "refreshes"}`` (or ``{"error"}``) on the queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ctctsync.api.v3.oauth import OAuthApp
from ctctsync.api.v3.tokens import TokenKeeper
from ctctsync.token_store import SqlTokenVault


def race_worker(url: str, authz: str, client_id: str, method: str, barrier: Any,
                results: Any) -> None:
    """One racer (see the module docstring)."""
    vault = SqlTokenVault(url, "acme", client_id=client_id, create=False)
    try:
        keeper = TokenKeeper(vault, OAuthApp(authz, client_id))
        if method == "renew":
            keeper.fresh_access_token(min_valid=timedelta(0))
        vault.load()  # connected before the start, like the renew workers
        barrier.wait(timeout=60)
        try:
            token = keeper.renew() if method == "renew" else keeper.fresh_access_token()
        except Exception as exc:  # reported to the parent, which fails the test
            results.put({"error": f"{type(exc).__name__}: {exc}"})
            return
        results.put({"token": token, "refreshes": keeper.refreshes})
    finally:
        vault.close()
