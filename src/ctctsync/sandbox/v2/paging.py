"""v2 paging tokens: base64url without padding of an internal query string (§1.3).

The token is what ``next_link`` carries as its only parameter; a request with ``next`` must not
carry other parameters (``api_key`` aside).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, urlencode


class BadTokenError(ValueError):
    """A ``next`` token that cannot be decoded or lacks a required field."""


def encode_token(fields: dict[str, str | int]) -> str:
    """Encode ``fields`` (in order) as a v2 paging token."""
    raw = urlencode([(k, str(v)) for k, v in fields.items()]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str) -> dict[str, str]:
    """Decode a token made by :func:`encode_token`; raises :class:`BadTokenError`."""
    try:
        pad = "=" * (-len(token) % 4)
        raw = base64.b64decode(token + pad, altchars=b"-_", validate=True).decode()
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadTokenError(str(exc)) from exc
    if not pairs:
        raise BadTokenError("empty token")
    return dict(pairs)


def token_int(fields: dict[str, str], name: str, *, minimum: int = 0,
              maximum: int | None = None) -> int:
    """An integer field of a decoded token; raises :class:`BadTokenError`."""
    try:
        value = int(fields[name])
    except (KeyError, ValueError) as exc:
        raise BadTokenError(f"token lacks a valid {name}") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise BadTokenError(f"token {name} out of range")
    return value


def next_link(path: str, fields: dict[str, str | int]) -> str:
    """A relative ``next_link`` carrying only ``next=<token>`` (§1.3)."""
    return f"{path}?next={encode_token(fields)}"


def envelope(results: list[object], link: str | None) -> dict[str, object]:
    """The paged envelope; the last page has an empty ``pagination`` object (§1.3)."""
    pagination: dict[str, str] = {"next_link": link} if link else {}
    return {"meta": {"pagination": pagination}, "results": results}
