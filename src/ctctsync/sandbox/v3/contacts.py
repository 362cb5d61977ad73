"""v3 contacts endpoints (constant-contact-v3-api.md §3)."""

from __future__ import annotations

from starlette.routing import Route

from ctctsync.sandbox.v3.face import V3Face


def routes(face: V3Face) -> list[Route]:
    """The routes of this area (none yet)."""
    return []
