"""Assemble the ``/v3`` routes of every API area."""

from __future__ import annotations

from starlette.routing import Route

from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.v3 import account, campaigns, contacts, events, reports
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.tokens import TokenStore


def v3_routes(ctx: SandboxContext, tokens: TokenStore) -> list[Route]:
    """Every ``/v3`` route, each behind the guard of its scope and privilege."""
    face = V3Face(ctx, tokens)
    return [*contacts.routes(face), *campaigns.routes(face), *reports.routes(face),
            *account.routes(face), *events.routes(face)]
