"""Assemble the sandbox ASGI app and run it with uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ctctsync.sandbox.account import Account, AccountSpec
from ctctsync.sandbox.admin import admin_routes
from ctctsync.sandbox.auth import AuthStore, Credentials
from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.counters import Counters, CountersMiddleware
from ctctsync.sandbox.faults import FaultMiddleware, FaultSet
from ctctsync.sandbox.ratelimit import KeyLimits, RateLimiter, key_limits
from ctctsync.sandbox.v2 import errors
from ctctsync.sandbox.v2.app import GatewayMiddleware, V2Api
from ctctsync.sandbox.v2.oauth import OAuthServer
from ctctsync.sandbox.v2.truth import truth
from ctctsync.sandbox.v3 import common as v3common
from ctctsync.sandbox.v3.app import v3_routes
from ctctsync.sandbox.v3.oauth import AUTHZ_PATH, V3OAuthServer
from ctctsync.sandbox.v3.tokens import TOKEN_ENDPOINT_QPS, TokenStore

_DROP_MESSAGES = ("ASGI callable returned without completing response.",)


class _DropFilter(logging.Filter):
    """Silences uvicorn's complaint about the connections the ``drop`` fault cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _DROP_MESSAGES


logging.getLogger("uvicorn.error").addFilter(_DropFilter())


def _fault_body(status: int, path: str) -> bytes:
    """An injected 5xx answers in the shape of the face it hits: v3's array, the OAuth
    server's ``{error, error_description}``, else v2's array."""
    if path.startswith("/v3"):
        return bytes(v3common.error_array(
            status, "server_error", "An unexpected error occurred; retry later.").body)
    if path.startswith(AUTHZ_PATH):
        return orjson.dumps({"error": "server_error",
                             "error_description": "An unexpected error occurred."})
    return errors.server_error_body(status)


def build_app(ctx: SandboxContext, v3_tokens: TokenStore) -> ASGIApp:
    """The full sandbox ASGI app: v2 and v3 APIs, both OAuth servers and the admin API behind
    the middleware (counters -> faults -> gateway (``/v2`` only) -> routes)."""
    routes: list[Route] = [*V2Api(ctx).routes(), *v3_routes(ctx, v3_tokens),
                          *OAuthServer(ctx).routes(), *V3OAuthServer(ctx, v3_tokens).routes(),
                          *admin_routes(ctx, v3_tokens)]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if request.url.path.startswith("/v3"):
            if status == 404:
                return v3common.error_array(404, "api.not_found", "Resource not found.")
            return v3common.error_array(405, "api.method_not_allowed", "Method not allowed.")
        if request.url.path.startswith("/v2"):
            return errors.error_response(
                errors.NOT_FOUND if status == 404 else errors.METHOD_NOT_ALLOWED)
        return PlainTextResponse("Not Found" if status == 404 else "Method Not Allowed", status)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})

    def namer(method: str, path: str) -> str:
        if len(path) > 4 and path.endswith("/"):
            path = path.rstrip("/")
        for route in routes:
            if route.path_regex.match(path):
                return f"{method} {route.path}"
        return f"{method} (unmatched)"

    return CountersMiddleware(
        FaultMiddleware(GatewayMiddleware(app, ctx), ctx.faults, _fault_body),
        ctx.counters, namer)


def _listening_socket(family: socket.AddressFamily) -> socket.socket:
    """A TCP socket created with an explicit ``IPPROTO_TCP``: asyncio sets TCP_NODELAY on
    accepted connections only when ``sock.proto`` says TCP, and without it every keep-alive
    request after the first waits ~40 ms (Nagle against the client's delayed ACK) for the
    body that uvicorn sends after the head."""
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)
        self._ready.set()

    def request_exit(self) -> None:
        """Ask the server (from any thread) to stop now rather than at its next 0.1 s tick."""
        self.should_exit = True
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        # uvicorn's loop, but woken at once by request_exit() (fast, clean test teardown)
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's shutdown without its fixed 0.1 s pauses: poll every 5 ms instead
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 2)
        while (self.server_state.connections or self.server_state.tasks) \
                and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()


class Sandbox:
    """A simulated Constant Contact account served over HTTP on loopback.

    Use as a context manager (or call :meth:`start`/:meth:`stop`)::

        with Sandbox(AccountSpec(seed=7, contacts=2000), qps_limit=None) as sb:
            httpx.get(f"{sb.base_url}/v2/contacts", params={"api_key": sb.credentials.api_key},
                      headers={"Authorization": f"Bearer {sb.credentials.access_token}"})
            httpx.get(f"{sb.v3_url}/contacts",
                      headers={"Authorization": f"Bearer {sb.credentials.v3_access_token}"})

    ``qps_limit``/``daily_limit`` are the API limits of both versions (per API key = client
    id); ``token_qps_limit`` is the v3 token endpoint's own (1/s at CC; None: off);
    ``redirect_uris`` are registered for the v3 authorize endpoint (loopback ones need not be).
    ``frozen_at_ms`` freezes the sandbox clock at that instant (e.g. ``clock.ANCHOR_MS``): it
    then moves only by :meth:`advance` (``clock_offset_seconds`` is added to it).
    ``app_limits`` gives the application's key (v2 API key = v3 client id) limits of its own:
    a ``ratelimit.KeyLimits`` or a profile name (``"partner"``: 10/s, 250,000/day;
    ``"default"``: 4/s, 10,000/day), whatever ``qps_limit``/``daily_limit`` say.
    """

    def __init__(
        self,
        spec: AccountSpec | None = None,
        *,
        qps_limit: int | None = 4,
        daily_limit: int | None = 10_000,
        faults: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        clock_offset_seconds: float = 0.0,
        frozen_at_ms: int | None = None,
        app_limits: KeyLimits | str | None = None,
        token_qps_limit: int | None = TOKEN_ENDPOINT_QPS,
        redirect_uris: Sequence[str] = (),
    ) -> None:
        self.spec = spec or AccountSpec()
        clock = SandboxClock(clock_offset_seconds, frozen_at_ms=frozen_at_ms)
        self.account = Account(self.spec, clock)
        """The account model: mutations (``update_contacts``, ``send_campaign``...) and queries."""
        self.auth = AuthStore(self.spec.seed, self.account.info.email, clock)
        self.limiter = RateLimiter(clock, qps_limit, daily_limit)
        if app_limits is not None:
            self.limiter.set_key_limits(self.auth.credentials.api_key, key_limits(app_limits))
        self.faults = FaultSet(self.spec.seed)
        """Fault rules: ``add(kind, path, count=, probability=, latency_ms=, k=)``, ``clear()``."""
        self.counters = Counters()
        """Request counters: ``snapshot()``, ``count(endpoint)``, ``reset()``."""
        for text in faults:
            self.faults.add_spec(text)
        self.v3_tokens = TokenStore(self.spec.seed, self.auth.credentials.api_key,
                                    self.auth.credentials.user_name, clock,
                                    token_qps_limit=token_qps_limit)
        """The v3 authorization server's state (``sandbox.v3.tokens.TokenStore``):
        ``issue_access_token(scopes)`` (a JWT), ``issue_tokens(scopes)`` (with a refresh token
        under ``offline_access``), ``verify(token)``, ``revoke(token)`` (access or refresh),
        ``privileges`` (the user's; e.g. ``tokens.CAMPAIGN_CREATOR_PRIVILEGES``),
        ``settings.refresh_token_mode`` (``rotating``|``long_lived``),
        ``settings.redirect_uris``, ``token_limiter``, ``decide_device(user_code, allow)``."""
        self.v3_tokens.settings.redirect_uris.update(redirect_uris)
        self.auth.credentials = replace(
            self.auth.credentials, v3_access_token=self.v3_tokens.issue_access_token())
        self.context = SandboxContext(self.account, self.auth, self.limiter, self.faults,
                                      self.counters)
        self.app = build_app(self.context, self.v3_tokens)
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = _listening_socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                http="h11", ws="none", timeout_graceful_shutdown=2)
        ready = threading.Event()
        self._server = _Server(config, ready)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"ctctsync-sandbox-{self._port}", daemon=True)
        self._thread.start()
        while not ready.wait(0.05):
            if not self._thread.is_alive():
                self._thread = None
                sock.close()
                raise RuntimeError("the sandbox server failed to start")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to finish."""
        if self._server is not None and self._thread is not None:
            self._server.request_exit()
            self._thread.join(15)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def serve_forever(self, announce: Callable[[], None] | None = None) -> None:
        """Run in the calling thread until interrupted (Ctrl-C). ``announce`` is called once
        the socket listens (connections made from then on are queued, never refused)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = _listening_socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        if announce is not None:
            announce()
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                http="h11", ws="none", timeout_graceful_shutdown=2)
        uvicorn.Server(config).run(sockets=[sock])

    # ------------------------------------------------------------------ facts
    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, serving ``/v2``, ``/v3``, ``/oauth2``, ``/activate``
        and ``/_sandbox`` paths."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def v3_url(self) -> str:
        """``<base_url>/v3``: the v3 API's base URL (CC: ``https://api.cc.email/v3``)."""
        return f"{self.base_url}/v3"

    @property
    def authz_url(self) -> str:
        """``<base_url>/oauth2/default/v1``: the v3 authorization server's base URL (CC:
        ``https://authz.constantcontact.com/oauth2/default/v1``); ``/authorize``, ``/token``,
        ``/device/authorize`` and ``/revoke`` are below it."""
        return f"{self.base_url}{AUTHZ_PATH}"

    @property
    def credentials(self) -> Credentials:
        """API key (= v3 client id), client secret, a valid v2 access token, a v3 access token
        with every scope (24 h on the sandbox clock), and the owner's email and password."""
        return self.auth.credentials

    def truth(self, table: str) -> list[dict[str, Any]]:
        """Exactly the records the v2 API serves now for ``table`` (see ``v2.truth``)."""
        return truth(self.account, table)

    def issue_token(self) -> str:
        """Issue and return a new valid access token."""
        return self.auth.issue_token()

    def revoke_token(self, token: str | None = None) -> bool:
        """Revoke ``token`` (default: the start-up token); later calls with it get 401."""
        return self.auth.revoke_token(token or self.credentials.access_token)

    def set_limits(self, *, qps_limit: int | None, daily_limit: int | None) -> None:
        """Change the rate limits (None disables one) and forget past usage."""
        self.limiter.configure(qps_limit=qps_limit, daily_limit=daily_limit)
        self.limiter.reset()

    def set_key_limits(self, limits: KeyLimits | str | None, key: str | None = None) -> None:
        """Give ``key`` (default: the application's key) limits of its own -- a
        ``KeyLimits`` or a profile name, ``"partner"`` or ``"default"`` -- or, with None, the
        default limits back. Past usage still counts."""
        self.limiter.set_key_limits(key or self.credentials.api_key,
                                    None if limits is None else key_limits(limits))

    def set_token_qps_limit(self, qps_limit: int | None) -> None:
        """Change the v3 token endpoint's limit per client id (None: off); forget its usage."""
        self.v3_tokens.token_limiter.configure(qps_limit=qps_limit, daily_limit=None)
        self.v3_tokens.token_limiter.reset()

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward."""
        self.account.advance(seconds)
