"""The control plane's switch to API v3 (control/services/switch.py): a v2 integration that
has loaded data can be switched (``set_api_version`` alone refuses it), a v3 one cannot."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from ctctsync.control.errors import Conflict
from ctctsync.control.models import User
from ctctsync.control.services.authorization import set_api_version
from ctctsync.control.services.switch import begin_switch_to_v3
from ctctsync.tables import tables_for

from .helpers import connected


def test_a_loaded_v2_integration_switches_to_v3(db: Session, alice: User) -> None:
    integ = connected(db, alice)
    assert integ.api_version == "v2" and integ.credentials_encrypted is not None
    integ.last_run_id = "r1"  # as after its first run
    db.commit()
    with pytest.raises(Conflict):
        set_api_version(db, integ, "v3")
    db.rollback()

    begin_switch_to_v3(db, integ)
    db.expire_all()
    assert integ.api_version == "v3"
    assert integ.credentials_encrypted is None  # v2 credentials do not open v3
    assert set(integ.tables) == set(tables_for("v3"))  # every table, library ones gone


def test_a_partial_selection_keeps_the_tables_v3_has(db: Session, alice: User) -> None:
    integ = connected(db, alice, api_version="v2",
                      tables={"contacts": ["id", "fax"], "trash_files": None})
    integ.last_run_id = "r1"
    db.commit()
    begin_switch_to_v3(db, integ)
    # fax is v2-only: the table is kept with every v3 column; trash has no v3 source
    assert integ.tables == {"contacts": None}


def test_a_v3_integration_is_refused(db: Session, alice: User) -> None:
    integ = connected(db, alice)
    begin_switch_to_v3(db, integ)  # never ran: the plain version change
    with pytest.raises(Conflict, match="already reads API v3"):
        begin_switch_to_v3(db, integ)
