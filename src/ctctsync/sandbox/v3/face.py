"""What the v3 route modules share: the sandbox context, the UUIDs and the guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ctctsync.sandbox.context import SandboxContext
from ctctsync.sandbox.v3.common import Handler, guard
from ctctsync.sandbox.v3.ids import V3Ids
from ctctsync.sandbox.v3.tokens import TokenStore


@dataclass
class V3Face:
    """The v3 API's view of one sandbox."""

    ctx: SandboxContext
    tokens: TokenStore
    ids: V3Ids = field(init=False)

    def __post_init__(self) -> None:
        self.ids = V3Ids(self.ctx.account.seed)

    def guarded(self, scope: str | None, privilege: str | None) -> Callable[[Handler], Handler]:
        """The guard of an endpoint needing ``scope`` and the user ``privilege`` (§1.2)."""
        return guard(self.tokens, self.ctx.limiter, scope, privilege)
