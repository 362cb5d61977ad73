"""A loopback HTTP proxy in front of a sandbox that, when told, adds fields the table registry
does not know to the v2 records of one path: Constant Contact "starting to send a new field",
for the schema view's tests (real HTTP, the sandbox's real answers otherwise)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson


class DriftProxy:
    """``base_url`` forwards to the sandbox; ``extra[path] = {field: value}`` adds those
    fields to every record of ``path``'s answers (``results`` of a v2 page, or a bare array)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.extra: dict[str, dict[str, Any]] = {}
        self._client = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "accept")
                }
                answer = proxy._client.get(self.path, headers=headers)
                body = answer.content
                path = self.path.split("?", 1)[0]
                fields = proxy.extra.get(path)
                if fields and answer.status_code == 200:
                    doc = orjson.loads(body)
                    # a v2 page ({"results": [...]}) or a bare array (lists)
                    records = doc if isinstance(doc, list) else doc.get("results", [])
                    for record in records:
                        record.update(fields)
                    body = orjson.dumps(doc)
                self.send_response(answer.status_code)
                for name in ("content-type", "retry-after"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> DriftProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@contextmanager
def drift_proxy(upstream: str) -> Iterator[DriftProxy]:
    """A started :class:`DriftProxy`, stopped at the end of the block."""
    proxy = DriftProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
