"""Pydantic models of what goes in and out of the service layer and the REST API.

Input models only check types; the rules (name format, frequency, dates, table and column
names) live in the services, so the UI, the REST API and the CLI get the same messages.
Output models never carry secrets: credentials appear as ``"set"`` / ``"not set"``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ctctsync.control.models import ApiToken, Integration, Run, RunLog, User, WarehouseSettings
from ctctsync.tables import TABLES, Table

SetOrNot = Literal["set", "not set"]
TableSelection = dict[str, list[str] | None]
"""Table name -> selected column names (None = every column)."""


def _set(flag: bool) -> SetOrNot:
    return "set" if flag else "not set"


class IntegrationCreate(BaseModel):
    """A new integration (the first step of the setup flow)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Lower snake case; prefixes every warehouse table; immutable.")
    frequency_hours: int = Field(default=24, description="One of 1, 2, 3, 4, 6, 8, 12, 24.")
    history_start: date | str | None = Field(
        default=None, description="YYYY-MM-DD; how far back the first run reads (default: a year)."
    )
    tables: TableSelection | None = Field(
        default=None, description="Selected tables and columns; omitted = everything."
    )


class IntegrationUpdate(BaseModel):
    """Changes to an integration; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    frequency_hours: int | None = None
    tables: TableSelection | None = None


class ManualCredentials(BaseModel):
    """An API key and access token obtained outside the OAuth flow."""

    model_config = ConfigDict(extra="forbid")

    api_key: str
    access_token: str


class AuthorizeRequest(BaseModel):
    """Start OAuth; ``redirect_uri`` defaults to ``<public_base_url>/oauth/callback``."""

    model_config = ConfigDict(extra="forbid")

    redirect_uri: str | None = None


class AuthorizeUrl(BaseModel):
    """Where to send the user's browser to authorize."""

    authorize_url: str


class AuthorizationCallback(BaseModel):
    """What CC sends back to the redirect URI."""

    state: str
    code: str


class WarehouseIn(BaseModel):
    """Warehouse settings as entered; ``credentials`` None keeps the stored ones, "" clears."""

    model_config = ConfigDict(extra="forbid")

    destination: str = "duckdb"
    path: str | None = None
    dataset: str = "constant_contact"
    credentials: str | None = None


class TokenCreate(BaseModel):
    """A new personal API token."""

    model_config = ConfigDict(extra="forbid")

    name: str


class UserCreate(BaseModel):
    """A new user (admins only)."""

    model_config = ConfigDict(extra="forbid")

    email: str
    password: str
    is_admin: bool = False


# ----------------------------------------------------------------------------- outputs


class UserPublic(BaseModel):
    """A user, without the password hash."""

    id: int
    email: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        """From the model."""
        return cls(id=user.id, email=user.email, is_admin=user.is_admin, created_at=user.created_at)


class TokenPublic(BaseModel):
    """A personal API token's metadata (never the token)."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenPublic:
        """From the model."""
        return cls(
            id=token.id,
            name=token.name,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
        )


class TokenCreated(TokenPublic):
    """A token just created: the only time its plaintext is shown."""

    token: str


class CredentialsStatus(BaseModel):
    """Whether an integration can reach CC, without saying with what."""

    method: Literal["oauth", "manual"] | None
    api_key: SetOrNot
    access_token: SetOrNot


class RunPublic(BaseModel):
    """A run as the job history shows it."""

    id: str
    integration_id: int
    integration_name: str
    trigger: str
    status: str
    tables_requested: list[str] | None
    full_refresh: list[str]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    duration_seconds: float | None
    worker_id: str | None
    rows: dict[str, int]
    table_status: dict[str, str]
    total_rows: int
    api_calls: int
    error: str | None
    failure_type: str | None
    cancel_requested: bool
    resume_at: datetime | None

    @classmethod
    def of(cls, run: Run) -> RunPublic:
        """From the model (``run.integration`` is loaded)."""
        return cls(
            id=run.id,
            integration_id=run.integration_id,
            integration_name=run.integration.name,
            trigger=run.trigger,
            status=run.status,
            tables_requested=run.tables_requested,
            full_refresh=list(run.full_refresh or []),
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            heartbeat_at=run.heartbeat_at,
            duration_seconds=run.duration.total_seconds() if run.duration else None,
            worker_id=run.worker_id,
            rows=dict(run.rows or {}),
            table_status=dict(run.table_status or {}),
            total_rows=run.total_rows,
            api_calls=run.api_calls,
            error=run.error,
            failure_type=run.failure_type,
            cancel_requested=run.cancel_requested,
            resume_at=run.resume_at,
        )


class RunLogPublic(BaseModel):
    """One process-log line."""

    seq: int
    ts: datetime
    level: str
    message: str

    @classmethod
    def of(cls, line: RunLog) -> RunLogPublic:
        """From the model."""
        return cls(seq=line.seq, ts=line.ts, level=line.level, message=line.message)


class IntegrationPublic(BaseModel):
    """An integration as the UI and the REST API show it."""

    id: int
    name: str
    state: str
    state_reason: str | None
    frequency_hours: int
    history_start: date
    tables: TableSelection
    credentials: CredentialsStatus
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    next_run_at: datetime | None
    last_run: RunPublic | None

    @classmethod
    def of(cls, integ: Integration) -> IntegrationPublic:
        """From the model."""
        return cls(
            id=integ.id,
            name=integ.name,
            state=integ.state,
            state_reason=integ.state_reason,
            frequency_hours=integ.frequency_hours,
            history_start=integ.history_start,
            tables=dict(integ.tables),
            credentials=credentials_status(integ),
            created_by=integ.created_by.email if integ.created_by else None,
            created_at=integ.created_at,
            updated_at=integ.updated_at,
            activated_at=integ.activated_at,
            next_run_at=integ.next_run_at,
            last_run=RunPublic.of(integ.last_run) if integ.last_run else None,
        )


def credentials_status(integ: Integration) -> CredentialsStatus:
    """What may be said about an integration's credentials: whether they are set."""
    method = integ.auth_method if integ.auth_method in ("oauth", "manual") else None
    return CredentialsStatus(
        method=method,  # type: ignore[arg-type]
        api_key=_set(integ.has_credentials),
        access_token=_set(integ.has_credentials),
    )


class WarehousePublic(BaseModel):
    """The warehouse settings, credentials masked."""

    destination: str
    path: str
    dataset: str
    credentials: SetOrNot

    @classmethod
    def of(cls, wh: WarehouseSettings) -> WarehousePublic:
        """From the model."""
        return cls(
            destination=wh.destination,
            path=wh.path,
            dataset=wh.dataset,
            credentials=_set(wh.has_credentials),
        )


class ColumnInfo(BaseModel):
    """One column of the catalog."""

    name: str
    type: str
    required: bool
    """Keys and cursors: always loaded, whatever the selection."""
    description: str


class TableInfo(BaseModel):
    """One table of the catalog (from ``ctctsync.tables.TABLES``)."""

    name: str
    spec_name: str
    purpose: str
    replication: str
    primary_key: list[str]
    columns: list[ColumnInfo]

    @classmethod
    def of(cls, table: Table) -> TableInfo:
        """From the registry."""
        required = set(table.required_columns)
        return cls(
            name=table.name,
            spec_name=table.spec_name,
            purpose=table.purpose,
            replication=table.replication,
            primary_key=list(table.primary_key),
            columns=[
                ColumnInfo(
                    name=c.name, type=c.type, required=c.name in required, description=c.description
                )
                for c in table.columns
            ],
        )


def table_catalog() -> list[TableInfo]:
    """Every table the UI can offer, in registry order."""
    return [TableInfo.of(t) for t in TABLES.values()]
