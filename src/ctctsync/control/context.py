"""What a service call needs besides its arguments: settings, the secret box, the clock.

``ControlPlane.session()`` puts a :class:`ControlContext` into ``Session.info`` so service
signatures stay ``(db, ...)`` while tests can still swap the clock or the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ctctsync.control.clock import Clock
from ctctsync.control.crypto import SecretBox
from ctctsync.control.settings import ControlSettings

_KEY = "ctctsync.control"


@dataclass(frozen=True)
class ControlContext:
    """The control plane's shared, immutable collaborators."""

    settings: ControlSettings
    box: SecretBox
    clock: Clock
    engine: Engine
    wake: Callable[[], None] = field(default=lambda: None)
    """Nudges idle workers when a run is queued (no-op without running workers)."""
    cancel: Callable[[str], object] = field(default=lambda _run_id: None)
    """Stops a run this process executes, at once (no-op for a run executed elsewhere:
    its worker reads ``cancel_requested`` within a second)."""

    def now(self) -> datetime:
        """The current time by the plane's clock."""
        return self.clock.now()


def attach(db: Session, ctx: ControlContext) -> Session:
    """Bind ``ctx`` to a session (done by ``ControlPlane.session``)."""
    db.info[_KEY] = ctx
    return db


def context(db: Session) -> ControlContext:
    """The context of a session made by ``ControlPlane.session()``."""
    try:
        ctx = db.info[_KEY]
    except KeyError:
        raise RuntimeError(
            "this session was not made by ControlPlane.session(); services need its context"
        ) from None
    assert isinstance(ctx, ControlContext)
    return ctx
