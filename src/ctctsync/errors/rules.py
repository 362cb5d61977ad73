"""The error table: every way a call to Constant Contact can fail, as data.

Each :class:`ErrorRule` says what the caller does (:data:`Action`), who must act
(:data:`~ctctsync.errors.taxonomy.FailureType`) and the message a person can act on.
:mod:`ctctsync.errors.classify` matches answers against :data:`RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ctctsync.errors.taxonomy import FailureType

Action = Literal["retry", "backoff", "stop_for_today", "reauthorize", "fail", "skip"]
"""What the client does with a failure.

``retry``: send again after an exponential, jittered wait. ``backoff``: slow the shared
rate limiter down, then send again. ``stop_for_today``: the daily quota is spent; stop and
resume after the next reset. ``reauthorize``: the token is bad; a person must re-authorize.
``fail``: raise. ``skip``: reserved for callers that may ignore a missing item.
"""

TransportKind = Literal["timeout", "connection", "protocol", "malformed"]


@dataclass(frozen=True)
class ErrorRule:
    """One row of the error table.

    Matching (first match wins): ``statuses`` (None = any HTTP status) and ``key_prefix``
    (None = any error_key, including none) for HTTP answers; ``transport`` for failures
    without a usable answer.
    """

    name: str
    action: Action
    failure_type: FailureType
    message: str
    """User message template; fields: ``{status}``, ``{answer}`` (status and error_key),
    ``{endpoint}``, ``{error_key}``, ``{error_message}``, ``{daily}``, ``{resume_at}``."""
    statuses: frozenset[int] | None = None
    key_prefix: str | None = None
    transport: TransportKind | None = None
    stops_run: bool = False
    """True: this failure ends the whole run, whatever its failure type says
    (:attr:`~ctctsync.errors.taxonomy.FailureOutcome.stops_run`): it is about the API key or
    the host, not about one table, so every other table would fail the same way and spend
    calls doing so."""


_THROTTLE_STATUSES = frozenset({401, 403, 429})
# v2 throttling goes through Mashery: 403 (sometimes 401) with a mashery.* error_key
# -- constant-contact-api.md §1.6, §1.7. v3 uses 429 -- §11.

RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        name="over_qps",
        action="backoff",
        failure_type="transient",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.over.qps",
        message=(
            "Constant Contact answered that this API key is over its per-second limit; "
            "requests are being spaced further apart and retried."
        ),
    ),
    ErrorRule(
        name="daily_quota",
        action="stop_for_today",
        failure_type="quota",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.over.ratelimit",
        message=(
            # CC's answer, not our count: its number of calls may differ from the limit we
            # know (other applications on the key, a lower grant), so none is claimed here.
            "Constant Contact answered that the API key's daily quota is spent. Tables "
            "finished before are kept; the rest is read after {resume_at}."
        ),
    ),
    ErrorRule(
        # Any other "over" quota Mashery may name: slow down rather than fail a run.
        name="over_other_limit",
        action="backoff",
        failure_type="transient",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.over",
        message=(
            "Constant Contact answered that this API key is over a usage limit "
            "({error_key}); requests are being slowed down and retried."
        ),
    ),
    ErrorRule(
        name="v3_throttled",
        action="backoff",
        failure_type="transient",
        statuses=frozenset({429}),
        key_prefix="throttled",
        message=(
            "Constant Contact answered that this API key is over its per-second limit; "
            "requests are being spaced further apart and retried."
        ),
    ),
    ErrorRule(
        name="v3_quota_exceeded",
        action="stop_for_today",
        failure_type="quota",
        statuses=frozenset({429}),
        key_prefix="quota_exceeded",
        message=(
            # CC's answer, not our count: its number of calls may differ from the limit we
            # know (other applications on the key, a lower grant), so none is claimed here.
            "Constant Contact answered that the API key's daily quota is spent. Tables "
            "finished before are kept; the rest is read after {resume_at}."
        ),
    ),
    ErrorRule(
        name="inactive_api_key",
        action="fail",
        failure_type="config",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.inactive",
        stops_run=True,
        message=(
            "Constant Contact does not accept the API key (inactive or invalid). "
            "Check the API key in the integration settings."
        ),
    ),
    ErrorRule(
        name="api_key_not_authorized",
        action="fail",
        failure_type="config",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized",
        stops_run=True,
        message=(
            "Constant Contact refused the API key ({error_key}). "
            "Check the API key in the integration settings."
        ),
    ),
    ErrorRule(
        name="invalid_token",
        action="reauthorize",
        failure_type="auth",
        statuses=frozenset({401}),
        message=(
            "Constant Contact rejected the access token (revoked or expired). "
            "Re-authorize the integration."
        ),
    ),
    ErrorRule(
        name="too_many_requests",
        action="backoff",
        failure_type="transient",
        statuses=frozenset({429}),
        message=(
            "Constant Contact asked us to slow down (429); requests are being spaced "
            "further apart and retried."
        ),
    ),
    ErrorRule(
        name="forbidden",
        action="fail",
        failure_type="config",
        statuses=frozenset({403}),
        message=(
            "Constant Contact refused access to {endpoint} ({answer}). The authorizing "
            "user may lack permission for this data; re-authorize with an account that has it."
        ),
    ),
    ErrorRule(
        name="not_found",
        action="fail",
        failure_type="system",
        statuses=frozenset({404}),
        message="Constant Contact answered 404 Not Found for {endpoint}.",
    ),
    ErrorRule(
        name="gone",
        action="fail",
        failure_type="config",
        statuses=frozenset({410}),
        message=(
            "Constant Contact no longer serves {endpoint} (410 Gone): the v2 API may have been "
            "retired for this account. Check the integration's API version."
        ),
    ),
    ErrorRule(
        name="bad_request",
        action="fail",
        failure_type="system",
        statuses=frozenset({400, 409, 422}),
        message=(
            "Constant Contact rejected the request to {endpoint} ({answer}); "
            "this is a ctctsync bug, please report it."
        ),
    ),
    ErrorRule(
        name="not_acceptable",
        action="fail",
        failure_type="system",
        statuses=frozenset({406, 415}),
        message=(
            "Constant Contact refused the request format for {endpoint} ({status}); "
            "this is a ctctsync bug, please report it."
        ),
    ),
    ErrorRule(
        name="request_timeout",
        action="retry",
        failure_type="transient",
        statuses=frozenset({408}),
        message="Constant Contact timed out answering {endpoint} (408); retrying.",
    ),
    ErrorRule(
        # 522 is the gateway's "server connection timed out; please retry" -- §1.6.
        name="server_error",
        action="retry",
        failure_type="transient",
        statuses=frozenset(range(500, 600)),
        message="Constant Contact had a server error on {endpoint} ({status}); retrying.",
    ),
    ErrorRule(
        name="timeout",
        action="retry",
        failure_type="transient",
        transport="timeout",
        message="Constant Contact did not answer {endpoint} in time; retrying.",
    ),
    ErrorRule(
        name="connection",
        action="retry",
        failure_type="transient",
        transport="connection",
        message="Could not connect to Constant Contact for {endpoint}; retrying.",
    ),
    ErrorRule(
        name="protocol",
        action="retry",
        failure_type="transient",
        transport="protocol",
        message=(
            "Constant Contact dropped the connection or sent an incomplete answer for "
            "{endpoint}; retrying."
        ),
    ),
    ErrorRule(
        name="malformed",
        action="retry",
        failure_type="system",
        transport="malformed",
        message=(
            "Constant Contact sent an answer for {endpoint} that is not the JSON it documents."
        ),
    ),
    ErrorRule(
        name="unknown_status",
        action="fail",
        failure_type="system",
        statuses=None,
        message="Constant Contact answered {answer} to {endpoint}.",
    ),
)
"""The error table, in match order (first match wins)."""

RULES_BY_NAME: dict[str, ErrorRule] = {r.name: r for r in RULES}

PAGINATION_LOOP_RULE = ErrorRule(
    name="pagination_loop",
    action="fail",
    failure_type="system",
    message=(
        "Constant Contact sent the same next-page link twice for {endpoint}; the read was "
        "stopped instead of looping forever."
    ),
)
RETRIES_EXHAUSTED_RULE = ErrorRule(
    name="retries_exhausted",
    action="fail",
    failure_type="transient",
    message=(
        "Constant Contact kept failing on {endpoint} ({error_key}); gave up after several "
        "retries. The run can be retried later."
    ),
)
UNREACHABLE_RULE = ErrorRule(
    name="unreachable",
    action="fail",
    failure_type="transient",
    stops_run=True,
    message=(
        "Could not connect to Constant Contact ({error_message}); gave up after retrying "
        "and stopped the run. Check the network and the API base URL."
    ),
)
"""What a connection failure (refused, unknown host, connect timeout) becomes once its
retries are spent: the host is unreachable, so the run stops instead of trying every table."""

EXHAUSTED_RULES: dict[str, ErrorRule] = {"connection": UNREACHABLE_RULE}
"""The rule a retried failure ends with when its retries are spent, by the retried rule's
name (any other: :data:`RETRIES_EXHAUSTED_RULE`)."""
