"""Fixtures of the web UI tests (helpers in ``helpers.py``)."""

from __future__ import annotations

import shutil
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


@pytest.fixture(autouse=True)
def _cheap_password_hashing(cheap_password_hashing: None) -> None:
    """Every web test hashes cheaply (see ``cheap_password_hashing``)."""


@pytest.fixture
def web_factory(tmp_path: Path, migrated_template: Path) -> Iterator[Callable[..., WebServer]]:
    """Start web servers on demand (``web_factory(start_plane=..., **settings)``), each on a
    copy of the migrated template store unless given a ``database_url``."""
    started: list[WebServer] = []

    def factory(**kw: Any) -> WebServer:
        data_dir = tmp_path / f"store{len(started)}"
        if "database_url" not in kw:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy(migrated_template, data_dir / "control.db")
        srv = serve(data_dir, **kw)
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
