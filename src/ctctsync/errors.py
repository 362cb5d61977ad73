"""One error table for everything that can go wrong when talking to Constant Contact.

Every failure -- an HTTP status with the v2 ``error_key`` of its body, a transport error, a
body that is not what the endpoint promises -- is classified by :func:`classify_response`,
:func:`classify_transport` or :data:`RULES` directly into an :class:`ErrorRule`: what the
caller should do (:data:`Action`), who has to fix it (:data:`FailureType`) and a message a
person can act on. The exceptions below are named by what the caller should do with them.

Messages never contain secrets: every text that may carry a URL or a server body goes
through :func:`redact` (see also :func:`register_secret`).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

Action = Literal["retry", "backoff", "stop_for_today", "reauthorize", "fail", "skip"]
"""What the client does with a failure.

``retry``: send again after an exponential, jittered wait. ``backoff``: slow the shared
rate limiter down, then send again. ``stop_for_today``: the daily quota is spent; stop and
resume after the next reset. ``reauthorize``: the token is bad; a person must re-authorize.
``fail``: raise. ``skip``: reserved for callers that may ignore a missing item.
"""

FailureType = Literal["config", "transient", "system"]
"""Who must act: ``config`` -- the user (credentials, key, permissions); ``transient`` --
nobody, it goes away (the run resumes or retries); ``system`` -- our bug or the API's."""

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
    ``{endpoint}``, ``{error_key}``, ``{daily}``, ``{resume_at}``."""
    statuses: frozenset[int] | None = None
    key_prefix: str | None = None
    transport: TransportKind | None = None


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
        failure_type="transient",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.over.ratelimit",
        message=(
            "The API key's daily quota of {daily} calls is spent; the run stopped with its "
            "progress saved and can resume after {resume_at}."
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
        failure_type="transient",
        statuses=frozenset({429}),
        key_prefix="quota_exceeded",
        message=(
            "The API key's daily quota of {daily} calls is spent; the run stopped with its "
            "progress saved and can resume after {resume_at}."
        ),
    ),
    ErrorRule(
        name="inactive_api_key",
        action="fail",
        failure_type="config",
        statuses=_THROTTLE_STATUSES,
        key_prefix="mashery.not.authorized.inactive",
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
        message=(
            "Constant Contact refused the API key ({error_key}). "
            "Check the API key in the integration settings."
        ),
    ),
    ErrorRule(
        name="invalid_token",
        action="reauthorize",
        failure_type="config",
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


# --------------------------------------------------------------------------- redaction

SECRET_PARAMS: frozenset[str] = frozenset(
    {
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "token",
        "client_secret",
        "code",
        "password",
        "client_id",
    }
)
"""Query/form parameter names whose values are always scrubbed."""

_PARAM_RE = re.compile(
    r"(?P<name>\b(?:" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r"))"
    r"(?P<sep>=|%3D|\"\s*:\s*\"|'\s*:\s*')(?P<value>[^&\s\"',;}]+)",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"(?P<prefix>\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)
REDACTED = "***"

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` scrubs it wherever it appears.

    Values shorter than 4 characters are ignored: scrubbing them would mangle ordinary text.
    """
    if value and len(value) >= 4:
        with _secrets_lock:
            _known_secrets.add(value)


def redact(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Return ``text`` with every secret replaced by ``***``.

    Scrubs: the values of secret parameters (``api_key=``, ``access_token=``, JSON
    ``"client_secret": "..."``...), ``Bearer`` tokens, every value registered with
    :func:`register_secret`, and the extra ``secrets`` given.
    """
    with _secrets_lock:
        values = set(_known_secrets)
    values.update(s for s in secrets if s and len(s) >= 4)
    # Longest first so a secret containing another is scrubbed whole.
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _PARAM_RE.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    return _BEARER_RE.sub(lambda m: f"{m['prefix']}{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from a record's message (and drops its args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_redacting_filter(*logger_names: str) -> None:
    """Attach one :class:`RedactingFilter` to each named logger (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


# --------------------------------------------------------------------------- exceptions


def next_utc_midnight(now: datetime) -> datetime:
    """The next 00:00 UTC after ``now``: when the daily quota resets -- §1.7 (peers: UTC)."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class CtctError(Exception):
    """Base of every ctctsync API failure.

    ``user_message`` is for the job page; ``detail`` is for the process log (redacted, no
    secrets either); ``rule`` is the row of the error table that classified the failure.
    """

    def __init__(
        self,
        user_message: str,
        *,
        rule: ErrorRule,
        detail: str = "",
        status: int | None = None,
        error_key: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.user_message = redact(user_message)
        self.rule = rule
        self.detail = redact(detail)
        self.status = status
        self.error_key = error_key
        self.endpoint = endpoint
        text = self.user_message if not self.detail else f"{self.user_message} [{self.detail}]"
        super().__init__(text)

    @property
    def failure_type(self) -> FailureType:
        return self.rule.failure_type

    @property
    def action(self) -> Action:
        return self.rule.action

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat Exception's default pickling; runs may hand errors
        # across processes (workers -> control plane), so rebuild from the attributes.
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls: type[CtctError], state: dict[str, Any]) -> CtctError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    text = error.user_message if not error.detail else f"{error.user_message} [{error.detail}]"
    Exception.__init__(error, text)
    return error


class ReauthorizeRequired(CtctError):  # noqa: N818 -- named by what the caller does
    """The access token is revoked, expired or invalid: a person must re-authorize."""


class DailyQuotaExhausted(CtctError):  # noqa: N818 -- named by what the caller does
    """The API key's daily call quota is spent. Stop, keep progress, resume at ``resume_at``."""

    def __init__(
        self,
        user_message: str,
        *,
        resume_at: datetime,
        rule: ErrorRule,
        detail: str = "",
        status: int | None = None,
        error_key: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(
            user_message,
            rule=rule,
            detail=detail,
            status=status,
            error_key=error_key,
            endpoint=endpoint,
        )
        self.resume_at = resume_at


class RetriesExhausted(CtctError):  # noqa: N818 -- named by what the caller does
    """A transient failure did not go away within the retry budget."""


class MalformedResponse(CtctError):  # noqa: N818 -- named by what the caller does
    """Constant Contact kept sending a body that is not the documented shape."""


class PaginationLoop(CtctError):  # noqa: N818 -- named by what the caller does
    """A next-page token or URL repeated: the read stops instead of looping."""


class ConfigError(CtctError):
    """Something the user configured is wrong (API key, permissions, API version)."""


class NotFound(CtctError):  # noqa: N818 -- named by what the caller does
    """The item does not exist (404). Callers that may skip it (e.g. a campaign deleted
    between list and detail) catch this; everyone else lets it fail the run."""


class RequestRejected(CtctError):  # noqa: N818 -- named by what the caller does
    """Constant Contact rejected the request (4xx/unknown status): a ctctsync or API bug."""


def quota_message(daily: int | None, resume_at: datetime) -> str:
    """The user message for a spent daily quota."""
    return RULES_BY_NAME["daily_quota"].message.format(
        daily=f"{daily:,}" if daily else "(unknown)",
        resume_at=_utc_text(resume_at),
    )


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Failure:
    """A classified failure: the matching rule plus what we know about this occurrence."""

    rule: ErrorRule
    endpoint: str
    status: int | None = None
    error_key: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    """Seconds the server asked us to wait (``Retry-After``), if it said."""
    detail: str = ""

    def user_message(self, *, daily: int | None = None, resume_at: datetime | None = None) -> str:
        status = "" if self.status is None else str(self.status)
        return self.rule.message.format(
            status=status,
            answer=" ".join(p for p in (status, self.error_key or "") if p),
            endpoint=self.endpoint,
            error_key=self.error_key or "unknown",
            daily=f"{daily:,}" if daily else "(unknown)",
            resume_at=_utc_text(resume_at) if resume_at else "the next reset",
        )

    def to_exception(self, *, daily: int | None = None, now: datetime | None = None) -> CtctError:
        """The exception a caller sees when this failure ends the request."""
        action = self.rule.action
        if action == "stop_for_today":
            resume_at = next_utc_midnight(now or datetime.now(UTC))
            return DailyQuotaExhausted(
                self.user_message(daily=daily, resume_at=resume_at),
                resume_at=resume_at,
                rule=self.rule,
                detail=self.detail,
                status=self.status,
                error_key=self.error_key,
                endpoint=self.endpoint,
            )
        message = self.user_message(daily=daily)
        if action == "reauthorize":
            return self._make(ReauthorizeRequired, message)
        if self.rule.transport == "malformed":
            return self._make(MalformedResponse, message)
        if action in ("retry", "backoff"):
            exhausted = RETRIES_EXHAUSTED_RULE.message.format(
                endpoint=self.endpoint, error_key=self._what()
            )
            return self._make(RetriesExhausted, exhausted, RETRIES_EXHAUSTED_RULE)
        if self.rule.name == "not_found":
            return self._make(NotFound, message)
        if self.rule.failure_type == "config":
            return self._make(ConfigError, message)
        return self._make(RequestRejected, message)

    def _make(self, cls: type[CtctError], message: str, rule: ErrorRule | None = None) -> CtctError:
        return cls(
            message,
            rule=rule or self.rule,
            detail=self.detail,
            status=self.status,
            error_key=self.error_key,
            endpoint=self.endpoint,
        )

    def _what(self) -> str:
        if self.status is not None:
            return f"last answer {self.status}" + (f" {self.error_key}" if self.error_key else "")
        return f"last failure: {self.rule.name}"


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """``(error_key, error_message)`` of an error body, if it has one.

    v2 error bodies are JSON arrays ``[{"error_key","error_message"}]`` -- §1.6; v3 uses
    ``[{"error_key","error_message"}]`` as well (or a bare object); OAuth uses
    ``{"error","error_description"}`` -- §1.2. Anything else gives ``(None, None)``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        return None, None
    key = data.get("error_key", data.get("error"))
    msg = data.get("error_message", data.get("error_description"))
    return (str(key) if key is not None else None, str(msg) if msg is not None else None)


def _match(rule: ErrorRule, status: int, error_key: str | None) -> bool:
    if rule.transport is not None:
        return False
    if rule.statuses is not None and status not in rule.statuses:
        return False
    if rule.key_prefix is not None:
        return error_key is not None and error_key.startswith(rule.key_prefix)
    return True


def classify_response(
    status: int,
    body: bytes,
    endpoint: str,
    *,
    retry_after: float | None = None,
) -> Failure:
    """Classify a non-2xx HTTP answer by status and v2 ``error_key``."""
    error_key, error_message = parse_error_body(body)
    rule = next(r for r in RULES if _match(r, status, error_key))
    excerpt = body[:300].decode("utf-8", "replace")
    detail = redact(f"HTTP {status} from {endpoint}: {excerpt}")
    return Failure(
        rule=rule,
        endpoint=endpoint,
        status=status,
        error_key=error_key,
        error_message=redact(error_message) if error_message else None,
        retry_after=retry_after,
        detail=detail,
    )


def classify_transport(kind: TransportKind, endpoint: str, detail: str) -> Failure:
    """Classify a failure that produced no usable answer (timeout, drop, bad body)."""
    rule = next(r for r in RULES if r.transport == kind)
    return Failure(rule=rule, endpoint=endpoint, detail=redact(detail))


def pagination_loop(endpoint: str, token: str) -> PaginationLoop:
    """The exception for a repeated next-page token/URL."""
    return PaginationLoop(
        PAGINATION_LOOP_RULE.message.format(endpoint=endpoint),
        rule=PAGINATION_LOOP_RULE,
        detail=f"repeated next link: {token}",
        endpoint=endpoint,
    )
