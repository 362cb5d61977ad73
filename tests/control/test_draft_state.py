"""The ``draft`` integration state (issue 12 §4): an add-integration setup not finished yet.

A draft is never scheduled, cannot run, pause or be re-activated, may be renamed and have
its version changed, and becomes ``pending`` only when its last step is submitted. Setups
left unfinished before the state existed (stored ``paused``) read as drafts without a data
migration, and no integration paused from now on does.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.clock import ManualClock
from ctctsync.control.errors import Conflict, InvalidTransition, ValidationFailed
from ctctsync.control.models import (
    INTEGRATION_STATES,
    INTEGRATION_TRANSITIONS,
    PAUSED_REASON,
    Integration,
    User,
)
from ctctsync.control.plane import ControlPlane
from ctctsync.control.schemas import IntegrationCreate
from ctctsync.tables import tables_for

from .helpers import counts


def _draft(db: Session, user: User, name: str = "acme", **kw: object) -> Integration:
    return svc.create_integration(db, user, IntegrationCreate(name=name, **kw), draft=True)  # type: ignore[arg-type]


def _authorize(db: Session, integ: Integration) -> Integration:
    return svc.set_manual_credentials(db, integ, "key-x", "token-x", check_access=False)


@pytest.mark.parametrize("new", INTEGRATION_STATES)
def test_a_draft_only_becomes_pending(new: str) -> None:
    integ = Integration(state="draft")
    if new in ("draft", "pending"):
        integ.transition(new)  # type: ignore[arg-type]
        assert integ.state == new
    else:
        with pytest.raises(InvalidTransition, match=f"from draft to {new}"):
            integ.transition(new)  # type: ignore[arg-type]
        assert integ.state == "draft"


def test_nothing_goes_back_to_draft() -> None:
    assert INTEGRATION_TRANSITIONS["draft"] == {"pending"}
    assert all("draft" not in allowed for allowed in INTEGRATION_TRANSITIONS.values())
    for old in INTEGRATION_STATES:
        if old != "draft":
            with pytest.raises(InvalidTransition):
                Integration(state=old).transition("draft")


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        pytest.param({"state": "draft"}, "draft", id="draft"),
        # left half-way by the setup before the draft state existed
        pytest.param({"state": "paused"}, "draft", id="older-unfinished-setup"),
        pytest.param({"state": "paused", "state_reason": PAUSED_REASON}, "paused", id="paused"),
        pytest.param({"state": "paused", "last_run_id": "r" * 32}, "paused", id="paused-ran"),
        pytest.param(
            {"state": "paused", "activated_at": date(2026, 1, 1)}, "paused", id="paused-active"
        ),
        pytest.param({"state": "pending"}, "pending", id="pending"),
    ],
)
def test_shown_state(row: dict[str, object], shown: str) -> None:
    integ = Integration(**row)
    assert integ.shown_state == shown
    assert integ.is_draft is (shown == "draft")


def test_a_draft_is_never_scheduled(
    db: Session, admin: User, plane: ControlPlane, clock: ManualClock
) -> None:
    integ = _authorize(db, _draft(db, admin))
    assert integ.state == "draft" and integ.has_credentials
    assert not integ.schedulable and integ.next_run_at is None  # credentials did not start it
    clock.advance(timedelta(days=2))
    assert plane.tick().enqueued == []
    for action, words in (
        (lambda: svc.run_now(db, integ, admin), "cannot run"),
        (lambda: svc.resync_table(db, integ, "contacts", admin), "cannot run"),
        (lambda: svc.pause(db, integ), "cannot be paused"),
        (lambda: svc.reactivate(db, integ), "cannot be re-activated"),
    ):
        with pytest.raises(Conflict, match=words):
            action()
    assert counts(db) == (1, 0)
    db.refresh(integ)
    assert integ.state == "draft"


def test_finishing_the_setup_makes_it_pending_and_due(
    db: Session, admin: User, plane: ControlPlane, clock: ManualClock
) -> None:
    integ = _draft(db, admin)
    with pytest.raises(ValidationFailed, match="Authorize acme"):
        svc.finish_setup(db, integ)  # nothing to run with yet
    assert integ.state == "draft"
    integ = svc.finish_setup(db, _authorize(db, integ))
    assert integ.state == "pending" and integ.schedulable
    assert integ.next_run_at == clock.now()
    assert len(plane.tick().enqueued) == 1
    with pytest.raises(Conflict, match="already set up"):
        svc.finish_setup(db, integ)


def test_an_older_unfinished_setup_finishes_the_same_way(db: Session, admin: User) -> None:
    # what the setup stored before the draft state: created pending, paused at once
    integ = _authorize(db, svc.create_integration(db, admin, IntegrationCreate(name="old")))
    integ.state, integ.state_reason, integ.next_run_at = "paused", None, None
    db.commit()
    assert integ.is_draft
    assert svc.finish_setup(db, integ).state == "pending"


def test_a_pause_now_is_never_read_as_a_draft(db: Session, admin: User) -> None:
    integ = svc.create_integration(db, admin, IntegrationCreate(name="acme"))
    paused = svc.pause(db, integ)  # before it ever ran: the reason tells it apart
    assert (paused.state, paused.state_reason) == ("paused", PAUSED_REASON)
    assert paused.shown_state == "paused" and not paused.is_draft
    assert svc.reactivate(db, paused).state == "pending"
    with pytest.raises(Conflict, match="setup of acme is finished"):
        svc.update_draft(db, paused, IntegrationCreate(name="acme"))


def test_a_draft_changes_its_first_step(db: Session, admin: User) -> None:
    taken = svc.create_integration(db, admin, IntegrationCreate(name="taken"))
    integ = _authorize(db, _draft(db, admin, api_version="v2"))
    assert integ.api_version == "v2" and "my_library_files" in integ.tables
    # same name again is fine; another's name, or its table prefix, is not
    for clash, words in (("taken", "already exists"), ("taken_eu", "table prefix")):
        with pytest.raises(ValidationFailed, match=words):
            svc.update_draft(db, integ, IntegrationCreate(name=clash))
    db.refresh(integ)
    assert integ.name == "acme" and integ.has_credentials
    changed = svc.update_draft(
        db,
        integ,
        IntegrationCreate(
            name="acme_news", frequency_hours=6, history_start=date(2025, 1, 1), api_version="v3"
        ),
    )
    assert (changed.name, changed.frequency_hours, changed.history_start) == (
        "acme_news", 6, date(2025, 1, 1),
    )
    # another version: the authorization (a v2 key) is forgotten, v3's tables chosen
    assert changed.api_version == "v3" and not changed.has_credentials
    assert changed.tables == dict.fromkeys(tables_for("v3"))
    assert changed.state == "draft" and taken.name == "taken"
