"""Admin endpoints under ``/_sandbox`` (JSON, no api_key): clock, mutations, faults, counters."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.v2.truth import truth


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def admin_routes(ctx: SandboxContext) -> list[Route]:
    """The ``/_sandbox`` routes."""
    acc = ctx.account

    async def state(request: Request) -> Response:
        spec = acc.spec
        return _json({
            "spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
            "now": acc.clock.now().isoformat(), "clock_offset_seconds": acc.clock.offset_seconds,
            "contacts": acc.contact_count, "lists": len(acc.lists),
            "campaigns": len(acc.campaigns), "activities": acc.activity_count(),
            "credentials": ctx.auth.credentials.__dict__,
            "limits": {"qps_limit": ctx.limiter.qps_limit, "daily_limit": ctx.limiter.daily_limit},
        })

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            acc.advance(float(body.get("seconds", 0)))
        return _json({"now": acc.clock.now().isoformat(),
                      "offset_seconds": acc.clock.offset_seconds})

    async def update_contacts(request: Request) -> Response:
        body = await _body(request)
        ids = acc.update_contacts(int(body.get("n", 1)),
                                  change_lists=float(body.get("change_lists", 0.3)),
                                  ids=body.get("ids"))
        return _json({"ids": [str(i) for i in ids]})

    async def add_contacts(request: Request) -> Response:
        body = await _body(request)
        return _json({"ids": [str(i) for i in acc.add_contacts(int(body.get("n", 1)))]})

    async def contact_status(request: Request) -> Response:
        body = await _body(request)
        cid = int(body.get("id", 0))
        if not acc.contact_exists(cid):
            return _json({"error": f"no contact {cid}"}, 404)
        try:
            acc.set_contact_status(cid, str(body.get("status", "")).upper())
        except ValueError:
            return _json({"error": "status must be ACTIVE, UNCONFIRMED, OPTOUT or REMOVED"}, 400)
        return _json({"id": str(cid)})

    async def add_list(request: Request) -> Response:
        body = await _body(request)
        return _json({"id": str(acc.add_list(body.get("name")))})

    async def modify_list(request: Request) -> Response:
        body = await _body(request)
        lid = int(request.path_params["id"])
        if lid not in acc.lists:
            return _json({"error": f"no list {lid}"}, 404)
        acc.modify_list(lid, body.get("name"))
        return _json({"id": str(lid)})

    async def send_campaign(request: Request) -> Response:
        body = await _body(request)
        camp = body.get("campaign_id")
        act = body.get("activities")
        cid = acc.send_campaign(int(camp) if camp is not None else None,
                                int(act) if act is not None else None)
        return _json({"campaign_id": str(cid)})

    async def trash(request: Request) -> Response:
        body = await _body(request)
        return _json({"ids": [str(i) for i in acc.trash_files(int(body.get("n", 1)))]})

    async def issue_token(request: Request) -> Response:
        return _json({"access_token": ctx.auth.issue_token()})

    async def revoke_token(request: Request) -> Response:
        body = await _body(request)
        return _json({"revoked": ctx.auth.revoke_token(str(body.get("token", "")))})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            try:
                if "spec" in body:
                    fault = ctx.faults.add_spec(str(body["spec"]))
                else:
                    fault = ctx.faults.add(**body)
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json(fault.to_json(), 201)
        if request.method == "DELETE":
            ctx.faults.clear()
        return _json([f.to_json() for f in ctx.faults.list()])

    async def fault_delete(request: Request) -> Response:
        removed = ctx.faults.remove(int(request.path_params["id"]))
        return _json({"removed": removed}, 200 if removed else 404)

    async def counters(request: Request) -> Response:
        if request.method in ("DELETE", "POST"):
            ctx.counters.reset()
        return _json(ctx.counters.snapshot())

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            ctx.limiter.configure(qps_limit=body.get("qps_limit"),
                                  daily_limit=body.get("daily_limit"))
        return _json({"qps_limit": ctx.limiter.qps_limit, "daily_limit": ctx.limiter.daily_limit})

    async def table_truth(request: Request) -> Response:
        try:
            return _json(truth(acc, request.path_params["table"]))
        except KeyError as exc:
            return _json({"error": str(exc)}, 404)

    p = "/_sandbox"
    return [
        Route(f"{p}/state", state),
        Route(f"{p}/clock", clock, methods=["GET"]),
        Route(f"{p}/clock/advance", clock, methods=["POST"]),
        Route(f"{p}/contacts/update", update_contacts, methods=["POST"]),
        Route(f"{p}/contacts/add", add_contacts, methods=["POST"]),
        Route(f"{p}/contacts/status", contact_status, methods=["POST"]),
        Route(f"{p}/lists/add", add_list, methods=["POST"]),
        Route(f"{p}/lists/{{id:int}}/modify", modify_list, methods=["POST"]),
        Route(f"{p}/campaigns/send", send_campaign, methods=["POST"]),
        Route(f"{p}/library/trash", trash, methods=["POST"]),
        Route(f"{p}/tokens/issue", issue_token, methods=["POST"]),
        Route(f"{p}/tokens/revoke", revoke_token, methods=["POST"]),
        Route(f"{p}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{p}/faults/{{id:int}}", fault_delete, methods=["DELETE"]),
        Route(f"{p}/counters", counters, methods=["GET", "DELETE"]),
        Route(f"{p}/counters/reset", counters, methods=["POST"]),
        Route(f"{p}/limits", limits, methods=["GET", "POST"]),
        Route(f"{p}/truth/{{table}}", table_truth),
    ]
