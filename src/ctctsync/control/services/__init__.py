"""The control plane's service layer: every action of the UI, the REST API and the CLI.

Functions take the session first (from ``ControlPlane.session()``), commit what they change
before returning, and raise a :class:`~ctctsync.control.errors.ServiceError` subclass --
changing nothing -- when they refuse. Signatures: docs/architecture-control.md.
"""

from __future__ import annotations

from ctctsync.control.context import context
from ctctsync.control.schemas import credentials_status, table_catalog
from ctctsync.control.services.audit import AUDIT_EVENTS, AUDIT_LABELS, list_audit_events
from ctctsync.control.services.authorization import (
    complete_authorization,
    integration_credentials,
    set_manual_credentials,
    start_authorization,
)
from ctctsync.control.services.integrations import (
    create_integration,
    delete_integration,
    enqueue_run,
    get_integration,
    get_integration_by_name,
    list_integrations,
    pause,
    reactivate,
    resync_table,
    run_now,
    tables_to_backfill,
    update_integration,
)
from ctctsync.control.services.quota import (
    estimate_run,
    integration_budget,
    list_key_limits,
    quota_overview,
    run_now_check,
    set_key_limits,
    tracking_tiers,
)
from ctctsync.control.services.runs import cancel_run, get_run, list_runs, run_logs
from ctctsync.control.services.sessions import (
    SESSION_LIFETIME,
    end_session,
    list_sessions,
    revoke_other_sessions,
    revoke_session,
    session_user,
    start_session,
)
from ctctsync.control.services.signin import (
    ACCOUNT_FREE_FAILURES,
    ACCOUNT_LOCK_AFTER,
    ADDRESS_FREE_FAILURES,
    FIRST_DELAY_SECONDS,
    MAX_DELAY_SECONDS,
    SignInThrottled,
    attempt_sign_in,
    list_lockouts,
    lock_account,
    unlock_account,
)
from ctctsync.control.services.users import (
    authenticate,
    change_password,
    create_api_token,
    create_user,
    ensure_first_admin,
    get_user,
    list_api_tokens,
    list_users,
    revoke_api_token,
    user_for_token,
)
from ctctsync.control.services.warehouse import (
    get_warehouse,
    save_warehouse,
    test_warehouse,
    warehouse_config,
)

__all__ = [
    "ACCOUNT_FREE_FAILURES",
    "ACCOUNT_LOCK_AFTER",
    "ADDRESS_FREE_FAILURES",
    "AUDIT_EVENTS",
    "AUDIT_LABELS",
    "FIRST_DELAY_SECONDS",
    "MAX_DELAY_SECONDS",
    "SESSION_LIFETIME",
    "SignInThrottled",
    "attempt_sign_in",
    "authenticate",
    "cancel_run",
    "change_password",
    "complete_authorization",
    "context",
    "create_api_token",
    "create_integration",
    "create_user",
    "credentials_status",
    "delete_integration",
    "end_session",
    "enqueue_run",
    "ensure_first_admin",
    "estimate_run",
    "get_integration",
    "get_integration_by_name",
    "get_run",
    "get_user",
    "get_warehouse",
    "integration_budget",
    "integration_credentials",
    "list_api_tokens",
    "list_audit_events",
    "list_integrations",
    "list_key_limits",
    "list_lockouts",
    "list_runs",
    "list_sessions",
    "list_users",
    "lock_account",
    "pause",
    "quota_overview",
    "reactivate",
    "resync_table",
    "revoke_api_token",
    "revoke_other_sessions",
    "revoke_session",
    "run_logs",
    "run_now",
    "run_now_check",
    "save_warehouse",
    "session_user",
    "set_key_limits",
    "set_manual_credentials",
    "start_authorization",
    "start_session",
    "table_catalog",
    "tables_to_backfill",
    "test_warehouse",
    "tracking_tiers",
    "unlock_account",
    "update_integration",
    "user_for_token",
    "warehouse_config",
]
