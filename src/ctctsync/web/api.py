"""The REST API (mounted at ``/api/v1`` by :func:`ctctsync.web.app.create_app`): every UI
action, authorised by personal API tokens.

Routes are thin: parse, call one service, wrap the answer in a ``*Public`` model (which
never carries secrets). They share the pages' dependencies (``ctctsync.web.deps``: the
plane, the session; the user is the bearer token's owner, ``ApiUser``) and their error
table (``ctctsync.web.errors``). Errors have one JSON shape, ``{"detail": str, "errors":
{field: message}}``, produced by :class:`ServiceErrorRoute` for service errors and request
validation alike, so the app's HTML error pages never answer an API call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from ctctsync.control import services as svc
from ctctsync.control.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ServiceError,
    ValidationFailed,
)
from ctctsync.control.models import NOTIFICATION_EVENTS, ApiVersion, Integration, Run
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import (
    AppRegistrationIn,
    AppRegistrationPublic,
    AuthorizationCallback,
    AuthorizeRequest,
    AuthorizeUrl,
    ChannelCreate,
    ChannelCreated,
    ChannelPublic,
    ChoicesIn,
    ChoicesPublic,
    DeliveryPublic,
    IntegrationBudget,
    IntegrationCreate,
    IntegrationPublic,
    IntegrationUpdate,
    KeyLimitsIn,
    KeyLimitsPublic,
    ManualCredentials,
    QuotaOverview,
    RunLogPublic,
    RunPublic,
    TableInfo,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    TrackingTiersPublic,
    UserCreate,
    UserPublic,
    WarehouseIn,
    WarehousePublic,
)
from ctctsync.control.services import authorization as auth
from ctctsync.control.services import notifications as notes
from ctctsync.control.services import quota
from ctctsync.control.services.switch import begin_switch_to_v3
from ctctsync.validation import STORE_INT_MAX
from ctctsync.web.deps import ApiAdmin, ApiUser, Db, IntegrationId, LogSeq, RunId, TokenId
from ctctsync.web.errors import (
    Unauthenticated,
    documented,
    error_response,
    validation_failed,
)


class ServiceErrorRoute(APIRoute):
    """An APIRoute answering service and validation errors in the API's JSON shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the default handler."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return error_response(validation_failed(exc))
            except HTTPException as exc:
                if exc.status_code != status.HTTP_400_BAD_REQUEST:
                    raise
                # FastAPI's "error parsing the body": bad input like any other, so a 422
                return error_response(ValidationFailed({"body": MALFORMED_BODY}))

        return wrapped


MALFORMED_BODY = "Send the body as JSON (Content-Type: application/json), in UTF-8."

PREFIX = "/api/v1"
"""Where the app mounts :data:`router`."""

router = APIRouter(
    route_class=ServiceErrorRoute,
    # Every operation: a token, and input checked against the constraints in the schema.
    responses=documented(Unauthenticated, ValidationFailed),
)

# What else an operation may answer, from the one error table (ctctsync.web.errors.ANSWERS).
FOUND = documented(NotFound)
"""Operations naming a resource in their path: 404 for one the caller may not see."""
CHANGES = documented(NotFound, Conflict, InvalidTransition)
"""Operations changing a resource whose state may forbid it: also 409."""
ADMINS = documented(PermissionDenied)
"""Administrators' operations: 403 for anyone else."""

# ----------------------------------------------------------------------------- dependencies


def integration_of(db: Db, user: ApiUser, integration_id: IntegrationId) -> Integration:
    """The integration in the path, if the user may see it; 404 otherwise."""
    return svc.get_integration(db, user, integration_id)


IntegrationDep = Annotated[Integration, Depends(integration_of)]


def run_of(db: Db, user: ApiUser, run_id: RunId) -> Run:
    """The run in the path, if the user may see it; 404 otherwise."""
    return svc.get_run(db, user, run_id)


RunDep = Annotated[Run, Depends(run_of)]

# ----------------------------------------------------------------------------- catalog, me


@router.get("/me", tags=["account"])
def me(user: ApiUser) -> UserPublic:
    """The signed-in user."""
    return UserPublic.model_validate(user)


@router.get("/openapi.json", tags=["catalog"], include_in_schema=False)
def openapi_schema(_user: ApiUser) -> dict[str, Any]:
    """The REST API's OpenAPI schema. Behind a token like the rest of the API: nothing but
    sign-in is served to a caller who is not signed in."""
    return openapi_document()


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The REST API's OpenAPI schema (also what the schemathesis run tests against).

    Described by an app that holds only this router, so the web pages stay out of it."""
    described = FastAPI(
        title="ctctsync REST API",
        version="1",
        description="Every action of the web UI, for scripts. Authenticate with a personal "
        "API token: `Authorization: Bearer ctct_...` (create one on the API tokens page).",
    )
    described.include_router(router, prefix=PREFIX)
    return described.openapi()


@router.get("/tables", tags=["catalog"])
def tables(
    _user: ApiUser, api_version: Annotated[ApiVersion | None, Query()] = None
) -> list[TableInfo]:
    """Every table and column an integration can replicate; with ``api_version``, the
    tables that API version fills, with its columns."""
    return svc.table_catalog(api_version)


# ----------------------------------------------------------------------------- integrations


@router.get("/integrations", tags=["integrations"])
def list_integrations(db: Db, user: ApiUser) -> list[IntegrationPublic]:
    """The integrations the user may see."""
    return [IntegrationPublic.model_validate(i) for i in svc.list_integrations(db, user)]


@router.post("/integrations", status_code=status.HTTP_201_CREATED, tags=["integrations"])
def create_integration(db: Db, user: ApiUser, data: IntegrationCreate) -> IntegrationPublic:
    """Create an integration (state ``pending`` until its first successful run). New
    integrations read API v3 unless ``api_version`` says ``v2``; without ``tables``, every
    table of that version is selected."""
    if data.tables is not None and (
        problems := auth.selection_problems_for(data.api_version, data.tables)
    ):
        raise ValidationFailed(problems)
    integ = svc.create_integration(db, user, data)
    auth.settle_new_integration(db, integ, data.api_version, tables_given=data.tables is not None)
    return IntegrationPublic.model_validate(integ)


class IntegrationDetail(IntegrationPublic):
    """One integration with its share of the API budget and the campaign polling tiers."""

    budget: IntegrationBudget | None = Field(
        default=None,
        description="The estimated API calls of one scheduled run (`estimate.calls`, with its "
        "`basis` in words) and per day (`calls_per_day`), the key it spends (`key`: a "
        "fingerprint, never the key) and its calls today. The key's limits and use: "
        "`GET /quota`.",
    )
    campaign_tiers: TrackingTiersPublic | None = Field(
        default=None,
        description="How often campaign activity is checked, by the campaign's age since "
        "it was sent, and how often every campaign is re-read in full.",
    )


@router.get("/integrations/{integration_id}", tags=["integrations"], responses=FOUND)
def show_integration(db: Db, integ: IntegrationDep) -> IntegrationDetail:
    """One integration, with its estimated API calls per run and per day."""
    return IntegrationDetail.model_validate(integ).model_copy(
        update={
            "budget": quota.integration_budget(db, integ),
            "campaign_tiers": quota.tracking_tiers(db),
        }
    )


@router.patch("/integrations/{integration_id}", tags=["integrations"], responses=CHANGES)
def update_integration(db: Db, integ: IntegrationDep, data: IntegrationUpdate) -> IntegrationPublic:
    """Change frequency and/or tables and columns (additions are backfilled), or the API
    version of an integration that has not run yet (its credentials are then forgotten:
    authorize again)."""
    # A selection the integration's API version cannot read is well-formed input that
    # clashes with the integration's state (its version): 409, like other state clashes.
    version = data.api_version or integ.api_version
    if data.tables is not None and (
        problems := auth.selection_problems_for(version, data.tables)  # type: ignore[arg-type]
    ):
        raise Conflict("; ".join(f"{k}: {v}" for k, v in problems.items()), problems)
    if data.api_version is not None:
        auth.set_api_version(db, integ, data.api_version)
    return IntegrationPublic.model_validate(svc.update_integration(db, integ, data))


class Deleted(BaseModel):
    """What a delete removed."""

    deleted: str
    dropped_tables: list[str]


@router.delete("/integrations/{integration_id}", tags=["integrations"], responses=CHANGES)
def delete_integration(
    db: Db, integ: IntegrationDep, drop_tables: Annotated[bool, Query()] = False
) -> Deleted:
    """Delete the integration (and, with ``drop_tables=true``, its warehouse tables)."""
    name = integ.name
    return Deleted(
        deleted=name, dropped_tables=svc.delete_integration(db, integ, drop_tables=drop_tables)
    )


@router.post("/integrations/{integration_id}/pause", tags=["integrations"], responses=CHANGES)
def pause(db: Db, integ: IntegrationDep) -> IntegrationPublic:
    """Stop scheduling runs."""
    return IntegrationPublic.model_validate(svc.pause(db, integ))


@router.post(
    "/integrations/{integration_id}/switch-to-v3", tags=["integrations"], responses=CHANGES
)
def switch_to_v3(db: Db, integ: IntegrationDep) -> IntegrationPublic:
    """Make a v2 integration read API v3: it then needs a v3 authorization, and its next run
    moves the warehouse tables to v3 first (ids mapped through Constant Contact's
    cross-references, each v2 id kept in ``v2_id``; docs/switching-to-v3.md). 409 for an
    integration that reads v3 already."""
    return IntegrationPublic.model_validate(begin_switch_to_v3(db, integ))


@router.post("/integrations/{integration_id}/reactivate", tags=["integrations"], responses=CHANGES)
def reactivate(db: Db, integ: IntegrationDep) -> IntegrationPublic:
    """Resume scheduling."""
    return IntegrationPublic.model_validate(svc.reactivate(db, integ))


@router.post(
    "/integrations/{integration_id}/run",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["runs"],
    responses=CHANGES,
)
def run_now(
    db: Db,
    user: ApiUser,
    integ: IntegrationDep,
    when_quota_allows: Annotated[
        bool,
        Query(
            description="Queue the run even when today's API quota will not cover it: it "
            "is then deferred (status `deferred`, `defer_reason`) until the quota resets."
        ),
    ] = False,
) -> RunPublic:
    """Queue a run now. When today's API quota will not cover it, 409 says why and nothing
    is queued, unless ``when_quota_allows`` asks to queue it for the reset."""
    return RunPublic.model_validate(
        svc.run_now(db, integ, user, when_quota_allows=when_quota_allows)
    )


@router.post(
    "/integrations/{integration_id}/tables/{table}/resync",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["runs"],
    responses=CHANGES,
)
def resync_table(db: Db, user: ApiUser, integ: IntegrationDep, table: str) -> RunPublic:
    """Re-read one table from the history start."""
    return RunPublic.model_validate(svc.resync_table(db, integ, table, user))


@router.post("/integrations/{integration_id}/authorize", tags=["authorization"], responses=CHANGES)
def start_authorization(
    db: Db,
    integ: IntegrationDep,
    data: Annotated[AuthorizeRequest | None, Body()] = None,
) -> AuthorizeUrl:
    """The Constant Contact page to send the account owner to."""
    redirect = data.redirect_uri if data else None
    return AuthorizeUrl(authorize_url=svc.start_authorization(db, integ, redirect))


@router.post("/oauth/complete", tags=["authorization"], responses=CHANGES)
def complete_authorization(db: Db, user: ApiUser, data: AuthorizationCallback) -> IntegrationPublic:
    """Finish an authorization with the ``state`` and ``code`` CC sent to the redirect URI."""
    integ = svc.complete_authorization(db, data.state, data.code, user)
    return IntegrationPublic.model_validate(integ)


@router.put("/integrations/{integration_id}/credentials", tags=["authorization"], responses=CHANGES)
def set_credentials(db: Db, integ: IntegrationDep, data: ManualCredentials) -> IntegrationPublic:
    """Store an API key and access token (checked against CC when it is reachable)."""
    return IntegrationPublic.model_validate(
        svc.set_manual_credentials(db, integ, data.api_key, data.access_token)
    )


@router.get("/oauth/application", tags=["authorization"])
def get_application(db: Db, _user: ApiUser) -> AppRegistrationPublic:
    """The Constant Contact application integrations authorize with (never its secret)."""
    return auth.app_registration(db)


@router.put("/oauth/application", tags=["authorization"], responses=ADMINS)
def save_application(db: Db, admin: ApiAdmin, data: AppRegistrationIn) -> AppRegistrationPublic:
    """Enter the application once (admins): client id (the developer portal's API key),
    secret (stored encrypted; omit to keep, "" to clear), redirect URI, authorization
    server. ``CTCTSYNC_*`` variables, when set, still win."""
    return auth.save_app_registration(db, admin, data)


# ----------------------------------------------------------------------------- runs


@router.get("/integrations/{integration_id}/runs", tags=["runs"], responses=FOUND)
def integration_runs(
    db: Db,
    user: ApiUser,
    integ: IntegrationDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunPublic]:
    """The integration's newest runs."""
    return [RunPublic.model_validate(r) for r in svc.list_runs(db, user, integ, limit=limit)]


@router.get("/runs", tags=["runs"])
def list_runs(
    db: Db, user: ApiUser, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[RunPublic]:
    """The newest runs of every integration the user may see."""
    return [RunPublic.model_validate(r) for r in svc.list_runs(db, user, limit=limit)]


@router.get("/runs/{run_id}", tags=["runs"], responses=FOUND)
def show_run(run: RunDep) -> RunPublic:
    """One run: status, rows per table, API calls, error."""
    return RunPublic.model_validate(run)


@router.get("/runs/{run_id}/logs", tags=["runs"], responses=FOUND)
def run_logs(
    db: Db,
    run: RunDep,
    after_seq: LogSeq = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[RunLogPublic]:
    """The run's process log after ``after_seq`` (poll with the last seq seen)."""
    lines = svc.run_logs(db, run, after_seq, limit=limit)
    return [RunLogPublic.model_validate(line) for line in lines]


@router.post("/runs/{run_id}/cancel", tags=["runs"], responses=CHANGES)
def cancel_run(db: Db, run: RunDep) -> RunPublic:
    """Cancel a queued run, or ask a running one to stop."""
    return RunPublic.model_validate(svc.cancel_run(db, run))


# ----------------------------------------------------------------------------- API budget

KeyFingerprint = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{16}$",
        description="An API key's fingerprint (`GET /api-keys`): never the key itself.",
        examples=["0123456789abcdef"],
    ),
]


@router.get("/quota", tags=["quota"])
def get_quota(db: Db, user: ApiUser) -> QuotaOverview:
    """Per API key the user's integrations spend: its limits, calls used today (UTC),
    reserved for the rest of today's scheduled runs, and the headroom left; per
    integration, the estimated calls of a run and of a day, and the estimate's basis.

    A key's figures count every integration on it (the quota is shared); only the
    integrations the user may see are listed."""
    return quota.quota_overview(db, user)


@router.get("/api-keys", tags=["quota"])
def list_api_keys(db: Db, user: ApiUser) -> list[KeyLimitsPublic]:
    """The API keys the user's integrations spend, with their limits (a fingerprint and a
    label each, never the key)."""
    return quota.list_key_limits(db, user)


@router.put("/api-keys/{fingerprint}", tags=["quota"], responses=FOUND | ADMINS)
def set_api_key_limits(
    db: Db, admin: ApiAdmin, fingerprint: KeyFingerprint, data: KeyLimitsIn
) -> KeyLimitsPublic:
    """Set one key's per-second and per-day limits (admins). A limit left out or null goes
    back to the default (Constant Contact's 4 per second and 10,000 per day; partner keys
    get 10 and 250,000). The next run of every integration on the key uses them."""
    return quota.set_key_limits(db, admin, fingerprint, data)


# ----------------------------------------------------------------------------- warehouse


@router.get("/warehouse", tags=["warehouse"])
def get_warehouse(db: Db, _user: ApiUser) -> WarehousePublic:
    """Where every integration loads (credentials masked)."""
    return WarehousePublic.model_validate(svc.get_warehouse(db))


@router.put("/warehouse", tags=["warehouse"], responses=ADMINS)
def save_warehouse(db: Db, _admin: ApiAdmin, data: WarehouseIn) -> WarehousePublic:
    """Change the warehouse (admins)."""
    return WarehousePublic.model_validate(svc.save_warehouse(db, data))


class WarehouseTest(BaseModel):
    """A successful connection test."""

    ok: bool
    description: str


@router.post("/warehouse/test", tags=["warehouse"], responses=ADMINS)
def test_warehouse(
    db: Db, _admin: ApiAdmin, data: Annotated[WarehouseIn | None, Body()] = None
) -> WarehouseTest:
    """Connect to the given (or the stored) warehouse; 422 with its message on failure."""
    return WarehouseTest(ok=True, description=svc.test_warehouse(db, data))


# ----------------------------------------------------------------------------- tokens, users


@router.get("/tokens", tags=["account"])
def list_tokens(db: Db, user: ApiUser) -> list[TokenPublic]:
    """The user's API tokens (never their values)."""
    return [TokenPublic.model_validate(t) for t in svc.list_api_tokens(db, user)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["account"])
def create_token(db: Db, user: ApiUser, data: TokenCreate) -> TokenCreated:
    """A new API token; its value is in this answer only."""
    token, plaintext = svc.create_api_token(db, user, data.name)
    return TokenCreated(**TokenPublic.model_validate(token).model_dump(), token=plaintext)


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["account"],
    responses=FOUND,
)
def revoke_token(db: Db, user: ApiUser, token_id: TokenId) -> Response:
    """Revoke one of the user's tokens."""
    svc.revoke_api_token(db, user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ----------------------------------------------------------------------------- notifications

ChannelId = Annotated[
    int, Path(ge=1, le=STORE_INT_MAX, description="A notification channel's id.", examples=[1])
]


@router.get("/notifications/channels", tags=["notifications"])
def list_channels(db: Db, user: ApiUser) -> list[ChannelPublic]:
    """The caller's notification channels (targets as a hint only)."""
    return [ChannelPublic.model_validate(c) for c in notes.list_channels(db, user)]


@router.post(
    "/notifications/channels", status_code=status.HTTP_201_CREATED, tags=["notifications"]
)
def create_channel(db: Db, user: ApiUser, data: ChannelCreate) -> ChannelCreated:
    """Add a channel; a webhook's signing secret is in this answer only."""
    channel, secret = notes.create_channel(db, user, data.kind, data.name, data.target)
    return ChannelCreated(**ChannelPublic.model_validate(channel).model_dump(), secret=secret)


@router.delete(
    "/notifications/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["notifications"],
    responses=FOUND,
)
def delete_channel(db: Db, user: ApiUser, channel_id: ChannelId) -> Response:
    """Delete one of the caller's channels (its pending deliveries are not sent)."""
    notes.delete_channel(db, user, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications/choices", tags=["notifications"])
def list_choices(db: Db, user: ApiUser) -> list[ChoicesPublic]:
    """The events that notify the caller, per integration (those with none are left out)."""
    return [
        ChoicesPublic(integration_id=i, events=[e for e in NOTIFICATION_EVENTS if e in events])
        for i, events in sorted(notes.choices(db, user).items())
    ]


@router.put(
    "/notifications/choices/{integration_id}", tags=["notifications"], responses=FOUND
)
def set_choices(
    db: Db, user: ApiUser, integration_id: IntegrationId, data: ChoicesIn
) -> ChoicesPublic:
    """Choose the events of one integration that notify the caller (an empty list: none)."""
    chosen = notes.set_choices(db, user, integration_id, data.events)
    return ChoicesPublic(
        integration_id=integration_id, events=[e for e in NOTIFICATION_EVENTS if e in chosen]
    )


@router.get("/notifications/deliveries", tags=["notifications"])
def list_deliveries(db: Db, user: ApiUser) -> list[DeliveryPublic]:
    """The newest deliveries (100): the caller's, or everyone's for an administrator."""
    return [DeliveryPublic.model_validate(d) for d in notes.list_deliveries(db, user)]


@router.get("/users", tags=["account"], responses=ADMINS)
def list_users(db: Db, _admin: ApiAdmin) -> list[UserPublic]:
    """Every user (admins)."""
    return [UserPublic.model_validate(u) for u in svc.list_users(db)]


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["account"], responses=ADMINS)
def create_user(db: Db, admin: ApiAdmin, data: UserCreate, request: Request) -> UserPublic:
    """Create a user (admins; audited)."""
    address = request.client.host if request.client is not None else ""
    user, _ = svc.add_user(
        db, admin, data.email, is_admin=data.is_admin, password=data.password, address=address
    )
    return UserPublic.model_validate(user)


# ----------------------------------------------------------------------------- security


class AuditEventPublic(BaseModel):
    """One security event (never a password, token or session id)."""

    model_config = {"from_attributes": True}

    id: int
    at: datetime
    event: str = Field(description="One of: " + ", ".join(svc.AUDIT_EVENTS) + ".")
    email: str | None
    address: str
    detail: str


class UnlockRequest(BaseModel):
    """The account whose sign-in lockout to clear."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^\x00]*$")


class UnlockResult(BaseModel):
    """Whether a lockout was cleared (False: the account was not locked)."""

    email: str
    unlocked: bool


@router.get("/audit", tags=["security"], responses=ADMINS)
def audit_log(
    db: Db, admin: ApiAdmin, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[AuditEventPublic]:
    """The newest security events, newest first: sign-ins, failures, lockouts (admins)."""
    return [
        AuditEventPublic.model_validate(e) for e in svc.list_audit_events(db, admin, limit=limit)
    ]


@router.post("/users/unlock", tags=["security"], responses=ADMINS)
def unlock_user(db: Db, admin: ApiAdmin, data: UnlockRequest, request: Request) -> UnlockResult:
    """Clear an account's sign-in lockout (admins; audited)."""
    address = request.client.host if request.client is not None else ""
    unlocked = svc.unlock_account(db, admin, data.email, address=address)
    return UnlockResult(email=data.email.strip().lower(), unlocked=unlocked)


def allowed_methods(path: str) -> list[str]:
    """Every method the REST API serves at ``path`` (Starlette's own 405 names only the
    first route whose path matched)."""
    sub = path.removeprefix(PREFIX)
    return sorted(
        {
            method
            for route in router.routes
            if isinstance(route, APIRoute) and route.path_regex.match(sub)
            for method in route.methods or ()
        }
    )


async def api_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's refusals of a REST call (no such path, wrong method) in JSON; a 405 lists
    every method of the path in ``Allow``, as the schema does."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        return JSONResponse(
            {"detail": "Method Not Allowed"},
            status_code=exc.status_code,
            headers={"Allow": ", ".join(allowed_methods(request.url.path))},
        )
    return await http_exception_handler(request, exc)


def create_api_app(plane: ControlPlane) -> FastAPI:
    """A bare app serving only the REST API over ``plane`` (tests, headless use)."""
    app = FastAPI(title="ctctsync control plane API", version="1", openapi_url=None)
    app.state.control_plane = plane
    app.include_router(router, prefix=PREFIX)
    app.add_exception_handler(HTTPException, api_http_error)
    return app
