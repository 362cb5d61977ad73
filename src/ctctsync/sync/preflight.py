"""What a run checks before its first API call, so that a run that cannot work fails at once
with one line (failure type ``config``, exit code 2) instead of after reading the account.

1. :func:`check_credentials`: the API key and access token are set (no request is sent with
   an empty key or an empty ``Bearer`` header, and no file is created).
2. :func:`~ctctsync.warehouse.check_warehouse`: the warehouse is reachable and the run can
   create its tables there (see :mod:`ctctsync.warehouse.preflight`).

``run_sync`` runs both; ``ctctsync sync`` and ``ctctsync check`` run them first and print
the one line.
"""

from __future__ import annotations

from typing import Final

from ctctsync.config import SourceConfig, SyncConfig
from ctctsync.warehouse import WarehouseError, check_warehouse

CREDENTIAL_VARIABLES: Final[tuple[tuple[str, str], ...]] = (
    ("api_key", "CTCTSYNC_API_KEY"),
    ("access_token", "CTCTSYNC_ACCESS_TOKEN"),
)
"""The source's credentials a run needs, and the environment variable that sets each."""


def check_credentials(source: SourceConfig) -> str | None:
    """None when the API key and access token are set; else the one line that names the
    environment variables to set.

    >>> check_credentials(SourceConfig())
    'Constant Contact credentials are missing: set CTCTSYNC_API_KEY and CTCTSYNC_ACCESS_TOKEN'
    """
    missing = [
        variable
        for field, variable in CREDENTIAL_VARIABLES
        if not getattr(source, field).get_secret_value().strip()
    ]
    if not missing:
        return None
    return "Constant Contact credentials are missing: set " + " and ".join(missing)


def preflight(config: SyncConfig, *, source: bool = True) -> str | None:
    """None when a run of ``config`` can start; else the one line that says why not.

    ``source=False`` skips the credentials (the caller brings its own API client).
    """
    if source:
        problem = check_credentials(config.source)
        if problem is not None:
            return problem
    try:
        check_warehouse(config.warehouse)
    except WarehouseError as exc:
        return str(exc)
    return None
