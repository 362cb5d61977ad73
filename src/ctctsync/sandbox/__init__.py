"""A local simulator of the Constant Contact account API (the "sandbox").

``Sandbox`` serves a deterministic synthetic account (``AccountSpec``) over HTTP on loopback,
as API v2 (``sandbox.v2``) and v3 (``sandbox.v3``, with its OAuth2 server) over one
version-neutral account model.
See docs/sandbox.md.
"""

from __future__ import annotations

from ctctsync.sandbox.account import Account, AccountSpec
from ctctsync.sandbox.auth import Credentials
from ctctsync.sandbox.faults import FaultSet
from ctctsync.sandbox.server import Sandbox
from ctctsync.sandbox.v2.truth import TABLE_NAMES

__all__ = ["TABLE_NAMES", "Account", "AccountSpec", "Credentials", "FaultSet", "Sandbox"]
