"""How a refusal is answered: one table from service errors to HTTP statuses, used by the
REST API's JSON answers and the pages' HTML error pages alike.

The services raise :mod:`ctctsync.control.errors`; the web layer alone decides what a
refusal looks like on the wire, so a new error kind is one row of :data:`ANSWERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from ctctsync.control.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    QuotaWouldDefer,
    ServiceError,
    ValidationFailed,
)
from ctctsync.web.templating import render


class Unauthenticated(ServiceError):  # noqa: N818 -- says what happened
    """No valid personal API token (REST only: the pages redirect to sign-in instead)."""


@dataclass(frozen=True)
class ErrorAnswer:
    """The HTTP status of a refusal, the heading of its HTML error page, and what the REST
    API's OpenAPI schema says the status means."""

    status: int
    title: str
    described: str


_CONFLICT = ErrorAnswer(
    status.HTTP_409_CONFLICT,
    "Not done",
    "Not possible in the current state (e.g. while a run is active, once it finished, or "
    "when today's API quota will not cover the run asked for)",
)

ANSWERS: tuple[tuple[type[ServiceError], ErrorAnswer], ...] = (
    (
        Unauthenticated,
        ErrorAnswer(
            status.HTTP_401_UNAUTHORIZED,
            "Sign-in required",
            "No valid personal API token (`Authorization: Bearer ctct_...`)",
        ),
    ),
    (
        ValidationFailed,
        ErrorAnswer(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Not done",
            "Invalid input: `errors` holds one message per field",
        ),
    ),
    (
        NotFound,
        ErrorAnswer(
            status.HTTP_404_NOT_FOUND, "Not found", "No such resource that the caller may see"
        ),
    ),
    (
        PermissionDenied,
        ErrorAnswer(status.HTTP_403_FORBIDDEN, "Not allowed", "Only administrators may do this"),
    ),
    # Before Conflict (its base): the first matching row answers. Listed with Conflict's
    # description so the schema's 409 reads the same for every operation.
    (QuotaWouldDefer, ErrorAnswer(status.HTTP_409_CONFLICT, "Not started", _CONFLICT.described)),
    (Conflict, _CONFLICT),
    (InvalidTransition, _CONFLICT),
)
"""Service error kind -> answer; the first row whose kind matches wins."""

UNLISTED = ErrorAnswer(status.HTTP_400_BAD_REQUEST, "Not done", "Refused")
"""The answer to a service error of a kind not in :data:`ANSWERS`."""

HTTP_TITLES: dict[int, str] = {403: "Forbidden", 404: "Not found", 405: "Not allowed"}
"""Headings of the HTML pages for Starlette's own refusals (unknown path, wrong method)."""


def answer_for(exc: ServiceError) -> ErrorAnswer:
    """The answer to ``exc`` (by :data:`ANSWERS`)."""
    return next((answer for kind, answer in ANSWERS if isinstance(exc, kind)), UNLISTED)


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    detail: str
    errors: dict[str, str] = {}


def documented(*kinds: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the refusals of these kinds, read from :data:`ANSWERS`:
    each status once, with the one JSON shape :class:`ErrorBody`."""
    answers = {answer.status: answer for kind, answer in ANSWERS if issubclass(kind, kinds)}
    return {
        code: {"model": ErrorBody, "description": answer.described}
        for code, answer in sorted(answers.items())
    }


def error_response(exc: ServiceError) -> JSONResponse:
    """The REST API's JSON answer for a service error."""
    code = answer_for(exc).status
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse(
        ErrorBody(detail=exc.message, errors=exc.errors).model_dump(),
        status_code=code,
        headers=headers,
    )


def validation_failed(exc: RequestValidationError) -> ValidationFailed:
    """FastAPI's request validation errors as one ``ValidationFailed`` (field -> message)."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        # the first item says where (body, query, path...); a field may be named "path"
        loc = [str(p) for p in err.get("loc", ())[1:]]
        field = ".".join(loc) or "body"
        errors.setdefault(field, str(err.get("msg", "invalid")))
    return ValidationFailed(errors)


def error_page(request: Request, exc: ServiceError) -> Response:
    """The HTML page for a service error a page route did not handle itself."""
    answer = answer_for(exc)
    return render(
        request,
        "error.html",
        {"title": answer.title, "message": exc.message},
        status_code=answer.status,
    )


def http_error_page(request: Request, exc: HTTPException) -> Response:
    """The HTML page for Starlette's own refusals (no such page, wrong method)."""
    message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    if exc.status_code == status.HTTP_404_NOT_FOUND and message == "Not Found":
        message = "There is no page at this address."
    return render(
        request,
        "error.html",
        {"title": HTTP_TITLES.get(exc.status_code, "Error"), "message": message},
        status_code=exc.status_code,
    )


def invalid_request_page(request: Request, exc: RequestValidationError) -> Response:
    """The HTML page for a page request whose URL or form breaks its declared rules.

    A malformed address (an id out of range, a NUL byte in it) names no page: 404, as for
    any address that does not exist. Anything else (a query parameter out of range) is 422.
    """
    in_path = any(err.get("loc", ("",))[0] == "path" for err in exc.errors())
    if in_path:
        return render(
            request,
            "error.html",
            {"title": "Not found", "message": "There is no page at this address."},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    return render(
        request,
        "error.html",
        {"title": "Not done", "message": "; ".join(validation_failed(exc).errors.values())},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
