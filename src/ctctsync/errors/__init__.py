"""Everything about failures, in one place, importing nothing else of ctctsync.

- :mod:`~ctctsync.errors.taxonomy`: the one :data:`FailureType` (who must act) and the one
  table :data:`FAILURES` from it to run status, "stops the run", CLI exit code
  (:class:`ExitCode`) and HTTP status.
- :mod:`~ctctsync.errors.rules`: the error table for Constant Contact -- every HTTP status
  with the v2 ``error_key`` of its body, every transport failure -- as :class:`ErrorRule`
  rows: what the caller should do (:data:`Action`), the failure type and a message a person
  can act on.
- :mod:`~ctctsync.errors.classify`: :func:`classify_response` and
  :func:`classify_transport` match a failure against :data:`RULES`.
- :mod:`~ctctsync.errors.exceptions`: :class:`CtctError` and its subclasses, named by what
  the caller should do with them.
- :mod:`~ctctsync.errors.redaction`: the one :class:`Redactor`. Messages never contain
  secrets: every text that may carry a URL or a server body goes through :func:`redact`.
  Each run has its own redactor of its own secrets (:meth:`Redactor.in_use` while it
  lasts); :func:`register_secret` is for the process's own keys only.
"""

from __future__ import annotations

from ctctsync.errors.classify import (
    Failure,
    classify_response,
    classify_transport,
    pagination_loop,
    parse_error_body,
)
from ctctsync.errors.exceptions import (
    ConfigError,
    CtctError,
    DailyQuotaExhausted,
    MalformedResponse,
    NotFound,
    PaginationLoop,
    ReauthorizeRequired,
    RequestRejected,
    RetriesExhausted,
    next_utc_midnight,
    quota_message,
    utc_text,
)
from ctctsync.errors.redaction import (
    BEARER,
    KNOWN_SECRETS,
    PROCESS_SECRETS,
    RANDOM_TOKEN,
    REDACTED,
    SECRET_PARAM,
    SECRET_PARAMS,
    STANDARD_PATTERNS,
    TOKEN_PATTERNS,
    URL_CREDENTIALS,
    UUID_TOKEN,
    Pattern,
    RedactingFilter,
    RedactingFormatter,
    Redactor,
    SecretLike,
    SecretRegistry,
    install_redacting_filter,
    redact,
    register_secret,
)
from ctctsync.errors.rules import (
    EXHAUSTED_RULES,
    PAGINATION_LOOP_RULE,
    RETRIES_EXHAUSTED_RULE,
    RULES,
    RULES_BY_NAME,
    UNREACHABLE_RULE,
    Action,
    ErrorRule,
    TransportKind,
)
from ctctsync.errors.taxonomy import (
    FAILURES,
    ExitCode,
    FailureOutcome,
    FailureType,
    RunOutcome,
    exit_code,
)

__all__ = [
    "BEARER",
    "EXHAUSTED_RULES",
    "FAILURES",
    "KNOWN_SECRETS",
    "PAGINATION_LOOP_RULE",
    "PROCESS_SECRETS",
    "RANDOM_TOKEN",
    "REDACTED",
    "RETRIES_EXHAUSTED_RULE",
    "RULES",
    "RULES_BY_NAME",
    "SECRET_PARAM",
    "SECRET_PARAMS",
    "STANDARD_PATTERNS",
    "TOKEN_PATTERNS",
    "UNREACHABLE_RULE",
    "URL_CREDENTIALS",
    "UUID_TOKEN",
    "Action",
    "ConfigError",
    "CtctError",
    "DailyQuotaExhausted",
    "ErrorRule",
    "ExitCode",
    "Failure",
    "FailureOutcome",
    "FailureType",
    "MalformedResponse",
    "NotFound",
    "PaginationLoop",
    "Pattern",
    "ReauthorizeRequired",
    "RedactingFilter",
    "RedactingFormatter",
    "Redactor",
    "RequestRejected",
    "RetriesExhausted",
    "RunOutcome",
    "SecretLike",
    "SecretRegistry",
    "TransportKind",
    "classify_response",
    "classify_transport",
    "exit_code",
    "install_redacting_filter",
    "next_utc_midnight",
    "pagination_loop",
    "parse_error_body",
    "quota_message",
    "redact",
    "register_secret",
    "utc_text",
]
