"""The web control plane: ``create_app`` builds the FastAPI app (pages + REST API).

The app serves server-rendered pages (``ctctsync/web/templates``), one stylesheet and one
small script (``ctctsync/web/static``), the OAuth callback, and the REST API
(``ctctsync.web.api``) under ``/api/v1``. Routes are thin: they parse a form, call a
service in ``ctctsync.control.services`` and render or redirect. A service error is
answered by one table (``ctctsync.web.errors``): as JSON to the API, as a page otherwise.

Lifecycle: when ``create_app`` is given no control plane it builds one from the settings
and starts/stops its scheduler and workers with the app; a plane passed in belongs to the
caller (tests drive it themselves).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse, Response

from ctctsync.control.errors import ServiceError
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings
from ctctsync.web import api
from ctctsync.web.deps import (
    PASSWORD_CHANGE_PATH,
    PasswordChangeRequired,
    SignInRequired,
    login_url,
)
from ctctsync.web.errors import error_page, error_response, http_error_page, invalid_request_page
from ctctsync.web.routes import (
    account,
    admin,
    auth,
    integrations,
    jobs,
    notifications,
    oauth,
    ops,
    quota,
    schema,
    tokens,
    warehouse,
)
from ctctsync.web.templating import STATIC_DIR, build_templates

SESSION_COOKIE = "ctctsync_session"
SESSION_MAX_AGE_SECONDS = 12 * 3600

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
)
"""Own files only; forms may post to the authorize page's host (the OAuth redirect)."""


def create_app(settings: ControlSettings, control_plane: ControlPlane | None = None) -> FastAPI:
    """Build the web app over ``control_plane`` (or a plane made from ``settings``)."""
    owns_plane = control_plane is None
    plane = control_plane if control_plane is not None else ControlPlane(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owns_plane:
            plane.start()
        try:
            yield
        finally:
            if owns_plane:
                plane.close()

    app = FastAPI(
        title="ctctsync",
        lifespan=lifespan,
        # No interactive docs: they load scripts from a CDN, and nothing but sign-in may be
        # served to a signed-out browser. The REST API is described in docs/ui.md.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.control_plane = plane
    app.state.templates = build_templates()

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret(),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # The OAuth callback's URL carries a code: never leak it through Referer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", _CSP)
        return response

    _install_error_pages(app)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    # /healthz, /readyz, /metrics: for probes and scrapers, outside sign-in and sessions.
    app.include_router(ops.router)
    for module in (
        auth, account, admin, integrations, schema, jobs, notifications, oauth, quota, tokens,
        warehouse,
    ):  # fmt: skip
        app.include_router(module.router)
    app.include_router(api.router, prefix=api.PREFIX)
    return app


def _is_api(request: Request) -> bool:
    # every API version, and unknown paths under /api/, answer in JSON
    return request.url.path.startswith("/api/")


def _install_error_pages(app: FastAPI) -> None:
    """HTML answers for the pages; the REST API keeps its JSON errors."""

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def _change_password(request: Request, exc: PasswordChangeRequired) -> Response:
        return RedirectResponse(PASSWORD_CHANGE_PATH, status_code=303)

    @app.exception_handler(ServiceError)
    async def _refused(request: Request, exc: ServiceError) -> Response:
        return error_response(exc) if _is_api(request) else error_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # Pages only: the REST API's routes answer their own (ctctsync.web.api)
        return invalid_request_page(request, exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if _is_api(request):
            return await api.api_http_error(request, exc)
        return http_error_page(request, exc)
