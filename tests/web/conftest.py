"""Fixtures of the web UI tests (helpers in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ctctsync.api.ratelimit import clear_registry
from web.helpers import WebClient, WebServer, create_admin, serve


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    clear_registry()
    yield
    clear_registry()


@pytest.fixture
def web_factory(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """Start web servers on demand (``web_factory(start_plane=..., **settings)``)."""
    started: list[WebServer] = []

    def factory(**kw: Any) -> WebServer:
        srv = serve(tmp_path / f"store{len(started)}", **kw)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()
        srv.plane.close()


@pytest.fixture
def web(web_factory: Callable[..., WebServer]) -> WebServer:
    """A served app over a fresh store (no scheduler or workers), with no user yet."""
    return web_factory(workers=0)


@pytest.fixture
def admin(web: WebServer) -> WebClient:
    """A client signed in as the administrator."""
    create_admin(web.plane)
    client = web.client()
    client.sign_in()
    return client
