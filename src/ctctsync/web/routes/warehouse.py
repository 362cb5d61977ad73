"""The warehouse every integration loads into: configure once, test the connection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from ctctsync.control import services as svc
from ctctsync.control.errors import PermissionDenied, ValidationFailed
from ctctsync.control.schemas import WarehouseIn, validated
from ctctsync.destinations import CAPABILITIES
from ctctsync.web.deps import CurrentUser, Db
from ctctsync.web.forms import Form, field_messages, form_str
from ctctsync.web.security import verify_csrf
from ctctsync.web.templating import flash, render

router = APIRouter(prefix="/warehouse", dependencies=[Depends(verify_csrf)])

KNOWN_DESTINATIONS = tuple(CAPABILITIES)
"""Offered by name; any other dlt destination is typed in ("other")."""


def _values_from(form: Any) -> dict[str, str]:
    kind = form_str(form, "destination")
    other = form_str(form, "other_destination")
    return {
        "destination": kind,
        "other_destination": other,
        "path": form_str(form, "path"),
        "dataset": form_str(form, "dataset"),
    }


def _warehouse_in(form: Any) -> tuple[WarehouseIn | None, dict[str, str], dict[str, str]]:
    values = _values_from(form)
    errors: dict[str, str] = {}
    destination = values["destination"]
    typed = destination == "other"
    if typed:
        destination = values["other_destination"]
    elif destination not in KNOWN_DESTINATIONS:
        errors["destination"] = "Choose DuckDB, PostgreSQL or another dlt destination."
    raw_credentials = form.get("credentials")
    credentials: str | None = raw_credentials if isinstance(raw_credentials, str) else None
    if form_str(form, "clear_credentials") == "1":
        credentials = ""
    elif not credentials:
        credentials = None  # blank keeps what is stored
    if errors:
        return None, values, errors
    try:
        data = validated(
            WarehouseIn,
            destination=destination,
            path=values["path"] or None,
            dataset=values["dataset"] or "constant_contact",
            credentials=credentials,
        )
    except ValidationFailed as exc:
        errors = field_messages(exc.errors)
        if typed and "destination" in errors:
            # the name was typed into the "other" box: show the message there
            errors["other_destination"] = errors.pop("destination")
        return None, values, errors
    return data, values, errors


def _page(
    request: Request,
    db: Db,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    test: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    wh = svc.get_warehouse(db)
    if values is None:
        kind = wh.destination if wh.destination in KNOWN_DESTINATIONS else "other"
        values = {
            "destination": kind,
            "other_destination": wh.destination if kind == "other" else "",
            "path": wh.path,
            "dataset": wh.dataset,
        }
    ctx = {
        "section": "warehouse",
        "wh": wh,
        "values": values,
        "errors": errors or {},
        "test": test,
    }
    return render(request, "warehouse.html", ctx, status_code=code)


@router.get("")
def warehouse_page(request: Request, db: Db, user: CurrentUser) -> Response:
    """The current settings (credentials only as "set" / "not set")."""
    return _page(request, db)


@router.post("")
def save(request: Request, db: Db, user: CurrentUser, form: Form) -> Response:
    """Save the settings ("Save") or only try them ("Test connection"); admins only."""
    if not user.is_admin:
        raise PermissionDenied("Only an administrator can change or test the warehouse.")
    data, values, errors = _warehouse_in(form)
    testing = form_str(form, "action") == "test"
    if data is None:
        return _page(request, db, values=values, errors=errors, code=422)
    if testing:
        try:
            result = svc.test_warehouse(db, data)
        except ValidationFailed as exc:
            return _page(
                request, db, values=values, test={"ok": "", "message": exc.message}, code=200
            )
        return _page(request, db, values=values, test={"ok": "1", "message": result})
    try:
        svc.save_warehouse(db, data)
    except ValidationFailed as exc:
        errors = field_messages(exc.errors) or {"form": exc.message}
        return _page(request, db, values=values, errors=errors, code=422)
    flash(request, "Warehouse settings saved. New jobs load into it.")
    return RedirectResponse("/warehouse", status_code=303)
