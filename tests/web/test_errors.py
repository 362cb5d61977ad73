"""The one table from service errors to HTTP answers (REST JSON and HTML pages share it)."""

from __future__ import annotations

import inspect

import orjson
import pytest

from ctctsync.control import errors
from ctctsync.control.errors import ServiceError, ValidationFailed
from ctctsync.web.errors import ANSWERS, UNLISTED, Unauthenticated, answer_for, error_response

SERVICE_ERRORS = [
    kind
    for _, kind in inspect.getmembers(errors, inspect.isclass)
    if issubclass(kind, ServiceError) and kind is not ServiceError
]


@pytest.mark.parametrize("kind", SERVICE_ERRORS, ids=lambda k: k.__name__)
def test_every_service_error_has_a_row(kind: type[ServiceError]) -> None:
    assert any(listed is kind for listed, _ in ANSWERS), f"{kind.__name__} has no answer"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        pytest.param(Unauthenticated("no token"), 401, id="unauthenticated"),
        pytest.param(ValidationFailed({"name": "bad"}), 422, id="validation"),
        pytest.param(errors.NotFound("gone"), 404, id="not-found"),
        pytest.param(errors.PermissionDenied("no"), 403, id="denied"),
        pytest.param(errors.Conflict("busy"), 409, id="conflict"),
        pytest.param(errors.InvalidTransition("no"), 409, id="transition"),
        pytest.param(ServiceError("other"), UNLISTED.status, id="unlisted"),
    ],
)
def test_status(exc: ServiceError, status: int) -> None:
    assert answer_for(exc).status == status
    response = error_response(exc)
    assert response.status_code == status
    assert orjson.loads(response.body) == {"detail": exc.message, "errors": exc.errors}
    # only a missing token asks for one
    assert ("www-authenticate" in response.headers) == (status == 401)
