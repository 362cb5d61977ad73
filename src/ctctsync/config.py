"""Configuration of one sync: source credentials, warehouse, table/column selection.

One pydantic model per concern; the same models give the JSON Schema the UI renders and
validate the config file (``ctctsync.toml``) and the control plane's forms. Secrets are
``SecretStr`` so they never print, and come only from the environment (a secret in the file
is refused: the file is not a secret store, it gets copied, shared and committed):

- ``CTCTSYNC_API_KEY``, ``CTCTSYNC_ACCESS_TOKEN`` (and ``CTCTSYNC_CLIENT_SECRET`` for OAuth)
- ``CTCTSYNC_WAREHOUSE_CREDENTIALS`` (a connection string for PostgreSQL or another destination)
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ctctsync.destinations import capabilities_of
from ctctsync.errors import ConfigError, ErrorRule
from ctctsync.tables import TABLES, ApiVersion, Table, tables_for, warehouse_table_name
from ctctsync.validation import (
    DatasetName,
    DestinationName,
    FrequencyHours,
    HistoryStart,
    IntegrationName,
    Lookback,
    NewColumnsPolicy,
    TableSelection,
)

DEFAULT_STATE_DIR = Path(".ctctsync")
DEFAULT_HISTORY_START: Final = date(2000, 1, 1)
"""Where the first read of a key-based table starts unless ``history_start`` says."""
DEFAULT_LOOKBACK: Final = timedelta(minutes=10)
"""How far before its bookmark a key-based read starts unless ``lookback`` says."""

V2_BASE_URL = "https://api.constantcontact.com"
V2_AUTH_BASE_URL = "https://oauth2.constantcontact.com"
V3_BASE_URL = "https://api.cc.email"
"""v3's origin; its paths start with ``/v3/`` (v3 reference §1.1)."""
V3_AUTH_PATH = "/oauth2/default/v1"
V3_AUTH_BASE_URL = f"https://authz.constantcontact.com{V3_AUTH_PATH}"
"""CC's Okta authorization server (v3 reference §1.2)."""


class SourceConfig(BaseModel):
    """Where and how to reach Constant Contact."""

    model_config = ConfigDict(extra="forbid")

    api_version: ApiVersion = "v2"
    """``v3`` for every application registered since 2024 (OAuth2 only); ``v2`` for legacy
    keys. A config file without it means v2, as before v3 existed; ``ctctsync init``, the
    demo and the control plane write v3 for new integrations."""
    base_url: str = V2_BASE_URL
    """The API origin; when not given, Constant Contact's for the chosen version."""
    auth_base_url: str | None = None
    """OAuth server; defaults to Constant Contact's for the version, or to the sandbox's
    pages on ``base_url`` (see :attr:`resolved_auth_base_url`)."""
    api_key: SecretStr = SecretStr("")
    """v2: the API key. v3: the application's client id (the developer portal's "API key")."""
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr | None = None
    """v3 only: the rotating refresh token (``CTCTSYNC_REFRESH_TOKEN``, or stored by
    ``ctctsync auth login``)."""
    client_secret: SecretStr | None = None
    qps_limit: float | None = Field(default=4.0, gt=0)
    """Requests per second for this API key (None = no pacing, e.g. a sandbox with no limit)."""
    daily_limit: int | None = Field(default=10_000, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    rate_priority: Literal["high", "low"] = "high"
    """The calls' class at the API key's rate budget: ``low`` (a backfill, a first load, a
    re-sync, a manual run) lets ``high`` calls of the same key (scheduled incremental runs)
    go first, keeping a floor of its own (ctctsync.api.ratelimit, "Priority")."""

    @field_validator("base_url", "auth_base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http(s) URL such as https://api.constantcontact.com")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _version_defaults(self) -> SourceConfig:
        # v3 lives on another host: a v3 config without a base_url means CC's v3 host
        if self.api_version == "v3" and "base_url" not in self.model_fields_set:
            self.base_url = V3_BASE_URL
        return self

    @property
    def resolved_auth_base_url(self) -> str:
        """Where the OAuth endpoints are: as configured; else Constant Contact's for the
        version; else (a sandbox) the same host as the API, which serves both versions' pages.
        v3's is the base of ``/authorize``, ``/token``, ``/device/authorize``, ``/revoke``."""
        if self.auth_base_url:
            return self.auth_base_url
        if self.api_version == "v3":
            return V3_AUTH_BASE_URL if self.base_url == V3_BASE_URL else (
                f"{self.base_url}{V3_AUTH_PATH}")
        return V2_AUTH_BASE_URL if self.base_url == V2_BASE_URL else self.base_url


class WarehouseConfig(BaseModel):
    """The destination. ``duckdb`` (a local file) is the default; ``postgres`` is tested;
    any other dlt destination name (bigquery, snowflake, redshift, motherduck, ...) is passed
    to dlt with ``credentials``."""

    model_config = ConfigDict(extra="forbid")

    destination: DestinationName = "duckdb"
    path: Path = Path("ctctsync.duckdb")
    """DuckDB file (duckdb only)."""
    duckdb_memory_limit: str = Field(default="128MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB)$")
    """DuckDB's buffer memory during loads (duckdb only); it spills to disk beyond it, so a
    sync's memory stays bounded whatever the account size (docs/performance.md)."""
    credentials: SecretStr | None = None
    """Connection string or credentials for non-DuckDB destinations (never logged)."""
    dataset: DatasetName = "constant_contact"
    """Schema / dataset the tables are created in."""

    @model_validator(mode="after")
    def _duckdb_names(self) -> WarehouseConfig:
        # DuckDB names the catalog after the file: a schema of the same name makes every
        # table reference ambiguous ("Ambiguous reference to catalog or schema")
        named_after_file = capabilities_of(self.destination).catalog_named_after_file
        if named_after_file and Path(self.path).stem == self.dataset:
            raise ValueError(
                f"dataset {self.dataset!r} must differ from the DuckDB file name "
                f"({Path(self.path).name}): DuckDB cannot tell the two apart"
            )
        return self


class TrackingTier(BaseModel):
    """One tier of campaign checks: campaigns sent at least ``older_than_days`` ago are
    checked at most every ``every_hours`` (0: on every run)."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(ge=0, le=3650)
    every_hours: int = Field(ge=0, le=24 * 366)

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        # the file's short form: [older_than_days, every_hours]
        if isinstance(v, list | tuple):
            if len(v) != 2:
                raise ValueError(
                    "a tier is [older_than_days, every_hours], e.g. [30, 24]")
            return {"older_than_days": v[0], "every_hours": v[1]}
        return v


DEFAULT_TIERS: tuple[TrackingTier, ...] = (
    TrackingTier(older_than_days=0, every_hours=0),
    TrackingTier(older_than_days=30, every_hours=24),
    TrackingTier(older_than_days=90, every_hours=168),
)
"""Sent less than 30 days ago: every run; 30-90 days: daily; older: weekly."""


class TrackingPolicy(BaseModel):
    """How often each sent campaign's tracking is checked (``[tracking]``; the campaign
    planner, ``ctctsync.sync.campaigns``; the tiers are applied by ``ctctsync.sync.tiers``),
    and v3 events' registrations (``events_every_hours``, ``ctctsync.sync.events``).

    A campaign's activity decays within weeks of its send, so older campaigns are checked
    less often; their activity is not lost meanwhile, only loaded at their next check.
    """

    model_config = ConfigDict(extra="forbid")

    tiers: tuple[TrackingTier, ...] = DEFAULT_TIERS
    """By age since the send; the first tier must start at 0 days, ages strictly rise."""
    recheck_days: int = Field(default=30, ge=1, le=3650)
    """Every campaign's tracking is read whole once per this many days (staggered by
    campaign, so campaigns loaded together do not all come due the same day), to catch what
    counts cannot show (an activity retracted while another arrived)."""
    events_every_hours: int = Field(default=24, ge=0, le=24 * 366)
    """v3: each event's registrations are read again at least once per this many hours
    (staggered by event; 0: on every run), besides when its list record changed or while it
    is live (``ctctsync.sync.events``): a payment or check-in on an event that is neither
    waits until then. Each event's detail is re-read once per ``recheck_days``."""

    @model_validator(mode="after")
    def _ordered(self) -> TrackingPolicy:
        if not self.tiers:
            raise ValueError("tiers: at least one tier, e.g. [[0, 0]]")
        if self.tiers[0].older_than_days != 0:
            raise ValueError(
                "tiers: the first tier must start at 0 days, so every campaign "
                f"has a tier (it starts at {self.tiers[0].older_than_days})")
        for before, after in zip(self.tiers, self.tiers[1:], strict=False):
            if after.older_than_days <= before.older_than_days:
                raise ValueError(
                    "tiers: older_than_days must rise from tier to tier "
                    f"({before.older_than_days} then {after.older_than_days})")
            if after.every_hours < before.every_hours:
                raise ValueError(
                    "tiers: an older tier cannot be checked more often than a "
                    f"younger one ({before.every_hours} h, then {after.every_hours} h)")
        return self


class SyncConfig(BaseModel):
    """Everything one integration's sync needs."""

    model_config = ConfigDict(extra="forbid")

    integration: IntegrationName = "constant_contact"
    source: SourceConfig = Field(default_factory=SourceConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    tables: TableSelection = Field(default_factory=lambda: dict.fromkeys(tables_for("v2")))
    """Selected tables; the value is the selected columns (None = all columns). When not
    given: every table the API version can fill."""
    history_start: HistoryStart = DEFAULT_HISTORY_START
    """How far back the first run of a key-based table reads."""
    lookback: Lookback = DEFAULT_LOOKBACK
    """Re-read this much before the bookmark, to absorb clock skew and late writes."""
    state_url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'state.db'}"
    frequency_hours: FrequencyHours = 24
    tracking: TrackingPolicy = Field(default_factory=TrackingPolicy)
    """How often sent campaigns' tracking is checked (tiers by age, the full re-check)."""
    new_columns: NewColumnsPolicy = "ignore"
    """Fields the table registry does not know: ``ignore`` reports them (run log,
    ``discover``, the UI) without loading them; ``add`` also loads each as a new text column
    (lists/objects as JSON text) named by the field in snake case."""

    @field_validator("tables", mode="before")
    @classmethod
    def _all_columns(cls, v: Any) -> Any:
        # TOML has no null: "*" (or true) selects every column of a table.
        if isinstance(v, dict):
            return {k: (None if c in ("*", True) else c) for k, c in v.items()}
        return v

    @model_validator(mode="after")
    def _tables_of_version(self) -> SyncConfig:
        version = self.source.api_version
        if "tables" not in self.model_fields_set:
            self.tables = dict.fromkeys(tables_for(version))
            return self
        problems = [
            f"{name}: {TABLES[name].unavailable_reason(version)}"
            for name in self.tables
            if not TABLES[name].available_in(version)
        ]
        available = tables_for(version)
        for name, cols in self.tables.items():
            if cols and name in available:
                missing = [c for c in cols if c not in available[name].column_names]
                if missing:
                    problems.append(
                        f"{name}: the {version} API has no column {', '.join(missing)}")
        if problems:
            raise ValueError(
                f"tables not available with api_version {version!r}: " + "; ".join(problems))
        return self

    def table(self, table_name: str) -> Table:
        """The table as this config's API version fills it."""
        return TABLES[table_name].for_version(self.source.api_version)

    def selected_columns(self, table_name: str) -> tuple[str, ...]:
        """The columns to extract and load: the selection plus the always-kept ones."""
        tbl = self.table(table_name)
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
    "CTCTSYNC_REFRESH_TOKEN": ("source", "refresh_token"),
    "CTCTSYNC_CLIENT_SECRET": ("source", "client_secret"),
    "CTCTSYNC_BASE_URL": ("source", "base_url"),
    "CTCTSYNC_WAREHOUSE_CREDENTIALS": ("warehouse", "credentials"),
}
"""Environment variables that fill one nested field each (secrets, mostly)."""


def _is_secret(section: str, key: str) -> bool:
    model = SyncConfig.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    annotation = model.model_fields[key].annotation
    return SecretStr in (annotation, *get_args(annotation))


FILE_FORBIDDEN: dict[tuple[str, str], str] = {
    field: var for var, field in _ENV_SECRETS.items() if _is_secret(*field)
}
"""The secret fields (every ``SecretStr``) and the variable each must come from instead."""


def _refuse_file_secrets(data: Mapping[str, Any], path: Path | None) -> None:
    """One rule, no warnings: the config file holds no secret, not even an empty one."""
    found = [
        (f"{section}.{key}", var)
        for (section, key), var in FILE_FORBIDDEN.items()
        if isinstance(data.get(section), Mapping) and key in data[section]
    ]
    if found:
        lines = "\n".join(f"  {name}: remove it and set {var} instead" for name, var in found)
        raise config_error(
            f"config file {path} holds secrets; they come only from the environment:\n{lines}"
        )


class _EnvSecrets(PydanticBaseSettingsSource):
    """The ``_ENV_SECRETS`` variables of ``environ`` as a nested mapping (blank ones unset)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` maps the variables to nested fields itself."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The nested values, e.g. ``{"source": {"api_key": "..."}}``."""
        values: dict[str, Any] = {}
        for var, (section, key) in _ENV_SECRETS.items():
            if self._environ.get(var):
                values.setdefault(section, {})[key] = self._environ[var]
        return values


class SyncSettings(BaseSettings, SyncConfig):
    """``SyncConfig`` read from a TOML file with ``_ENV_SECRETS`` from the environment on top.

    Built only by ``load_config``, which hands it its two sources (the environment first,
    so it wins over the file, field by field).
    """

    model_config = SettingsConfigDict(extra="forbid")


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> SyncConfig:
    """Read a TOML config file (optional) and overlay secrets from the environment.

    Raises ``ConfigError`` with every problem spelled out, never echoing secret values.
    """
    env = os.environ if environ is None else environ
    if path is not None and not path.is_file():
        raise config_error(f"config file {path} does not exist")
    try:
        toml = TomlConfigSettingsSource(SyncSettings, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise config_error(f"config file {path} is not valid TOML: {exc}") from exc
    _refuse_file_secrets(toml(), path)
    origin = str(path) if path else "environment"
    sources = (_EnvSecrets(SyncSettings, env), toml)
    settings = _validated(
        # pydantic's mypy plugin leaves BaseSettings' own init options out of the signature
        lambda: SyncSettings(_build_sources=(sources, {})),  # type: ignore[call-arg]
        origin,
    )
    # Callers get the plain model (already validated: no second pass).
    return SyncConfig.model_construct(
        settings.model_fields_set,
        **{name: getattr(settings, name) for name in SyncConfig.model_fields},
    )


def parse_config(raw: dict[str, Any], origin: str = "config") -> SyncConfig:
    """Validate a config mapping; errors name the field and never include secret values."""
    return _validated(lambda: SyncConfig.model_validate(raw), origin)


_M = TypeVar("_M", bound=BaseModel)


def _validated(build: Callable[[], _M], origin: str) -> _M:
    try:
        return build()
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise config_error(f"invalid configuration ({origin}):\n" + "\n".join(lines)) from None
