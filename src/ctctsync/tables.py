"""The registry of replicated tables: every table and column ctctsync knows, declared as data.

Everything about a table is declared here: *what* it is (its purpose, key, replication
type, columns and their warehouse types), following the product spec
(``shared/reference/product-spec.txt``), and *where* its rows come from in each API version
(:class:`Source`: path, envelope, paging, filter, and the name of the reader strategy that
walks it). Sources are pure data: the code that reads them lives in ``ctctsync.api.v2`` and
``ctctsync.api.v3``, which pick the reader by name, so a new API version adds declarations
here and readers there, never branches on table names.

Per version: :meth:`Table.for_version` (or :func:`tables_for`) gives a table as one version
fills it (its columns, their types); a version without a source cannot fill the table and
says why (:meth:`Table.unavailable_reason`: MyLibrary has no v3 endpoint). Besides the
product spec's nine tables (:data:`SPEC_TABLES`), v3 fills a few more (``Table.extra``:
tags, custom fields, segments, campaign activities, event registrations).

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

Envelope = Literal["v2_results", "v2_array", "v2_object", "v3_links", "v3_object", "v3_cursor"]
"""How an endpoint wraps its records (each has a paginator in ``ctctsync.api.paging``).

``v2_results``: ``{"meta":{"pagination":{"next_link":...}},"results":[...]}`` -- §1.3.
``v2_array``: a bare JSON array, never paged (lists) -- §7.
``v2_object``: one JSON object, the single record (account info, summaries) -- §5, §9.
(Sections of ``constant-contact-api.md``.)
``v3_links``: ``{"<records_key>":[...], "_links":{"next":{"href":...}}}``; the href is
path-relative and already carries the filters -- constant-contact-v3-api.md §1.3.
``v3_object``: one JSON object, the single record (account summary, one campaign activity).
``v3_cursor``: ``{"<records_key>":[...], "next_cursor":...}``, the next page asked for with
``?next=<cursor>`` (events and registrations) -- constant-contact-v3-api.md §1.3, §3.11.
"""

Reader = Literal["collection", "campaign_activities", "campaign_summaries"]
"""The strategy that reads a v2 source: ``collection`` walks the path's pages; the others are
named functions of the API version's package for tables one collection cannot fill."""

V3Reader = Literal[
    "collection",
    "campaign_activities",
    "campaign_summaries",
    "event_details",
    "email_activities",
    "event_registrations",
]
"""The strategy that reads a v3 source (``ctctsync.api.v3.extract.READERS``): the v2 names
keep their meaning; ``event_details`` lists events and reads each one's detail,
``email_activities`` reads the activities of campaigns changed since the bookmark,
``event_registrations`` reads each event's registrations."""


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
    reader: Reader | V3Reader = "collection"
    reference: str = ""
    """The section of the API reference this declaration follows."""
    walks_sent_campaigns: bool = False
    """Whether the reader enumerates the run's sent campaigns (listed once per run and shared
    by every table that needs them): a source that does not, is not charged for the list."""
    records_key: str | None = None
    """v3: the body's key holding the records (``contacts``, ``lists``...); None for v2."""
    ignored_fields: frozenset[str] = frozenset()
    """Fields this version sends that are deliberately not loaded (known, so they are not
    reported as new fields; ``docs/tables.md`` lists them)."""


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
    """One replicated table: one of the product spec's 9, or an addition (``extra``)."""

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
    extra: bool = False
    """Not one of the product spec's nine tables: a table only a later API version fills
    (tags, custom fields, segments...), with no spec names or types."""

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
        source = self.sources.get(version)
        ignored = self.ignored_fields | (source.ignored_fields if source else frozenset())
        return replace(self, columns=cols, api_version=version, ignored_fields=ignored)

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
    **kw: str | bool | tuple[str, ...] | frozenset[ApiVersion],
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


V2_ONLY: frozenset[ApiVersion] = frozenset({"v2"})
"""A column only API v2 fills (v3 has no such field)."""
V3_ONLY: frozenset[ApiVersion] = frozenset({"v3"})
"""A column only API v3 fills."""

_V3_UUID = "v3 ids are UUID strings (constant-contact-v3-api.md §1.1): text in v3."


def _v3(**sources: Source) -> Mapping[ApiVersion, Source]:
    """Shorthand: a table's sources when only v3 is declared."""
    return MappingProxyType({"v3": sources["v3"]})


def _both(v2: Source, v3: Source) -> Mapping[ApiVersion, Source]:
    """Shorthand: a table's sources in both versions."""
    return MappingProxyType({"v2": v2, "v3": v3})


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


def _x(name: str, type_: ColumnType, description: str = "", v3_field: str = "") -> Column:
    """Shorthand: a column of a table the spec does not list (only v3 fills those tables)."""
    return Column(name=name, type=type_, spec_type=None, extra=True, description=description,
                  v3_field=v3_field)


_FULL_V3 = (
    "v3 has no date filter for this collection (constant-contact-v3-api.md §1.9): the table "
    "is replaced on each run."
)

V3_EXTRA_TABLES: tuple[Table, ...] = (
    Table(
        name="contact_tags",
        spec_name="ContactTags",
        purpose="The account's contact tags, with how many contacts carry each.",
        replication="full",
        primary_key=("tag_id",),
        extra=True,
        columns=(
            _x("tag_id", "text"),
            _x("name", "text"),
            _x("contacts_count", "bigint", "Contacts tagged with it (`include_count=true`)."),
            _x("created_at", "timestamp"),
            _x("updated_at", "timestamp"),
            _x("tag_source", "text", "Where the tag came from (an integration's name...)."),
        ),
        notes=_FULL_V3,
        unavailable=MappingProxyType({"v2": "Contact tags exist only in the v3 API."}),
        sources=_v3(
            v3=Source(
                "/v3/contact_tags",
                "v3_links",
                page_size=500,  # tags: max 500 -- v3 §1.3
                params=MappingProxyType({"include_count": "true"}),
                records_key="tags",
                reference="constant-contact-v3-api.md §3.3",
            )
        ),
    ),
    Table(
        name="contact_custom_fields",
        spec_name="ContactCustomFields",
        purpose="The account's contact custom fields (what contacts.custom_fields ids name).",
        replication="full",
        primary_key=("custom_field_id",),
        extra=True,
        columns=(
            _x("custom_field_id", "text"),
            _x("label", "text"),
            _x("name", "text"),
            _x("type", "text", "string, date, number, single_select, ..."),
            _x("metadata", "json"),
            _x("choices", "json", "The choices of a select field."),
            _x("version", "bigint"),
            _x("created_at", "timestamp"),
            _x("updated_at", "timestamp"),
        ),
        notes=_FULL_V3,
        unavailable=MappingProxyType(
            {"v2": "v2 custom fields are fixed slots on each contact (`contacts.custom_fields`)."}
        ),
        sources=_v3(
            v3=Source(
                "/v3/contact_custom_fields",
                "v3_links",
                page_size=100,  # custom fields: max 100 -- v3 §1.3
                records_key="custom_fields",
                reference="constant-contact-v3-api.md §3.4",
            )
        ),
    ),
    Table(
        name="segments",
        spec_name="Segments",
        purpose="The account's contact segments (names and dates).",
        replication="full",
        primary_key=("segment_id",),
        extra=True,
        columns=(
            _x("segment_id", "bigint", "Segments have integer ids in v3 (v3 §1.1)."),
            _x("name", "text"),
            _x("created_at", "timestamp"),
            _x("edited_at", "timestamp"),
        ),
        notes=(
            f"{_FULL_V3} A segment's criteria need one call per segment "
            "(`GET /segments/{segment_id}`) and are left out; deleted segments are not listed."
        ),
        unavailable=MappingProxyType({"v2": "Segments exist only in the v3 API."}),
        sources=_v3(
            v3=Source(
                "/v3/segments",
                "v3_links",
                # default "1000", no documented maximum (UNCONFIRMED: 1000 chosen, the
                # documented default, so a larger value is never refused) -- v3 §1.3, §3.5
                page_size=1000,
                records_key="segments",
                reference="constant-contact-v3-api.md §3.5",
            )
        ),
    ),
    Table(
        name="email_campaign_activities",
        spec_name="EmailCampaignActivities",
        purpose=(
            "The emails of each campaign (its primary email and resends): subject, sender, "
            "lists and segments."
        ),
        replication="incremental",
        replication_key="lastRunDate",
        primary_key=("campaign_activity_id",),
        depends_on=("email_campaigns",),
        extra=True,
        columns=(
            _x("campaign_activity_id", "text"),
            _x("campaign_id", "text"),
            _x("role", "text", "`primary_email` or `resend`."),
            _x("current_status", "text", "DRAFT, SCHEDULED, EXECUTING, DONE, ERROR or REMOVED."),
            _x("subject", "text"),
            _x("preheader", "text"),
            _x("from_name", "text"),
            _x("from_email", "text"),
            _x("reply_to_email", "text"),
            _x("contact_list_ids", "json", "The lists it is sent to."),
            _x("segment_ids", "json", "The segments it is sent to (integers)."),
            _x("format_type", "bigint", "1 legacy custom code, 2-4 editor generations, 5 custom "
               "code."),
        ),
        notes=(
            "Read for the campaigns changed since the table's lastRunDate minus the look-back "
            "(`GET /emails?after_date=`), one detail call per campaign for its activity ids and "
            "one call per `primary_email`/`resend` activity; merged by `campaign_activity_id`. "
            "Permalink activities are not emails and are left out; REMOVED activities cannot be "
            "read (constant-contact-v3-api.md §1.7). UNCONFIRMED: that editing an activity "
            "(subject, lists) moves its campaign's `updated_at`; chosen because `/emails` is "
            "the only list with a date filter (activities have none)."
        ),
        unavailable=MappingProxyType(
            {"v2": "v2 has no campaign activities: a v2 campaign is one email."}
        ),
        sources=_v3(
            v3=Source(
                "/v3/emails/activities/{campaign_activity_id}",
                "v3_object",
                since_param="after_date",  # on the campaign list -- v3 §1.9
                reader="email_activities",
                reference="constant-contact-v3-api.md §3.6",
                # the email's document and the footer/html parts asked for with include
                ignored_fields=frozenset(
                    {"document_id", "template_id", "html_content", "permalink_url",
                     "physical_address_in_footer", "document_properties"}
                ),
            )
        ),
    ),
    Table(
        name="event_registrations",
        spec_name="EventRegistrations",
        purpose="Who registered for each event, with tickets, payment and check-in.",
        replication="full",
        primary_key=("registration_id",),
        depends_on=("events",),
        extra=True,
        columns=(
            _x("registration_id", "text"),
            _x("event_id", "text"),
            _x("track_id", "text", "The event's track (its `default_track`).",
               v3_field="the event detail's `default_track.track_id`"),
            _x("first_name", "text"),
            _x("last_name", "text"),
            _x("email_address", "text"),
            _x("registration_status", "text",
               "PENDING, REGISTERED, CANCELED, EXPIRED, IN_PROGRESS or FAILED."),
            _x("payment_status", "text",
               "PENDING, PAID, REFUNDED, CANCELLED, FAILED or CHARGED_BACK."),
            _x("registration_time", "timestamp"),
            _x("tickets", "bigint"),
            _x("total", "double", "The amount paid."),
            _x("checked_in_tickets", "bigint", v3_field="`checkedIn_tickets`"),
            _x("checkin_status", "text"),
            _x("new_contact", "bool", "Whether registering created the contact."),
        ),
        notes=(
            "No date filter (constant-contact-v3-api.md §1.9), so every run reads the event "
            "list (100 per page) and keeps a ledger per event: an event's registrations (100 "
            "per page, `next_cursor`, of the track its detail names) are read again when the "
            "event is new or its listing changed (counts, status, ...), while it is live (from "
            "a day before its start to a day after its end) and once per "
            "`tracking.events_every_hours` (default daily, staggered by event); the other "
            "events' rows stay. Merged by `registration_id`, then the rows CC no longer lists "
            "are deleted. A payment or check-in change on an event neither changed nor live "
            "waits for that daily read. A first load or a full refresh reads every event and "
            "replaces the table."
        ),
        unavailable=MappingProxyType(
            {"v2": "ctctsync reads EventSpot registrations only from the v3 API."}
        ),
        sources=_v3(
            v3=Source(
                "/v3/events/{event_id}/tracks/{track_id}/registrations",
                "v3_cursor",  # next_cursor, asked back as ?next= -- v3 §1.3
                # no documented default or maximum; UNCONFIRMED: 100, the events maximum
                page_size=100,
                reader="event_registrations",
                records_key="records",
                reference="constant-contact-v3-api.md §3.11",
                # tickets the registrant could still check in; the track's key (= track_id)
                ignored_fields=frozenset({"eligible_checkin_tickets", "track_key"}),
            )
        ),
    ),
)
"""Tables the product spec does not list, that only the v3 API fills."""

_NO_V3_LIBRARY: Mapping[ApiVersion, str] = MappingProxyType(
    {
        "v3": (
            "Constant Contact's v3 API has no MyLibrary endpoint: the published contract "
            "(3.0.178) has no path for library files, folders or the trash "
            "(constant-contact-v3-api.md §3.12). Keep a v2 integration for these files."
        )
    }
)

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
                _c("id", "NUMERIC", v3_type="text", v3_field="`contact_id`"),
                _c(
                    "status",
                    "STRING",
                    v3_field=(
                        "`email_address.permission_to_send` upper-cased (`EXPLICIT`, "
                        "`UNSUBSCRIBED`...), or `DELETED` when `deleted_at` is set: v3 has no "
                        "contact status"
                    ),
                ),
                _c("fax", "STRING", versions=V2_ONLY),
                _c("addresses", "RECORD", v3_field="`street_addresses`"),
                _c("notes", "STRING", "text", deviation=_JSON_TEXT),
                _c(
                    "confirmed",
                    "BOOLEAN",
                    v3_field="`email_address.confirm_status` (true when `confirmed`)",
                ),
                _c("lists", "RECORD", v3_field="`list_memberships` (list ids)"),
                _c("source", "STRING", v3_field="`create_source`"),
                _c(
                    "email_addresses",
                    "RECORD",
                    v3_field="`[email_address]` (v3 has one address; a list for continuity)",
                ),
                _c("prefix_name", "STRING", versions=V2_ONLY),
                _c("first_name", "STRING"),
                _c("middle_name", "STRING", versions=V2_ONLY),
                _c("last_name", "STRING"),
                _c("job_title", "STRING"),
                _c("company_name", "STRING"),
                _c("home_phone", "NUMERIC", "text", deviation=_PHONE,
                   v3_field="`phone_numbers[]` of kind `home`"),
                _c("work_phone", "NUMERIC", "text", deviation=_PHONE,
                   v3_field="`phone_numbers[]` of kind `work`"),
                _c("cell_phone", "NUMERIC", "text", deviation=_PHONE,
                   v3_field="`phone_numbers[]` of kind `mobile`"),
                _c("custom_fields", "STRING", "text", deviation=_JSON_TEXT,
                   v3_field="`custom_fields[]` as `{custom_field_id, value}`"),
                _c("created_date", "TIMESTAMP", v3_field="`created_at`"),
                _c("modified_date", "TIMESTAMP", v3_field="`updated_at`"),
                _c("source_details", "STRING", versions=V2_ONLY),
                _c(
                    "department_name",
                    None,
                    "text",
                    extra=True,
                    versions=V2_ONLY,
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
                    versions=V2_ONLY,
                    description=(
                        "Who last changed the contact (`ACTION_BY_VISITOR` or "
                        "`ACTION_BY_OWNER`), sent by older API versions "
                        "(constant-contact-api.md §2)."
                    ),
                ),
                _c(
                    "deleted_at",
                    None,
                    "timestamp",
                    extra=True,
                    versions=V3_ONLY,
                    description=(
                        "When the contact was deleted (a date, stored as midnight UTC): v3 "
                        "keeps deleted contacts, so they stay as rows with `status` `DELETED` "
                        "(constant-contact-v3-api.md §1.7)."
                    ),
                ),
                _c(
                    "permission_to_send",
                    None,
                    "text",
                    extra=True,
                    versions=V3_ONLY,
                    v3_field="`email_address.permission_to_send`",
                    description="explicit, implicit, not_set, pending_confirmation, temp_hold "
                    "or unsubscribed (constant-contact-v3-api.md §3.1).",
                ),
                _c("taggings", None, "json", extra=True, versions=V3_ONLY,
                   description="The ids of the contact's tags (`contact_tags`)."),
                _c("birthday_month", None, "bigint", extra=True, versions=V3_ONLY),
                _c("birthday_day", None, "bigint", extra=True, versions=V3_ONLY),
                _c("anniversary", None, "text", extra=True, versions=V3_ONLY,
                   description="Free text of up to 10 characters, as the contact typed it."),
                _c(
                    "v2_id",
                    None,
                    "bigint",
                    extra=True,
                    versions=V3_ONLY,
                    description=(
                        "The contact's v2 id, for integrations switched from v2 to v3 (filled "
                        "from `/contacts/contact_id_xrefs`); NULL in a plain v3 read."
                    ),
                ),
            ),
            notes=(
                "v2: read with `modified_since` = the table's lastRunDate minus the look-back, "
                "`status=ALL`, 500 per page; merged by `id`. v3: `updated_after` likewise, "
                "`status=all` (deleted contacts are left out otherwise) and every `include`; "
                "deleted contacts stay as rows (`status` `DELETED`, `deleted_at` set). Whether "
                "deleting a contact moves its `updated_at` is UNCONFIRMED "
                "(constant-contact-v3-api.md §1.7): a deletion may reach the table only with a "
                "full re-read. Likewise a deleted list leaves its former members' `lists` as "
                "loaded until they change (whether CC moves their `updated_at` is not "
                "documented): join `contact_lists` and drop `status = 'DELETED'` lists."
            ),
            sources=_both(
                Source(
                    "/v2/contacts",
                    "v2_results",
                    page_size=500,  # contacts: max 500 -- §1.3
                    since_param="modified_since",
                    # status defaults to ALL; said so that OPTOUT/REMOVED are never dropped -- §2
                    params=_ALL,
                    reference="constant-contact-api.md §2",
                ),
                Source(
                    "/v3/contacts",
                    "v3_links",
                    page_size=500,  # contacts: max 500 -- v3 §1.3
                    since_param="updated_after",
                    params=MappingProxyType(
                        {
                            # deleted contacts are excluded unless asked for -- v3 §1.7
                            "status": "all",
                            # sub-resources come back only when included -- v3 §3.1
                            "include": "custom_fields,list_memberships,phone_numbers,"
                            "street_addresses,taggings,notes",
                        }
                    ),
                    records_key="contacts",
                    reference="constant-contact-v3-api.md §3.1",
                    # who/what changed the contact last: no column in either version
                    ignored_fields=frozenset({"update_source", "sms_channel"}),
                ),
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
                _c("id", "NUMERIC", v3_type="text", v3_field="`campaign_id`"),
                _c("name", "STRING"),
                _c(
                    "status",
                    "STRING",
                    v3_field=(
                        "`current_status` upper-cased: DRAFT, SCHEDULED, EXECUTING, DONE, "
                        "ERROR or REMOVED (the list sends `Draft`, the detail `DRAFT`)"
                    ),
                ),
                _c("modified_date", "TIMESTAMP", v3_field="`updated_at`"),
                _c("created_date", None, "timestamp", extra=True, versions=V3_ONLY,
                   v3_field="`created_at`"),
                _c("type", None, "text", extra=True, versions=V3_ONLY,
                   description="`NEWSLETTER`, `CUSTOM_CODE_EMAIL`, ... (v3 §3.6)."),
                _c("type_code", None, "bigint", extra=True, versions=V3_ONLY,
                   description="The number of `type` (10 newsletter, 26 custom code...)."),
                _c("v2_id", None, "bigint", extra=True, versions=V3_ONLY,
                   description=(
                       "The campaign's v2 id, for integrations switched from v2 to v3 (filled "
                       "from `/emails/campaign_id_xrefs`); NULL in a plain v3 read."
                   )),
            ),
            notes=(
                "v2: read with `modified_since`; merged by `id`. The v2 API lists DELETED "
                "campaigns only when asked with `status=DELETED`, so a campaign deleted after "
                "it was loaded keeps its last loaded status. v3: read with `after_date` (on "
                "`updated_at`; `updated_after` is silently ignored by `/emails`); v3 lists "
                "deleted campaigns too, so a deleted campaign arrives with status `REMOVED`."
            ),
            sources=_both(
                Source(
                    "/v2/emailmarketing/campaigns",
                    "v2_results",
                    page_size=50,  # campaigns: max limit 50 (SDKs claim 500; docs win) -- §1.3
                    since_param="modified_since",
                    # ALL = every status but DELETED (DELETED only when asked for) -- §3
                    params=_ALL,
                    reference="constant-contact-api.md §3",
                ),
                Source(
                    "/v3/emails",
                    "v3_links",
                    page_size=500,  # emails: 1-500 (text only) -- v3 §1.3
                    since_param="after_date",  # on updated_at -- v3 §1.9
                    records_key="campaigns",
                    reference="constant-contact-v3-api.md §3.6",
                ),
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
            unavailable=_NO_V3_LIBRARY,
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
                _c("time_zone", "STRING", v3_field="`time_zone_id`"),
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
                    v3_field="`contact_email`",
                ),
                _c("phone", "STRING", v3_field="`contact_phone`"),
                _c("company_logo", "STRING", v3_field="`company_logo.url`"),
                _c("country_code", "STRING"),
                _c("status_code", "STRING", versions=V2_ONLY),
                _c("organization_addresses", "STRING", "text", deviation=_JSON_TEXT,
                   v3_field="`physical_address` (one object, as its JSON text)"),
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
                "NULL unless the API provides it; v3 has none either (no column). v3 sends "
                "the address and logo only when asked (`extra_fields`)."
            ),
            sources=_both(
                Source(
                    "/v2/account/info",
                    "v2_object",  # one object, not paginated -- §5
                    reference="constant-contact-api.md §5",
                ),
                Source(
                    "/v3/account/summary",
                    "v3_object",  # one object -- v3 §3.10
                    # physical_address and company_logo only when asked for -- v3 §3.10
                    params=MappingProxyType({"extra_fields": "physical_address,company_logo"}),
                    reference="constant-contact-v3-api.md §3.10",
                    # account ids and the organisation's phone: no column in the spec's table
                    ignored_fields=frozenset(
                        {"encoded_account_id", "encoded_partner_id", "organization_phone"}
                    ),
                ),
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
            unavailable=_NO_V3_LIBRARY,
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
                _c("id", "NUMERIC", v3_type="text", v3_field="`list_id`"),
                _c("name", "STRING"),
                _c("status", "STRING", v3_field="`deleted_at` (`DELETED` when set, else `ACTIVE`)"),
                _c("created_date", "TIMESTAMP", v3_field="`created_at`"),
                _c("modified_date", "TIMESTAMP", v3_field="`updated_at`"),
                _c("contact_count", "NUMERIC", v3_field="`membership_count`"),
                _c("description", None, "text", extra=True, versions=V3_ONLY),
                _c("favorite", None, "bool", extra=True, versions=V3_ONLY),
                _c("deleted_at", None, "timestamp", extra=True, versions=V3_ONLY,
                   description="When the list was deleted (v3 lists deleted lists too)."),
                _c("v2_id", None, "bigint", extra=True, versions=V3_ONLY,
                   description=(
                       "The list's v2 id, for integrations switched from v2 to v3 (filled "
                       "from `/contact_lists/list_id_xrefs`); NULL in a plain v3 read."
                   )),
                _c(
                    "opt_in_default",
                    None,
                    "bool",
                    extra=True,
                    versions=V2_ONLY,
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
                "so reading all lists costs the same single call. A bookmark is still recorded. "
                "v3 has no date filter for lists at all (constant-contact-v3-api.md §1.9): "
                "every list, deleted ones included, 1,000 per page."
            ),
            sources=_both(
                Source(
                    "/v2/lists",
                    "v2_array",  # lists is a bare array, not paginated -- §7
                    since_param="modified_since",
                    reference="constant-contact-api.md §7",
                ),
                Source(
                    "/v3/contact_lists",
                    "v3_links",
                    # max 1000 in the contract's schema (its text says 500; UNCONFIRMED: 1000
                    # chosen as the schema is what validates) -- v3 §1.3
                    page_size=1000,
                    params=MappingProxyType(
                        {"status": "all", "include_membership_count": "all"}
                    ),
                    records_key="lists",
                    reference="constant-contact-v3-api.md §3.2",
                ),
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
                _c(
                    "activity_type",
                    "STRING",
                    v3_field=(
                        "`tracking_activity_type` as v2 names it: em_sends -> EMAIL_SEND, "
                        "em_opens -> EMAIL_OPEN, em_clicks -> EMAIL_CLICK, em_forwards -> "
                        "EMAIL_FORWARD, em_bounces -> EMAIL_BOUNCE, em_optouts -> "
                        "EMAIL_UNSUBSCRIBE"
                    ),
                ),
                _c("campaign_id", "NUMERIC", v3_type="text",
                   v3_field="the campaign (UUID) of the row's `campaign_activity_id`"),
                _c("contact_id", "NUMERIC", v3_type="text"),
                _c("email_address", None, "text", extra=True),
                _c("activity_date", None, "timestamp", extra=True, description=_ACTIVITY_DATE_DOC,
                   v3_field="`created_time`"),
                _c("send_date", None, "timestamp", extra=True, v3_field="`created_time`"),
                _c("open_date", "TIMESTAMP", v3_field="`created_time`"),
                _c("click_date", None, "timestamp", extra=True, v3_field="`created_time`"),
                _c("forward_date", None, "timestamp", extra=True, v3_field="`created_time`"),
                _c("bounce_date", None, "timestamp", extra=True, v3_field="`created_time`"),
                _c("unsubscribe_date", None, "timestamp", extra=True,
                   v3_field="`created_time`"),
                _c("link_id", None, "text", extra=True, v3_field="`url_id`"),
                _c("link_uri", None, "text", extra=True, v3_field="`link_url`"),
                _c("bounce_code", None, "text", extra=True),
                _c("bounce_description", None, "text", extra=True, versions=V2_ONLY),
                _c("bounce_message", None, "text", extra=True, versions=V2_ONLY),
                _c("unsubscribe_source", None, "text", extra=True, versions=V2_ONLY),
                _c("unsubscribe_reason", None, "text", extra=True, v3_field="`opt_out_reason`"),
                _c("campaign_activity_id", None, "text", extra=True, versions=V3_ONLY,
                   description="The campaign activity (the sent email) the row belongs to."),
                _c("device_type", None, "text", extra=True, versions=V3_ONLY,
                   description="computer, mobile, tablet or other (opens and clicks)."),
            ),
            notes=(
                "The spec lists only `open_date`, but the table holds every activity type: each "
                "keeps its own date column and `activity_date` unifies them. Rows come from the "
                "per-campaign tracking endpoints (one call chain per sent campaign and activity "
                "type) rather than one chain per contact: the same activities, with calls that "
                "grow with campaigns and activities, not with contacts (1 campaign list call + 1 "
                "detail call per campaign due -- the campaign planner's tiers, "
                "docs/architecture-sync.md -- + the collections of the kinds whose counts moved "
                "+ pages of 500 activities). Why complete: v2 records "
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
                "run fills the URLs in (docs/architecture.md, \"No silent loss\"). "
                "v3: the same per-campaign approach, per sent campaign activity (its "
                "`primary_email` and `resend` activities) and the six activity reports "
                "(sends, opens, clicks, forwards, optouts, bounces; `didnotopens` is not an "
                "activity, so it is not read). The reports have no date filter and are "
                "newest first (constant-contact-v3-api.md §1.8, §1.9): each is paged until its "
                "first row older than the kind's mark, so calls grow with new activities, never "
                "with contacts (1 campaign list call + 1 detail call per new or changed "
                "campaign + 1 stats call per 150 due campaigns + the reports of the kinds whose "
                "counts moved + pages of 500 new activities; docs/architecture-api.md)."
            ),
            sources=_both(
                Source(
                    "/v2/emailmarketing/campaigns/{campaign_id}/tracking/{type}",
                    "v2_results",
                    page_size=500,  # tracking: default and max 500 -- §1.3, §9.1
                    since_param="created_since",
                    # Per sent campaign x the six tracking collections, not per contact: calls grow
                    # with campaigns and activities, never with contacts -- §8 vs §9.1.
                    reader="campaign_activities",
                    walks_sent_campaigns=True,
                    reference="constant-contact-api.md §8, §9.1",
                ),
                Source(
                    "/v3/reports/email_reports/{campaign_activity_id}/tracking/{type}",
                    "v3_links",
                    page_size=500,  # tracking reports: default and max 500 -- v3 §3.8
                    # no created_since in v3: newest first, read until the watermark -- v3 §1.9
                    reader="campaign_activities",
                    walks_sent_campaigns=True,
                    records_key="tracking_activities",
                    reference="constant-contact-v3-api.md §3.8",
                    # the contact's name, its current address and its deletion date: contacts
                    # columns, not the activity's
                    ignored_fields=frozenset(
                        {"first_name", "last_name", "current_email_address", "deleted_at"}
                    ),
                ),
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
                    v3_type="text",
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
                    v3_field="`last_sent_date`",
                ),
                _c(
                    "end_date",
                    "TIMESTAMP",
                    description="When the summary was read: the counts are as of this time.",
                ),
                _c("sends", "NUMERIC", v3_field="`unique_counts.sends`"),
                _c("opens", "NUMERIC", v3_field="`unique_counts.opens`"),
                _c("clicks", "NUMERIC", v3_field="`unique_counts.clicks`"),
                _c("forwards", "NUMERIC", v3_field="`unique_counts.forwards`"),
                _c("unsubscribes", "NUMERIC", v3_field="`unique_counts.optouts`"),
                _c("bounces", "NUMERIC", v3_field="`unique_counts.bounces`"),
                _c("spam_count", "NUMERIC", v3_field="`unique_counts.abuse`"),
                _c("not_opened", None, "bigint", extra=True, versions=V3_ONLY,
                   v3_field="`unique_counts.not_opened`",
                   description="Sent but not opened (sends - opens - bounces)."),
            ),
            notes=(
                "v2: the row comes from the campaign's detail, read when the campaign is checked "
                "(its tier, docs/architecture-sync.md); between checks the row of its last check "
                "is kept, and `end_date` says when its numbers were read. The v2 summary has no "
                "dates, so "
                "`start_date` and `end_date` are filled as described. v3: the bulk summary "
                "report, one call per 500 sent campaigns; v3 counts are unique counts."
            ),
            # the reader stamps the campaign's last_run_date (and id) on each summary; they
            # become start_date and campaign_id (rows.prepare_campaign_summary)
            ignored_fields=frozenset({"last_run_date", "id"}),
            sources=_both(
                Source(
                    "/v2/emailmarketing/campaigns/{campaign_id}/tracking/reports/summary",
                    "v2_object",  # one summary object per campaign -- §9
                    reader="campaign_summaries",
                    walks_sent_campaigns=True,  # rows from the planner's scan or the ledger
                    reference="constant-contact-api.md §9",
                ),
                Source(
                    "/v3/reports/summary_reports/email_campaign_summaries",
                    "v3_links",
                    page_size=500,  # bulk summaries: max 500 -- v3 §3.9
                    reader="campaign_summaries",
                    records_key="bulk_email_campaign_summaries",
                    reference="constant-contact-v3-api.md §3.9",
                    ignored_fields=frozenset({"campaign_type"}),  # email_campaigns.type has it
                ),
            ),
        ),
        Table(
            name="events",
            spec_name="Events",
            purpose="The account's EventSpot events.",
            replication="full",
            primary_key=("id",),
            columns=(
                _c("id", "STRING", v3_field="`event_id`"),
                _c("name", "STRING"),
                _c("title", "STRING"),
                _c("status", "STRING"),
                _c("location", "STRING", v3_field="`address.location_name`"),
                _c("type", "STRING", v3_field="`event_type`"),
                _c("address", "RECORD"),
                _c("description", "STRING"),
                _c("start_date", "TIMESTAMP", v3_field="`start_time`"),
                _c("end_date", "TIMESTAMP", v3_field="`end_time`"),
                _c("created_date", "TIMESTAMP", v3_field="`create_time`"),
                _c("total_registered_count", "NUMERIC",
                   v3_field="`event_registration_summary_metrics.registration_count`"),
                _c("time_zone_id", "STRING", v3_field="`time_zone` (from the event's detail)"),
                _c("active_date", "TIMESTAMP", v3_field="`active_time` (from the event's detail)"),
                _c("is_checkin_available", "BOOLEAN", versions=V2_ONLY),
                _c(
                    "event_detail_url",
                    "STRING",
                    v3_field=(
                        "`registration_url` (v3 has no event page URL; its registration page "
                        "is the closest, UNCONFIRMED equivalent -- v3 §3.11)"
                    ),
                ),
            ),
            notes=(
                "EventSpot omits properties whose value is null: such columns load as NULL. "
                "v3: the event list (100 per page) on every run, every listed event a row; an "
                "event's detail (the only place with `time_zone_id` and `active_date`) is read "
                "when the event is new or its listing changed, and once per "
                "`tracking.recheck_days` (staggered), else those two come from the event "
                "ledger; v3 has no check-in flag, so `is_checkin_available` is v2 only."
            ),
            sources=_both(
                Source(
                    "/v2/eventspot/events",
                    "v2_results",
                    page_size=500,  # events: 1-500 per the .NET SDK (docs unreadable) -- §10
                    reference="constant-contact-api.md §10",
                ),
                Source(
                    "/v3/events",
                    "v3_cursor",  # next_cursor, asked back as ?next= -- v3 §1.3
                    page_size=100,  # events: default and max 100 -- v3 §1.3
                    reader="event_details",
                    records_key="records",
                    reference="constant-contact-v3-api.md §3.11",
                    ignored_fields=frozenset({"location_type", "time_zone_type"}),
                ),
            ),
        ),
        *V3_EXTRA_TABLES,
    )
}
"""All replicated tables, by snake-case name: the spec's nine in the spec's order, then the
tables only a later API version fills (``Table.extra``)."""

SPEC_TABLES: tuple[str, ...] = tuple(n for n, t in TABLES.items() if not t.extra)
"""The names of the product spec's nine tables, in the spec's order."""


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
