"""Fault injection: server errors, latency, dropped connections, broken bodies, page overlap.

A fault matches requests by a path glob (``fnmatch``, e.g. ``/v2/contacts*``), and fires either
for the next ``count`` matching requests, with a ``probability``, or (neither) on every match.
String syntax (CLI and admin API)::

    KIND[:PATH_GLOB][:n=COUNT][:p=PROBABILITY][:ms=MILLISECONDS][:k=RECORDS]

KIND is one of ``404`` (e.g. a detail that is missing while its tracking answers), ``500``,
``503``, ``522`` (an error response with a v2 error array body),
``latency`` (delay by ``ms``, then answer normally), ``drop`` (send the headers and part of the
body, then close the connection), ``truncate`` (a complete HTTP response whose JSON body is cut
short), ``malformed`` (status 200 with an HTML error page instead of JSON) and ``duplicate``
(the page's ``next`` link starts ``k`` records early, so the next page repeats them).
Examples: ``500:/v2/contacts*:p=0.1``, ``drop:/v2/contacts:n=2``, ``latency:*:ms=300``,
``duplicate:/v2/contacts:k=3:n=1``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultKind = Literal[
    "404", "500", "503", "522", "latency", "drop", "truncate", "malformed", "duplicate"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_ERROR_KINDS = ("404", "500", "503", "522")
DUPLICATE_SCOPE_KEY = "ctctsync.sandbox.duplicate"
"""ASGI scope key the paging code reads: how many records the next link should repeat."""

MALFORMED_BODY = (
    b"<html><head><title>Error</title></head><body><h1>Service Temporarily Unavailable</h1>"
    b"<p>The server is temporarily unable to service your request.</p></body></html>"
)


@dataclass
class Fault:
    """One fault rule."""

    id: int
    kind: FaultKind
    path: str = "*"
    count: int | None = None
    """Fire for this many more matching requests (None: no count limit)."""
    probability: float | None = None
    latency_ms: int = 0
    k: int = 1
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON-able dict."""
        return asdict(self)


def parse_fault(text: str) -> dict[str, Any]:
    """Parse ``KIND[:PATH][:n=..][:p=..][:ms=..][:k=..]`` into keyword arguments of
    :meth:`FaultSet.add`; raises ValueError on bad syntax."""
    parts = text.split(":")
    kind = parts[0].strip()
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    out: dict[str, Any] = {"kind": kind}
    for part in parts[1:]:
        if "=" in part and part.split("=", 1)[0] in ("n", "p", "ms", "k"):
            name, value = part.split("=", 1)
            if name == "n":
                out["count"] = int(value)
            elif name == "p":
                out["probability"] = float(value)
            elif name == "ms":
                out["latency_ms"] = int(value)
            else:
                out["k"] = int(value)
        elif part:
            out["path"] = part
    return out


class FaultSet:
    """The active fault rules (thread-safe)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    def add(self, kind: str, path: str = "*", *, count: int | None = None,
            probability: float | None = None, latency_ms: int = 0, k: int = 1) -> Fault:
        """Add a rule; returns it (its ``id`` can be given to :meth:`remove`)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if probability is not None and not 0 <= probability <= 1:
            raise ValueError("probability must be within 0..1")
        if kind == "latency" and latency_ms <= 0:
            latency_ms = 200
        fault = Fault(next(self._ids), cast(FaultKind, kind), path, count, probability,
                      latency_ms, max(k, 1))
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_spec(self, text: str) -> Fault:
        """Add a rule written in the string syntax (module docstring)."""
        return self.add(**parse_fault(text))

    def remove(self, fault_id: int) -> bool:
        """Remove one rule; returns whether it existed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        """The current rules."""
        with self._lock:
            return list(self._faults)

    def pick(self, path: str) -> tuple[int, Fault | None]:
        """For one request: total added latency (ms) and the response fault that fires, if any.
        Rules whose count is used up are dropped."""
        latency = 0
        chosen: Fault | None = None
        with self._lock:
            for f in self._faults:
                if not fnmatch.fnmatchcase(path, f.path):
                    continue
                if f.kind != "latency" and chosen is not None:
                    continue
                if f.count is not None and f.count <= 0:
                    continue
                if f.probability is not None and self._rng.random() >= f.probability:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.fired += 1
                if f.kind == "latency":
                    latency += f.latency_ms
                else:
                    chosen = f
            self._faults = [f for f in self._faults if f.count is None or f.count > 0]
        return latency, chosen


class FaultMiddleware:
    """Applies the fault rules to every request outside ``/_sandbox``."""

    def __init__(self, app: ASGIApp, faults: FaultSet,
                 error_body: Callable[[int, str], bytes]) -> None:
        """``error_body(status, path)``: the body of an injected 5xx, in the shape of the
        face the path belongs to (v2, v3 or OAuth)."""
        self.app = app
        self.faults = faults
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        latency, fault = self.faults.pick(scope["path"])
        if latency:
            await asyncio.sleep(latency / 1000)
        if fault is None:
            await self.app(scope, receive, send)
            return
        await self._fire(fault, scope, receive, send)

    async def _fire(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request as the response fault ``fault`` says."""
        if fault.kind in _ERROR_KINDS:
            await _send_body(send, int(fault.kind), self.error_body(int(fault.kind), scope["path"]),
                             b"application/json")
        elif fault.kind == "malformed":
            await _send_body(send, 200, MALFORMED_BODY, b"text/html;charset=UTF-8")
        elif fault.kind == "duplicate":
            scope[DUPLICATE_SCOPE_KEY] = fault.k
            await self.app(scope, receive, send)
        else:
            await self._damage(fault.kind == "truncate", scope, receive, send)

    async def _damage(self, truncate: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the real response, then send half of its body: as a complete response whose
        Content-Length says so (``truncate``), or as a response cut off mid-body (``drop``)."""
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        cut = max(1, len(body) // 2)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if truncate:
            headers.append((b"content-length", str(cut).encode()))
            await send({"type": "http.response.start", "status": start.get("status", 200),
                        "headers": headers})
            await send({"type": "http.response.body", "body": bytes(body[:cut])})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200),
                    "headers": headers})
        await send({"type": "http.response.body", "body": bytes(body[:cut]), "more_body": True})
        # returning without finishing the body makes the server close the connection


async def _send_body(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
