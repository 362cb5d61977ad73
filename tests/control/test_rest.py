"""The REST API over a real store: every endpoint, authorization, validation answers."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from ctctsync.control import services as svc
from ctctsync.control.models import User
from ctctsync.control.plane import ControlPlane
from ctctsync.control.settings import ControlSettings
from ctctsync.tables import TABLES
from ctctsync.web.api import create_api_app

from .helpers import finish

with warnings.catch_warnings():
    # Starlette now prefers the httpx2 package; httpx still works and is what we have.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def client(plane: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_api_app(plane)) as c:
        yield c


def _auth(db: Session, user: User) -> dict[str, str]:
    _token, plaintext = svc.create_api_token(db, user, "tests")
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def as_alice(db: Session, alice: User) -> dict[str, str]:
    return _auth(db, alice)


@pytest.fixture
def as_bob(db: Session, bob: User) -> dict[str, str]:
    return _auth(db, bob)


@pytest.fixture
def as_admin(db: Session, admin: User) -> dict[str, str]:
    return _auth(db, admin)


def _create(client: TestClient, headers: dict[str, str], **data: Any) -> dict[str, Any]:
    data.setdefault("name", "acme")
    r = client.post("/api/v1/integrations", json=data, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _connect(client: TestClient, headers: dict[str, str], iid: int) -> dict[str, Any]:
    r = client.put(
        f"/api/v1/integrations/{iid}/credentials",
        json={"api_key": "secret-key-123", "access_token": "secret-token-456"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


ENDPOINTS = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/tables"),
    ("GET", "/api/v1/integrations"),
    ("POST", "/api/v1/integrations"),
    ("GET", "/api/v1/integrations/1"),
    ("PATCH", "/api/v1/integrations/1"),
    ("DELETE", "/api/v1/integrations/1"),
    ("POST", "/api/v1/integrations/1/pause"),
    ("POST", "/api/v1/integrations/1/reactivate"),
    ("POST", "/api/v1/integrations/1/run"),
    ("POST", "/api/v1/integrations/1/tables/contacts/resync"),
    ("POST", "/api/v1/integrations/1/authorize"),
    ("PUT", "/api/v1/integrations/1/credentials"),
    ("GET", "/api/v1/integrations/1/runs"),
    ("POST", "/api/v1/oauth/complete"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/abc"),
    ("GET", "/api/v1/runs/abc/logs"),
    ("POST", "/api/v1/runs/abc/cancel"),
    ("GET", "/api/v1/warehouse"),
    ("PUT", "/api/v1/warehouse"),
    ("POST", "/api/v1/warehouse/test"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/1"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
]


@pytest.mark.parametrize(
    ("method", "path"), [pytest.param(m, p, id=f"{m} {p}") for m, p in ENDPOINTS]
)
def test_signed_out_is_401(client: TestClient, admin: User, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer ctct_not-a-token"}):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["detail"]


def test_every_endpoint_is_in_the_openapi_schema(
    client: TestClient, as_alice: dict[str, str]
) -> None:
    # Published under the API, behind a token like the rest of it.
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/openapi.json").status_code == 404
    schema = client.get("/api/v1/openapi.json", headers=as_alice).json()
    assert schema["info"]["title"] == "ctctsync REST API"
    for method, path in ENDPOINTS:
        template = (
            path.replace("/1", "/{integration_id}", 1)
            .replace("/abc", "/{run_id}")
            .replace("/contacts/", "/{table}/")
        )
        if path.startswith("/api/v1/tokens/"):
            template = "/api/v1/tokens/{token_id}"
        assert method.lower() in schema["paths"][template], (method, template)


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }


def test_openapi_documents_every_refusal(client: TestClient, as_alice: dict[str, str]) -> None:
    # issue 8 §2: every status an operation can answer is in the schema, with the one
    # error shape; this is what the schemathesis run then holds the API to
    ops = _operations(client.get("/api/v1/openapi.json", headers=as_alice).json())
    for name, op in ops.items():
        codes = set(op["responses"])
        assert {"401", "422"} <= codes, name
        for code in codes - {"200", "201", "202", "204"}:
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (name, code)
        if "{" in name:  # names a resource
            assert "404" in codes, name
    for name in (
        "PUT /api/v1/warehouse",
        "POST /api/v1/warehouse/test",
        "GET /api/v1/users",
        "POST /api/v1/users",
    ):
        assert "403" in ops[name]["responses"], name
    for name in (
        "DELETE /api/v1/integrations/{integration_id}",
        "POST /api/v1/integrations/{integration_id}/run",
        "POST /api/v1/runs/{run_id}/cancel",
    ):
        assert "409" in ops[name]["responses"], name


def test_openapi_documents_the_constraints(client: TestClient, as_alice: dict[str, str]) -> None:
    schema = client.get("/api/v1/openapi.json", headers=as_alice).json()
    models = schema["components"]["schemas"]
    create = models["IntegrationCreate"]["properties"]
    assert create["name"]["pattern"].startswith("^[a-z]")
    assert create["name"]["maxLength"] == 40
    assert create["frequency_hours"]["enum"] == [1, 2, 3, 4, 6, 8, 12, 24]
    tables = create["tables"]["anyOf"][0]
    assert tables["additionalProperties"] is False and tables["minProperties"] == 1
    assert set(tables["properties"]) == set(TABLES)
    assert models["WarehouseIn"]["properties"]["dataset"]["pattern"] == "^[a-z_][a-z0-9_]{0,62}$"
    credentials = models["ManualCredentials"]["properties"]
    for field in ("api_key", "access_token"):
        assert credentials[field]["pattern"] == "^[!-~]+$", field
        assert credentials[field]["minLength"] == 1
    assert models["UserCreate"]["properties"]["password"]["minLength"] == 8
    assert "@" in models["UserCreate"]["properties"]["email"]["pattern"]
    assert models["TokenCreate"]["properties"]["name"]["minLength"] == 1
    ops = _operations(schema)
    ids = ops["GET /api/v1/integrations/{integration_id}"]["parameters"][0]["schema"]
    assert (ids["minimum"], ids["maximum"]) == (1, 2**31 - 1)
    run_id = ops["GET /api/v1/runs/{run_id}"]["parameters"][0]["schema"]
    assert "pattern" in run_id


def test_a_malformed_body_is_422_not_400(client: TestClient, as_alice: dict[str, str]) -> None:
    r = client.post(
        "/api/v1/tokens",
        content=b"\xff{",
        headers={**as_alice, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert "JSON" in r.json()["errors"]["body"]


def test_method_not_allowed_lists_every_method(
    client: TestClient, as_alice: dict[str, str]
) -> None:
    r = client.put("/api/v1/integrations", headers=as_alice)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"


def test_another_users_integration_is_404(
    client: TestClient, db: Session, as_alice: dict[str, str], as_bob: dict[str, str]
) -> None:
    iid = _create(client, as_alice)["id"]
    _connect(client, as_alice, iid)
    run = client.post(f"/api/v1/integrations/{iid}/run", headers=as_alice).json()
    for method, path in ENDPOINTS:
        if "/integrations/1" in path or "/runs/abc" in path:
            real = path.replace("/integrations/1", f"/integrations/{iid}").replace(
                "/runs/abc", f"/runs/{run['id']}"
            )
            r = client.request(method, real, headers=as_bob, json={})
            assert r.status_code == 404, (method, real, r.text)
    assert client.get("/api/v1/integrations", headers=as_bob).json() == []
    assert client.get("/api/v1/runs", headers=as_bob).json() == []
    # ...and it is all still there for its owner.
    assert client.get(f"/api/v1/integrations/{iid}", headers=as_alice).json()["state"] == "pending"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "acme"}, "name", id="duplicate"),
        pytest.param({"name": "Bad Name!"}, "name", id="invalid-name"),
        pytest.param({"name": "x", "frequency_hours": 5}, "frequency_hours", id="bad-frequency"),
        pytest.param({"name": "x", "frequency_hours": "daily"}, "frequency_hours", id="not-int"),
        pytest.param({"name": "x", "history_start": "2999-12-31"}, "history_start", id="future"),
        pytest.param({"name": "x", "history_start": "31.12.2024"}, "history_start", id="malformed"),
        pytest.param({"name": "x", "tables": {"contactz": None}}, "tables", id="unknown-table"),
        pytest.param(
            {"name": "x", "tables": {"contacts": ["shoe_size"]}}, "tables.contacts", id="field"
        ),
        pytest.param({}, "name", id="missing-name"),
        pytest.param({"name": "x", "colour": "red"}, "colour", id="unknown-key"),
    ],
)
def test_create_validation(
    client: TestClient, as_alice: dict[str, str], data: dict[str, Any], field: str
) -> None:
    _create(client, as_alice)
    before = client.get("/api/v1/integrations", headers=as_alice).json()
    r = client.post("/api/v1/integrations", json=data, headers=as_alice)
    assert r.status_code == 422, r.text
    body = r.json()
    assert field in body["errors"], body
    assert body["errors"][field] and body["detail"]
    assert client.get("/api/v1/integrations", headers=as_alice).json() == before


def test_integration_lifecycle(client: TestClient, db: Session, as_alice: dict[str, str]) -> None:
    created = _create(client, as_alice, frequency_hours=6, history_start="2024-01-01")
    iid = created["id"]
    assert created["credentials"] == {
        "method": None,
        "api_key": "not set",
        "access_token": "not set",
    }
    r = client.post(f"/api/v1/integrations/{iid}/run", headers=as_alice)
    assert r.status_code == 422 and "credentials" in r.json()["errors"]
    connected = _connect(client, as_alice, iid)
    assert connected["credentials"] == {"method": "manual", "api_key": "set", "access_token": "set"}
    shown = client.get(f"/api/v1/integrations/{iid}", headers=as_alice)
    assert "secret-key-123" not in shown.text and "secret-token-456" not in shown.text

    r = client.patch(
        f"/api/v1/integrations/{iid}",
        json={"frequency_hours": 12, "tables": {"contacts": None, "events": ["name"]}},
        headers=as_alice,
    )
    assert r.status_code == 200, r.text
    assert r.json()["frequency_hours"] == 12 and set(r.json()["tables"]) == {"contacts", "events"}
    r = client.patch(f"/api/v1/integrations/{iid}", json={"frequency_hours": 7}, headers=as_alice)
    assert r.status_code == 422 and "frequency_hours" in r.json()["errors"]
    r = client.patch(f"/api/v1/integrations/{iid}", json={"name": "other"}, headers=as_alice)
    assert r.status_code == 422 and "name" in r.json()["errors"]

    run = client.post(f"/api/v1/integrations/{iid}/run", headers=as_alice)
    assert run.status_code == 202 and run.json()["status"] == "queued"
    resync = client.post(f"/api/v1/integrations/{iid}/tables/contacts/resync", headers=as_alice)
    assert resync.status_code == 202 and resync.json()["id"] == run.json()["id"]
    bad = client.post(f"/api/v1/integrations/{iid}/tables/nope/resync", headers=as_alice)
    assert bad.status_code == 422 and "table" in bad.json()["errors"]

    runs = client.get(f"/api/v1/integrations/{iid}/runs", headers=as_alice).json()
    assert [r["id"] for r in runs] == [run.json()["id"]]
    assert client.get("/api/v1/runs", headers=as_alice).json()[0]["integration_name"] == "acme"
    rid = run.json()["id"]
    assert client.get(f"/api/v1/runs/{rid}", headers=as_alice).json()["trigger"] == "manual"
    assert client.get(f"/api/v1/runs/{rid}/logs", headers=as_alice).json() == []
    cancelled = client.post(f"/api/v1/runs/{rid}/cancel", headers=as_alice)
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/runs/{rid}/cancel", headers=as_alice)
    assert again.status_code == 409

    paused = client.post(f"/api/v1/integrations/{iid}/pause", headers=as_alice).json()
    assert paused["state"] == "paused"
    active = client.post(f"/api/v1/integrations/{iid}/reactivate", headers=as_alice).json()
    assert active["state"] == "pending"

    r = client.delete(f"/api/v1/integrations/{iid}", headers=as_alice)
    assert r.json() == {"deleted": "acme", "dropped_tables": []}
    assert client.get(f"/api/v1/integrations/{iid}", headers=as_alice).status_code == 404


def test_delete_while_running_is_409(
    client: TestClient, db: Session, as_alice: dict[str, str], plane: ControlPlane
) -> None:
    iid = _create(client, as_alice)["id"]
    _connect(client, as_alice, iid)
    rid = client.post(f"/api/v1/integrations/{iid}/run", headers=as_alice).json()["id"]
    assert plane.claim_next("w") == rid
    r = client.delete(f"/api/v1/integrations/{iid}", headers=as_alice)
    assert r.status_code == 409 and "in progress" in r.json()["detail"]
    assert client.get(f"/api/v1/runs/{rid}", headers=as_alice).json()["cancel_requested"]
    finish(db, rid, "cancelled")
    assert client.delete(f"/api/v1/integrations/{iid}", headers=as_alice).status_code == 200


def test_authorize_without_app_credentials(client: TestClient, as_alice: dict[str, str]) -> None:
    iid = _create(client, as_alice)["id"]
    r = client.post(f"/api/v1/integrations/{iid}/authorize", headers=as_alice)
    assert r.status_code == 422 and "CTCTSYNC_API_KEY" in r.json()["errors"]["credentials"]
    r = client.post("/api/v1/oauth/complete", json={"state": "x", "code": "y"}, headers=as_alice)
    assert r.status_code == 422 and "expired" in r.json()["errors"]["state"]


def test_catalog_and_me(client: TestClient, as_alice: dict[str, str]) -> None:
    tables = client.get("/api/v1/tables", headers=as_alice).json()
    assert [t["name"] for t in tables] == list(TABLES)
    contacts = tables[0]
    assert any(c["required"] for c in contacts["columns"])
    assert client.get("/api/v1/me", headers=as_alice).json()["email"] == "alice@example.com"


def test_warehouse(
    client: TestClient,
    plane: ControlPlane,
    as_alice: dict[str, str],
    as_admin: dict[str, str],
    settings: ControlSettings,
) -> None:
    shown = client.get("/api/v1/warehouse", headers=as_alice).json()
    assert shown == {
        "destination": "duckdb",
        "path": str(settings.data_dir / "warehouse.duckdb"),
        "dataset": "constant_contact",
        "credentials": "not set",
    }
    change = {
        "destination": "duckdb",
        "path": str(settings.data_dir / "w2.duckdb"),
        "dataset": "cc",
    }
    assert client.put("/api/v1/warehouse", json=change, headers=as_alice).status_code == 403
    assert client.post("/api/v1/warehouse/test", headers=as_alice).status_code == 403
    r = client.put("/api/v1/warehouse", json={**change, "dataset": "Bad-Name"}, headers=as_admin)
    assert r.status_code == 422 and "dataset" in r.json()["errors"]
    r = client.put(
        "/api/v1/warehouse",
        json={"destination": "postgres", "dataset": "cc"},
        headers=as_admin,
    )
    assert r.status_code == 422 and "credentials" in r.json()["errors"]
    r = client.put("/api/v1/warehouse", json=change, headers=as_admin)
    assert r.status_code == 200 and r.json()["dataset"] == "cc"
    ok = client.post("/api/v1/warehouse/test", headers=as_admin)
    assert ok.status_code == 200 and ok.json()["ok"], ok.text
    bad = {
        "destination": "postgres",
        "dataset": "cc",
        "credentials": "postgresql://nobody:hunter2secret@127.0.0.1:9/none",
    }
    r = client.post("/api/v1/warehouse/test", json=bad, headers=as_admin)
    assert r.status_code == 422 and r.json()["errors"]["warehouse"]
    assert "hunter2secret" not in r.text
    r = client.put("/api/v1/warehouse", json=bad, headers=as_admin)
    assert r.status_code == 200 and r.json()["credentials"] == "set"
    assert "hunter2secret" not in r.text
    with plane.engine.connect() as conn:
        raw = conn.exec_driver_sql("select * from warehouse_settings").one()
    assert "hunter2secret" not in " ".join(map(str, raw))


def test_tokens_and_users(
    client: TestClient, as_alice: dict[str, str], as_admin: dict[str, str]
) -> None:
    created = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=as_alice)
    assert created.status_code == 201
    token = created.json()["token"]
    listed = client.get("/api/v1/tokens", headers=as_alice).json()
    assert {t["name"] for t in listed} == {"tests", "laptop"}
    assert token not in json.dumps(listed)
    fresh = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=fresh).status_code == 200
    tid = created.json()["id"]
    assert client.delete(f"/api/v1/tokens/{tid}", headers=as_alice).status_code == 204
    assert client.get("/api/v1/me", headers=fresh).status_code == 401
    assert client.post("/api/v1/tokens", json={"name": ""}, headers=as_alice).status_code == 422

    assert client.get("/api/v1/users", headers=as_alice).status_code == 403
    r = client.post(
        "/api/v1/users",
        json={"email": "carol@example.com", "password": "longenough"},
        headers=as_admin,
    )
    assert r.status_code == 201 and "password" not in r.text
    dup = client.post(
        "/api/v1/users",
        json={"email": "carol@example.com", "password": "longenough"},
        headers=as_admin,
    )
    assert dup.status_code == 422 and "email" in dup.json()["errors"]
    emails = [u["email"] for u in client.get("/api/v1/users", headers=as_admin).json()]
    assert "carol@example.com" in emails
