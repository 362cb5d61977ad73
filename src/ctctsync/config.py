"""Configuration of one sync: source credentials, warehouse, table/column selection.

One pydantic model per concern; the same models give the JSON Schema the UI renders and
validate the config file (``ctctsync.toml``) and the control plane's forms. Secrets are
``SecretStr`` so they never print; they are usually supplied through the environment:

- ``CTCTSYNC_API_KEY``, ``CTCTSYNC_ACCESS_TOKEN`` (and ``CTCTSYNC_CLIENT_SECRET`` for OAuth)
- ``CTCTSYNC_WAREHOUSE_CREDENTIALS`` (a connection string for PostgreSQL or another destination)
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ctctsync.errors import ConfigError, ErrorRule
from ctctsync.tables import TABLES, warehouse_table_name

INTEGRATION_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""Integration names become table-name prefixes: lower snake case, at most 40 characters."""

REPLICATION_FREQUENCIES_HOURS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 24)
DEFAULT_STATE_DIR = Path(".ctctsync")


class SourceConfig(BaseModel):
    """Where and how to reach Constant Contact."""

    model_config = ConfigDict(extra="forbid")

    api_version: Literal["v2"] = "v2"
    base_url: str = "https://api.constantcontact.com"
    auth_base_url: str | None = None
    """OAuth server; defaults to Constant Contact's, or to ``base_url`` for the sandbox."""
    api_key: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    client_secret: SecretStr | None = None
    qps_limit: float | None = Field(default=4.0, gt=0)
    """Requests per second for this API key (None = no pacing, e.g. a sandbox with no limit)."""
    daily_limit: int | None = Field(default=10_000, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)

    @field_validator("base_url", "auth_base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL such as https://api.constantcontact.com")
        return v.rstrip("/")


class WarehouseConfig(BaseModel):
    """The destination. ``duckdb`` (a local file) is the default; ``postgres`` is tested;
    any other dlt destination name (bigquery, snowflake, redshift, motherduck, ...) is passed
    to dlt with ``credentials``."""

    model_config = ConfigDict(extra="forbid")

    destination: str = "duckdb"
    path: Path = Path("ctctsync.duckdb")
    """DuckDB file (duckdb only)."""
    duckdb_memory_limit: str = Field(default="128MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB)$")
    """DuckDB's buffer memory during loads (duckdb only); it spills to disk beyond it, so a
    sync's memory stays bounded whatever the account size (docs/performance.md)."""
    credentials: SecretStr | None = None
    """Connection string or credentials for non-DuckDB destinations (never logged)."""
    dataset: str = "constant_contact"
    """Schema / dataset the tables are created in."""

    @field_validator("destination")
    @classmethod
    def _dest(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*$", v):
            raise ValueError("must be a dlt destination name such as duckdb or postgres")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", v):
            raise ValueError("must be lower snake case (letters, digits, underscores)")
        return v

    @model_validator(mode="after")
    def _duckdb_names(self) -> WarehouseConfig:
        # DuckDB names the catalog after the file: a schema of the same name makes every
        # table reference ambiguous ("Ambiguous reference to catalog or schema")
        if self.destination == "duckdb" and Path(self.path).stem == self.dataset:
            raise ValueError(
                f"dataset {self.dataset!r} must differ from the DuckDB file name "
                f"({Path(self.path).name}): DuckDB cannot tell the two apart"
            )
        return self


class SyncConfig(BaseModel):
    """Everything one integration's sync needs."""

    model_config = ConfigDict(extra="forbid")

    integration: str = "constant_contact"
    source: SourceConfig = Field(default_factory=SourceConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    tables: dict[str, list[str] | None] = Field(
        default_factory=lambda: dict.fromkeys(TABLES)
    )
    """Selected tables; the value is the selected columns (None = all columns)."""
    history_start: date = Field(default_factory=lambda: date(2000, 1, 1))
    """How far back the first run of a key-based table reads."""
    lookback: timedelta = timedelta(minutes=10)
    """Re-read this much before the bookmark, to absorb clock skew and late writes."""
    state_url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'state.db'}"
    frequency_hours: int = 24

    @field_validator("tables", mode="before")
    @classmethod
    def _all_columns(cls, v: Any) -> Any:
        # TOML has no null: "*" (or true) selects every column of a table.
        if isinstance(v, dict):
            return {k: (None if c in ("*", True) else c) for k, c in v.items()}
        return v

    @field_validator("integration")
    @classmethod
    def _integration(cls, v: str) -> str:
        if not INTEGRATION_NAME_RE.match(v):
            raise ValueError(
                "must start with a letter and use only lower-case letters, digits and "
                "underscores (at most 40): it prefixes every warehouse table name"
            )
        return v

    @field_validator("frequency_hours")
    @classmethod
    def _freq(cls, v: int) -> int:
        if v not in REPLICATION_FREQUENCIES_HOURS:
            raise ValueError(f"must be one of {REPLICATION_FREQUENCIES_HOURS} hours")
        return v

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, v: timedelta) -> timedelta:
        if v < timedelta(0) or v > timedelta(days=7):
            raise ValueError("must be between 0 and 7 days")
        return v

    @field_validator("history_start")
    @classmethod
    def _history(cls, v: date) -> date:
        if v > datetime.now(UTC).date():
            raise ValueError("cannot be in the future")
        if v.year < 1996:
            raise ValueError("must be 1996 or later")
        return v

    @model_validator(mode="after")
    def _selection(self) -> SyncConfig:
        for name, cols in self.tables.items():
            if name not in TABLES:
                raise ValueError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}")
            if cols is None:
                continue
            known = set(TABLES[name].column_names)
            unknown = [c for c in cols if c not in known]
            if unknown:
                raise ValueError(
                    f"table {name!r} has no column(s) {', '.join(unknown)}; "
                    f"run `ctctsync discover` to list them"
                )
        return self

    def selected_columns(self, table_name: str) -> tuple[str, ...]:
        """The columns to extract and load: the selection plus the always-kept ones."""
        tbl = TABLES[table_name]
        chosen = self.tables.get(table_name)
        if chosen is None:
            return tbl.column_names
        keep = set(chosen) | set(tbl.required_columns)
        return tuple(c for c in tbl.column_names if c in keep)

    def table_name_in_warehouse(self, table_name: str) -> str:
        """``<integration>_<table>``, the name the warehouse table gets."""
        return warehouse_table_name(self.integration, table_name)


INVALID_CONFIG_RULE = ErrorRule(
    name="invalid_config",
    action="fail",
    failure_type="config",
    message="{detail}",
)
"""The error-table row of a configuration the user must fix (file, values, selection)."""


def config_error(message: str) -> ConfigError:
    """A ``ConfigError`` for a configuration problem found locally (no API call involved)."""
    return ConfigError(message, rule=INVALID_CONFIG_RULE)


_ENV_SECRETS: dict[str, tuple[str, str]] = {
    "CTCTSYNC_API_KEY": ("source", "api_key"),
    "CTCTSYNC_ACCESS_TOKEN": ("source", "access_token"),
    "CTCTSYNC_CLIENT_SECRET": ("source", "client_secret"),
    "CTCTSYNC_BASE_URL": ("source", "base_url"),
    "CTCTSYNC_WAREHOUSE_CREDENTIALS": ("warehouse", "credentials"),
}


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> SyncConfig:
    """Read a TOML config file (optional) and overlay secrets from the environment.

    Raises ``ConfigError`` with every problem spelled out, never echoing secret values.
    """
    env = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise config_error(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise config_error(f"config file {path} is not valid TOML: {exc}") from exc
    for var, (section, key) in _ENV_SECRETS.items():
        if env.get(var):
            raw.setdefault(section, {})[key] = env[var]
    return parse_config(raw, origin=str(path) if path else "environment")


def parse_config(raw: dict[str, Any], origin: str = "config") -> SyncConfig:
    """Validate a config mapping; errors name the field and never include secret values."""
    try:
        return SyncConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise config_error(f"invalid configuration ({origin}):\n" + "\n".join(lines)) from None
