"""The schema page of an integration (issue 12 §7): per table, each column with its warehouse
type, whether it is selected and when it first appeared; new fields flagged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ctctsync.control import services as svc
from ctctsync.control.services.schema_view import schema_view
from ctctsync.web.deps import CurrentUser, Db, IntegrationId
from ctctsync.web.templating import render

router = APIRouter(prefix="/integrations")


@router.get("/{integration_id}/schema")
def schema_page(
    request: Request, db: Db, user: CurrentUser, integration_id: IntegrationId
) -> Response:
    """Columns, warehouse types, selection, first appearance, and new fields, per table."""
    integ = svc.get_integration(db, user, integration_id)
    view = schema_view(db, integ)
    return render(
        request,
        "integrations/schema.html",
        {"section": "integrations", "integ": integ, "view": view},
    )
