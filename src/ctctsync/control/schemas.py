"""Pydantic models of what goes in and out of the service layer and the REST API.

Input models carry the input rules (``ctctsync.validation``: name format, frequency, dates,
table and column names), so the UI, the REST API and the CLI get the same messages and the
OpenAPI schema shows the constraints. Rules that need the store (a name already taken) stay
in the services. Output models are read from the ORM objects (``model_validate(obj)``) and
never carry secrets: credentials appear as ``"set"`` / ``"not set"``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ctctsync.control.errors import ValidationFailed
from ctctsync.control.models import DEFAULT_API_VERSION, ApiVersion, Integration
from ctctsync.tables import TABLES, Table, tables_for
from ctctsync.validation import (
    AccessToken,
    ApiKey,
    DatasetName,
    DestinationName,
    EmailAddress,
    FrequencyHours,
    IntegrationName,
    NewColumnsPolicy,
    NormalisedSelection,
    OptionalHistoryStart,
    Password,
    PlainText,
    Selection,
    TokenName,
    field_errors,
)

SetOrNot = Literal["set", "not set"]


def selection_problems_for(version: ApiVersion, tables: Selection) -> dict[str, str]:
    """Per table (``tables.<name>``), why ``version`` cannot read it as selected (a table
    without a source in that version, or a column only the other version has); empty when
    it can (``ctctsync.tables``: ``available_in``, ``unavailable_reason``, ``for_version``)."""
    available = tables_for(version)
    problems: dict[str, str] = {}
    for name, cols in tables.items():
        if name not in TABLES:
            continue  # unknown names are the selection type's to refuse
        if name not in available:
            problems[f"tables.{name}"] = TABLES[name].unavailable_reason(version)
            continue
        missing = [c for c in cols or () if c not in available[name].column_names]
        if missing:
            problems[f"tables.{name}"] = (
                f"the {version} API has no column(s) {', '.join(missing)} in {name}."
            )
    return problems


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], /, **values: Any) -> _M:
    """``model(**values)``, its pydantic errors raised as ``ValidationFailed`` per field.

    For callers that build an input model from text (forms, the command line) and answer
    service errors already.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def _set(flag: bool) -> SetOrNot:
    return "set" if flag else "not set"


SetFlag = Annotated[SetOrNot, BeforeValidator(lambda v: _set(v) if isinstance(v, bool) else v)]
"""``"set"`` / ``"not set"``, read from a boolean attribute such as ``has_credentials``."""


class IntegrationCreate(BaseModel):
    """A new integration (the first step of the setup flow)."""

    model_config = ConfigDict(extra="forbid")

    name: IntegrationName = Field(
        description="Lower snake case; prefixes every warehouse table; immutable."
    )
    frequency_hours: FrequencyHours = Field(default=24, description="Hours between runs.")
    history_start: OptionalHistoryStart = Field(
        default=None, description="YYYY-MM-DD; how far back the first run reads (default: a year)."
    )
    # declared before ``tables``: the selection is checked against it
    api_version: ApiVersion = Field(
        default=DEFAULT_API_VERSION,
        description=(
            "The Constant Contact API to read: v3 (OAuth2, the default) or v2 (legacy: an "
            "API key and access token). Tables differ: see GET /tables?api_version=."
        ),
    )
    tables: NormalisedSelection | None = Field(
        default=None,
        description="Selected tables and columns; omitted = every table of the API version.",
    )
    new_columns: NewColumnsPolicy = Field(
        default="ignore",
        description=(
            "Fields the API sends that no column holds: ignore (reported only) or add "
            "(also loaded as new text columns)."
        ),
    )

    @field_validator("tables")
    @classmethod
    def _readable(cls, tables: Selection | None, info: ValidationInfo) -> Selection | None:
        version = info.data.get("api_version", DEFAULT_API_VERSION)
        if tables is not None and (problems := selection_problems_for(version, tables)):
            message = "; ".join(f"{k.removeprefix('tables.')}: {v}" for k, v in problems.items())
            raise PydanticCustomError("table_version", message)
        return tables

    @model_validator(mode="after")
    def _every_table_of_the_version(self) -> IntegrationCreate:
        # "everything" means every table this version can read (v3 has no library tables)
        if self.tables is None:
            self.tables = dict.fromkeys(tables_for(self.api_version))
        return self


class IntegrationUpdate(BaseModel):
    """Changes to an integration; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    frequency_hours: FrequencyHours | None = None
    tables: NormalisedSelection | None = None
    new_columns: NewColumnsPolicy | None = None
    api_version: ApiVersion | None = Field(
        default=None,
        description="Switch the API version: only before the integration's first run; its "
        "credentials are forgotten (authorize again).",
    )


class ManualCredentials(BaseModel):
    """An API key and access token obtained outside the OAuth flow."""

    model_config = ConfigDict(extra="forbid")

    api_key: ApiKey
    access_token: AccessToken


class AuthorizeRequest(BaseModel):
    """Start OAuth; ``redirect_uri`` defaults to ``<public_base_url>/oauth/callback``."""

    model_config = ConfigDict(extra="forbid")

    redirect_uri: Annotated[PlainText, Field(max_length=2000)] | None = None


class AuthorizeUrl(BaseModel):
    """Where to send the user's browser to authorize."""

    authorize_url: str


OptionalUrl = Annotated[
    str,
    StringConstraints(max_length=2000, pattern=r"^(https?://[^\s/\x7f]+[^\s\x7f]*)?$"),
]
"""An http(s) URL as an administrator types it (no spaces or control characters), or ""
for the default."""
PrintableAscii = r"^[\x21-\x7e]*$"
"""Client ids and secrets: printable ASCII, no spaces."""


class AppRegistrationIn(BaseModel):
    """The installation's Constant Contact application, as an administrator enters it.

    ``client_secret`` None (or omitted) keeps the stored secret; "" clears it. Empty
    ``redirect_uri`` / ``authz_base_url`` mean the defaults."""

    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=PrintableAscii)
    ]
    client_secret: (
        Annotated[str, StringConstraints(max_length=500, pattern=PrintableAscii)] | None
    ) = None
    redirect_uri: OptionalUrl | None = None
    authz_base_url: OptionalUrl | None = None


class AppRegistrationPublic(BaseModel):
    """The application as ctctsync will use it (the secret: set or not, never its value);
    ``from_environment`` names the settings a ``CTCTSYNC_*`` variable pins."""

    client_id: str
    client_secret: SetOrNot
    redirect_uri: str
    authz_base_url: str
    from_environment: list[str]


class AuthorizationCallback(BaseModel):
    """What CC sends back to the redirect URI."""

    state: Annotated[PlainText, Field(min_length=1, max_length=200)]
    code: Annotated[PlainText, Field(min_length=1, max_length=2000)]


class WarehouseIn(BaseModel):
    """Warehouse settings as entered; ``credentials`` None keeps the stored ones, "" clears."""

    model_config = ConfigDict(extra="forbid")

    destination: DestinationName = "duckdb"
    path: Annotated[PlainText, Field(max_length=1000)] | None = None
    dataset: DatasetName = "constant_contact"
    credentials: Annotated[PlainText, Field(max_length=2000)] | None = None


class TokenCreate(BaseModel):
    """A new personal API token."""

    model_config = ConfigDict(extra="forbid")

    name: TokenName


class UserCreate(BaseModel):
    """A new user (admins only)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    password: Password
    is_admin: bool = False


# ----------------------------------------------------------------------------- outputs


_READ = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)
"""Output models: built from ORM objects, or by field name in tests and docs."""


class UserPublic(BaseModel):
    """A user, without the password hash."""

    model_config = _READ

    id: int
    email: str
    is_admin: bool
    created_at: datetime


class TokenPublic(BaseModel):
    """A personal API token's metadata (never the token)."""

    model_config = _READ

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    """A token just created: the only time its plaintext is shown."""

    token: str


def _auth_method(value: Any) -> Any:
    return value if value in ("oauth", "manual") else None


class CredentialsStatus(BaseModel):
    """Whether an integration can reach CC, without saying with what."""

    model_config = _READ

    method: Annotated[Literal["oauth", "manual"] | None, BeforeValidator(_auth_method)] = Field(
        validation_alias="auth_method"
    )
    api_key: SetFlag = Field(validation_alias="has_credentials")
    access_token: SetFlag = Field(validation_alias="has_credentials")


def _credentials_of(data: dict[str, Any]) -> CredentialsStatus:
    # A one-argument default factory: pydantic passes it the fields validated so far.
    return CredentialsStatus.model_validate(data)


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


class RunPublic(BaseModel):
    """A run as the job history shows it (read from a ``Run`` whose integration is loaded)."""

    model_config = _READ

    id: str
    integration_id: int
    integration_name: str = Field(validation_alias=AliasPath("integration", "name"))
    trigger: str
    status: str
    tables_requested: list[str] | None
    full_refresh: Annotated[list[str], BeforeValidator(lambda v: list(v or []))]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    duration_seconds: Annotated[float | None, BeforeValidator(_seconds)] = Field(
        validation_alias="duration"
    )
    worker_id: str | None
    rows: Annotated[dict[str, int], BeforeValidator(lambda v: dict(v or {}))]
    table_status: Annotated[dict[str, str], BeforeValidator(lambda v: dict(v or {}))]
    total_rows: int
    api_calls: int
    error: str | None
    failure_type: str | None
    cancel_requested: bool
    resume_at: datetime | None
    warnings: Annotated[list[str], BeforeValidator(lambda v: list(v or []))] = Field(
        default_factory=list,
        description="What the run could not load, one line each (`<table>: <warning>`); a "
        "`succeeded` run with warnings is shown as `status_label` says.",
    )
    status_label: str = Field(
        description="The status as shown: `succeeded with warnings` when a succeeded run "
        "has warnings, else the status."
    )
    kind: str | None = Field(
        default=None,
        description="What the run reads: `incremental`, `first_load`, `full_refresh` or "
        "`resync` (set when it is queued or claimed).",
    )
    estimated_calls: int | None = Field(
        default=None, description="The planner's estimate of the run's API calls."
    )
    estimate_basis: str | None = Field(
        default=None, description="Where the estimate comes from, in words."
    )
    key_fingerprint: str | None = Field(
        default=None,
        description="The API key whose daily quota the run spends (a fingerprint, never the "
        "key).",
    )
    defer_reason: str | None = Field(
        default=None,
        description="Why a `deferred` run waits (it goes back to the queue at `resume_at`).",
    )


class RunLogPublic(BaseModel):
    """One process-log line."""

    model_config = _READ

    seq: int
    ts: datetime
    level: str
    message: str


class IntegrationPublic(BaseModel):
    """An integration as the UI and the REST API show it."""

    model_config = _READ

    id: int
    name: str
    state: str
    state_reason: str | None
    frequency_hours: int
    history_start: date
    tables: dict[str, list[str] | None]
    new_columns: str = "ignore"
    """The new-field policy: ``ignore`` or ``add``."""
    api_version: str = "v2"
    """``v3`` (OAuth2) or ``v2`` (legacy)."""
    access_problems: list[str] | None = None
    """v3: what the authorization lacks for the selected tables (scopes, user privileges);
    None until checked."""
    auth_method: str | None = Field(default=None, exclude=True)
    has_credentials: bool = Field(default=False, exclude=True)
    credentials: CredentialsStatus = Field(default_factory=_credentials_of)
    """Derived from the two fields above (declared first, so they are in the data)."""
    created_by: str | None = Field(default=None, validation_alias=AliasPath("created_by", "email"))
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    next_run_at: datetime | None
    last_run: RunPublic | None


def credentials_status(integ: Integration) -> CredentialsStatus:
    """What may be said about an integration's credentials: whether they are set."""
    return CredentialsStatus.model_validate(integ)


class WarehousePublic(BaseModel):
    """The warehouse settings, credentials masked."""

    model_config = _READ

    destination: str
    path: str
    dataset: str
    credentials: SetFlag = Field(validation_alias="has_credentials")


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
    replication_label: str
    """How it is really read: ContactLists is "full (read whole; key-based in the spec)"."""
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
            replication_label=table.replication_label,
            primary_key=list(table.primary_key),
            columns=[
                ColumnInfo(
                    name=c.name, type=c.type, required=c.name in required, description=c.description
                )
                for c in table.columns
            ],
        )


def table_catalog(api_version: ApiVersion | None = None) -> list[TableInfo]:
    """Every table the UI can offer, in registry order; with ``api_version``, the tables
    that version fills, as it fills them (``ctctsync.tables.tables_for``)."""
    if api_version is None:
        return [TableInfo.of(t) for t in TABLES.values()]
    return [TableInfo.of(t) for t in tables_for(api_version).values()]


# ----------------------------------------------------------------------------- API budget

DEFAULT_PER_SECOND: float = 4.0
"""CC's standard key: 4 requests a second (constant-contact-api.md §1.7)."""
DEFAULT_PER_DAY: int = 10_000
"""CC's standard key: 10,000 requests a UTC day."""
PARTNER_PER_SECOND: float = 10.0
"""A CC partner key: 10 requests a second."""
PARTNER_PER_DAY: int = 250_000
"""A CC partner key: 250,000 requests a UTC day."""
PER_SECOND_MIN, PER_SECOND_MAX = 0.1, 100.0
"""Inclusive bounds of a per-second limit (below one call in 10 s nothing useful runs)."""
PER_DAY_MIN, PER_DAY_MAX = 1, 100_000_000
"""Inclusive bounds of a per-day limit."""

RunKindName = Literal["incremental", "first_load", "full_refresh", "resync"]
KeyVersion = Literal["v2", "v3"]


class KeyLimitsIn(BaseModel):
    """New limits of one API key; a missing (None) limit goes back to the default."""

    model_config = ConfigDict(extra="forbid")

    per_second: float | None = Field(
        default=None,
        ge=PER_SECOND_MIN,
        le=PER_SECOND_MAX,
        description="Requests per second (CC: 4; partner keys: 10); null: the default.",
    )
    per_day: int | None = Field(
        default=None,
        ge=PER_DAY_MIN,
        le=PER_DAY_MAX,
        description="Requests per UTC day (CC: 10,000; partner keys: 250,000); null: the "
        "default.",
    )


class KeyLimitsPublic(BaseModel):
    """One API key's limits as shown (a fingerprint and a label, never the key)."""

    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    api_version: KeyVersion
    per_second: float | None
    per_day: int | None
    per_second_is_default: bool
    per_day_is_default: bool
    updated_at: datetime | None = None


class RunEstimate(BaseModel):
    """The planner's estimate of one run's API calls."""

    model_config = ConfigDict(frozen=True)

    calls: int
    kind: RunKindName
    basis: str
    """In words: "median of the last 5 incremental runs", the default model, or a mix."""
    from_history: bool
    """False when the estimate is the default model alone (no comparable run yet)."""


class IntegrationBudget(BaseModel):
    """One integration's share of its key's daily quota."""

    model_config = ConfigDict(frozen=True)

    integration_id: int
    name: str
    key: str | None
    """The key's fingerprint; None while the integration has no credentials."""
    key_label: str | None
    frequency_hours: int
    schedulable: bool
    runs_per_day: int
    estimate: RunEstimate
    """One scheduled (incremental) run."""
    calls_per_day: int
    runs_left_today: int
    """Scheduled runs before the next 00:00 UTC."""
    reserved_today: int
    used_today: int


class KeyBudget(BaseModel):
    """One API key: its limits, today's use and the day's plan of the integrations on it."""

    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    api_version: KeyVersion
    per_second: float | None
    per_day: int | None
    per_second_is_default: bool
    per_day_is_default: bool
    used_today: int
    in_flight: int
    """Calls the running runs are still expected to make."""
    reserved_today: int
    reserved_runs: int
    headroom: int | None
    """``per_day - used_today - in_flight - reserved_today`` (may be negative); None
    without a daily limit."""
    planned_per_day: int
    fits: bool
    warning: str | None
    resets_at: datetime
    integrations: list[IntegrationBudget]


class QuotaOverview(BaseModel):
    """Every key the user's integrations use, and the integrations without a key yet."""

    model_config = ConfigDict(frozen=True)

    now: datetime
    resets_at: datetime
    keys: list[KeyBudget]
    without_key: list[IntegrationBudget]


class TrackingTiersPublic(BaseModel):
    """The campaign polling tiers in effect (``ControlSettings.tracking_*``)."""

    model_config = ConfigDict(frozen=True)

    recent_days: int = 30
    older_days: int = 90
    older_every_hours: int = 24
    oldest_every_hours: int = 168
    recheck_days: int = 30
    events_every_hours: int = 24
    """v3: each event's registrations are re-read at least this often (0: every run)."""

    def describe(self) -> list[str]:
        """The tiers in plain words, one line each."""

        def every(hours: int) -> str:
            if hours == 0:
                return "on every run"
            if hours % 24 == 0:
                days = hours // 24
                return "daily" if days == 1 else ("weekly" if days == 7 else f"every {days} days")
            return "hourly" if hours == 1 else f"every {hours} hours"

        return [
            f"Campaigns sent in the last {self.recent_days} days: checked on every run.",
            f"Sent {self.recent_days} to {self.older_days} days ago: checked "
            f"{every(self.older_every_hours)}.",
            f"Sent more than {self.older_days} days ago: checked "
            f"{every(self.oldest_every_hours)}.",
            f"Every campaign's activity is re-read in full once every {self.recheck_days} days.",
            "v3 event registrations: read when the event list shows the event changed, on "
            f"every run while it is live, otherwise {every(self.events_every_hours)}.",
        ]


# ----------------------------------------------------------------------------- notifications

NotificationEventName = Literal[
    "failure", "needs_reauth", "quota_exhausted", "recovery", "digest"
]
"""``ctctsync.control.models.NotificationEvent`` as the API states it."""


class ChannelCreate(BaseModel):
    """A new notification channel: ``target`` is an e-mail address (``email``) or the URL
    notifications are posted to (``webhook``, ``slack``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["email", "webhook", "slack"]
    name: TokenName
    target: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ChannelPublic(BaseModel):
    """A channel as shown back: its target only as a hint (never the URL or secret)."""

    model_config = _READ

    id: int
    kind: str
    name: str
    hint: str
    enabled: bool
    created_at: datetime


class ChannelCreated(ChannelPublic):
    """A channel just added; a webhook's signing secret is in this answer only."""

    secret: str | None = None


class ChoicesIn(BaseModel):
    """The events of one integration that notify the caller (replacing the previous)."""

    model_config = ConfigDict(extra="forbid")

    events: list[NotificationEventName] = Field(max_length=5)


class ChoicesPublic(BaseModel):
    """The caller's events for one integration."""

    integration_id: int
    events: list[str]


class DeliveryPublic(BaseModel):
    """One notification delivery: what, where to, and how sending went."""

    model_config = _READ

    id: int
    channel_id: int
    user_id: int
    integration_id: int | None
    run_id: str | None
    event: str
    subject: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
