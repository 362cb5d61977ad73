"""Everything one running sandbox shares between its API faces, middleware and admin API."""

from __future__ import annotations

from dataclasses import dataclass

from ctctsync.sandbox.account import Account
from ctctsync.sandbox.auth import AuthStore
from ctctsync.sandbox.counters import Counters
from ctctsync.sandbox.faults import FaultSet
from ctctsync.sandbox.ratelimit import RateLimiter


@dataclass
class SandboxContext:
    """The account plus its auth, limits, faults and counters."""

    account: Account
    auth: AuthStore
    limiter: RateLimiter
    faults: FaultSet
    counters: Counters
