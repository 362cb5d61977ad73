"""The bulk contact export as a reader of the contacts table, and the rule choosing it.

A full read of the contacts table pages ``GET /v3/contacts`` at 500 per call (§3.1, §1.3):
``ceil(n / 500)`` calls. The bulk export (§3.13) costs a fixed number of calls whatever the
account size: ``POST /activities/contact_exports``, one ``GET /activities/{id}`` poll,
``GET /contact_exports/{file_export_id}`` (a CSV file). :func:`read_export` runs it and turns
each CSV line back into the raw v3 contact dict the paging read yields, so
:class:`~ctctsync.api.v3.shape.Shaper` maps both alike.

What the CSV cannot say, field by field (checked against the paging read of the same account
in ``tests/api/test_v3_export.py``):

* **Delivered as paging does** (:data:`EXPORT_COLUMNS`): ``contact_id``; names, job title,
  company; birthday and anniversary; ``create_source``; ``created_at``/``updated_at``;
  ``email_address.permission_to_send`` (so ``status``); list memberships and taggings (ids,
  ``;``-joined); custom fields (the CSV heads them by *name*: one
  ``GET /contact_custom_fields`` call maps names to ids).
* **Deleted contacts** are not in the default export, and the CSV has no ``deleted_at``:
  filled another way, by paging ``GET /contacts?status=deleted`` with every ``include``
  (``ceil(deleted / 500)`` calls, at least one), which yields them exactly as the paging read.
* **Not deliverable** (:data:`EXPORT_GAPS`): phone kinds (numbers are ``;``-joined without
  their kind, so ``home_phone``/``work_phone``/``cell_phone`` cannot be told apart), street
  addresses past the first and every address's id, kind and times (``addresses``), notes' ids
  and dates (and notes containing ``;`` cannot be split: ``notes``), the email address's
  ``confirm_status`` and times (``confirmed``, ``email_addresses``). No cheap call fills them
  (only a call per contact), so **a read that needs any of these columns keeps paging**:
  :func:`first_load_strategy` picks the export only for a read whose columns are all in
  :data:`EXPORT_COLUMNS`.

UNCONFIRMED (CC documents neither): the CSV's column names and ``;`` joins are the sandbox's
reading of the export guide (``ctctsync.sandbox.v3.exports``); the export activity needs the
``contacts:write`` privilege even to read (contract ``x-authorization-privileges``), so a
user without it gets 403 on the POST: :func:`read_contacts` then keeps paging.
Sections cited are of ``constant-contact-v3-api.md``.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import tempfile
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final, Literal

from ctctsync.api.cancel import pause
from ctctsync.api.client import ApiClient, endpoint_template
from ctctsync.api.paging import Page, Paginator
from ctctsync.api.v3.endpoints import first_params, paginator, parse_time
from ctctsync.api.v3.shape import Shaper
from ctctsync.errors import CtctError
from ctctsync.tables import Source, Table

log = logging.getLogger("ctctsync.api.v3.export")

Strategy = Literal["paging", "export"]
Raw = dict[str, Any]
Records = list[dict[str, Any]]

PAGE_SIZE: Final = 500
"""Contacts per ``GET /contacts`` call (the maximum, §1.3)."""
EXPORT_CALLS: Final = 3
"""POST the export, poll it once, download the file (§3.13; the sandbox completes an export
on its first poll -- UNCONFIRMED for CC, where a large export may need more polls)."""
FIELD_NAMES_CALLS: Final = 1
"""``GET /contact_custom_fields`` (≤100 per page, §3.4; CC allows 100 fields per account)."""
DELETED_CALLS: Final = 1
"""``GET /contacts?status=deleted``: one page while the account has ≤500 deleted contacts."""
COUNT_CALLS: Final = 1
"""The first paging page, read with ``include_count=true`` to learn the count: free when the
read keeps paging (it is that read's first page), one call wasted when it exports."""

POLL_SECONDS: Final = 2.0
"""Wait between two polls of an unfinished export. UNCONFIRMED: CC gives no interval; chose
2 s because each poll is a call of the 4/s, 10,000/day budget and an export takes seconds."""

EXPORT_PATH: Final = "/v3/activities/contact_exports"
ACTIVITY_PATH: Final = "/v3/activities/{activity_id}"
FILE_PATH: Final = "/v3/contact_exports/{file_export_id}"
CUSTOM_FIELDS_PATH: Final = "/v3/contact_custom_fields"

EXPORT_COLUMNS: Final = frozenset({
    "id", "status", "lists", "source", "first_name", "last_name", "job_title",
    "company_name", "custom_fields", "created_date", "modified_date", "deleted_at",
    "permission_to_send", "taggings", "birthday_month", "birthday_day", "anniversary", "v2_id",
})
"""The contacts columns (v3 view) an export fills exactly as paging does."""
EXPORT_GAPS: Final = frozenset({
    "addresses", "notes", "confirmed", "email_addresses", "home_phone", "work_phone",
    "cell_phone",
})
"""The contacts columns the CSV cannot fill as paging does (the module docstring says why)."""


def paging_calls(contact_count: int) -> int:
    """Calls of a full paging read: one per 500 contacts, at least one."""
    return max(1, math.ceil(contact_count / PAGE_SIZE))


def export_calls(deleted_count: int = 0) -> int:
    """Calls of an export read, the count included: the first page that counted, the export,
    the custom field names, and the deleted contacts' pages."""
    deleted_pages = max(DELETED_CALLS, math.ceil(deleted_count / PAGE_SIZE))
    return COUNT_CALLS + EXPORT_CALLS + FIELD_NAMES_CALLS + deleted_pages


EXPORT_THRESHOLD: Final = export_calls() * PAGE_SIZE
"""3,000 contacts (deleted ones included): above it paging costs more calls
(``ceil(n/500) > 6``) than the export of an account with at most 500 deleted contacts. Each
further 500 deleted contacts moves it up by 500 (they are paged either way).

Time, measured (``docs/performance.md`` "v3"): calls are the scarce budget (4 per second,
10,000 per day), so they decide. Time agrees from about 6,000 contacts on: a first load
paced at 4 requests/s on the sandbox (load average 4-5) took, paging vs export, 1.6 vs 3.7 s
at 3,100 contacts (7 vs 6 calls + 1 retried throttling answer: the export renders every
contact before the first row arrives), 3.6 vs 3.6 s at 6,000, 5.4 vs 3.8 s at 10,000,
10.4 vs 6.8 s at 20,000 and 63.7 vs 36.4 s at 100,000 (200 vs 12 calls)."""


def first_load_strategy(contact_count: int,
                        columns: Collection[str] = EXPORT_COLUMNS,
                        deleted_count: int = 0) -> Strategy:
    """``"export"`` when it costs fewer calls than paging ``contact_count`` contacts (the
    count ``include_count`` gives: deleted ones included) and ``columns`` (the read's
    contacts columns) are all ones the export fills; else ``"paging"``. ``deleted_count``:
    the deleted contacts among them (the export pages those: :func:`export_calls`). Equal
    costs keep paging (the richer read)."""
    if not set(columns) <= EXPORT_COLUMNS:
        return "paging"
    cheaper = paging_calls(contact_count) > export_calls(deleted_count)
    return "export" if cheaper else "paging"


# --- calls the JSON client does not make -------------------------------------------------------


SPOOL_BYTES: Final = 8 * 2**20
"""The export file is held in memory up to this size, then on disk: a 1M-contact file is
hundreds of MB, and a run's memory must not grow with the account."""


# --- the export read -----------------------------------------------------------------------------


def _split(cell: str) -> list[str]:
    return cell.split(";") if cell else []


def _int(cell: str) -> int | None:
    return int(cell) if cell else None


EMAIL_CELLS: Final[Mapping[str, str]] = {
    "email_address": "address",
    "email_permission": "permission_to_send",
    "email_optin_source": "opt_in_source",
    "email_optin_date": "opt_in_date",
    "email_optout_source": "opt_out_source",
    "email_optout_date": "opt_out_date",
    "email_optout_reason": "opt_out_reason",
}
"""CSV column -> its field of the contact's ``email_address`` object."""

TOP_CELLS: Final[Mapping[str, tuple[str, Callable[[str], Any]]]] = {
    "contact_id": ("contact_id", str),
    "first_name": ("first_name", str),
    "last_name": ("last_name", str),
    "job_title": ("job_title", str),
    "company_name": ("company_name", str),
    "birthday_month": ("birthday_month", _int),
    "birthday_day": ("birthday_day", _int),
    "anniversary": ("anniversary", str),
    "source_name": ("create_source", str),
    "created_at": ("created_at", str),
    "updated_at": ("updated_at", str),
    "email_lists": ("list_memberships", _split),
    "tag": ("taggings", _split),
}
"""CSV column -> the v3 contact field it fills, and how the cell reads."""

ADDRESS_CELLS: Final[Mapping[str, str]] = {
    "street": "street", "city": "city", "state": "state", "zip": "postal_code",
    "country": "country",
}
"""The first street address's cells (partial: no id, kind or times -- :data:`EXPORT_GAPS`)."""

LIST_FIELDS: Final = ("list_memberships", "taggings")
"""Sub-resources paging includes as ``[]`` when empty: the export yields them alike."""
DROPPED_CELLS: Final = frozenset({"phone_number", "notes"})
"""Cells left out: phone kinds and note boundaries are lost (:data:`EXPORT_GAPS`); a partial
value would load as if it were the contact's."""


def contact_from_cells(row: Mapping[str, str], field_ids: Mapping[str, str]) -> Raw:
    """One CSV line as the raw v3 contact the paging read yields (as far as the CSV holds
    it). ``field_ids``: custom field name -> id. Empty cells are absent keys, as v3 omits
    empty values (§1.6); an unknown column is kept under its name (reported as drift)."""
    raw: Raw = {}
    email: dict[str, str] = {}
    address: dict[str, str] = {}
    custom: list[dict[str, str]] = []
    for name, cell in row.items():
        if name in TOP_CELLS:
            key, read = TOP_CELLS[name]
            if cell or key in LIST_FIELDS:
                raw[key] = read(cell)
        elif name in EMAIL_CELLS:
            if cell:
                email[EMAIL_CELLS[name]] = cell
        elif name in ADDRESS_CELLS:
            if cell:
                address[ADDRESS_CELLS[name]] = cell
        elif name in field_ids:
            if cell:
                custom.append({"custom_field_id": field_ids[name], "value": cell})
        elif name not in DROPPED_CELLS and cell:
            raw[name] = cell
    if email:
        raw["email_address"] = email
    raw["street_addresses"] = [address] if address else []
    raw["custom_fields"] = custom
    return raw


def _field_ids(client: ApiClient) -> dict[str, str]:
    """Custom field name -> id (the CSV heads custom fields by name, contacts carry ids)."""
    out: dict[str, str] = {}
    for page in client.pages(CUSTOM_FIELDS_PATH, {"limit": 100}, "v3_links",
                             records_key="custom_fields"):
        for field in page.records:
            out[str(field["name"])] = str(field["custom_field_id"])
    return out


def _results_path(activity: Any) -> str:
    """The file's path from a completed activity (``_links.results.href``), or the
    activity id under ``/contact_exports/`` when the link is missing."""
    links = activity.get("_links") if isinstance(activity, dict) else None
    results = links.get("results") if isinstance(links, dict) else None
    href = results.get("href") if isinstance(results, dict) else None
    if isinstance(href, str) and href:
        return href if href.startswith("/v3/") else "/v3" + href
    return FILE_PATH.format(file_export_id=activity["activity_id"])


class ExportFailed(RuntimeError):  # noqa: N818 - named by what the caller meets
    """The export activity ended ``cancelled``, ``failed`` or ``timed_out`` (§3.13)."""


def run_export(client: ApiClient, sink: IO[bytes]) -> None:
    """The export's CSV file into ``sink``: POST, poll until completed, download (3 calls
    on the sandbox). UNCONFIRMED polling: CC gives no interval; the sandbox completes on the first
    poll, a real account may need several (each one a call)."""
    activity = client.post_json(EXPORT_PATH, {})
    activity_id = str(activity["activity_id"])
    while True:
        activity = client.get_json(ACTIVITY_PATH.format(activity_id=activity_id))
        state = activity.get("state")
        if state == "completed":
            break
        if state in ("cancelled", "failed", "timed_out"):
            raise ExportFailed(f"contact export {activity_id} ended {state}: "
                               f"{activity.get('activity_errors')}")
        # the limiter paces the poll itself; this wait spares the budget a call per instant
        pause(POLL_SECONDS, time.sleep, client.should_stop)
    client.download(_results_path(activity), sink)
    sink.seek(0)


def deleted_pages(client: ApiClient, source: Source, since: datetime | None,
                  counting: Paginator | None = None) -> Iterator[Page]:
    """The deleted contacts (changed since ``since``), paged as the paging read pages them
    (the export leaves them out and has no ``deleted_at``), counted when ``counting`` is a
    :class:`_CountingPaginator`."""
    params = {**first_params(source, since), "status": "deleted"}
    if counting is not None:
        params["include_count"] = "true"
    return client.pages(source.path, params, counting or paginator(source))


def _changed_since(raw: Raw, since: datetime | None) -> bool:
    # the export has no date filter: keep what paging's updated_after would (§3.1)
    if since is None:
        return True
    updated = parse_time(raw.get("updated_at"))
    return updated is None or updated >= since


def read_export(client: ApiClient, since: datetime | None = None, *, table: Table,
                source: Source, chunk: int = PAGE_SIZE,
                deleted: Iterator[Page] | None = None,
                spool_bytes: int = SPOOL_BYTES) -> Iterator[Records]:
    """Every contact changed since ``since`` (all when None), shaped: the export's rows in
    lists of ``chunk``, then the deleted contacts' pages (``deleted``, when the caller began
    reading them). The file is kept in memory up to ``spool_bytes``, then on disk. Calls:
    :func:`export_calls` minus the count."""
    shape = Shaper(table, source)
    with tempfile.SpooledTemporaryFile(spool_bytes) as sink:
        run_export(client, sink)  # first: a refused export costs one call
        field_ids = _field_ids(client)
        yield from _shaped_rows(sink, field_ids, shape, since, chunk)
    for page in deleted if deleted is not None else deleted_pages(client, source, since):
        if page.records:
            yield [shape(r) for r in page.records]


def _shaped_rows(sink: IO[bytes], field_ids: Mapping[str, str], shape: Shaper,
                 since: datetime | None, chunk: int) -> Iterator[Records]:
    """The file's lines as shaped rows, in lists of ``chunk``."""
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="")  # newline="": csv's rule
    batch: Records = []
    for row in csv.DictReader(text):
        raw = contact_from_cells(row, field_ids)
        if _changed_since(raw, since):
            batch.append(shape(raw))
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch
    text.detach()  # the sink is closed by its owner


# --- the hook: how the contacts table is read ----------------------------------------------------


@dataclass
class _CountingPaginator:
    """The contacts paginator, remembering the ``contacts_count`` of the first page read
    with ``include_count=true`` (§3.1)."""

    inner: Paginator
    count: int | None = None

    def parse(self, body: Any) -> Page:
        if self.count is None and isinstance(body, dict):
            count = body.get("contacts_count")
            self.count = count if isinstance(count, int) else None
        return self.inner.parse(body)


def read_contacts(
    client: ApiClient,
    since: datetime | None,
    *,
    table: Table,
    source: Source,
    campaigns: Any = None,
    now: Any = None,
    notes: Any = None,
    columns: Sequence[str] | None = None,
) -> Iterator[Records]:
    """The contacts table, by the cheaper way (:func:`first_load_strategy`); a
    :data:`~ctctsync.api.v3.extract.READERS` reader. ``columns``: those the caller loads
    (default: every column of ``table``); they decide whether the export can serve.

    A read whose columns the export cannot all fill pages exactly as the ``collection``
    reader does. Otherwise the first page is read with ``include_count=true``: the count of
    the contacts this read covers (changed since ``since``, deleted ones included). Paging
    goes on from it (the count cost no call). Over :data:`EXPORT_THRESHOLD`, the deleted
    contacts' first page is read with its count too (the export needs those pages anyway);
    when the export then costs fewer calls, it replaces paging (the first page is dropped:
    its rows come again from the export), else paging goes on (that one call lost). In practice
    that is a first load or full refresh of an account over 3,000 contacts: an incremental
    read rarely has that many changes. A 403 on the export's POST (no ``contacts:write``
    privilege) pages instead."""
    shape = Shaper(table, source)
    counting = _CountingPaginator(paginator(source))
    params = dict(first_params(source, since))
    wanted = tuple(columns) if columns is not None else table.column_names
    may_export = first_load_strategy(EXPORT_THRESHOLD + 1, wanted) == "export"
    if may_export:
        params["include_count"] = "true"
    pages = client.pages(source.path, params, counting)
    first = next(pages)
    count = counting.count or 0
    if may_export and first_load_strategy(count, wanted) == "export":
        deleted_count = _CountingPaginator(paginator(source))
        deleted = deleted_pages(client, source, since, deleted_count)
        deleted = itertools.chain([next(deleted)], deleted)
        strategy = first_load_strategy(count, wanted, deleted_count.count or 0)
        log.info("contacts: %s contacts to read, %s deleted: %s", count, deleted_count.count,
                 strategy)
        if strategy == "export":
            exported = yield from _export_unless_refused(
                client, since, table=table, source=source, deleted=deleted)
            if exported:
                return
    yield [shape(r) for r in first.records]
    for page in pages:  # paging goes on after the first page
        yield [shape(r) for r in page.records]


def _export_unless_refused(
    client: ApiClient, since: datetime | None, *, table: Table, source: Source,
    deleted: Iterator[Page],
) -> Generator[Records, None, bool]:
    """The export's rows; False (nothing yielded: the file is read before the first row)
    when its POST answers 403 or the activity ends without a file."""
    try:
        yield from read_export(client, since, table=table, source=source,
                               deleted=deleted)
    except ExportFailed as exc:
        log.warning("contacts: %s; paging instead", exc)  # untested: the sandbox always completes
        return False
    except CtctError as exc:
        if exc.status != 403 or exc.endpoint != endpoint_template("POST", EXPORT_PATH):
            raise
        log.warning("contacts: the export was refused (%s); paging instead", exc)
        return False
    return True
