"""The v2 data endpoints (``/v2/...``) and the API-key gateway in front of them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.faults import DUPLICATE_SCOPE_KEY
from ctctsync.sandbox.v2 import errors, render
from ctctsync.sandbox.v2.paging import BadTokenError, decode_token, envelope, next_link, token_int

JSON_TYPE = "application/json;charset=UTF-8"
TRACKING_KINDS: dict[str, int] = {
    "sends": gen.SEND, "opens": gen.OPEN, "clicks": gen.CLICK, "forwards": gen.FORWARD,
    "bounces": gen.BOUNCE, "unsubscribes": gen.UNSUBSCRIBE,
}
CONTACT_STATUS_FILTER = {"ALL", "ACTIVE", "UNCONFIRMED", "OPTOUT", "REMOVED", "NON_SUBSCRIBER",
                         "VISITOR"}
CAMPAIGN_STATUS_FILTER = {"ALL", "DRAFT", "RUNNING", "SENT", "SCHEDULED", "DELETED"}
FILE_SORTS = {"CREATED_DATE", "CREATED_DATE_DESC", "MODIFIED_DATE", "MODIFIED_DATE_DESC", "NAME",
              "NAME_DESC", "SIZE", "SIZE_DESC", "DIMENSION", "DIMENSION_DESC"}
_EMAIL_ID = re.compile(r"\.(\d+)@")

Handler = Callable[[Request], Awaitable[Response]]


class ParamError(Exception):
    """A request parameter problem, answered with a 400 v2 error array."""

    def __init__(self, response: Response) -> None:
        super().__init__("bad parameter")
        self.response = response


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE)


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "*/*", "application/*"):
            return True
    return False


class GatewayMiddleware:
    """The Mashery gateway: ``api_key`` check and rate limits for ``/v2`` paths (§1.1, §1.7)."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 4 and path.endswith("/"):
            # the Java SDK calls e.g. /v2/contacts/{id}/tracking/ with a trailing slash (§8)
            scope = {**scope, "path": path.rstrip("/")}
        request = Request(scope)
        key = request.query_params.get("api_key", "")
        if not key or not self.ctx.auth.is_known_client(key):
            response = errors.error_response(errors.INACTIVE_KEY)
        else:
            verdict = self.ctx.limiter.check(key)
            if verdict == "ok":
                await self.app(scope, receive, send)
                return
            # over quota -> 403 with the Mashery key (§1.7)
            response = errors.error_response(
                errors.OVER_QPS if verdict == "qps" else errors.OVER_RATELIMIT)
        await response(scope, receive, send)


def _parse_limit(request: Request, default: int, maximum: int, *, clamp: bool = False) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(errors.bad_param("limit", "not an integer")) from None
    if value < 1:
        raise ParamError(errors.bad_param("limit", f"must be between 1 and {maximum}"))
    if value > maximum:
        if clamp:
            return maximum
        raise ParamError(errors.bad_param("limit", f"must be between 1 and {maximum}"))
    return value


def _parse_since(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return render.parse_date(raw)
    except ValueError:
        raise ParamError(errors.bad_param(name, "not an ISO-8601 date")) from None


def _choice(request: Request, name: str, allowed: set[str], default: str) -> str:
    value = request.query_params.get(name, default).upper()
    if value not in allowed:
        raise ParamError(errors.bad_param(name, f"must be one of {', '.join(sorted(allowed))}"))
    return value


def _token(request: Request) -> dict[str, str] | None:
    """The decoded ``next`` token, or None on a first-page request."""
    q = request.query_params
    if "next" not in q:
        return None
    others = [k for k in q if k not in ("next", "api_key")]
    if others:  # next "may only be used by itself" (§1.3)
        raise ParamError(errors.bad_param(
            "next", f"next may only be used by itself (also got {', '.join(sorted(others))})"))
    try:
        return decode_token(q["next"])
    except BadTokenError:
        raise ParamError(errors.bad_param("next", "not a valid paging token")) from None


def _campaign_order(status: str) -> Callable[[gen.Campaign], tuple[int, int]]:
    """Sort key of the campaign collection: the order depends on the status asked for (§1.8):
    SENT by latest last_run_date, SCHEDULED by next_run_date, DELETED by latest last_run_date
    (else modified_date); DRAFT and ALL by latest modified_date (as the 2015 capture, §3)."""
    if status == "SENT":
        return lambda c: (-(c.last_run_ms or 0), -c.id)
    if status == "SCHEDULED":
        return lambda c: (c.next_run_ms or 0, c.id)
    if status == "DELETED":
        return lambda c: (-(c.last_run_ms or c.modified_ms), -c.id)
    return lambda c: (-c.modified_ms, -c.id)


def _token_date(raw: str | None) -> int | None:
    """A date carried in a token (None when absent); raises BadTokenError."""
    if not raw:
        return None
    try:
        return render.parse_date(raw)
    except ValueError as exc:
        raise BadTokenError(str(exc)) from exc


def _token_choice(fields: dict[str, str], name: str, allowed: set[str], default: str) -> str:
    """An enumerated value carried in a token; raises BadTokenError."""
    value = fields.get(name, default)
    if value not in allowed:
        raise BadTokenError(f"token {name} invalid")
    return value


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter (``true``/``false``, default false); 400 otherwise."""
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise ParamError(errors.bad_param(name, "must be true or false"))
    return raw == "true"


def _dup(request: Request) -> int:
    return int(request.scope.get(DUPLICATE_SCOPE_KEY, 0))


class V2Api:
    """Handlers for the ``/v2`` data endpoints."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.account = ctx.account

    # ------------------------------------------------------------------ plumbing
    def _guard(self, handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if not _accepts_json(request.headers.get("accept")):
                return errors.error_response(errors.NOT_ACCEPTABLE)  # §1.1
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or self.ctx.auth.token(token.strip()) is None:
                return errors.error_response(errors.INVALID_TOKEN)  # §1.2/§1.6
            try:
                return await handler(request)
            except ParamError as exc:
                return exc.response
            except BadTokenError:
                return errors.bad_param("next", "not a valid paging token")
        return wrapped

    def routes(self) -> list[Route]:
        """The Starlette routes of the v2 face."""
        g = self._guard
        routes = [
            Route("/v2/contacts", g(self.contacts)),
            Route("/v2/contacts/{id}", g(self.contact)),
            Route("/v2/contacts/{id}/tracking", g(self.contact_tracking_all)),
            Route("/v2/contacts/{id}/tracking/reports/summary", g(self.contact_tracking_summary)),
            Route("/v2/emailmarketing/campaigns", g(self.campaigns)),
            Route("/v2/emailmarketing/campaigns/{id}", g(self.campaign)),
            Route("/v2/emailmarketing/campaigns/{id}/tracking/reports/summary",
                  g(self.campaign_summary)),
            Route("/v2/library/files", g(self.library_files)),
            Route("/v2/library/files/{id}", g(self.library_file)),
            Route("/v2/library/folders/trash/files", g(self.trash_files)),
            Route("/v2/account/info", g(self.account_info)),
            Route("/v2/lists", g(self.lists)),
            Route("/v2/lists/{id}", g(self.contact_list)),
            Route("/v2/eventspot/events", g(self.events)),
            Route("/v2/eventspot/events/{id}", g(self.event)),
        ]
        for kind, typ in TRACKING_KINDS.items():
            routes.append(Route(f"/v2/contacts/{{id}}/tracking/{kind}",
                                g(self._contact_tracking(frozenset({typ})))))
            routes.append(Route(f"/v2/emailmarketing/campaigns/{{id}}/tracking/{kind}",
                                g(self._campaign_tracking(frozenset({typ}), kind))))
        return routes

    # ------------------------------------------------------------------ contacts
    async def contacts(self, request: Request) -> Response:
        """``GET /v2/contacts``: keyset paging on ascending id (§1.3, §2)."""
        fields = _token(request)
        if fields is not None:
            start = token_int(fields, "startAt", minimum=1)
            limit = token_int(fields, "limit", minimum=1, maximum=500)
            status = _token_choice(fields, "status", CONTACT_STATUS_FILTER, "ALL")
            since_raw = fields.get("modified_since")
            since = _token_date(since_raw)
            email = None
            v3 = fields.get("include_contact_id") == "true"
        else:
            start = 1
            limit = _parse_limit(request, 50, 500)  # contacts: 1-500, default 50 (§2)
            status = _choice(request, "status", CONTACT_STATUS_FILTER, "ALL")
            since = _parse_since(request, "modified_since")
            since_raw = render.utc_date(since) if since is not None else None
            email = request.query_params.get("email")
            v3 = _flag(request, "include_contact_id")
        acc = self.account
        if email is not None:
            m = _EMAIL_ID.search(email)
            cid = int(m.group(1)) if m else 0
            ids = [cid] if acc.contact_exists(cid) and acc.contact_email(cid) == email.lower() \
                else []
            return json_response(envelope(self._contacts_json(ids, v3), None))
        if status in ("NON_SUBSCRIBER", "VISITOR"):
            return json_response(envelope([], None))
        code = None if status == "ALL" else gen.CONTACT_STATUSES.index(status)
        with acc.lock:
            ids, nxt = acc.contact_ids_page(start, limit, status=code, modified_since_ms=since)
            results = self._contacts_json(ids, v3)
        link = None
        if nxt is not None:
            k = _dup(request)
            if k and ids:
                nxt = ids[max(1, len(ids) - k)]
            token: dict[str, str | int] = {"startAt": nxt, "limit": limit}
            if status != "ALL":
                token["status"] = status
            if since_raw:
                token["modified_since"] = since_raw
            if v3:
                token["include_contact_id"] = "true"
            link = next_link("/v2/contacts", token)
        return json_response(envelope(results, link))

    def _contacts_json(self, ids: list[int], v3: bool = False) -> list[object]:
        acc = self.account
        list_status = {lid: lst.status for lid, lst in acc.lists.items()}
        out: list[object] = []
        contact = acc.contacts.get  # bound once: this loop runs per row
        for cid in ids:
            c = contact(cid)
            if c is not None:
                out.append(render.contact(c, list_status,
                                          acc.contact_uuid(cid) if v3 else None))
        return out

    def _contact_id(self, request: Request) -> int:
        raw = request.path_params["id"]
        cid = int(raw) if raw.isdigit() else 0
        if not self.account.contact_exists(cid):
            raise ParamError(errors.error_response(errors.NOT_FOUND))
        return cid

    async def contact(self, request: Request) -> Response:
        """``GET /v2/contacts/{id}``."""
        cid = self._contact_id(request)
        with self.account.lock:
            return json_response(
                self._contacts_json([cid], _flag(request, "include_contact_id"))[0])

    async def contact_tracking_all(self, request: Request) -> Response:
        """``GET /v2/contacts/{id}/tracking``: all types, newest first (§8)."""
        return await self._contact_tracking(None)(request)

    def _contact_tracking(self, types: frozenset[int] | None) -> Handler:
        async def handler(request: Request) -> Response:
            cid = self._contact_id(request)
            return self._tracking_page(request, types, contact_id=cid,
                                       path=request.url.path.rstrip("/"))
        return handler

    async def contact_tracking_summary(self, request: Request) -> Response:
        """``GET /v2/contacts/{id}/tracking/reports/summary`` (§8.1)."""
        cid = self._contact_id(request)
        names = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")
        counts = dict.fromkeys(names, 0)
        with self.account.lock:
            acts, _ = self.account.activity_page(contact_id=cid, limit=10**9)
        for a in acts:
            counts[names[a.type]] += 1
        return json_response({"sends": counts["sends"], "opens": counts["opens"],
                              "clicks": counts["clicks"], "forwards": counts["forwards"],
                              "unsubscribes": counts["unsubscribes"],
                              "bounces": counts["bounces"], "contact_id": str(cid)})

    def _tracking_page(self, request: Request, types: frozenset[int] | None, *,
                       path: str, contact_id: int | None = None,
                       campaign_id: int | None = None) -> Response:
        """A tracking page, newest first, keyset on (date, sequence) (§1.3, §8, §9.1)."""
        fields = _token(request)
        if fields is not None:
            limit = token_int(fields, "limit", minimum=1, maximum=500)
            after = (-token_int(fields, "next"), -token_int(fields, "seq"))
            since_raw = fields.get("created_since")
            since = _token_date(since_raw)
        else:
            limit = _parse_limit(request, 500, 500)  # tracking: default 500 (§1.3)
            since = _parse_since(request, "created_since")
            since_raw = render.utc_date(since) if since is not None else None
            after = None
        with self.account.lock:
            acts, cursor = self.account.activity_page(
                campaign_id=campaign_id, contact_id=contact_id, types=types,
                created_since_ms=since, after=after, limit=limit)
        results: list[object] = [render.activity(a, contact_view=contact_id is not None)
                                 for a in acts]
        link = None
        if cursor is not None:
            k = _dup(request)
            if k and acts:
                a = acts[max(1, len(acts) - k)]
                cursor = (-a.ts_ms, -a.seq)
            token: dict[str, str | int] = {"limit": limit, "next": -cursor[0], "seq": -cursor[1]}
            if since_raw:
                token["created_since"] = since_raw
            link = next_link(path, token)
        return json_response(envelope(results, link))

    # ------------------------------------------------------------------ campaigns
    def _campaign(self, request: Request, *, allow_deleted: bool = False) -> gen.Campaign:
        raw = request.path_params["id"]
        camp = self.account.campaigns.get(int(raw)) if raw.isdigit() else None
        if camp is None or (camp.status == "DELETED" and not allow_deleted):
            # deleted campaigns cannot be fetched individually (§1.8)
            raise ParamError(errors.error_response(errors.NOT_FOUND))
        return camp

    async def campaigns(self, request: Request) -> Response:
        """``GET /v2/emailmarketing/campaigns``: page-number paging, newest change first."""
        fields = _token(request)
        if fields is not None:
            page = token_int(fields, "pageNum", minimum=1)
            size = token_int(fields, "pageSize", minimum=1, maximum=50)
            status = _token_choice(fields, "status", CAMPAIGN_STATUS_FILTER, "ALL")
            since_raw = fields.get("modified_since")
            since = _token_date(since_raw)
        else:
            page = 1
            size = _parse_limit(request, 50, 50, clamp=True)  # max 50 (§1.3); >50 clamped
            status = _choice(request, "status", CAMPAIGN_STATUS_FILTER, "ALL")
            since = _parse_since(request, "modified_since")
            since_raw = render.utc_date(since) if since is not None else None
        with self.account.lock:
            camps = [
                c for c in self.account.campaigns.values()
                # DELETED only when asked for explicitly (§3)
                if (c.status == status or (status == "ALL" and c.status != "DELETED"))
                and (since is None or c.modified_ms >= since)
            ]
        camps.sort(key=_campaign_order(status))
        lo = (page - 1) * size
        chunk = camps[lo:lo + size]
        link = None
        if lo + size < len(camps):
            token: dict[str, str | int] = {"pageNum": page + 1, "pageSize": size}
            if status != "ALL":
                token["status"] = status
            if since_raw:
                token["modified_since"] = since_raw
            link = next_link("/v2/emailmarketing/campaigns", token)
        return json_response(envelope([render.campaign_summary(c) for c in chunk], link))

    async def campaign(self, request: Request) -> Response:
        """``GET /v2/emailmarketing/campaigns/{id}``."""
        camp = self._campaign(request)
        with self.account.lock:
            return json_response(render.campaign_detail(self.account, camp))

    def _campaign_tracking(self, types: frozenset[int], kind: str) -> Handler:
        async def handler(request: Request) -> Response:
            camp = self._campaign(request)
            return self._tracking_page(
                request, types, campaign_id=camp.id,
                path=f"/v2/emailmarketing/campaigns/{camp.id}/tracking/{kind}")
        return handler

    async def campaign_summary(self, request: Request) -> Response:
        """``GET .../campaigns/{id}/tracking/reports/summary``: a single object (§9)."""
        camp = self._campaign(request)
        with self.account.lock:
            return json_response(render.tracking_summary(self.account, camp))

    # ------------------------------------------------------------------ library
    def _files_page(self, request: Request, status: str, path: str) -> Response:
        fields = _token(request)
        if fields is not None:
            offset = token_int(fields, "offset")
            limit = token_int(fields, "limit", minimum=1, maximum=1000)
            sort_by = fields.get("sort_by", "CREATED_DATE_DESC")
            ftype = fields.get("type", "ALL")
            source = fields.get("source", "ALL")
        else:
            offset = 0
            limit = _parse_limit(request, 50, 1000)  # library and trash: 1-1000 (§4, §6)
            sort_by = _choice(request, "sort_by", FILE_SORTS, "CREATED_DATE_DESC")
            ftype = _choice(request, "type", {"ALL", "IMAGES", "DOCUMENTS"}, "ALL")
            source = request.query_params.get("source", "ALL")
        if sort_by not in FILE_SORTS or ftype not in ("ALL", "IMAGES", "DOCUMENTS"):
            raise BadTokenError("sort_by/type")
        with self.account.lock:
            files = [f for f in self.account.files.values() if f.status == status
                     and (ftype == "ALL" or f.is_image == (ftype == "IMAGES"))
                     and (source.upper() == "ALL" or f.source.lower() == source.lower())]
        base = sort_by.removesuffix("_DESC")
        keys: dict[str, Callable[[gen.LibraryFile], Any]] = {
            "CREATED_DATE": lambda f: (f.created_ms, f.id),
            "MODIFIED_DATE": lambda f: (f.modified_ms, f.id),
            "NAME": lambda f: (f.name.lower(), f.id),
            "SIZE": lambda f: (f.size, f.id),
            "DIMENSION": lambda f: (f.width * f.height, f.id),
        }
        files.sort(key=keys[base], reverse=sort_by.endswith("_DESC"))
        chunk = files[offset:offset + limit]
        link = None
        if offset + limit < len(files):
            nxt = offset + limit
            k = _dup(request)
            if k and chunk:
                nxt = offset + max(1, len(chunk) - k)
            token: dict[str, str | int] = {"offset": nxt, "limit": limit, "sort_by": sort_by,
                                           "type": ftype, "source": source}
            link = next_link(path, token)
        return json_response(envelope([render.library_file(f) for f in chunk], link))

    async def library_files(self, request: Request) -> Response:
        """``GET /v2/library/files``: offset paging, newest first by default (§4)."""
        return self._files_page(request, "Active", "/v2/library/files")

    async def trash_files(self, request: Request) -> Response:
        """``GET /v2/library/folders/trash/files`` (§6)."""
        return self._files_page(request, "Deleted", "/v2/library/folders/trash/files")

    async def library_file(self, request: Request) -> Response:
        """``GET /v2/library/files/{id}``."""
        raw = request.path_params["id"]
        f = self.account.files.get(int(raw)) if raw.isdigit() else None
        if f is None:
            return errors.error_response(errors.NOT_FOUND)
        return json_response(render.library_file(f))

    # ------------------------------------------------------------------ account, lists, events
    async def account_info(self, request: Request) -> Response:
        """``GET /v2/account/info``: a single object (§5)."""
        return json_response(render.account_info(self.account.info))

    async def lists(self, request: Request) -> Response:
        """``GET /v2/lists``: a bare array, not paginated (§7)."""
        since = _parse_since(request, "modified_since")
        acc = self.account
        v3 = _flag(request, "include_list_id")  # v3 migration ids (§7)
        with acc.lock:
            body = [render.contact_list(lst, acc.list_count(lid),
                                        acc.list_uuid(lid) if v3 else None)
                    for lid, lst in sorted(acc.lists.items())
                    # a deleted list is gone from v2 (only v3 lists deleted ones, §3.2 of v3)
                    if lst.deleted_ms is None
                    and (since is None or lst.modified_ms >= since)]
        return json_response(body)

    async def contact_list(self, request: Request) -> Response:
        """``GET /v2/lists/{id}``."""
        raw = request.path_params["id"]
        acc = self.account
        lst = acc.lists.get(int(raw)) if raw.isdigit() else None
        if lst is None or lst.deleted_ms is not None:
            return errors.error_response(errors.NOT_FOUND)
        return json_response(render.contact_list(lst, acc.list_count(lst.id)))

    async def events(self, request: Request) -> Response:
        """``GET /v2/eventspot/events``: offset paging (limit 1-500, default 50; §10)."""
        fields = _token(request)
        if fields is not None:
            offset = token_int(fields, "offset")
            limit = token_int(fields, "limit", minimum=1, maximum=500)
        else:
            offset = 0
            limit = _parse_limit(request, 50, 500)  # events: 1-500, default 50 (§10)
        events = self.account.events
        chunk = events[offset:offset + limit]
        link = None
        if offset + limit < len(events):
            link = next_link("/v2/eventspot/events", {"offset": offset + limit, "limit": limit})
        with self.account.lock:  # one state of the events, whatever the test hooks do
            rows: list[object] = [render.event_summary(e) for e in chunk]
        return json_response(envelope(rows, link))

    async def event(self, request: Request) -> Response:
        """``GET /v2/eventspot/events/{id}``; a cancelled or deleted event is still served,
        with its status (UNCONFIRMED, as for v3)."""
        eid = request.path_params["id"]
        for e in self.account.events:
            if e.id == eid:
                with self.account.lock:
                    body = render.event_detail(e)
                return json_response(body)
        return errors.error_response(errors.NOT_FOUND)
