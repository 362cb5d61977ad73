"""The shared input rules: one message per rule, the same for the config file, REST and forms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ctctsync.config import SyncConfig
from ctctsync.control.schemas import (
    IntegrationCreate,
    IntegrationPublic,
    IntegrationUpdate,
    RunPublic,
    WarehouseIn,
    WarehousePublic,
)
from ctctsync.tables import tables_for
from ctctsync.validation import (
    FREQUENCY_MESSAGE,
    NO_TABLE_MESSAGE,
    REPLICATION_FREQUENCIES_HOURS,
    field_errors,
    selection_problems,
)

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""


def _errors(model: type[BaseModel], **values: Any) -> dict[str, str]:
    try:
        model.model_validate(values)
    except ValidationError as exc:
        return field_errors(exc)
    return {}


TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        pytest.param("name", " ", "Enter a name", id="blank-name"),
        pytest.param("name", "Acme", "lower-case", id="capitals"),
        pytest.param("name", "a" * 41, "1-40", id="too-long"),
        pytest.param("frequency_hours", "5", FREQUENCY_MESSAGE, id="freq-5"),
        pytest.param("frequency_hours", "daily", FREQUENCY_MESSAGE, id="freq-text"),
        pytest.param("history_start", "2024-02-30", "YYYY-MM-DD", id="no-such-day"),
        pytest.param("history_start", TOMORROW, "future", id="future"),
        pytest.param("history_start", "1995-12-31", "1996-01-01 or later", id="ancient"),
        pytest.param("tables", {}, NO_TABLE_MESSAGE, id="no-table"),
        pytest.param("tables", {"nope": None}, "Unknown table(s): nope.", id="unknown-table"),
    ],
)
def test_one_message_per_rule_for_the_api_and_the_config(
    field: str, value: object, words: str
) -> None:
    api = _errors(IntegrationCreate, **{"name": "acme", field: value})
    assert words in api[field], api
    config_field = "integration" if field == "name" else field
    config = _errors(SyncConfig, **{config_field: value})
    assert config[config_field] == api[field]


def test_column_errors_name_the_table() -> None:
    problems = selection_problems({"contacts": ["zz", "id"], "events": None})
    assert problems == [(("contacts",), problems[0][1])]
    assert "contacts has no column(s) zz." in problems[0][1]
    errors = _errors(IntegrationUpdate, tables={"contacts": ["zz"]}, frequency_hours=7)
    assert set(errors) == {"tables.contacts", "frequency_hours"}


def test_valid_input_is_normalised() -> None:
    data = IntegrationCreate.model_validate(
        {"name": " acme ", "frequency_hours": "6", "history_start": "", "tables": None}
    )
    assert (data.name, data.frequency_hours, data.history_start) == ("acme", 6, None)
    chosen = IntegrationUpdate(tables={"events": None, "contacts": ["first_name"]}).tables
    assert chosen == {"contacts": ["id", "first_name", "modified_date"], "events": None}
    # the config file keeps the selection as written (the sync adds keys itself)
    assert SyncConfig(tables={"contacts": ["first_name"]}).tables == {"contacts": ["first_name"]}


def test_warehouse_names() -> None:
    errors = _errors(WarehouseIn, destination="Big Query", dataset="Has Space")
    assert set(errors) == {"destination", "dataset"}
    assert WarehouseIn(destination=" postgres ", dataset="cc").destination == "postgres"


def test_openapi_schema_shows_the_constraints() -> None:
    props = IntegrationCreate.model_json_schema()["properties"]
    assert props["name"]["pattern"] == "^[a-z][a-z0-9_]{0,39}$"
    assert props["name"]["maxLength"] == 40
    assert props["frequency_hours"]["enum"] == list(REPLICATION_FREQUENCIES_HOURS)
    assert props["history_start"]["anyOf"][0]["format"] == "date"
    dataset = WarehouseIn.model_json_schema()["properties"]["dataset"]
    assert dataset["pattern"].startswith("^[a-z_]")


class _Obj:
    """Stands in for an ORM object: attributes only."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def test_public_models_read_attributes_and_survive_a_round_trip() -> None:
    now = datetime.now(UTC)
    run = _Obj(
        id="r1", integration_id=1, integration=_Obj(name="acme"), trigger="manual",
        status="succeeded", tables_requested=None, full_refresh=None, created_at=now,
        started_at=now, finished_at=now, heartbeat_at=None, duration=timedelta(seconds=90),
        worker_id=None, rows=None, table_status={"contacts": "ok"}, total_rows=0, api_calls=3,
        error=None, failure_type=None, cancel_requested=False, resume_at=None,
        warnings=None, status_label="succeeded",
    )  # fmt: skip
    integ = _Obj(
        id=1, name="acme", state="active", state_reason=None, frequency_hours=24,
        history_start=date(2024, 1, 1), tables=dict.fromkeys(V2_TABLES), auth_method="manual",
        has_credentials=True, created_by=None, created_at=now, updated_at=now,
        activated_at=now, next_run_at=None, last_run=run,
    )  # fmt: skip
    shown = IntegrationPublic.model_validate(integ)
    assert shown.credentials.model_dump() == {
        "method": "manual",
        "api_key": "set",
        "access_token": "set",
    }
    assert shown.last_run is not None
    assert (shown.last_run.integration_name, shown.last_run.duration_seconds) == ("acme", 90.0)
    assert (shown.last_run.full_refresh, shown.last_run.rows) == ([], {})
    dumped = shown.model_dump()
    assert "has_credentials" not in dumped and "auth_method" not in dumped
    # FastAPI dumps a returned model and validates the dump against the response model
    assert IntegrationPublic.model_validate(dumped).model_dump() == dumped
    assert RunPublic.model_validate(shown.last_run.model_dump()) == shown.last_run
    wh = WarehousePublic.model_validate(
        _Obj(destination="duckdb", path="w.duckdb", dataset="cc", has_credentials=False)
    )
    assert wh.credentials == "not set"
