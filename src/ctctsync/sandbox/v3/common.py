"""What every v3 endpoint shares: error bodies, cursors, ``limit``, timestamp styles, the guard.

Sections cited are of ``constant-contact-v3-api.md``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json"
Handler = Callable[[Request], Awaitable[Response]]


# -- bodies ------------------------------------------------------------------------------------


def _omit_none(value: Any) -> Any:
    # v3 omits empty values rather than sending null (§1.6): renderers may leave None anywhere
    if isinstance(value, dict):
        return {k: _omit_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_omit_none(v) for v in value]
    return value


def v3_json(body: Any, status: int = 200) -> Response:
    """A v3 JSON answer; keys whose value is None are dropped at every depth (§1.6)."""
    return Response(orjson.dumps(_omit_none(body)), status_code=status, media_type=JSON_TYPE)


class V3Error(Exception):
    """Raised by a handler to answer with a v3 error body (caught by :func:`guard`)."""

    def __init__(self, response: Response) -> None:
        super().__init__("v3 error")
        self.response = response


def error_array(status: int, key: str, message: str) -> Response:
    """The general error shape: an array of ``{error_key, error_message}`` (§1.4)."""
    return v3_json([{"error_key": key, "error_message": message}], status)


def error_object(status: int, key: str, message: str) -> Response:
    """The single-object shape used for 401 and 429 (§1.4, §1.5)."""
    return v3_json({"error_key": key, "error_message": message}, status)


def unauthorized() -> Response:
    """401 for a missing, unknown, expired or revoked token -- the real body (§1.4)."""
    return error_object(401, "unauthorized", "Unauthorized")


def throttled() -> Response:
    """429 over 4 requests/s (§1.5): back off and retry."""
    return error_object(429, "throttled", "Too Many Requests")


def quota_exceeded() -> Response:
    """429 over 10,000 requests/day per client id (§1.5): stop until 00:00 UTC."""
    return error_object(429, "quota_exceeded", "Limit Exceeded")


def forbidden(what: str) -> Response:
    """403 for a missing scope or user privilege (§1.2); exact key UNCONFIRMED."""
    return error_array(403, "forbidden", f"Insufficient permissions: {what} is required.")


def bad_request(param: str, message: str, service: str = "contacts") -> Response:
    """400 for a bad parameter, keyed like the real ``contacts.api.validation.error`` (§1.4)."""
    return error_array(400, f"{service}.api.validation.error", f"{param} {message}")


def not_found(what: str, service: str = "contacts") -> Response:
    """404 for an unknown resource id (§1.4)."""
    return error_array(404, f"{service}.api.not_found", f"{what} not found.")


# -- cursors and limits ------------------------------------------------------------------------


def encode_cursor(params: Mapping[str, str]) -> str:
    """``base64("limit=N&next=<key>&<filters>")``, padding kept -- as CC mints them (§1.3)."""
    return base64.b64encode(urlencode(list(params.items())).encode()).decode()


def decode_cursor(cursor: str) -> dict[str, str]:
    """The query a cursor carries; a bad cursor is a 400."""
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise V3Error(bad_request("cursor", "is not valid.")) from None
    return dict(parse_qsl(raw, keep_blank_values=True))


def query(request: Request) -> dict[str, str]:
    """The request's parameters, with a ``cursor`` expanded into the query it carries: the
    cursor already holds the original filters and limit, so the href is used as-is (§1.3)."""
    params = dict(request.query_params)
    cursor = params.pop("cursor", None)
    if cursor is not None:
        params = {**params, **decode_cursor(cursor)}
    return params


def links_next(path: str, params: Mapping[str, str]) -> dict[str, Any]:
    """``{"next": {"href": "/v3/...?cursor=..."}}``: path-relative (§1.3)."""
    return {"next": {"href": f"{path}?cursor={encode_cursor(params)}"}}


def parse_limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    """The ``limit`` parameter within ``1..maximum`` (each endpoint's own, §1.3); else 400."""
    raw = params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise V3Error(bad_request("limit", "is not a valid integer.")) from None
    if not 1 <= value <= maximum:
        raise V3Error(bad_request("limit", f"must be between 1 and {maximum}."))
    return value


# -- timestamps (each service has its own style, §1.6) -----------------------------------------


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def ts_seconds(ms: int) -> str:
    """``2026-09-29T14:33:39Z``: contacts, lists, custom fields, bulk activities."""
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_millis(ms: int) -> str:
    """``2026-09-29T14:34:37.000Z``: campaigns, activities, reports, events."""
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def ts_plus0000(ms: int) -> str:
    """``2026-09-29T14:37:13.521+0000``: account emails (offset without a colon)."""
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def date_only(ms: int) -> str:
    """``2015-03-17``: contact and tracking ``deleted_at``."""
    return _utc(ms).date().isoformat()


def parse_time(params: Mapping[str, str], name: str) -> int | None:
    """An ISO-8601 query parameter (``Z``, offsets, ``+0000``, or a date) as epoch ms."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip().replace(" ", "+")  # an unencoded '+' arrives as a space
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            if text[-5] in "+-" and text[-4:].isdigit():
                text = f"{text[:-2]}:{text[-2:]}"
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, IndexError):
        raise V3Error(bad_request(name, "is not a valid ISO-8601 date-time.")) from None
    return int(moment.timestamp() * 1000)


# -- the guard: token, limits, scope and privilege ---------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What a valid access token allows (§1.2)."""

    client_id: str
    scopes: frozenset[str]
    privileges: frozenset[str]
    """The authorizing user's privileges (``contacts:read``, ``ui:campaign:metrics``...)."""


class TokenVerifier(Protocol):
    """Decides what a bearer token grants (``sandbox.v3.tokens.TokenStore``)."""

    def verify(self, token: str) -> Grant | None: ...


class Limiter(Protocol):
    def check(self, api_key: str) -> str: ...


def guard(
    tokens: TokenVerifier, limiter: Limiter, scope: str | None, privilege: str | None
) -> Callable[[Handler], Handler]:
    """Wrap a handler with v3's checks, in CC's order: a valid Bearer token (else 401 object),
    the client id's rate limits (else 429 object), the scope and the user privilege (else 403
    array); then run it, turning a :class:`V3Error` into its answer."""

    def refusal(request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = tokens.verify(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            return unauthorized()
        verdict = limiter.check(grant.client_id)
        if verdict != "ok":
            return throttled() if verdict == "qps" else quota_exceeded()
        if scope is not None and scope not in grant.scopes:
            return forbidden(f"the {scope} scope")
        if privilege is not None and privilege not in grant.privileges:
            return forbidden(f"the {privilege} privilege")
        return None

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            refused = refusal(request)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except V3Error as exc:
                return exc.response

        return guarded

    return wrap
