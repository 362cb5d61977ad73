"""Fixtures of the API-layer tests: the sandbox plugin and a fresh limiter registry."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import psycopg
import pytest

from ctctsync.api.ratelimit import clear_registry
from ctctsync.sandbox.testing import sandbox, sandbox_factory  # noqa: F401 -- fixtures


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    # Limiters are shared per API key for the whole process; sandboxes of one seed share a
    # key, so a quota spent in one test must not leak into the next.
    clear_registry()
    yield
    clear_registry()


class ScriptedServer:
    """A tiny real HTTP server answering from a script: ``(status, headers, body)`` per path.

    For behaviour the sandbox has no fault for (looping next links, ``Retry-After``, links
    to other hosts). Unscripted requests get the path's last answer again.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                path = self.path.split("?", 1)[0]
                answers = outer.script.get(path) or [(404, {}, b"[]")]
                status, headers, body = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, path: str, *answers: tuple[int, dict[str, str], object]) -> None:
        self.script[path] = [
            (s, h, b if isinstance(b, bytes) else orjson.dumps(b)) for s, h, b in answers
        ]


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def budget_table(pg_dsn: str) -> Iterator[str]:
    """A shared-budget table in a PostgreSQL schema of this test's own, dropped afterwards
    (with the limiters that used it, so none outlives its table)."""
    schema = f"budget_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{schema}.rate_budget"
    clear_registry()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
