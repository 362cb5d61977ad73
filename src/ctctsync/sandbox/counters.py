"""Request counters per endpoint (route template) and per API key, including rejections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSONDict = dict[str, Any]


def _bucket(status: int) -> str:
    return f"{status // 100}xx"


class Counters:
    """Thread-safe tallies: total, per status code and per status class."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, dict[str, int]] = {}
        self._keys: dict[str, dict[str, int]] = {}
        self._total = 0

    def record(self, endpoint: str, api_key: str, status: int) -> None:
        """Count one request to ``endpoint`` (``GET /v2/contacts/{id}``) answered ``status``."""
        with self._lock:
            self._total += 1
            for table, name in ((self._endpoints, endpoint), (self._keys, api_key)):
                row = table.setdefault(name, {})
                for k in ("total", str(status), _bucket(status)):
                    row[k] = row.get(k, 0) + 1

    def snapshot(self) -> JSONDict:
        """``{"total": n, "endpoints": {endpoint: {...}}, "api_keys": {key: {...}}}`` where each
        row holds ``total``, per-status (``"200"``) and per-class (``"2xx"``) counts."""
        with self._lock:
            return {
                "total": self._total,
                "endpoints": {k: dict(v) for k, v in self._endpoints.items()},
                "api_keys": {k: dict(v) for k, v in self._keys.items()},
            }

    def count(self, endpoint: str, status: str = "total") -> int:
        """How many requests ``endpoint`` got (optionally only with one status or class)."""
        with self._lock:
            return self._endpoints.get(endpoint, {}).get(status, 0)

    def reset(self) -> None:
        """Forget all counts."""
        with self._lock:
            self._endpoints.clear()
            self._keys.clear()
            self._total = 0


def _bearer_client(scope: Scope) -> str:
    """The client id (``cid``) of a v3 request's JWT, read without verifying it (counting
    only; the guard verifies): v3 sends no api_key, and CC counts per application."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or token.count(".") != 2:
                break
            try:
                claims = jwt.decode(token.strip(), options={"verify_signature": False})
            except jwt.PyJWTError:
                break
            return str(claims.get("cid") or "-")
    return "-"


class CountersMiddleware:
    """Counts every HTTP request except the sandbox's own ``/_sandbox`` admin calls."""

    def __init__(self, app: ASGIApp, counters: Counters, namer: Callable[[str, str], str]) -> None:
        self.app = app
        self.counters = counters
        self.namer = namer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        key = (qs.get("api_key") or qs.get("client_id") or [_bearer_client(scope)])[0]
        endpoint = self.namer(scope["method"], scope["path"])
        recorded = False

        async def send_wrapper(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                # Count before the answer leaves: a client that has its response must find
                # it counted (tests read the counters right after their last call).
                self.counters.record(endpoint, key, int(message["status"]))
                recorded = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not recorded:
                self.counters.record(endpoint, key, 500)
