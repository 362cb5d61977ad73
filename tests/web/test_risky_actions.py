"""What the risky actions' pages say when there is little to say, or the warehouse cannot be
read (issue 12 §4). The browser test (``test_setup_edges.py``) walks them with real data;
these check the edges over HTTP: no warehouse file yet, an unreachable warehouse whose
connection string holds a password, a re-sync the quota will defer, a table not selected.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from ctctsync.api.ratelimit import fingerprint
from ctctsync.control import services as svc
from ctctsync.control.models import Integration, User
from ctctsync.control.schemas import IntegrationCreate, KeyLimitsIn, WarehouseIn
from ctctsync.control.services.warehouse import integration_table_rows
from web.helpers import ADMIN_EMAIL, WebClient, WebServer

PASSWORD_IN_URL = "s3cret-warehouse-pw"


def _integration(web: WebServer, name: str = "acme") -> int:
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        integ = svc.create_integration(db, user, IntegrationCreate(name=name))
        integ.credentials_encrypted = svc.context(db).box.encrypt_json(
            {"api_key": "acme-api-key-0123456789", "access_token": "t" * 30}
        )
        integ.api_version = "v2"
        db.commit()
        return integ.id


def test_no_warehouse_file_yet(admin: WebClient, web: WebServer) -> None:
    integ_id = _integration(web)
    with web.plane.session() as db:
        warehouse = Path(svc.get_warehouse(db).path)
        assert integration_table_rows(db, "acme").rows == {}
    assert not warehouse.exists()  # looking did not create it
    page = admin.get(f"/integrations/{integ_id}/delete").text
    assert 'id="no-warehouse-tables"' in page and "nothing to keep or drop" in page
    assert 'id="warehouse-tables"' not in page
    assert not warehouse.exists()


def test_an_unreachable_warehouse_is_said_not_shown(admin: WebClient, web: WebServer) -> None:
    integ_id = _integration(web)
    with web.plane.session() as db:
        svc.save_warehouse(
            db,
            WarehouseIn(
                destination="postgres",
                credentials=f"postgresql://loader:{PASSWORD_IN_URL}@127.0.0.1:9/warehouse",
            ),
        )
        rows = integration_table_rows(db, "acme")
    assert rows.rows == {} and rows.problem and "could not be read" in rows.problem
    for path in (f"/integrations/{integ_id}/delete", f"/integrations/{integ_id}/edit",
                 f"/integrations/{integ_id}/tables/contacts/resync"):
        page = admin.get(path)
        assert page.status_code == 200, path
        assert PASSWORD_IN_URL not in page.text, path
    delete = admin.get(f"/integrations/{integ_id}/delete").text
    assert 'id="rows-problem"' in delete and "could not be read just now" in delete


def test_resync_confirm_says_when_the_quota_defers_it(admin: WebClient, web: WebServer) -> None:
    integ_id = _integration(web)
    path = f"/integrations/{integ_id}/tables/contacts/resync"
    page = admin.get(path).text
    assert 'id="resync-calls"' in page and 'id="resync-deferred"' not in page
    with web.plane.session() as db:
        user = db.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
        assert user is not None
        key = fingerprint("acme-api-key-0123456789")
        svc.set_key_limits(db, user, key, KeyLimitsIn(per_day=1))  # nothing fits in a day
    deferred = admin.get(path).text
    assert 'id="resync-deferred"' in deferred and "Deferred" in deferred
    assert "keeps its data until it starts" in deferred
    # asking created nothing
    with web.plane.session() as db:
        integ = db.get(Integration, integ_id)
        assert integ is not None and integ.last_run_id is None
    # a table that is not selected: back to the details, saying so
    other = admin.get(f"/integrations/{integ_id}/tables/nonsense/resync")
    assert other.status_code == 303 and other.headers["location"] == f"/integrations/{integ_id}"
    assert "is not a selected table" in admin.get(f"/integrations/{integ_id}").text
