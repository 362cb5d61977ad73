"""The input rules, written once: the CLI's config file, the REST API and the web forms use them.

Each rule is a pydantic ``Annotated`` type carrying its constraint (a pattern, a length, a
closed set of values) where pydantic can show it in the JSON Schema, and its one message a
user reads when the value breaks it. The control plane's OpenAPI schema therefore documents
the same constraints the forms and ``ctctsync.toml`` are checked against.

This module sits at the bottom of the package: it imports nothing of ctctsync but the table
registry, so ``config``, ``control`` and ``web`` can all import it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ctctsync.tables import TABLES

# ----------------------------------------------------------------------------- helpers


def _says(error_type: str, message: str) -> WrapValidator:
    """Replace whatever pydantic says about a value breaking the wrapped rule by ``message``."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(error_type, message) from None

    return WrapValidator(wrap)


def _blank_is_none(value: Any) -> Any:
    """An empty or blank text (an empty form field) means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def field_errors(exc: ValidationError, whole: str = "form") -> dict[str, str]:
    """``{field: message}`` from a ``ValidationError``, the first message of each field.

    Nested fields are joined with dots (``tables.contacts``); errors of the whole object
    (model validators) go under ``whole``.
    """
    errors: dict[str, str] = {}
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or whole
        errors.setdefault(field, err["msg"].removeprefix("Value error, "))
    return errors


# ----------------------------------------------------------------------------- integration


INTEGRATION_NAME_MAX = 40
INTEGRATION_NAME_RE = re.compile(rf"^[a-z][a-z0-9_]{{0,{INTEGRATION_NAME_MAX - 1}}}$")
"""Integration names become table-name prefixes: lower snake case, at most 40 characters."""
INTEGRATION_NAME_MESSAGE = (
    f"Use 1-{INTEGRATION_NAME_MAX} lower-case letters, digits and underscores, starting with "
    "a letter (e.g. acme_newsletter): the name prefixes every warehouse table."
)
EMPTY_NAME_MESSAGE = "Enter a name."


def _name_given(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("missing_name", EMPTY_NAME_MESSAGE)
    return value


IntegrationName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=INTEGRATION_NAME_RE.pattern, max_length=INTEGRATION_NAME_MAX
    ),
    _says("integration_name", INTEGRATION_NAME_MESSAGE),
    BeforeValidator(_name_given),
]
"""An integration's name: lower snake case, 1-40 characters; it prefixes its tables."""


REPLICATION_FREQUENCIES_HOURS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 24)
FREQUENCY_MESSAGE = (
    "Choose one of "
    + ", ".join(str(h) for h in REPLICATION_FREQUENCIES_HOURS[:-1])
    + f" or {REPLICATION_FREQUENCIES_HOURS[-1]} hours."
)


def _one_of_the_frequencies(value: int) -> int:
    if value not in REPLICATION_FREQUENCIES_HOURS:
        raise ValueError("not a frequency")
    return value


FrequencyHours = Annotated[
    # An int (not a Literal) so values read back from the store type-check; the schema
    # still lists the choices.
    int,
    Field(json_schema_extra={"enum": list(REPLICATION_FREQUENCIES_HOURS)}),
    AfterValidator(_one_of_the_frequencies),
    _says("frequency_hours", FREQUENCY_MESSAGE),
]
"""Hours between scheduled runs, one of ``REPLICATION_FREQUENCIES_HOURS``."""


NEW_COLUMNS_POLICIES: tuple[str, ...] = ("ignore", "add")
"""What a run does with a record field the table registry does not know (both report it)."""
NEW_COLUMNS_MESSAGE = "Choose ignore (report new fields only) or add (also load them as columns)."

NewColumnsPolicy = Annotated[
    Literal["ignore", "add"],
    _says("new_columns", NEW_COLUMNS_MESSAGE),
]
"""An integration's policy for new fields: ``ignore`` (the default: reported, not loaded)
or ``add`` (also loaded as new text columns, as Fivetran's "allow new columns")."""


EARLIEST_HISTORY = date(1996, 1, 1)
"""Constant Contact was founded in 1995; nothing older exists."""
DATE_MESSAGE = "Enter a date as YYYY-MM-DD, e.g. 2024-01-31."


def _history_in_range(value: date) -> date:
    if value > datetime.now(UTC).date():
        raise PydanticCustomError("history_future", "The history start cannot be in the future.")
    if value < EARLIEST_HISTORY:
        raise PydanticCustomError(
            "history_ancient",
            f"The history start must be {EARLIEST_HISTORY.isoformat()} or later.",
        )
    return value


HistoryStart = Annotated[date, _says("date", DATE_MESSAGE), AfterValidator(_history_in_range)]
"""How far back the first run of a key-based table reads: not in the future, 1996 or later."""

OptionalHistoryStart = Annotated[
    HistoryStart | None,
    BeforeValidator(_blank_is_none),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "pattern": r"^\s*$"},
                {"type": "null"},
            ],
            "description": "YYYY-MM-DD, 1996-01-01 or later and not in the future; "
            "blank or null for the default.",
        }
    ),
]
"""A history start that may be left blank (the service then picks a default)."""


LOOKBACK_MAX = timedelta(days=7)


def _lookback_in_range(value: timedelta) -> timedelta:
    if not timedelta(0) <= value <= LOOKBACK_MAX:
        raise ValueError("out of range")
    return value


Lookback = Annotated[
    timedelta,
    AfterValidator(_lookback_in_range),
    _says("lookback", "Enter a duration between 0 and 7 days, e.g. PT10M."),
]
"""Re-read this much before the bookmark, to absorb clock skew and late writes."""


# ----------------------------------------------------------------------------- warehouse


DatasetName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z_][a-z0-9_]{0,62}$"),
    _says(
        "dataset_name",
        "Use lower snake case (letters, digits, underscores), at most 63 characters.",
    ),
]
"""The schema / dataset the warehouse tables are created in."""

DestinationName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]*$"),
    _says("destination_name", "Enter a dlt destination name such as duckdb or postgres."),
]
"""A dlt destination: ``duckdb``, ``postgres``, or any other name dlt knows."""


# ----------------------------------------------------------------------------- ids, text


STORE_INT_MAX = 2**31 - 1
"""The largest id or sequence number the control store holds: PostgreSQL's ``integer``
(SQLite's is 2**63-1). A larger number in a URL is refused before it reaches a query."""

RowId = Annotated[int, Field(ge=1, le=STORE_INT_MAX)]
"""The id of a stored row (an integration, an API token): 1 to 2**31-1."""

RUN_ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
"""Run ids are 32 hex digits; anything of another alphabet cannot name a run."""

NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""Text without control characters: PostgreSQL text cannot hold NUL, and a line break or
an escape in a name or an email address is never meant."""

PlainText = Annotated[
    str,
    StringConstraints(pattern=NO_CONTROL_PATTERN),
    _says("plain_text", "Remove the control characters (such as NUL or line breaks)."),
]
"""Free text that the store keeps (a path, an OAuth state): no control characters."""

TOKEN_NAME_MAX = 100
TOKEN_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"  # noqa: S105 -- a pattern
TokenName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TOKEN_NAME_MAX, pattern=TOKEN_NAME_PATTERN),
    _says(
        "token_name",
        f"Give the token a name of at most {TOKEN_NAME_MAX} characters, without control "
        "characters, e.g. the script that uses it.",
    ),
]
"""A personal API token's label: 1-100 characters, not blank, no control characters."""

EMAIL_MAX = 254
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
EmailAddress = Annotated[
    str,
    StringConstraints(max_length=EMAIL_MAX, pattern=EMAIL_PATTERN),
    _says("email", "Enter an email address such as ana@example.com."),
]
"""A user's sign-in: one ``@``, a dot in the domain, no spaces or control characters."""

MIN_PASSWORD_LENGTH = 8
PASSWORD_MAX = 1024
Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=PASSWORD_MAX),
    _says(
        "password",
        f"Use at least {MIN_PASSWORD_LENGTH} characters (at most {PASSWORD_MAX}).",
    ),
]
"""A new password: 8 to 1024 characters (hashed, never stored as text)."""

CREDENTIAL_MAX = 512
CREDENTIAL_PATTERN = r"^[!-~]+$"
"""Printable ASCII without spaces: what CC issues, and all an HTTP header can carry safely
(a non-ASCII or CR/LF value would fail every run as a protocol error, or split a header)."""


def _credential_message(what: str) -> str:
    return (
        f"Paste the {what} exactly as Constant Contact shows it: printable ASCII characters "
        f"without spaces or line breaks, at most {CREDENTIAL_MAX}."
    )


_CREDENTIAL = StringConstraints(min_length=1, max_length=CREDENTIAL_MAX, pattern=CREDENTIAL_PATTERN)

ApiKey = Annotated[str, _CREDENTIAL, _says("api_key", _credential_message("API key"))]
"""A Constant Contact application's API key (sent in every request's query)."""
AccessToken = Annotated[
    str, _CREDENTIAL, _says("access_token", _credential_message("access token"))
]
"""A Constant Contact access token (sent as ``Authorization: Bearer``)."""


# ----------------------------------------------------------------------------- selection


NO_TABLE_MESSAGE = "Choose at least one table to replicate."

Selection = dict[str, list[str] | None]
"""Table name -> selected column names (None = every column)."""


def selection_problems(tables: Selection) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with a selection, as ``(location, message)``; empty when it is fine.

    The location is ``()`` for the selection as a whole and ``(table,)`` for one table's
    columns, so a form can show the message beside that table.
    """
    if not tables:
        return [((), NO_TABLE_MESSAGE)]
    problems: list[tuple[tuple[str, ...], str]] = []
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        problems.append(
            (
                (),
                f"Unknown table(s): {', '.join(sorted(unknown))}. "
                f"Known tables: {', '.join(TABLES)}.",
            )
        )
    for name, columns in tables.items():
        table = TABLES.get(name)
        if table is None or columns is None:
            continue
        bad = sorted(set(columns) - set(table.column_names))
        if bad:
            problems.append(
                (
                    (name,),
                    f"{name} has no column(s) {', '.join(bad)}. "
                    f"Its columns: {', '.join(table.column_names)}.",
                )
            )
    return problems


def _check_selection(value: Any, handler: ValidatorFunctionWrapHandler) -> Selection:
    tables: Selection = handler(value)
    problems = selection_problems(tables)
    if problems:
        details: list[InitErrorDetails] = [
            {
                "type": PydanticCustomError("table_selection", message),
                "loc": loc,
                "input": tables,
            }
            for loc, message in problems
        ]
        raise ValidationError.from_exception_data("table selection", details)
    return tables


def normalise_selection(tables: Selection) -> Selection:
    """A valid selection in registry order, each column list in registry order with the
    columns every sync keeps (keys and cursors) added."""
    selection: Selection = {}
    for name, table in TABLES.items():
        if name not in tables:
            continue
        columns = tables[name]
        if columns is None:
            selection[name] = None
            continue
        keep = set(columns) | set(table.required_columns)
        selection[name] = [c for c in table.column_names if c in keep]
    return selection


def _selection_json_schema() -> dict[str, Any]:
    """The selection's JSON Schema, from the registry: each table by name, its columns as an
    enum, at least one table, nothing else (what ``selection_problems`` checks)."""
    return {
        "type": "object",
        "description": "Table -> the columns to load (null: every column).",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            name: {
                "anyOf": [
                    {"type": "array", "items": {"type": "string", "enum": table.column_names}},
                    {"type": "null"},
                ]
            }
            for name, table in TABLES.items()
        },
    }


TableSelection = Annotated[
    Selection, WrapValidator(_check_selection), WithJsonSchema(_selection_json_schema())
]
"""Known tables (at least one) and, for each, known columns or None for every column."""

NormalisedSelection = Annotated[TableSelection, AfterValidator(normalise_selection)]
"""A ``TableSelection`` stored as the control plane keeps it (see ``normalise_selection``)."""


__all__ = [
    "CREDENTIAL_PATTERN",
    "DATE_MESSAGE",
    "EARLIEST_HISTORY",
    "EMPTY_NAME_MESSAGE",
    "FREQUENCY_MESSAGE",
    "INTEGRATION_NAME_MESSAGE",
    "INTEGRATION_NAME_RE",
    "NO_CONTROL_PATTERN",
    "NO_TABLE_MESSAGE",
    "REPLICATION_FREQUENCIES_HOURS",
    "RUN_ID_PATTERN",
    "STORE_INT_MAX",
    "AccessToken",
    "ApiKey",
    "DatasetName",
    "DestinationName",
    "EmailAddress",
    "FrequencyHours",
    "HistoryStart",
    "IntegrationName",
    "Lookback",
    "NormalisedSelection",
    "OptionalHistoryStart",
    "Password",
    "PlainText",
    "RowId",
    "Selection",
    "TableSelection",
    "TokenName",
    "field_errors",
    "normalise_selection",
    "selection_problems",
]
