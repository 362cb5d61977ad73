"""Turning submitted forms into service inputs, and errors into per-field messages.

Table and field pickers are generated from ``ctctsync.tables.TABLES``; a form posts
``tables=<table>`` for each chosen table and ``fields.<table>=<column>`` for each chosen
column. Locked (key) columns are disabled checkboxes, so browsers never send them: they
are always kept (``Table.required_columns``).

Forms check nothing themselves: they build the control plane's input schemas
(``ctctsync.control.schemas.validated``), whose rules and messages (``ctctsync.validation``)
are the REST API's and the config file's too, and show each field's message beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

from ctctsync.tables import TABLES, Column, Table


async def _form(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(_form)]
"""The submitted form (multi-valued), for pickers whose field names are generated."""


def form_str(form: FormData, name: str) -> str:
    """One text value of a form, stripped ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def chosen_tables(form: FormData) -> list[str]:
    """The tables ticked in a form, in registry order (unknown names are kept to be refused)."""
    picked = [v for v in form.getlist("tables") if isinstance(v, str) and v]
    known = [name for name in TABLES if name in picked]
    return known + [p for p in picked if p not in TABLES]


def chosen_selection(form: FormData, tables: list[str]) -> dict[str, list[str] | None]:
    """``{table: columns}`` for the chosen tables; every column ticked becomes ``None`` (all)."""
    selection: dict[str, list[str] | None] = {}
    for name in tables:
        table = TABLES.get(name)
        picked = [v for v in form.getlist(f"fields.{name}") if isinstance(v, str)]
        if table is None:
            selection[name] = picked
            continue
        keep = set(picked) | set(table.required_columns)
        unknown = [c for c in picked if c not in table.column_names]
        columns = [c for c in table.column_names if c in keep] + unknown
        selection[name] = None if not unknown and len(columns) == len(table.columns) else columns
    return selection


@dataclass(frozen=True)
class FieldChoice:
    """One column of a field picker, as the template shows it."""

    column: Column
    checked: bool
    locked: bool
    why_locked: str


@dataclass(frozen=True)
class TableChoice:
    """One table of a picker: chosen or not, and its columns."""

    table: Table
    checked: bool
    fields: list[FieldChoice]

    @property
    def selected_count(self) -> int:
        return sum(1 for f in self.fields if f.checked)


def picker(
    selection: dict[str, list[str] | None] | None, *, default_all: bool
) -> list[TableChoice]:
    """The table/field picker for a selection (``None`` column lists mean every column)."""
    choices = []
    for name, table in TABLES.items():
        chosen = (selection is None and default_all) or (
            selection is not None and name in selection
        )
        cols = None if selection is None else selection.get(name)
        fields = []
        for col in table.columns:
            locked = col.name in table.required_columns
            why = ""
            if col.name in table.primary_key:
                why = "key"
            elif locked:
                why = "change cursor"
            fields.append(
                FieldChoice(
                    column=col,
                    checked=locked or cols is None or col.name in cols,
                    locked=locked,
                    why_locked=why,
                )
            )
        choices.append(TableChoice(table=table, checked=chosen, fields=fields))
    return choices


def field_messages(errors: dict[str, Any]) -> dict[str, str]:
    """Normalise service errors for the templates (``tables.<t>`` also feeds ``tables``)."""
    out = {str(k): str(v) for k, v in errors.items()}
    for key, value in list(out.items()):
        if key.startswith("tables.") and "tables" not in out:
            out["tables"] = f"{key.removeprefix('tables.')}: {value}"
    return out
