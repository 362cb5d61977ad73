"""The registry of replicated tables: every table and column ctctsync knows, declared as data.

Everything about a table is declared here: *what* it is (its purpose, key, replication
type, columns and their warehouse types), following the product spec
(``shared/reference/product-spec.txt``), and *where* its rows come from in each API version
(:class:`Source`: path, envelope, paging, filter, and the name of the reader strategy that
walks it). Sources are pure data: the code that reads them lives in ``ctctsync.api.v2``
(and later ``api.v3``), which picks the reader by name, so a new API version adds
declarations here and readers there, never branches on table names.

This module imports nothing of ctctsync: every other layer may depend on it.

Docs (``docs/tables.md``), the CLI's ``discover`` and the web UI's table/field pickers are
all generated from ``TABLES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

SpecType = Literal["NUMERIC", "STRING", "RECORD", "BOOLEAN", "TIMESTAMP", "INTEGER"]
"""A target datatype as the product spec writes it."""

ColumnType = Literal["bigint", "double", "text", "bool", "timestamp", "json"]
"""What a column becomes in the warehouse.

``json`` is a nested column (DuckDB ``JSON``, PostgreSQL ``jsonb``, BigQuery ``JSON``...);
``text`` holding JSON is used where the spec says STRING but the API sends a list/object.
"""

Replication = Literal["full", "incremental"]

LOADED_AT = "_ctctsync_loaded_at"
"""Metadata column: when ctctsync loaded the row (UTC)."""
RUN_ID = "_ctctsync_run_id"
"""Metadata column: the id of the run that loaded the row."""
METADATA_COLUMNS: tuple[str, ...] = (LOADED_AT, RUN_ID)


def warehouse_table_name(integration: str, table_name: str) -> str:
    """``<integration>_<table>``: the name a table of an integration has in the warehouse."""
    return f"{integration}_{table_name}"


ApiVersion = Literal["v2", "v3"]
"""A Constant Contact API version a table can be read from."""

Envelope = Literal["v2_results", "v2_array", "v2_object", "v3_links"]
"""How an endpoint wraps its records (each has a paginator in ``ctctsync.api.paging``).

``v2_results``: ``{"meta":{"pagination":{"next_link":...}},"results":[...]}`` -- §1.3.
``v2_array``: a bare JSON array, never paged (lists) -- §7.
``v2_object``: one JSON object, the single record (account info, summaries) -- §5, §9.
``v3_links``: ``{"<records_key>":[...], "_links":{"next":{"href":...}}}`` -- §11.
(Sections of ``constant-contact-api.md``.)
"""

Reader = Literal["collection", "campaign_activities", "campaign_summaries"]
"""The strategy that reads a source: ``collection`` walks the path's pages; the others are
named functions of the API version's package for tables one collection cannot fill."""


@dataclass(frozen=True)
class Source:
    """Where a table's rows come from in one API version (data only; see :data:`Reader`)."""

    path: str
    """The collection path; for the per-campaign readers, the per-item path with
    ``{campaign_id}``/``{type}`` placeholders."""
    envelope: Envelope
    page_size: int | None = None
    """The documented maximum ``limit``; None where the endpoint is not paged."""
    since_param: str | None = None
    """The incremental filter parameter (``modified_since``...), None if there is none."""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Fixed query parameters sent with the first page."""
    reader: Reader = "collection"
    reference: str = ""
    """The section of the API reference this declaration follows."""


@dataclass(frozen=True)
class Column:
    """One column of a replicated table.

    ``spec_name``/``spec_type`` record what the product spec says; ``name``/``type`` are what
    we load. Where they differ, ``deviation`` says why (rendered into ``docs/tables.md``).
    ``extra`` marks columns the spec does not list but that a complete table needs.
    """

    name: str
    type: ColumnType
    spec_type: SpecType | None
    spec_name: str | None = None
    deviation: str | None = None
    extra: bool = False
    description: str = ""
    aliases: tuple[str, ...] = ()
    """Other names the API uses for this field in some payloads; the value is read from the
    first of them present when the record lacks ``name``."""
    versions: frozenset[ApiVersion] = frozenset({"v2", "v3"})
    """The API versions that fill this column; in another version the table has no such
    column (``docs/tables.md`` shows the versions side by side)."""
    v3_type: ColumnType | None = None
    """The warehouse type in v3 where it differs (ids: v3 names records by UUID, §1.1)."""
    v3_field: str = ""
    """Where a v3 column's value comes from, when not from a field of the same name (docs)."""

    @property
    def in_spec(self) -> bool:
        return self.spec_type is not None


@dataclass(frozen=True)
class Table:
    """One replicated table (one of the product spec's 9)."""

    name: str
    """Snake-case name; the warehouse table is ``<integration>_<name>``."""
    spec_name: str
    purpose: str
    replication: Replication
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    replication_key: str | None = None
    """The spec's replication key: ``lastRunDate`` for key-based tables (the start of the
    table's last successful run, see ``docs/architecture.md``), None for full tables."""
    cursor_column: str | None = None
    """The row column that moves when the source row changes, if any (used for checks)."""
    notes: str = ""
    depends_on: tuple[str, ...] = field(default=())
    """Tables whose source rows this table needs to enumerate (campaign ids, ...)."""
    read_whole: bool = False
    """Read every row on every run and replace the table, although the spec makes it
    key-based: for a table whose rows change without their cursor moving, when reading it
    whole costs no more calls than reading the changes (``notes`` says why)."""
    sources: Mapping[ApiVersion, Source] = field(default_factory=lambda: MappingProxyType({}))
    """Where the rows come from, per API version; a version without a source cannot fill the
    table (:attr:`unavailable` says why)."""
    unavailable: Mapping[ApiVersion, str] = field(default_factory=lambda: MappingProxyType({}))
    """Why a version has no source for this table (shown by discover, the UI and the API:
    an unavailable table is never silently empty)."""
    api_version: ApiVersion | None = None
    """Set on the per-version views of :meth:`for_version`; None on the registry's entries."""
    ignored_fields: frozenset[str] = frozenset()
    """Fields the API sends that are deliberately not loaded (``notes`` says why): known,
    so they are not reported as new fields."""

    def available_in(self, version: ApiVersion) -> bool:
        """Whether ``version`` has a source for this table."""
        return version in self.sources

    def unavailable_reason(self, version: ApiVersion) -> str:
        """Why the table cannot be read in ``version`` ("" when it can)."""
        if self.available_in(version):
            return ""
        return self.unavailable.get(version, f"{self.spec_name} has no {version} source.")

    def for_version(self, version: ApiVersion) -> Table:
        """The table as ``version`` fills it: only the columns that version has, with that
        version's warehouse types."""
        cols = tuple(
            replace(c, type=c.v3_type) if version == "v3" and c.v3_type else c
            for c in self.columns
            if version in c.versions
        )
        return replace(self, columns=cols, api_version=version)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def known_fields(self) -> frozenset[str]:
        """Every record field this declaration accounts for: columns, their aliases and the
        ignored fields. Any other field is schema drift ("new field available")."""
        names = {c.name for c in self.columns} | self.ignored_fields
        for c in self.columns:
            names.update(c.aliases)
        return frozenset(names)

    @property
    def replication_label(self) -> str:
        """How the table is replicated as it really happens, in a few words (``discover``,
        the UI, ``docs/tables.md``): a key-based table that is read whole says so."""
        if self.replication == "full":
            return "full"
        if self.read_whole:
            return "full (read whole; key-based in the spec)"
        return f"key-based on {self.replication_key}"

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns that column selection can never drop: keys and the cursor."""
        req = list(self.primary_key)
        if self.cursor_column and self.cursor_column not in req:
            req.append(self.cursor_column)
        return tuple(req)


def _c(
    name: str,
    spec_type: SpecType | None,
    type_: ColumnType | None = None,
    **kw: str | bool | tuple[str, ...],
) -> Column:
    """Shorthand: a column whose warehouse type follows from its spec type unless given."""
    default: dict[SpecType, ColumnType] = {
        "NUMERIC": "bigint",
        "INTEGER": "bigint",
        "STRING": "text",
        "RECORD": "json",
        "BOOLEAN": "bool",
        "TIMESTAMP": "timestamp",
    }
    if type_ is None:
        if spec_type is None:
            raise ValueError(f"extra column {name} needs an explicit type")
        type_ = default[spec_type]
    return Column(name=name, type=type_, spec_type=spec_type, **kw)  # type: ignore[arg-type]


_PHONE = (
    "The spec says NUMERIC, but the API sends free text (\"555-1212\", \"+1 (617) 555-0100 x12\"): "
    "a number would drop punctuation, leading zeros and extensions, so it is stored as text."
)
_JSON_TEXT = (
    "The spec says STRING; the API sends a list of objects, stored as its JSON text "
    "so nothing is lost."
)
_LIB_ID = "Library ids are strings of digits in the API; stored as a number as the spec says."
_FILE_COLUMNS = (
    ("name", "STRING"),
    ("description", "STRING"),
    ("folder", "STRING"),
    ("height", "NUMERIC"),
    ("width", "NUMERIC"),
    ("size", "NUMERIC"),
    ("url", "STRING"),
    ("source", "STRING"),
    ("status", "STRING"),
    ("thumbnail", "RECORD"),
    ("created_date", "TIMESTAMP"),
    ("modified_date", "TIMESTAMP"),
    ("folder_id", "STRING"),
    ("is_image", "BOOLEAN"),
    ("file_type", "STRING"),
)


_FILE_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    # the Ruby SDK's recorded trash files carry `type` where every other capture carries
    # `file_type` (constant-contact-api.md §6, "Known fixture defects"): same field
    "file_type": ("type",),
}


def _file_columns(id_column: Column) -> tuple[Column, ...]:
    cols = [
        _c(n, t, aliases=_FILE_TYPE_ALIASES.get(n, ()))  # type: ignore[arg-type]
        for n, t in _FILE_COLUMNS
    ]
    return (cols[0], id_column, *cols[1:])


_ACTIVITY_DATE_DOC = "The activity's own date, whatever its type (send/open/click/... date)."

ACTIVITY_DATE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "EMAIL_SEND": "send_date",
        "EMAIL_OPEN": "open_date",
        "EMAIL_CLICK": "click_date",
        "EMAIL_FORWARD": "forward_date",
        "EMAIL_BOUNCE": "bounce_date",
        "EMAIL_UNSUBSCRIBE": "unsubscribe_date",
    }
)
"""``contact_tracking``: each activity type keeps its date in its own column, named as the
API's field (constant-contact-api.md §8); ``activity_date`` unifies them."""


def _v2(source: Source) -> Mapping[ApiVersion, Source]:
    """Shorthand: a table's sources when only v2 is declared."""
    return MappingProxyType({"v2": source})


_ALL = MappingProxyType({"status": "ALL"})

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            name="contacts",
            spec_name="Contacts",
            purpose=(
                "Every contact of the account, with addresses, lists, emails and custom fields."
            ),
            replication="incremental",
            replication_key="lastRunDate",
            cursor_column="modified_date",
            primary_key=("id",),
            columns=(
                _c("id", "NUMERIC"),
                _c("status", "STRING"),
                _c("fax", "STRING"),
                _c("addresses", "RECORD"),
                _c("notes", "STRING", "text", deviation=_JSON_TEXT),
                _c("confirmed", "BOOLEAN"),
                _c("lists", "RECORD"),
                _c("source", "STRING"),
                _c("email_addresses", "RECORD"),
                _c("prefix_name", "STRING"),
                _c("first_name", "STRING"),
                _c("middle_name", "STRING"),
                _c("last_name", "STRING"),
                _c("job_title", "STRING"),
                _c("company_name", "STRING"),
                _c("home_phone", "NUMERIC", "text", deviation=_PHONE),
                _c("work_phone", "NUMERIC", "text", deviation=_PHONE),
                _c("cell_phone", "NUMERIC", "text", deviation=_PHONE),
                _c("custom_fields", "STRING", "text", deviation=_JSON_TEXT),
                _c("created_date", "TIMESTAMP"),
                _c("modified_date", "TIMESTAMP"),
                _c("source_details", "STRING"),
                _c(
                    "department_name",
                    None,
                    "text",
                    extra=True,
                    description=(
                        "The contact's department, sent by older API versions "
                        "(constant-contact-api.md §2)."
                    ),
                ),
                _c(
                    "action_by",
                    None,
                    "text",
                    extra=True,
                    description=(
                        "Who last changed the contact (`ACTION_BY_VISITOR` or "
                        "`ACTION_BY_OWNER`), sent by older API versions "
                        "(constant-contact-api.md §2)."
                    ),
                ),
            ),
            notes=(
                "Read with `modified_since` = the table's lastRunDate minus the look-back, "
                "`status=ALL`, 500 per page; merged by `id`."
            ),
            sources=_v2(
                Source(
                    "/v2/contacts",
                    "v2_results",
                    page_size=500,  # contacts: max 500 -- §1.3
                    since_param="modified_since",
                    # status defaults to ALL; said so that OPTOUT/REMOVED are never dropped -- §2
                    params=_ALL,
                    reference="constant-contact-api.md §2",
                )
            ),
        ),
        Table(
            name="email_campaigns",
            spec_name="EmailCampaigns",
            purpose="Every email campaign (name, status, last change).",
            replication="incremental",
            replication_key="lastRunDate",
            cursor_column="modified_date",
            primary_key=("id",),
            columns=(
                _c("id", "NUMERIC"),
                _c("name", "STRING"),
                _c("status", "STRING"),
                _c("modified_date", "TIMESTAMP"),
            ),
            notes=(
                "Read with `modified_since`; merged by `id`. The v2 API lists DELETED campaigns "
                "only when asked with `status=DELETED`, so a campaign deleted after it was "
                "loaded keeps its last loaded status."
            ),
            sources=_v2(
                Source(
                    "/v2/emailmarketing/campaigns",
                    "v2_results",
                    page_size=50,  # campaigns: max limit 50 (SDKs claim 500; docs win) -- §1.3
                    since_param="modified_since",
                    # ALL = every status but DELETED (DELETED only when asked for) -- §3
                    params=_ALL,
                    reference="constant-contact-api.md §3",
                )
            ),
        ),
        Table(
            name="my_library_files",
            spec_name="MyLibraryFiles",
            purpose="The files of the account's MyLibrary (images and documents).",
            replication="full",
            primary_key=("id",),
            columns=_file_columns(_c("id", "NUMERIC")),
            notes="No date filter exists for library files: the table is replaced on each run.",
            sources=_v2(
                Source(
                    "/v2/library/files",
                    "v2_results",
                    page_size=1000,  # library files: max 1000 -- §1.3, §4; no date filter
                    reference="constant-contact-api.md §4",
                )
            ),
        ),
        Table(
            name="account_info",
            spec_name="AccountInfo",
            purpose="The account's organisation, owner and addresses (one row).",
            replication="full",
            primary_key=("email",),
            columns=(
                _c("website", "STRING"),
                _c("organization_name", "STRING"),
                _c("time_zone", "STRING"),
                _c("first_name", "STRING"),
                _c("last_name", "STRING"),
                _c(
                    "email",
                    "STRING",
                    spec_name="",
                    deviation=(
                        "The spec lists a STRING column with a blank name between last_name and "
                        "phone; the API's field in that place is `email`, so it is named `email`."
                    ),
                ),
                _c("phone", "STRING"),
                _c("company_logo", "STRING"),
                _c("country_code", "STRING"),
                _c("status_code", "STRING"),
                _c("organization_addresses", "STRING", "text", deviation=_JSON_TEXT),
                _c(
                    "state_code",
                    None,
                    "text",
                    extra=True,
                    description="The account's state code (sent by the API, not in the spec).",
                ),
            ),
            notes=(
                "`status_code` is in the spec but the v2 API sends no such field: it stays "
                "NULL unless the API provides it."
            ),
            sources=_v2(
                Source(
                    "/v2/account/info",
                    "v2_object",  # one object, not paginated -- §5
                    reference="constant-contact-api.md §5",
                )
            ),
        ),
        Table(
            name="trash_files",
            spec_name="TrashFiles",
            purpose="The files in the MyLibrary trash folder.",
            replication="full",
            primary_key=("id",),
            columns=_file_columns(_c("id", "STRING")),
            notes="No date filter exists for the trash: the table is replaced on each run.",
            sources=_v2(
                Source(
                    "/v2/library/folders/trash/files",
                    "v2_results",
                    # trash: docs say max 1000 (Ruby docblock 50, UNCONFIRMED) -- §6
                    page_size=1000,
                    reference="constant-contact-api.md §6",
                )
            ),
        ),
        Table(
            name="contact_lists",
            spec_name="ContactLists",
            purpose="The account's contact lists and their sizes.",
            replication="incremental",
            replication_key="lastRunDate",
            cursor_column="modified_date",
            primary_key=("id",),
            columns=(
                _c("id", "NUMERIC"),
                _c("name", "STRING"),
                _c("status", "STRING"),
                _c("created_date", "TIMESTAMP"),
                _c("modified_date", "TIMESTAMP"),
                _c("contact_count", "NUMERIC"),
                _c(
                    "opt_in_default",
                    None,
                    "bool",
                    extra=True,
                    description=(
                        "Whether sign-up forms tick this list by default, sent by older API "
                        "versions (constant-contact-api.md §7)."
                    ),
                ),
            ),
            read_whole=True,
            notes=(
                "Key-based in the spec, but read whole and replaced on every run: "
                "`contact_count` changes when contacts join or leave a list while the list's "
                "`modified_date` stays put, so a `modified_since` read would leave stale counts; "
                "and the list endpoint is one unpaged call (a bare array, at most 1,000 lists), "
                "so reading all lists costs the same single call. A bookmark is still recorded."
            ),
            sources=_v2(
                Source(
                    "/v2/lists",
                    "v2_array",  # lists is a bare array, not paginated -- §7
                    since_param="modified_since",
                    reference="constant-contact-api.md §7",
                )
            ),
        ),
        Table(
            name="contact_tracking",
            spec_name="ContactTracking",
            purpose=(
                "Every email activity of every contact: sends, opens, clicks, forwards, "
                "bounces and unsubscribes, one row each."
            ),
            replication="incremental",
            replication_key="lastRunDate",
            cursor_column="activity_date",
            primary_key=("activity_id",),
            depends_on=("email_campaigns",),
            columns=(
                _c(
                    "activity_id",
                    None,
                    "text",
                    extra=True,
                    description=(
                        "Synthetic key: the API gives activities no id. A hash of contact, "
                        "campaign, type, date and link."
                    ),
                ),
                _c("activity_type", "STRING"),
                _c("campaign_id", "NUMERIC"),
                _c("contact_id", "NUMERIC"),
                _c("email_address", None, "text", extra=True),
                _c("activity_date", None, "timestamp", extra=True, description=_ACTIVITY_DATE_DOC),
                _c("send_date", None, "timestamp", extra=True),
                _c("open_date", "TIMESTAMP"),
                _c("click_date", None, "timestamp", extra=True),
                _c("forward_date", None, "timestamp", extra=True),
                _c("bounce_date", None, "timestamp", extra=True),
                _c("unsubscribe_date", None, "timestamp", extra=True),
                _c("link_id", None, "text", extra=True),
                _c("link_uri", None, "text", extra=True),
                _c("bounce_code", None, "text", extra=True),
                _c("bounce_description", None, "text", extra=True),
                _c("bounce_message", None, "text", extra=True),
                _c("unsubscribe_source", None, "text", extra=True),
                _c("unsubscribe_reason", None, "text", extra=True),
            ),
            notes=(
                "The spec lists only `open_date`, but the table holds every activity type: each "
                "keeps its own date column and `activity_date` unifies them. Rows come from the "
                "per-campaign tracking endpoints (one call chain per sent campaign and activity "
                "type) rather than one chain per contact: the same activities, with calls that "
                "grow with campaigns and activities, not with contacts (1 campaign list call + "
                "7 per sent campaign + pages of 500 activities). Why complete: v2 records "
                "activities only for SENT campaigns (constant-contact-api.md §1.8), and every "
                "activity of a contact belongs to one campaign, so the union of the six "
                "per-campaign lists over all sent campaigns is every contact's activity feed; "
                "`created_since` (on or after) = the bookmark minus the look-back bounds each "
                "read, and the merge on `activity_id` absorbs the overlap. Known gap: a campaign "
                "deleted after it was sent answers 404 on its tracking endpoints in v2, so "
                "activities not loaded before its deletion cannot be read any more; one "
                "deleted during a run is a warning of the run (\"1 campaign deleted during the "
                "run\"). A campaign whose detail answers 404 while its tracking answers keeps "
                "its rows (clicks without `link_uri`), and the bookmark stays so that the next "
                "run fills the URLs in (docs/architecture.md, \"No silent loss\")."
            ),
            sources=_v2(
                Source(
                    "/v2/emailmarketing/campaigns/{campaign_id}/tracking/{type}",
                    "v2_results",
                    page_size=500,  # tracking: default and max 500 -- §1.3, §9.1
                    since_param="created_since",
                    # Per sent campaign x the six tracking collections, not per contact: calls grow
                    # with campaigns and activities, never with contacts -- §8 vs §9.1.
                    reader="campaign_activities",
                    reference="constant-contact-api.md §8, §9.1",
                )
            ),
        ),
        Table(
            name="email_campaign_summary",
            spec_name="EmailCampaignSummary",
            purpose=(
                "Per-campaign totals: sends, opens, clicks, forwards, unsubscribes, bounces, spam."
            ),
            replication="full",
            primary_key=("campaign_id",),
            depends_on=("email_campaigns",),
            columns=(
                _c(
                    "campaign_id",
                    "INTEGER",
                    "bigint",
                    spec_name="checkid",
                    deviation=(
                        "The spec's `checkid` (INTEGER) identifies the campaign a summary belongs "
                        "to; it is named `campaign_id` and stored as a 64-bit integer, because "
                        "campaign ids (13 digits) overflow a 32-bit INTEGER."
                    ),
                ),
                _c(
                    "start_date",
                    "TIMESTAMP",
                    description="When the campaign was last sent (its `last_run_date`).",
                ),
                _c(
                    "end_date",
                    "TIMESTAMP",
                    description="When the summary was read: the counts are as of this time.",
                ),
                _c("sends", "NUMERIC"),
                _c("opens", "NUMERIC"),
                _c("clicks", "NUMERIC"),
                _c("forwards", "NUMERIC"),
                _c("unsubscribes", "NUMERIC"),
                _c("bounces", "NUMERIC"),
                _c("spam_count", "NUMERIC"),
            ),
            notes=(
                "One summary call per sent campaign; the v2 summary has no dates, so "
                "`start_date` and `end_date` are filled as described."
            ),
            # the reader stamps the campaign's last_run_date (and id) on each summary; they
            # become start_date and campaign_id (rows.prepare_campaign_summary)
            ignored_fields=frozenset({"last_run_date", "id"}),
            sources=_v2(
                Source(
                    "/v2/emailmarketing/campaigns/{campaign_id}/tracking/reports/summary",
                    "v2_object",  # one summary object per campaign -- §9
                    reader="campaign_summaries",
                    reference="constant-contact-api.md §9",
                )
            ),
        ),
        Table(
            name="events",
            spec_name="Events",
            purpose="The account's EventSpot events.",
            replication="full",
            primary_key=("id",),
            columns=(
                _c("id", "STRING"),
                _c("name", "STRING"),
                _c("title", "STRING"),
                _c("status", "STRING"),
                _c("location", "STRING"),
                _c("type", "STRING"),
                _c("address", "RECORD"),
                _c("description", "STRING"),
                _c("start_date", "TIMESTAMP"),
                _c("end_date", "TIMESTAMP"),
                _c("created_date", "TIMESTAMP"),
                _c("total_registered_count", "NUMERIC"),
                _c("time_zone_id", "STRING"),
                _c("active_date", "TIMESTAMP"),
                _c("is_checkin_available", "BOOLEAN"),
                _c("event_detail_url", "STRING"),
            ),
            notes="EventSpot omits properties whose value is null: such columns load as NULL.",
            sources=_v2(
                Source(
                    "/v2/eventspot/events",
                    "v2_results",
                    page_size=500,  # events: 1-500 per the .NET SDK (docs unreadable) -- §10
                    reference="constant-contact-api.md §10",
                )
            ),
        ),
    )
}
"""All replicated tables, by snake-case name, in the spec's order."""


def tables_for(version: ApiVersion) -> dict[str, Table]:
    """The tables ``version`` can fill, as that version fills them, in the registry's order."""
    return {n: t.for_version(version) for n, t in TABLES.items() if t.available_in(version)}


def table(name: str) -> Table:
    """The table called ``name`` (snake case, or the spec's CamelCase), or a clear KeyError."""
    if name in TABLES:
        return TABLES[name]
    for t in TABLES.values():
        if t.spec_name.lower() == name.lower():
            return t
    raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
