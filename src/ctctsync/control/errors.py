"""Errors raised by the service layer; routes, forms and the CLI turn them into answers."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every service error; ``message`` is safe to show a user."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, str] = dict(errors or {})


class ValidationFailed(ServiceError):  # noqa: N818 -- says what happened
    """Input was rejected; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


class NotFound(ServiceError):  # noqa: N818
    """The object does not exist or the user may not see it (the two are not told apart)."""


class PermissionDenied(ServiceError):  # noqa: N818
    """The user is signed in but may not do this (e.g. an admin-only action)."""


class Conflict(ServiceError):  # noqa: N818
    """The action clashes with the current state (e.g. delete while a run is in progress)."""


class InvalidTransition(ServiceError):  # noqa: N818
    """A state machine was asked for a move it does not allow."""


class QuotaWouldDefer(Conflict):
    """The daily API quota will not cover the run asked for: nothing was queued. ``message``
    says when it could run ("next run at 00:00 UTC: today's quota is reserved for 14
    scheduled runs")."""
