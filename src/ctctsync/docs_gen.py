"""Generate ``docs/tables.md`` from the table registry.

``python -m ctctsync.docs_gen`` rewrites the file; ``--check`` exits 1 if it is stale (the
test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from ctctsync.tables import (
    METADATA_COLUMNS,
    TABLES,
    ApiVersion,
    Column,
    Reader,
    Source,
    Table,
    V3Reader,
)

VERSIONS: tuple[ApiVersion, ...] = get_args(ApiVersion)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "tables.md"

_TYPE_DOC = {
    "bigint": "64-bit integer",
    "double": "double",
    "text": "text",
    "bool": "boolean",
    "timestamp": "timestamp with time zone (UTC)",
    "json": "JSON (DuckDB `JSON`, PostgreSQL `jsonb`)",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_READER_DOC: dict[tuple[ApiVersion, Reader | V3Reader], str] = {
    ("v2", "collection"): "",
    ("v2", "campaign_activities"): "per sent campaign and tracking type",
    ("v2", "campaign_summaries"): "per sent campaign: its detail, else this summary",
    ("v3", "collection"): "",
    ("v3", "campaign_activities"): (
        "per sent campaign activity and tracking type, newest first, until the bookmark"
    ),
    ("v3", "campaign_summaries"): "every sent campaign's summary, in bulk",
    ("v3", "event_details"): "the event list, then each event's detail",
    ("v3", "email_activities"): (
        "for each campaign changed since the bookmark (`GET /v3/emails?after_date=`): its "
        "detail, then each primary_email/resend activity"
    ),
    ("v3", "event_registrations"): "per event: its detail (for the track), then this list",
}


def _source_line(version: ApiVersion, src: Source) -> str:
    how = [f"`{k}={v}`" for k, v in src.params.items()]
    if src.page_size is not None:
        how.append(f"up to {src.page_size} per page")
    if src.since_param is not None:
        how.append(f"filter `{src.since_param}`")
    if _READER_DOC[(version, src.reader)]:
        how.append(_READER_DOC[(version, src.reader)])
    detail = f" ({', '.join(how)})" if how else ""
    ref = f"; {src.reference}" if src.reference else ""
    line = f"- Source ({version}): `GET {src.path}`{detail}{ref}"
    if src.ignored_fields:
        # known, so never reported as new fields
        fields = ", ".join(f"`{f}`" for f in sorted(src.ignored_fields))
        line += f". Read but not loaded: {fields}"
    return line


def _sources(t: Table) -> list[str]:
    """One line per API version: its source, or why it has none."""
    out = []
    for version in VERSIONS:
        src = t.sources.get(version)
        if src is not None:
            out.append(_source_line(version, src))
        else:
            out.append(f"- Not available in {version}: {t.unavailable_reason(version)}")
    return out


def _replication(t: Table) -> str:
    if t.replication == "full":
        return "full (replaced on every run)"
    if t.read_whole:  # what happens, then what the spec says (Table.replication_label)
        return f"{t.replication_label}: replaced on every run, see notes"
    return f"key-based on `{t.replication_key}`"


def _version_cell(t: Table, c: Column, version: ApiVersion) -> str:
    """The column's type in ``version`` (and, in v3, where its value comes from), or "-"."""
    if version not in t.sources or version not in c.versions:
        return "-"
    if version == "v3":
        typ = c.v3_type or c.type
        return f"{typ} from {c.v3_field}" if c.v3_field else typ
    return c.type


def _column_row(t: Table, c: Column) -> str:
    spec_name = c.name if c.spec_name is None else (c.spec_name or "(blank)")
    notes = (
        "key" if c.name in t.primary_key else "",
        "not in the spec" if c.extra and not t.extra else "",
        c.description,
        c.deviation or "",
        f"Also read from {', '.join(f'`{a}`' for a in c.aliases)}." if c.aliases else "",
    )
    versions = " | ".join(_cell(_version_cell(t, c, v)) for v in VERSIONS)
    return (
        f"| `{c.name}` | {versions} | {spec_name if c.in_spec else '-'} | "
        f"{c.spec_type or '-'} | {_cell(' '.join(n for n in notes if n))} |"
    )


def _table_section(t: Table) -> list[str]:
    out = [
        f"## `{t.name}` ({t.spec_name})",
        "",
        t.purpose,
        "",
        f"- Replication: {_replication(t)}",
        f"- Primary key: {', '.join(f'`{k}`' for k in t.primary_key)}",
    ]
    if t.cursor_column:
        out.append(f"- Cursor column: `{t.cursor_column}`")
    if t.depends_on:
        out.append(f"- Enumerates: {', '.join(f'`{d}`' for d in t.depends_on)}")
    out += _sources(t)
    if t.notes:
        out.append(f"- Notes: {t.notes}")
    if t.ignored_fields:
        # known, so never reported as new fields
        fields = ", ".join(f"`{f}`" for f in sorted(t.ignored_fields))
        out.append(f"- Read but not loaded as columns (v2): {fields}")
    heads = " | ".join(f"{v} type" for v in VERSIONS)
    out += [
        "",
        f"| column | {heads} | spec name | spec type | notes |",
        "|---|" + "---|" * len(VERSIONS) + "---|---|---|",
        *(_column_row(t, c) for c in t.columns),
        "",
    ]
    return out


def render() -> str:
    """The whole of ``docs/tables.md``."""
    lines = [
        "# Tables",
        "",
        "<!-- Generated by `python -m ctctsync.docs_gen` from `src/ctctsync/tables.py`;"
        " do not edit by hand. -->",
        "",
        "Every table is loaded as `<integration>_<table>` into the warehouse dataset. Every "
        "row also carries "
        + " and ".join(f"`{m}`" for m in METADATA_COLUMNS)
        + " (when it was loaded, UTC, and the run that loaded it).",
        "",
        "Type mapping: " + "; ".join(f"`{k}` = {v}" for k, v in _TYPE_DOC.items()) + ". "
        "Ids sent as digit strings become integers; timestamps with an offset (library files "
        "use US Eastern) are converted to UTC; an empty string stands for \"no value\" in the "
        "v2 API and is stored as NULL (dates and text alike); lists/objects in `text` columns "
        "are stored as their JSON text. A value that cannot be converted without loss fails "
        "its table with a message naming the table, the field and the record.",
        "",
        "Column selection: the key and the cursor column are always loaded. Selecting a new "
        "column of a key-based table re-reads that table from the history start on the next "
        "run (its earlier rows would otherwise hold NULL there).",
        "",
        "New fields: a field the API sends that no table below declares is reported once "
        "per table and run in the run log (\"new field available: contacts.<field>\"), and "
        "listed by `ctctsync discover` and on the integration's page. Each integration's "
        "`new_columns` policy decides the rest: `ignore` (the default) loads nothing more; "
        "`add` also loads the field as a new text column named by the field in snake case "
        "(lists and objects as their JSON text), added to the warehouse table by dlt's schema "
        "evolution; rows loaded before hold NULL there. Fields some payloads send under "
        "another name are read under it (aliases, in the notes below).",
        "",
        "API versions: an integration reads either Constant Contact's v2 API or its v3 API "
        "(`source.api_version`). Each table below lists its source in each version (or why a "
        "version cannot fill it), and each column its warehouse type per version (`-`: that "
        "version has no such column); a v3 cell also names the v3 field that fills the "
        "column when the names differ. v3 names records by UUID, so ids that are integers in "
        "v2 are text in v3; v3 omits empty fields, which load as NULL. The tables after the "
        "spec's nine exist only in v3.",
        "",
    ]
    extra_started = False
    for t in TABLES.values():
        if t.extra and not extra_started:
            extra_started = True
            lines += ["# Tables only the v3 API fills", "",
                      "Not in the product spec: what v3 offers beyond the spec's nine tables.",
                      ""]
        lines += _table_section(t)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/tables.md`` (or ``--check`` it); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ctctsync.docs_gen",
        description="Write docs/tables.md from the table registry.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    path: Path = args.path
    text = render()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            sys.stderr.write(f"{path} is stale: run `python -m ctctsync.docs_gen`\n")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
