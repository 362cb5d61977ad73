"""How a refusal is answered: one table from service errors to HTTP statuses, used by the
REST API's JSON answers and the pages' HTML error pages alike.

The services raise :mod:`ctctsync.control.errors`; the web layer alone decides what a
refusal looks like on the wire, so a new error kind is one row of :data:`ANSWERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    ServiceError,
    ValidationFailed,
)
from ctctsync.web.templating import render


class Unauthenticated(ServiceError):  # noqa: N818 -- says what happened
    """No valid personal API token (REST only: the pages redirect to sign-in instead)."""


@dataclass(frozen=True)
class ErrorAnswer:
    """The HTTP status of a refusal, and the heading of its HTML error page."""

    status: int
    title: str


ANSWERS: tuple[tuple[type[ServiceError], ErrorAnswer], ...] = (
    (Unauthenticated, ErrorAnswer(status.HTTP_401_UNAUTHORIZED, "Sign-in required")),
    (ValidationFailed, ErrorAnswer(status.HTTP_422_UNPROCESSABLE_CONTENT, "Not done")),
    (NotFound, ErrorAnswer(status.HTTP_404_NOT_FOUND, "Not found")),
    (PermissionDenied, ErrorAnswer(status.HTTP_403_FORBIDDEN, "Not allowed")),
    (Conflict, ErrorAnswer(status.HTTP_409_CONFLICT, "Not done")),
    (InvalidTransition, ErrorAnswer(status.HTTP_409_CONFLICT, "Not done")),
)
"""Service error kind -> answer; the first row whose kind matches wins."""

UNLISTED = ErrorAnswer(status.HTTP_400_BAD_REQUEST, "Not done")
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
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
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
