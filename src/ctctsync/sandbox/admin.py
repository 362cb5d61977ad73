"""Admin endpoints under ``/_sandbox`` (JSON, no api_key): clock, mutations, faults, counters,
and the v3 authorization server's knobs (``/_sandbox/v3/...``).

``AdminApi`` and ``V3AdminApi`` have one small handler per route; their ``routes`` register
them from a table of (path, {method: handler}).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox.account import activity_type_code
from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.generator import ACTIVITY_TYPES
from ctctsync.sandbox.ratelimit import KeyLimits, key_limits
from ctctsync.sandbox.v2.truth import truth
from ctctsync.sandbox.v3.common import ts_millis
from ctctsync.sandbox.v3.events import (
    event_row,
    event_updated_ms,
    registration_id,
    registration_row,
    track_id,
)
from ctctsync.sandbox.v3.ids import KIND_EVENT_V3, V3Ids
from ctctsync.sandbox.v3.tokens import (
    ALL_SCOPES,
    KNOWN_SCOPES,
    PRIVILEGE_ROLES,
    REFRESH_TOKEN_MODES,
    TokenStore,
)

PREFIX = "/_sandbox"

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data


def _ids(ids: list[int]) -> Response:
    return _json({"ids": [str(i) for i in ids]})


class BadRequestError(ValueError):
    """A malformed admin request: answered 400 with the message, never 500."""


def _int(value: Any, name: str) -> int:
    """An integer from JSON: a number or the decimal string the sandbox itself returns for
    ids (``"12"``); ``bool`` and fractions are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    raise BadRequestError(f"{name} must be an integer or a string of digits, not {value!r}")


def _id_list(value: Any, name: str) -> list[int] | None:
    """A JSON list of ids (numbers or digit strings); None when absent."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequestError(f"{name} must be a list of ids")
    return [_int(v, name) for v in value]


def _answers_400(handler: Handler) -> Handler:
    """``handler`` with a malformed body (bad JSON, wrong types) answered 400, not 500."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (BadRequestError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
    return endpoint


def _by_method(handlers: Mapping[str, Handler]) -> Handler:
    """One endpoint for a path served by a handler per method (HEAD is answered as GET)."""
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)
    return endpoint


def _table_routes(table: list[tuple[str, dict[str, Handler]]]) -> list[Route]:
    """One route per path of ``table``, with the methods its handlers serve."""
    return [
        Route(PREFIX + path,
              _answers_400(next(iter(handlers.values())) if len(handlers) == 1
                           else _by_method(handlers)),
              methods=list(handlers))
        for path, handlers in table
    ]


class AdminApi:
    """The handlers of the ``/_sandbox`` routes, over one sandbox's parts."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.account = ctx.account
        self.ids = V3Ids(ctx.account.seed)

    def routes(self) -> list[Route]:
        """The Starlette routes: one per path, with the methods its handlers serve."""
        table: list[tuple[str, dict[str, Handler]]] = [
            ("/state", {"GET": self.state}),
            ("/clock", {"GET": self.clock}),
            ("/clock/advance", {"POST": self.advance_clock}),
            ("/contacts/update", {"POST": self.update_contacts}),
            ("/contacts/add", {"POST": self.add_contacts}),
            ("/contacts/status", {"POST": self.contact_status}),
            ("/lists/add", {"POST": self.add_list}),
            ("/lists/{id:int}/modify", {"POST": self.modify_list}),
            ("/lists/{id:int}/delete", {"POST": self.delete_list}),
            ("/campaigns/send", {"POST": self.send_campaign}),
            ("/campaigns/{id:int}/retract", {"POST": self.retract_activities}),
            ("/library/trash", {"POST": self.trash_files}),
            ("/events", {"GET": self.events}),
            ("/events/{event}/registrations/add", {"POST": self.add_registrations}),
            ("/events/{event}/registrations/{registration}/update",
             {"POST": self.update_registration}),
            ("/events/{event}/modify", {"POST": self.modify_event}),
            ("/events/{event}/cancel", {"POST": self.cancel_event}),
            ("/events/{event}/delete", {"POST": self.delete_event}),
            ("/tokens/issue", {"POST": self.issue_token}),
            ("/tokens/revoke", {"POST": self.revoke_token}),
            ("/faults", {"GET": self.faults, "POST": self.add_fault, "DELETE": self.clear_faults}),
            ("/faults/{id:int}", {"DELETE": self.remove_fault}),
            ("/counters", {"GET": self.counters, "DELETE": self.reset_counters}),
            ("/counters/reset", {"POST": self.reset_counters}),
            ("/limits", {"GET": self.limits, "POST": self.set_limits}),
            ("/limits/keys", {"GET": self.keys_limits}),
            ("/limits/keys/{key}", {"GET": self.key_limits, "POST": self.set_key_limits,
                                    "DELETE": self.clear_key_limits}),
            ("/truth/{table}", {"GET": self.table_truth}),
        ]
        return _table_routes(table)

    # ------------------------------------------------------------------ sandbox and clock
    async def state(self, request: Request) -> Response:
        """Spec, clock, sizes, credentials and limits."""
        acc, ctx = self.account, self.ctx
        spec = acc.spec
        return _json({
            "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
            "now": acc.clock.now().isoformat(), "clock_offset_seconds": acc.clock.offset_seconds,
            "contacts": acc.contact_count, "lists": len(acc.lists),
            "campaigns": len(acc.campaigns), "activities": acc.activity_count(),
            "credentials": ctx.auth.credentials.__dict__,
            "limits": {"qps_limit": ctx.limiter.qps_limit, "daily_limit": ctx.limiter.daily_limit},
        })

    async def clock(self, request: Request) -> Response:
        """The sandbox time, its offset from real time (from its start instant when frozen)
        and whether it is frozen (moves only by ``/clock/advance``)."""
        clock = self.account.clock
        return _json({"now": clock.now().isoformat(), "offset_seconds": clock.offset_seconds,
                      "frozen": clock.frozen})

    async def advance_clock(self, request: Request) -> Response:
        """Move the clock forward by ``seconds``."""
        self.account.advance(float((await _body(request)).get("seconds", 0)))
        return await self.clock(request)

    # ------------------------------------------------------------------ account mutations
    async def update_contacts(self, request: Request) -> Response:
        """Edit ``n`` random contacts (or ``ids``: numbers or the id strings the API returns);
        404 if one of the ids is not a contact (none is edited then)."""
        body = await _body(request)
        ids = _id_list(body.get("ids"), "ids")
        missing = [i for i in ids or () if not self.account.contact_exists(i)]
        if missing:
            return _json({"error": f"no contact {missing[0]}"}, 404)
        return _ids(self.account.update_contacts(
            _int(body.get("n", 1), "n"), change_lists=float(body.get("change_lists", 0.3)),
            ids=ids))

    async def add_contacts(self, request: Request) -> Response:
        """Create ``n`` contacts."""
        body = await _body(request)
        return _ids(self.account.add_contacts(_int(body.get("n", 1), "n")))

    async def contact_status(self, request: Request) -> Response:
        """Set the ``status`` of contact ``id``."""
        body = await _body(request)
        cid = _int(body.get("id", 0), "id")
        if not self.account.contact_exists(cid):
            return _json({"error": f"no contact {cid}"}, 404)
        try:
            self.account.set_contact_status(cid, str(body.get("status", "")).upper())
        except ValueError:
            return _json({"error": "status must be ACTIVE, UNCONFIRMED, OPTOUT or REMOVED"}, 400)
        return _json({"id": str(cid)})

    async def add_list(self, request: Request) -> Response:
        """Create a list, optionally ``name``d."""
        body = await _body(request)
        return _json({"id": str(self.account.add_list(body.get("name")))})

    async def modify_list(self, request: Request) -> Response:
        """Rename the list of the path."""
        body = await _body(request)
        lid = int(request.path_params["id"])
        if lid not in self.account.lists:
            return _json({"error": f"no list {lid}"}, 404)
        self.account.modify_list(lid, body.get("name"))
        return _json({"id": str(lid)})

    async def delete_list(self, request: Request) -> Response:
        """Delete the list of the path (v3 shows it with ``deleted_at``; its members leave)."""
        lid = int(request.path_params["id"])
        if lid not in self.account.lists:
            return _json({"error": f"no list {lid}"}, 404)
        self.account.delete_list(lid)
        return _json({"id": str(lid)})

    async def send_campaign(self, request: Request) -> Response:
        """Send a new campaign, or more ``activities`` of ``campaign_id``."""
        body = await _body(request)
        camp = body.get("campaign_id")
        act = body.get("activities")
        cid = self.account.send_campaign(_int(camp, "campaign_id") if camp is not None else None,
                                         _int(act, "activities") if act is not None else None)
        return _json({"campaign_id": str(cid)})

    async def retract_activities(self, request: Request) -> Response:
        """Remove ``n`` (default 1) visible activities of ``kind`` (``EMAIL_BOUNCE``,
        ``bounces``, ``optouts``...) of the campaign of the path from every report and count,
        the oldest first; answers which went. 404 for an unknown campaign."""
        body = await _body(request)
        camp = int(request.path_params["id"])
        if camp not in self.account.campaigns:
            return _json({"error": f"no campaign {camp}"}, 404)
        kind = body.get("kind")
        if not isinstance(kind, str):
            raise BadRequestError("kind must be a string, e.g. EMAIL_BOUNCE or unsubscribes")
        try:
            code = activity_type_code(kind)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
        seqs = self.account.retract_activities(camp, code, _int(body.get("n", 1), "n"))
        gone = [self.account.activity(seq) for seq in seqs]
        return _json({"campaign_id": str(camp), "activity_type": ACTIVITY_TYPES[code],
                      "retracted": len(gone),
                      "contact_ids": [str(a.contact_id) for a in gone]})

    async def trash_files(self, request: Request) -> Response:
        """Move the ``n`` newest active library files to the trash."""
        body = await _body(request)
        return _ids(self.account.trash_files(_int(body.get("n", 1), "n")))

    # ------------------------------------------------------------------ events (test hooks)
    # An event is named by its v3 ``event_id`` or its v2 id; every answer is the event's
    # summary (``_event_json``): its ids, status, names, time zone, the v3 list's counts and
    # the v3 detail's ``last_update_time``.

    def _event_index(self, request: Request) -> int | None:
        wanted = str(request.path_params["event"]).lower()
        for index, e in enumerate(self.account.events):
            if wanted in (e.id.lower(), self.ids.uuid(KIND_EVENT_V3, index + 1)):
                return index
        return None

    def _event_json(self, index: int) -> dict[str, Any]:
        with self.account.lock:
            e = self.account.events[index]
            row = event_row(self.account, self.ids, index, e)
            return {"event_id": row["event_id"], "v2_id": e.id, "index": index,
                    "track_id": track_id(self.ids, index), "status": e.status,
                    "name": e.name, "title": e.title, "time_zone": e.time_zone,
                    **row["event_registration_summary_metrics"],
                    "last_update_time": ts_millis(event_updated_ms(e))}

    async def events(self, request: Request) -> Response:
        """Every event's summary, in account order."""
        return _json([self._event_json(i) for i in range(len(self.account.events))])

    async def _event_change(self, request: Request,
                            change: Callable[[int, dict[str, Any]], dict[str, Any]]) -> Response:
        # the shared frame of the event hooks: 404 for an unknown event, 400 for a refused
        # change (ValueError), else the event's summary plus what ``change`` answers
        index = self._event_index(request)
        if index is None:
            return _json({"error": f"no event {request.path_params['event']}"}, 404)
        body = await _body(request)
        try:
            extra = change(index, body)
        except LookupError as exc:
            return _json({"error": str(exc.args[0]) if exc.args else "not found"}, 404)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
        return _json({**self._event_json(index), **extra})

    async def add_registrations(self, request: Request) -> Response:
        """``n`` (default 1) new REGISTERED registrations of the event of the path, made now by
        contacts of the account; answers the event and the new ``registration_ids``."""
        def change(index: int, body: dict[str, Any]) -> dict[str, Any]:
            added = self.account.add_event_registrations(index, _int(body.get("n", 1), "n"))
            return {"registration_ids": [registration_id(self.ids, index, r) for r in added]}
        return await self._event_change(request, change)

    async def update_registration(self, request: Request) -> Response:
        """Change the registration of the path: any of ``payment_status``,
        ``registration_status`` and ``checked_in`` (true, false or a ticket count); answers
        the event and the registration's v3 list record."""
        def change(index: int, body: dict[str, Any]) -> dict[str, Any]:
            wanted = str(request.path_params["registration"]).lower()
            number = next((r.number for r in self.account.event_registrations(index)
                           if registration_id(self.ids, index, r) == wanted), None)
            if number is None:
                raise LookupError(f"no registration {wanted} of this event")
            checked_in = body.get("checked_in")
            if checked_in is not None and not isinstance(checked_in, bool):
                checked_in = _int(checked_in, "checked_in")
            new = self.account.update_event_registration(
                index, number, registration_status=_upper(body, "registration_status"),
                payment_status=_upper(body, "payment_status"), checked_in=checked_in)
            return {"registration": registration_row(self.ids, index, new)}
        return await self._event_change(request, change)

    async def modify_event(self, request: Request) -> Response:
        """Edit the event of the path: any of ``name``, ``title``, ``description`` and
        ``time_zone`` (nothing: its title gains " (edited)"); its last update is now."""
        def change(index: int, body: dict[str, Any]) -> dict[str, Any]:
            values = {k: body.get(k) for k in ("name", "title", "description", "time_zone")}
            for key, value in values.items():
                if value is not None and not isinstance(value, str):
                    raise BadRequestError(f"{key} must be a string")
            self.account.modify_event(index, **values)
            return {}
        return await self._event_change(request, change)

    async def cancel_event(self, request: Request) -> Response:
        """Cancel the event of the path (status CANCELLED, ``cancelled_time`` now); 400 if it
        is DELETED."""
        def change(index: int, body: dict[str, Any]) -> dict[str, Any]:
            self.account.cancel_event(index)
            return {}
        return await self._event_change(request, change)

    async def delete_event(self, request: Request) -> Response:
        """Delete the event of the path (status DELETED, ``deleted_time`` now); v3 and v2 still
        list and serve it, with its registrations (UNCONFIRMED, see ``Account.delete_event``)."""
        def change(index: int, body: dict[str, Any]) -> dict[str, Any]:
            self.account.delete_event(index)
            return {}
        return await self._event_change(request, change)

    # ------------------------------------------------------------------ tokens
    async def issue_token(self, request: Request) -> Response:
        """A new access token."""
        return _json({"access_token": self.ctx.auth.issue_token()})

    async def revoke_token(self, request: Request) -> Response:
        """Revoke ``token``."""
        body = await _body(request)
        return _json({"revoked": self.ctx.auth.revoke_token(str(body.get("token", "")))})

    # ------------------------------------------------------------------ faults, counters, limits
    async def faults(self, request: Request) -> Response:
        """The fault rules."""
        return _json([f.to_json() for f in self.ctx.faults.list()])

    async def add_fault(self, request: Request) -> Response:
        """Add a rule: ``{"spec": "..."}`` or the keyword arguments of ``FaultSet.add``."""
        body = await _body(request)
        try:
            if "spec" in body:
                fault = self.ctx.faults.add_spec(str(body["spec"]))
            else:
                fault = self.ctx.faults.add(**body)
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(fault.to_json(), 201)

    async def clear_faults(self, request: Request) -> Response:
        """Remove every rule."""
        self.ctx.faults.clear()
        return await self.faults(request)

    async def remove_fault(self, request: Request) -> Response:
        """Remove the rule of the path."""
        removed = self.ctx.faults.remove(int(request.path_params["id"]))
        return _json({"removed": removed}, 200 if removed else 404)

    async def counters(self, request: Request) -> Response:
        """The request counters."""
        return _json(self.ctx.counters.snapshot())

    async def reset_counters(self, request: Request) -> Response:
        """Zero the request counters."""
        self.ctx.counters.reset()
        return await self.counters(request)

    async def limits(self, request: Request) -> Response:
        """The rate limits."""
        limiter = self.ctx.limiter
        return _json({"qps_limit": limiter.qps_limit, "daily_limit": limiter.daily_limit})

    async def set_limits(self, request: Request) -> Response:
        """Set ``qps_limit`` and ``daily_limit`` (null: none)."""
        body = await _body(request)
        self.ctx.limiter.configure(qps_limit=body.get("qps_limit"),
                                   daily_limit=body.get("daily_limit"))
        return await self.limits(request)

    def _key(self, request: Request) -> str:
        # "application" names the sandbox application's own key (v2 API key = v3 client id)
        key = str(request.path_params["key"])
        return self.ctx.auth.credentials.api_key if key == "application" else key

    def _key_json(self, key: str) -> dict[str, Any]:
        limiter = self.ctx.limiter
        limits = limiter.limits_for(key)
        return {"key": key, "qps_limit": limits.qps_limit, "daily_limit": limits.daily_limit,
                "own": key in limiter.own_limits(), "used_today": limiter.used_today(key)}

    async def keys_limits(self, request: Request) -> Response:
        """Every key with limits of its own, and the defaults of the others."""
        limiter = self.ctx.limiter
        return _json({"defaults": {"qps_limit": limiter.qps_limit,
                                   "daily_limit": limiter.daily_limit},
                      "keys": [self._key_json(k) for k in sorted(limiter.own_limits())]})

    async def key_limits(self, request: Request) -> Response:
        """The limits that apply to the key of the path (``application``: the app's key) and
        its requests admitted today."""
        return _json(self._key_json(self._key(request)))

    async def set_key_limits(self, request: Request) -> Response:
        """Give the key of the path limits of its own: ``{"profile": "partner"|"default"}`` or
        ``{"qps_limit": 10, "daily_limit": 250000}`` (null: none; an absent one keeps the
        key's current value). Past usage today still counts."""
        body = await _body(request)
        key = self._key(request)
        if "profile" in body:
            try:
                limits = key_limits(str(body["profile"]))
            except ValueError as exc:
                raise BadRequestError(str(exc)) from None
        else:
            current = self.ctx.limiter.limits_for(key)
            limits = KeyLimits(
                _limit(body, "qps_limit", current.qps_limit),
                _limit(body, "daily_limit", current.daily_limit))
        self.ctx.limiter.set_key_limits(key, limits)
        return _json(self._key_json(key))

    async def clear_key_limits(self, request: Request) -> Response:
        """The key of the path back to the default limits."""
        key = self._key(request)
        self.ctx.limiter.set_key_limits(key, None)
        return _json(self._key_json(key))

    async def table_truth(self, request: Request) -> Response:
        """The truth of the table of the path."""
        try:
            return _json(truth(self.account, request.path_params["table"]))
        except KeyError as exc:
            return _json({"error": str(exc)}, 404)


def _upper(body: Mapping[str, Any], name: str) -> str | None:
    """An optional status string of a JSON body, upper-cased (None when absent)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string")
    return value.upper()


def _limit(body: Mapping[str, Any], name: str, current: int | None) -> int | None:
    """A limit of a JSON body: a positive integer, null for none, absent for ``current``."""
    if name not in body:
        return current
    if body[name] is None:
        return None
    value = _int(body[name], name)
    if value < 1:
        raise BadRequestError(f"{name} must be >= 1 or null (no limit)")
    return value


def _str_list(value: Any, name: str) -> list[str]:
    """A JSON list of strings, or one space-separated string (as OAuth writes scopes)."""
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"{name} must be a list of strings or a space-separated string")
    return list(value)


def _optional_limit(value: Any) -> int | None:
    """A requests/second limit: a positive integer, or null/0 for none."""
    if value is None:
        return None
    limit = _int(value, "token_qps_limit")
    return limit or None


class V3AdminApi:
    """``/_sandbox/v3/...``: tokens, user privileges and the application's OAuth settings of
    the v3 authorization server (``sandbox.v3.oauth``). Tokens age with ``/_sandbox/clock``."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def routes(self) -> list[Route]:
        """The Starlette routes of the v3 admin API."""
        return _table_routes([
            ("/v3/tokens/issue", {"POST": self.issue_tokens}),
            ("/v3/tokens/revoke", {"POST": self.revoke_token}),
            ("/v3/privileges", {"GET": self.privileges, "POST": self.set_privileges}),
            ("/v3/application", {"GET": self.application, "POST": self.set_application}),
            ("/v3/device/decide", {"POST": self.decide_device}),
        ])

    async def issue_tokens(self, request: Request) -> Response:
        """Tokens as the token endpoint answers them, without any flow: ``scopes`` (a list or
        a space-separated string; default every API scope) -- with ``offline_access`` a
        refresh token too, with ``openid`` an ID token."""
        body = await _body(request)
        scopes = _str_list(body.get("scopes", sorted(ALL_SCOPES)), "scopes")
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown:
            raise BadRequestError(f"unknown scope {unknown[0]!r}; known: {sorted(KNOWN_SCOPES)}")
        public = bool(body.get("public", False))
        return _json(self.tokens.issue_tokens(scopes, public=public).to_json())

    async def revoke_token(self, request: Request) -> Response:
        """Revoke ``token`` (an access or a refresh token)."""
        body = await _body(request)
        return _json({"revoked": self.tokens.revoke(str(body.get("token", "")))})

    async def privileges(self, request: Request) -> Response:
        """The authorizing user's privileges."""
        return _json({"privileges": sorted(self.tokens.privileges)})

    async def set_privileges(self, request: Request) -> Response:
        """Set the user's privileges: ``{"role": "campaign_creator"|"account_owner"}`` or
        ``{"privileges": [...]}``; applies at once, to tokens already issued too."""
        body = await _body(request)
        if "role" in body:
            role = PRIVILEGE_ROLES.get(str(body["role"]))
            if role is None:
                raise BadRequestError(f"role must be one of {sorted(PRIVILEGE_ROLES)}")
            self.tokens.privileges = role
        else:
            self.tokens.privileges = frozenset(_str_list(body.get("privileges"), "privileges"))
        return await self.privileges(request)

    async def application(self, request: Request) -> Response:
        """The application's OAuth settings."""
        settings = self.tokens.settings
        return _json({
            "client_id": settings.client_id, "refresh_token_mode": settings.refresh_token_mode,
            "redirect_uris": sorted(settings.redirect_uris),
            "allow_loopback_redirects": settings.allow_loopback_redirects,
            "token_qps_limit": self.tokens.token_limiter.qps_limit})

    async def set_application(self, request: Request) -> Response:
        """Change any of ``refresh_token_mode`` (``rotating``|``long_lived``), ``redirect_uris``
        (replaces the registered list), ``allow_loopback_redirects`` and ``token_qps_limit``
        (the token endpoint's requests/s per client id; null or 0: none)."""
        body = await _body(request)
        settings = self.tokens.settings
        if "refresh_token_mode" in body:
            mode = body["refresh_token_mode"]
            if mode not in REFRESH_TOKEN_MODES:
                raise BadRequestError(f"refresh_token_mode must be one of {REFRESH_TOKEN_MODES}")
            settings.refresh_token_mode = mode
        if "redirect_uris" in body:
            settings.redirect_uris = set(_str_list(body["redirect_uris"], "redirect_uris"))
        if "allow_loopback_redirects" in body:
            settings.allow_loopback_redirects = bool(body["allow_loopback_redirects"])
        if "token_qps_limit" in body:
            limiter = self.tokens.token_limiter
            limiter.configure(qps_limit=_optional_limit(body["token_qps_limit"]),
                              daily_limit=None)
            limiter.reset()
        return await self.application(request)

    async def decide_device(self, request: Request) -> Response:
        """Answer a device authorization as its user would: ``{"user_code", "decision":
        "allow"|"deny"}``; ``decided`` is false when the code is not pending."""
        body = await _body(request)
        decision = body.get("decision", "allow")
        if decision not in ("allow", "deny"):
            raise BadRequestError("decision must be 'allow' or 'deny'")
        decided = self.tokens.decide_device(str(body.get("user_code", "")), decision == "allow")
        return _json({"decided": decided})


def admin_routes(ctx: SandboxContext, v3_tokens: TokenStore) -> list[Route]:
    """The ``/_sandbox`` routes (``/_sandbox/v3/...`` for the v3 authorization server)."""
    return [*AdminApi(ctx).routes(), *V3AdminApi(v3_tokens).routes()]
