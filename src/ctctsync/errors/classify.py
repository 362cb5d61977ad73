"""Classification: which row of the error table an answer or a transport failure matches,
and the exception a caller sees when that failure ends the request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

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
    utc_text,
)
from ctctsync.errors.redaction import redact
from ctctsync.errors.rules import (
    EXHAUSTED_RULES,
    PAGINATION_LOOP_RULE,
    RETRIES_EXHAUSTED_RULE,
    RULES,
    ErrorRule,
    TransportKind,
)

_RAISED: tuple[tuple[Callable[[ErrorRule], bool], type[CtctError]], ...] = (
    (lambda rule: rule.action == "reauthorize", ReauthorizeRequired),
    (lambda rule: rule.transport == "malformed", MalformedResponse),
    (lambda rule: rule.action in ("retry", "backoff"), RetriesExhausted),
    (lambda rule: rule.name == "not_found", NotFound),
    (lambda rule: rule.failure_type == "config", ConfigError),
)
"""The exception raised for a failure that ends the request (first match wins; a quota
spent for today raises :class:`DailyQuotaExhausted`; anything else
:class:`RequestRejected`). Retried failures end as :class:`RetriesExhausted`."""


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
            error_message=self.error_message or "",
            daily=f"{daily:,}" if daily else "(unknown)",
            resume_at=utc_text(resume_at) if resume_at else "the next reset",
        )

    def to_exception(self, *, daily: int | None = None, now: datetime | None = None) -> CtctError:
        """The exception a caller sees when this failure ends the request."""
        if self.rule.action == "stop_for_today":
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
        raised = next((cls for test, cls in _RAISED if test(self.rule)), RequestRejected)
        if raised is RetriesExhausted:
            rule = EXHAUSTED_RULES.get(self.rule.name, RETRIES_EXHAUSTED_RULE)
            exhausted = rule.message.format(
                endpoint=self.endpoint,
                error_key=self._what(),
                error_message=self.error_message or self._what(),
            )
            return self._make(RetriesExhausted, exhausted, rule)
        return self._make(raised, self.user_message(daily=daily))

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


def classify_transport(
    kind: TransportKind, endpoint: str, detail: str, *, reason: str | None = None
) -> Failure:
    """Classify a failure that produced no usable answer (timeout, drop, bad body).
    ``reason`` is a short text a person may read (e.g. ``api.example.com: connection
    refused``); ``detail`` goes to the process log."""
    rule = next(r for r in RULES if r.transport == kind)
    return Failure(
        rule=rule,
        endpoint=endpoint,
        error_message=redact(reason) if reason else None,
        detail=redact(detail),
    )


def pagination_loop(endpoint: str, token: str) -> PaginationLoop:
    """The exception for a repeated next-page token/URL."""
    return PaginationLoop(
        PAGINATION_LOOP_RULE.message.format(endpoint=endpoint),
        rule=PAGINATION_LOOP_RULE,
        detail=f"repeated next link: {token}",
        endpoint=endpoint,
    )
