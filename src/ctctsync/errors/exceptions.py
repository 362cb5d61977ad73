"""The exceptions of a failed call to Constant Contact, named by what the caller does.

Each carries the :class:`~ctctsync.errors.rules.ErrorRule` that classified it, so its
:attr:`~CtctError.failure_type` (who acts) and :attr:`~CtctError.action` travel with it.
Their texts are redacted when they are made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ctctsync.errors.redaction import redact
from ctctsync.errors.rules import Action, ErrorRule
from ctctsync.errors.taxonomy import FAILURES, FailureType


def next_utc_midnight(now: datetime) -> datetime:
    """The next 00:00 UTC after ``now``: when the daily quota resets -- §1.7 (peers: UTC)."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def utc_text(moment: datetime) -> str:
    """``moment`` as people read it in messages: ``2026-01-02 00:00 UTC``."""
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

    @property
    def stops_run(self) -> bool:
        """True when the rest of the run is skipped: the failure type says so
        (:data:`~ctctsync.errors.taxonomy.FAILURES`), or the rule does (a rejected API key,
        an unreachable host: every other table would fail the same way)."""
        return self.rule.stops_run or FAILURES[self.failure_type].stops_run

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
    """The user message for a daily quota spent by ctctsync's own count (``daily`` calls)."""
    limit = f" of {daily:,} calls" if daily else ""
    return (
        f"The API key's daily quota{limit} is spent. Tables finished before are kept; the "
        f"rest is read after {utc_text(resume_at)}."
    )
