"""One worker process of the refresh race in ``test_v3_oauth.py``.

``python v3_token_worker.py <state url> <authz base> <client id> renew|fresh``: opens the
shared vault (integration ``acme``), prints ``ready``, waits for a line on stdin (all workers
are released at once), then calls ``TokenKeeper.renew()`` (having handed out the stored token
first, like a run that got a 401 for it) or ``fresh_access_token()``, and prints
``{"token": ..., "refreshes": n}``.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from ctctsync.api.v3.oauth import OAuthApp
from ctctsync.api.v3.tokens import TokenKeeper
from ctctsync.token_store import SqlTokenVault


def main() -> None:
    url, authz, client_id, method = sys.argv[1:5]
    vault = SqlTokenVault(url, "acme", client_id=client_id, create=False)
    keeper = TokenKeeper(vault, OAuthApp(authz, client_id))
    if method == "renew":
        keeper.fresh_access_token(min_valid=timedelta(0))
    print("ready", flush=True)
    sys.stdin.readline()
    token = keeper.renew() if method == "renew" else keeper.fresh_access_token()
    print(json.dumps({"token": token, "refreshes": keeper.refreshes}), flush=True)
    vault.close()


if __name__ == "__main__":
    main()
