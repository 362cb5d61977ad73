"""Helpers of the web UI tests: the app served by uvicorn on an ephemeral loopback port (real
HTTP) over a control plane on a temporary store, and an HTTP client that fills in CSRF tokens."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ctctsync.control import services as svc
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings
from ctctsync.web import create_app

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._ready.set()


@dataclass
class WebServer:
    """The app served on loopback, with the plane and settings behind it."""

    base_url: str
    plane: ControlPlane
    settings: ControlSettings
    _server: _Server
    _thread: threading.Thread
    _sock: socket.socket
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> WebClient:
        """A fresh cookie jar (a new browser, signed out)."""
        http = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=20)
        self.clients.append(http)
        return WebClient(http)

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()


def bind_loopback() -> socket.socket:
    """A listening socket on an ephemeral loopback port (its port is known before serving)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def serve(
    data_dir: Path,
    *,
    start_plane: bool = False,
    sock: socket.socket | None = None,
    **overrides: Any,
) -> WebServer:
    """Build settings, a plane and the app, and serve it on loopback."""
    sock = sock or bind_loopback()
    port = sock.getsockname()[1]
    settings = ControlSettings(
        data_dir=data_dir,
        **{
            "public_base_url": f"http://127.0.0.1:{port}",
            "secret_key": "test-session-secret-" + "x" * 20,
            **overrides,
        },
    )
    plane = ControlPlane(settings)
    app = create_app(settings, plane)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    ready = threading.Event()
    server = _Server(config, ready)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"ctctsync-web-{port}", daemon=True
    )
    thread.start()
    if not ready.wait(20):
        raise RuntimeError("the web app did not start")
    if start_plane:
        plane.start()
    return WebServer(f"http://127.0.0.1:{port}", plane, settings, server, thread, sock)


class WebClient:
    """An HTTP client that behaves like a browser for forms: it sends the page's CSRF token."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of the form on ``path``."""
        page = self.http.get(path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def post(
        self,
        path: str,
        data: dict[str, Any] | list[tuple[str, str]] | None = None,
        *,
        form_page: str | None = None,
        csrf: bool = True,
    ) -> httpx.Response:
        """POST a form; the token comes from ``form_page`` (default: the same path)."""
        items: list[tuple[str, str]] = (
            list(data.items()) if isinstance(data, dict) else list(data or [])
        )
        if csrf:
            items.append(("csrf_token", self.csrf(form_page or path)))
        return self.http.post(path, data=as_form(items))

    def sign_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        r = self.post("/login", {"email": email, "password": password})
        assert r.status_code == 303, r.text


def as_form(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Multi-valued form fields in the shape httpx wants (repeated names kept in order)."""
    form: dict[str, list[str]] = {}
    for key, value in items:
        form.setdefault(key, []).append(value)
    return form


def create_admin(plane: ControlPlane) -> None:
    with plane.session() as db:
        svc.create_user(db, ADMIN_EMAIL, ADMIN_PASSWORD, is_admin=True)


# Document coordinates of the first element matching a selector, scrolled into view.
_ELEMENT_BOX = """selector => {
  const el = document.querySelector(selector);
  if (!el) return null;
  el.scrollIntoView({block: 'nearest', inline: 'nearest'});
  const r = el.getBoundingClientRect();
  return {x: r.left + window.scrollX, y: r.top + window.scrollY,
          width: Math.max(1, r.width), height: Math.max(1, r.height)};
}"""


def region_screenshot(page: Any, selector: str, path: Path) -> None:
    """Save a screenshot of one element's box as the page draws it at this moment.

    Why not ``locator.screenshot``: the details and job pages replace their live regions
    (Jobs, Tables, the budget box) on every 1.5 s poll, and a locator screenshot waits for
    the element to be stable, then fails with "Element is not attached to the DOM" when a
    poll replaced it in between (seen in CI under load). A clip of the whole page has no
    element to lose.
    """
    box = page.evaluate(_ELEMENT_BOX, selector)
    assert box is not None, f"nothing matches {selector!r} on {page.url}"
    page.screenshot(path=str(path), clip=box, full_page=True)
