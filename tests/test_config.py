"""Configuration: validation messages, selection rules, secrets from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ctctsync.config import SyncConfig, load_config, parse_config
from ctctsync.errors import ConfigError
from ctctsync.tables import tables_for

V2_TABLES = tables_for("v2")
"""The tables of the v2 path (a config without api_version reads v2)."""


def test_defaults_select_every_table_and_column() -> None:
    cfg = SyncConfig()
    assert list(cfg.tables) == list(V2_TABLES)
    assert cfg.selected_columns("contacts") == V2_TABLES["contacts"].column_names
    assert cfg.table_name_in_warehouse("contacts") == "constant_contact_contacts"


@pytest.mark.parametrize(
    ("chosen", "want"),
    [
        pytest.param(["first_name"], ("id", "first_name", "modified_date"),
                     id="key-and-cursor-kept"),
        pytest.param([], ("id", "modified_date"), id="empty-selection"),
        pytest.param(["modified_date", "id"], ("id", "modified_date"), id="registry-order"),
    ],
)
def test_selected_columns(chosen: list[str], want: tuple[str, ...]) -> None:
    cfg = SyncConfig(tables={"contacts": chosen})
    assert cfg.selected_columns("contacts") == want


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"tables": {"nope": None}}, "Unknown table.*nope", id="unknown-table"),
        pytest.param({"tables": {}}, "at least one table", id="no-table"),
        pytest.param({"tables": {"contacts": ["shoe_size"]}}, "shoe_size", id="unknown-column"),
        pytest.param({"integration": "Bad Name"}, "integration", id="bad-integration"),
        pytest.param({"frequency_hours": 5}, "frequency_hours", id="bad-frequency"),
        pytest.param({"lookback": "P30D"}, "lookback", id="lookback-too-long"),
        pytest.param({"warehouse": {"dataset": "Has Space"}}, "dataset", id="bad-dataset"),
        pytest.param({"source": {"base_url": "ftp://x"}}, "base_url", id="bad-url"),
        pytest.param({"warehouse": {"path": "x/cc.duckdb", "dataset": "cc"}}, "DuckDB",
                     id="duckdb-file-named-like-dataset"),
    ],
)
def test_invalid_config_names_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_config(raw)
    assert err.value.failure_type == "config"


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"api_key": "k-secret-123", "qps_limit": -1}})
    assert "k-secret-123" not in str(err.value)
    cfg = parse_config({"source": {"api_key": "k-secret-123"}})
    assert "k-secret-123" not in repr(cfg) and "k-secret-123" not in cfg.model_dump_json()


def test_load_config_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "ctctsync.toml"
    path.write_text(
        'integration = "acme"\nlookback = "PT5M"\n'
        '[tables]\ncontacts = ["first_name"]\nevents = []\n'
        '[warehouse]\ndestination = "postgres"\ndataset = "cc"\n',
        encoding="utf-8",
    )
    env = {"CTCTSYNC_API_KEY": "key", "CTCTSYNC_ACCESS_TOKEN": "tok",
           "CTCTSYNC_WAREHOUSE_CREDENTIALS": "postgresql://u:p@h/db"}
    cfg = load_config(path, environ=env)
    assert cfg.integration == "acme" and cfg.lookback == timedelta(minutes=5)
    assert set(cfg.tables) == {"contacts", "events"}
    assert cfg.source.api_key.get_secret_value() == "key"
    assert cfg.warehouse.credentials is not None
    assert cfg.warehouse.credentials.get_secret_value() == "postgresql://u:p@h/db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "does not exist", id="missing-file"),
        pytest.param("integration = ", "not valid TOML", id="bad-toml"),
    ],
)
def test_config_file_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_environment_wins_over_the_file_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "ctctsync.toml"
    path.write_text(
        '[source]\nbase_url = "https://file.example"\nqps_limit = 2.0\n', encoding="utf-8"
    )
    cfg = load_config(path, environ={"CTCTSYNC_BASE_URL": "https://env.example"})
    assert cfg.source.base_url == "https://env.example"
    assert cfg.source.qps_limit == 2.0
    cfg = load_config(path, environ={"CTCTSYNC_API_KEY": "from-env", "CTCTSYNC_BASE_URL": ""})
    assert cfg.source.api_key.get_secret_value() == "from-env"
    assert cfg.source.base_url == "https://file.example"  # blank = unset
    assert type(cfg) is SyncConfig


def test_environment_only_and_errors_name_the_field() -> None:
    cfg = load_config(None, environ={"CTCTSYNC_ACCESS_TOKEN": "t"})
    assert cfg.source.access_token.get_secret_value() == "t"
    with pytest.raises(ConfigError, match=r"\(environment\):\n  source.base_url: ") as err:
        load_config(None, environ={"CTCTSYNC_BASE_URL": "ftp://secret-host"})
    assert "secret-host" not in str(err.value)


@pytest.mark.parametrize(
    ("section", "key", "variable"),
    [
        ("source", "api_key", "CTCTSYNC_API_KEY"),
        ("source", "access_token", "CTCTSYNC_ACCESS_TOKEN"),
        ("source", "client_secret", "CTCTSYNC_CLIENT_SECRET"),
        ("warehouse", "credentials", "CTCTSYNC_WAREHOUSE_CREDENTIALS"),
    ],
)
def test_secrets_in_the_config_file_are_refused(
    tmp_path: Path, section: str, key: str, variable: str
) -> None:
    """Issue 8: the file is not a secret store (it gets copied, shared, committed). One rule,
    the README's: secrets come only from the environment; a secret in the file is a
    configuration error (exit 2) naming the variable to use, never echoing the value."""
    path = tmp_path / "ctctsync.toml"
    path.write_text(f'[{section}]\n{key} = "s3cr3t-in-file"\n', encoding="utf-8")
    env = {variable: "from-env"}  # even when the environment also has it
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=env)
    message = str(err.value)
    assert f"{section}.{key}" in message and variable in message
    assert "s3cr3t-in-file" not in message
    assert err.value.rule.failure_type == "config"
    # the same secret from the environment is fine
    path.write_text(f"[{section}]\n", encoding="utf-8")
    cfg = load_config(path, environ=env)
    value = getattr(getattr(cfg, section), key)
    assert value is not None and value.get_secret_value() == "from-env"
