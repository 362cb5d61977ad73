"""Small helpers shared by the control-plane tests."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.models import Integration, Run, User
from ctctsync.control.schemas import IntegrationCreate


def counts(db: Session) -> tuple[int, int]:
    """(integrations, runs) in the store: what a refused action must not change."""
    db.rollback()
    db.expire_all()
    return (
        int(db.scalar(sa.select(sa.func.count()).select_from(Integration)) or 0),
        int(db.scalar(sa.select(sa.func.count()).select_from(Run)) or 0),
    )


def connected(db: Session, user: User, name: str = "acme", **kw: object) -> Integration:
    """An integration with (unchecked) manual credentials, due at once."""
    integ = svc.create_integration(db, user, IntegrationCreate(name=name, **kw))  # type: ignore[arg-type]
    return svc.set_manual_credentials(db, integ, "key-" + name, "token-" + name, check_access=False)


def finish(db: Session, run_id: str, status: str = "succeeded") -> None:
    """Move a run through the state machine to ``status`` as a worker would."""
    run = db.get(Run, run_id)
    assert run is not None
    if run.status == "queued":
        run.transition("running")
    run.transition(status)  # type: ignore[arg-type]
    db.commit()
