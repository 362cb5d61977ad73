"""A local simulator of the Constant Contact account API (the "sandbox").

``Sandbox`` serves a deterministic synthetic account (``AccountSpec``) over HTTP on loopback,
today as the v2 API (``sandbox.v2``); the account model itself is version-neutral.
See docs/sandbox.md.
"""

from __future__ import annotations

from ctctsync.sandbox.account import Account, AccountSpec
from ctctsync.sandbox.auth import Credentials
from ctctsync.sandbox.faults import FaultSet
from ctctsync.sandbox.server import Sandbox
from ctctsync.sandbox.v2.truth import TABLE_NAMES

__all__ = ["TABLE_NAMES", "Account", "AccountSpec", "Credentials", "FaultSet", "Sandbox"]
