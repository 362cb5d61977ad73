"""v2 error bodies: a JSON array of ``{"error_key", "error_message"}`` (reference §1.6).

Keys and texts marked UNCONFIRMED in the reference are plausible choices, listed in
docs/sandbox.md.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

# (status, error_key, error_message)
INACTIVE_KEY = (403, "mashery.not.authorized.inactive",
                "The Mashery account associated with this request is not active, "
                "or an invalid API key was used.")  # §1.6, confirmed text
OVER_QPS = (403, "mashery.not.authorized.over.qps",
            "The Mashery account associated with this request is over its "
            "queries-per-second quota")  # §1.6/§1.7
OVER_RATELIMIT = (403, "mashery.not.authorized.over.ratelimit",
                  "The Mashery account associated with this request is over its "
                  "rate limit quota.")  # §1.6/§1.7
# key §1.6; text UNCONFIRMED
INVALID_TOKEN = (401, "http.status.authentication.invalid_token",
                 "Not authorized: the access token is invalid, expired or revoked.")
NOT_FOUND = (404, "http.status.not_found", "The requested resource was not found.")  # UNCONFIRMED
# text §1.1; key UNCONFIRMED
NOT_ACCEPTABLE = (406, "http.status.not_acceptable",
                  "Unsupported Accept Header value, must be application/json")
METHOD_NOT_ALLOWED = (405, "http.status.method_not_allowed",
                      "The HTTP method is not supported for this resource.")  # UNCONFIRMED
BAD_REQUEST = (400, "http.status.bad_request", "Bad request.")  # §1.6
SERVER_ERRORS: dict[int, tuple[str, str]] = {  # keys UNCONFIRMED
    500: ("http.status.internal_server_error", "An internal server error occurred."),
    503: ("http.status.service_unavailable", "The service is temporarily unavailable."),
    522: ("http.status.connection_timed_out", "Server connection timed out; please retry."),
    404: NOT_FOUND[1:],  # an injected "not found" fault answers as a real one
}


def error_bytes(key: str, message: str) -> bytes:
    """The v2 error array for one error."""
    return orjson.dumps([{"error_key": key, "error_message": message}])


def error_response(err: tuple[int, str, str], message: str | None = None) -> Response:
    """An error response; ``message`` overrides the default text."""
    status, key, text = err
    return Response(error_bytes(key, message or text), status_code=status,
                    media_type="application/json")


def bad_param(name: str, detail: str) -> Response:
    """400 for an invalid query parameter (key/text UNCONFIRMED)."""
    return error_response((400, "query.param.invalid", ""),
                          f"The query parameter {name} is invalid: {detail}")


def server_error_body(status: int) -> bytes:
    """Body of an injected 5xx/522 fault."""
    key, text = SERVER_ERRORS.get(status, SERVER_ERRORS[500])
    return error_bytes(key, text)
