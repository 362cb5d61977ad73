"""The web UI: server-rendered pages over the control plane's services.

``create_app(settings, control_plane=None)`` is the entry point (see ``ctctsync.web.app``).
"""

from __future__ import annotations

from ctctsync.web.app import create_app

__all__ = ["create_app"]
