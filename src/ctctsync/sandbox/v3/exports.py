"""v3 bulk contact export: ``POST /activities/contact_exports``, ``GET /activities[/{id}]`` and
``GET /contact_exports/{file_export_id}`` (constant-contact-v3-api.md §3.13, contract
``ContactsExport``, ``ActivityExportStatus``, ``Activity``).

The export is the cheap way to take a full snapshot (2-3 calls instead of one per 500 contacts),
so the connector can compare it with paging for first loads.

Choices (UNCONFIRMED: CC does not document them):

* **Completion is deterministic:** the POST answers ``processing``; the first later read of the
  activity (``GET /activities/{id}`` or the ``GET /activities`` list) finds it ``completed``.
  A client therefore polls exactly once, and tests need no sleep.
* **Rows:** which contacts is decided when the activity is created (the selection is a
  snapshot); their values are rendered when the file is downloaded.
* **Status:** the POST answers **201**, as the contract declares (the guide's text says 202).
* **Columns:** the guide's field names as headers, ``contact_id`` first (a sync needs the
  key), then the custom fields by their ``name``. Multi-valued cells (lists, tags, phones,
  notes) are joined with ``;``; street/city/state/zip/country are the first address's.
* **Default selection:** every contact except deleted ones (as ``GET /contacts``); ``status``
  takes the ``GET /contacts`` values plus the guide's ``removed``.
"""

from __future__ import annotations

import csv
import io
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.v3.common import (
    V3Error,
    bad_request,
    links_next,
    not_found,
    parse_limit,
    query,
    ts_seconds,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.ids import KIND_BULK_ACTIVITY, KIND_CUSTOM_FIELD, KIND_TAG

SCOPE = "contact_data"
WRITE = "contacts:write"
"""Bulk activities need ``contacts:write``, even to read (contract x-authorization-privileges)."""
STATES = ("processing", "completed", "cancelled", "failed", "timed_out")
MAX_CONTACT_IDS = 500
MAX_LIST_IDS = 50
MAX_TAG_IDS = 50
ROWS_PER_CHUNK = 500

Row = dict[str, Any]
Renderer = Callable[[int], "Row | None"]
"""Contact id -> its v3 body with every sub-resource (``contacts.ContactRenderer``)."""


def _cell(value: Any) -> str:
    return "" if value is None else str(value)  # the rendered body still holds Nones


def _get(body: Row, key: str) -> str:
    return _cell(body.get(key))


def _first(items: list[Any], key: str) -> str:
    return _cell(items[0].get(key)) if items else ""


def _email(body: Row, key: str) -> str:
    return _cell(body["email_address"].get(key))


FIELD_VALUES: dict[str, Callable[[Row], str]] = {
    "email_address": lambda b: _email(b, "address"),
    "first_name": lambda b: _get(b, "first_name"),
    "last_name": lambda b: _get(b, "last_name"),
    "job_title": lambda b: _get(b, "job_title"),
    "company_name": lambda b: _get(b, "company_name"),
    "phone_number": lambda b: ";".join(p["phone_number"] for p in b["phone_numbers"]),
    "street": lambda b: _first(b["street_addresses"], "street"),
    "city": lambda b: _first(b["street_addresses"], "city"),
    "state": lambda b: _first(b["street_addresses"], "state"),
    "zip": lambda b: _first(b["street_addresses"], "postal_code"),
    "country": lambda b: _first(b["street_addresses"], "country"),
    "birthday_month": lambda b: _get(b, "birthday_month"),
    "birthday_day": lambda b: _get(b, "birthday_day"),
    "anniversary": lambda b: _get(b, "anniversary"),
    "email_lists": lambda b: ";".join(b["list_memberships"]),
    "tag": lambda b: ";".join(b["taggings"]),
    "notes": lambda b: ";".join(n["content"] for n in b["notes"]),
    "source_name": lambda b: _get(b, "create_source"),
    "created_at": lambda b: _get(b, "created_at"),
    "updated_at": lambda b: _get(b, "updated_at"),
    "email_permission": lambda b: _email(b, "permission_to_send"),
    "email_optin_source": lambda b: _email(b, "opt_in_source"),
    "email_optin_date": lambda b: _email(b, "opt_in_date"),
    "email_optout_source": lambda b: _email(b, "opt_out_source"),
    "email_optout_date": lambda b: _email(b, "opt_out_date"),
    "email_optout_reason": lambda b: _email(b, "opt_out_reason"),
}
"""Export field name -> its CSV cell, from the contact's v3 body with every sub-resource."""

EXPORT_STATUS_CODES: dict[str, frozenset[int]] = {
    "all": frozenset(range(len(gen.CONTACT_STATUSES))),
    "active": frozenset({gen.STATUS_ACTIVE}),
    "unsubscribed": frozenset({gen.STATUS_OPTOUT}),
    "removed": frozenset({gen.STATUS_REMOVED}),
    "deleted": frozenset({gen.STATUS_REMOVED}),
    "pending_confirmation": frozenset({gen.STATUS_UNCONFIRMED}),
    "not_set": frozenset({gen.STATUS_UNCONFIRMED}),
}
DEFAULT_EXPORT_CODES = EXPORT_STATUS_CODES["all"] - {gen.STATUS_REMOVED}


@dataclass
class ExportJob:
    """One export activity."""

    number: int
    activity_id: str
    created_ms: int
    contact_ids: array[int]
    """The selected contacts, newest first (compact: an export may hold millions)."""
    fields: tuple[str, ...]
    completed_ms: int | None = None

    @property
    def state(self) -> str:
        return "completed" if self.completed_ms is not None else "processing"


def _uuid_list(body: dict[str, Any], name: str, maximum: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise V3Error(bad_request(name, "must be an array of ids."))
    if len(value) > maximum:
        raise V3Error(bad_request(name, f"must not contain more than {maximum} ids."))
    return value


class ExportStore:
    """The export activities of one sandbox (thread-safe)."""

    def __init__(self, face: V3Face, render: Renderer) -> None:
        self.face = face
        self.render = render
        self.account: Account = face.ctx.account
        self._lock = threading.Lock()
        self._jobs: dict[str, ExportJob] = {}

    # ------------------------------------------------------------------ selection
    def _find(self, kind: int, values: list[str], upper: int) -> set[int]:
        found = (self.face.ids.find(kind, v, upper) for v in values)
        return {n for n in found if n is not None}

    def _selection(self, body: dict[str, Any]) -> list[int]:
        """The contacts a request body selects, newest first (see the module docstring)."""
        acc = self.account
        contact_ids = _uuid_list(body, "contact_ids", MAX_CONTACT_IDS)
        list_ids = _uuid_list(body, "list_ids", MAX_LIST_IDS)
        tag_ids = _uuid_list(body, "tag_ids", MAX_TAG_IDS)
        segment = body.get("segment_id")
        sources = [s for s in (contact_ids, list_ids, tag_ids, segment) if s is not None]
        if len(sources) > 1:  # the sources are mutually exclusive (contract ContactsExport)
            raise V3Error(bad_request("body", "contact_ids, list_ids, tag_ids and segment_id "
                                              "are mutually exclusive."))
        if segment is not None and (not isinstance(segment, int) or segment not in acc.segments):
            raise V3Error(not_found("Segment"))
        status = body.get("status")
        if status is not None and status not in EXPORT_STATUS_CODES:
            raise V3Error(bad_request("status", "does not have a valid value."))
        codes = EXPORT_STATUS_CODES[status] if status is not None else DEFAULT_EXPORT_CODES
        excluded = self._find(gen.KIND_CONTACT, _uuid_list(
            body.get("exclude") or {}, "contact_ids", MAX_CONTACT_IDS) or [], acc.contact_count)
        tests: list[Callable[[int], bool]] = [lambda cid: cid not in excluded]
        if contact_ids is not None:
            chosen = self._find(gen.KIND_CONTACT, contact_ids, acc.contact_count)
            tests.append(chosen.__contains__)
        if list_ids is not None:
            lids = frozenset(self._find(gen.KIND_LIST, list_ids, max(acc.lists)))
            tests.append(lambda cid: acc.contact_in_lists(cid, lids))
        if tag_ids is not None:
            tids = self._find(KIND_TAG, tag_ids, gen.TAG_COUNT)
            tests.append(lambda cid: bool(tids.intersection(acc.contact_tag_ids(cid))))
        if body.get("new_subscriber") is True:
            since = acc.clock.now_ms() - 30 * gen.DAY_MS
            tests.append(lambda cid: acc.contact_created_ms(cid) >= since)
        n = acc.contact_count
        ids, _ = acc.contact_ids_desc(n, n + 1, codes=codes,
                                      keep=lambda cid: all(t(cid) for t in tests))
        return ids

    def _fields(self, body: dict[str, Any]) -> tuple[str, ...]:
        custom = {f.name: f.number for f in self.account.custom_fields.values()}
        fields = body.get("fields")
        if fields is None:
            return ("contact_id", *FIELD_VALUES, *sorted(custom, key=custom.__getitem__))
        if not isinstance(fields, list) or not fields or not all(
                isinstance(f, str) and (f in FIELD_VALUES or f in custom) for f in fields):
            raise V3Error(bad_request("fields", "contains a value that is not valid."))
        return ("contact_id", *dict.fromkeys(fields))

    def create(self, body: dict[str, Any]) -> ExportJob:
        """A new export activity, ``processing``."""
        with self.account.lock:
            ids = array("i", self._selection(body))
        fields = self._fields(body)
        with self._lock:
            number = len(self._jobs) + 1
            job = ExportJob(number, gen.stable_uuid(self.account.seed, KIND_BULK_ACTIVITY, number),
                            self.account.clock.now_ms(), ids, fields)
            self._jobs[job.activity_id] = job
            return job

    # ------------------------------------------------------------------ reads
    def _complete(self, job: ExportJob) -> None:
        if job.completed_ms is None:  # the first read after creation completes it
            job.completed_ms = self.account.clock.now_ms()

    def poll(self, activity_id: str) -> ExportJob | None:
        """The activity (completed by this read if it was processing), or None."""
        with self._lock:
            job = self._jobs.get(activity_id.lower())
            if job is not None:
                self._complete(job)
            return job

    def listing(self, state: str | None) -> list[ExportJob]:
        """Every activity in ``state`` (all if None), newest first; a read completes them."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: -j.number)
            for job in jobs:
                self._complete(job)
            return [j for j in jobs if state is None or j.state == state]

    def completed(self, activity_id: str) -> ExportJob | None:
        """The activity if it is completed (its file exists), else None."""
        with self._lock:
            job = self._jobs.get(activity_id.lower())
            return job if job is not None and job.completed_ms is not None else None

    def csv_chunks(self, job: ExportJob) -> Iterator[bytes]:
        """The export file: a header line, then one line per contact, in chunks (the account
        lock is taken per chunk, not for the whole download)."""
        custom = {f.name: self.face.ids.uuid(KIND_CUSTOM_FIELD, f.number)
                  for f in self.account.custom_fields.values()}
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
        writer.writerow(job.fields)
        for start in range(0, len(job.contact_ids), ROWS_PER_CHUNK):
            with self.account.lock:
                bodies = [self.render(cid)
                          for cid in job.contact_ids[start:start + ROWS_PER_CHUNK]]
            for body in bodies:
                if body is not None:
                    writer.writerow(_row(body, job.fields, custom))
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
        if buf.tell():  # no rows: the header alone
            yield buf.getvalue().encode()


def _row(body: Row, fields: tuple[str, ...], custom: dict[str, str]) -> list[str]:
    values = {cf["custom_field_id"]: cf["value"] for cf in body["custom_fields"]}
    out = []
    for f in fields:
        if f == "contact_id":
            out.append(str(body["contact_id"]))
        elif f in FIELD_VALUES:
            out.append(FIELD_VALUES[f](body))
        else:
            out.append(str(values.get(custom[f], "")))
    return out


def activity_body(job: ExportJob) -> dict[str, Any]:
    """An export activity as ``Activity``/``ActivityExportStatus`` (§3.13); ``results`` link
    only once completed. Times in seconds with ``Z`` (bulk activities, §1.6)."""
    done = job.completed_ms is not None
    links: dict[str, Any] = {"self": {"href": f"/v3/activities/{job.activity_id}"}}
    if done:
        links["results"] = {"href": f"/v3/contact_exports/{job.activity_id}"}
    total = len(job.contact_ids)
    return {
        "activity_id": job.activity_id, "state": job.state,
        "started_at": ts_seconds(job.created_ms),
        "completed_at": ts_seconds(job.completed_ms) if job.completed_ms is not None else None,
        "created_at": ts_seconds(job.created_ms),
        "updated_at": ts_seconds(job.completed_ms or job.created_ms),
        "percent_done": 100 if done else 0, "activity_errors": [],
        "status": {"items_total_count": total, "items_completed_count": total if done else 0},
        "_links": links,
    }


def routes(face: V3Face, render: Renderer) -> list[Route]:
    """The bulk export routes (scope ``contact_data``, privilege ``contacts:write``); ``render``
    gives a contact's full v3 body (the CSV cells are read from it)."""
    store = ExportStore(face, render)
    write = face.guarded(SCOPE, WRITE)

    async def create(request: Request) -> Response:
        """``POST /v3/activities/contact_exports``: 201 with a ``processing`` activity."""
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            raise V3Error(bad_request("body", "is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise V3Error(bad_request("body", "must be a JSON object."))
        job = store.create(body)
        return v3_json(activity_body(job), 201)

    async def activity(request: Request) -> Response:
        """``GET /v3/activities/{activity_id}``: completes a processing export (module doc)."""
        job = store.poll(request.path_params["activity_id"])
        if job is None:
            raise V3Error(not_found("Activity"))
        return v3_json(activity_body(job))

    async def activities(request: Request) -> Response:
        """``GET /v3/activities``: newest first, ``state`` filter, limit 1-500 default 50."""
        params = query(request)
        limit = parse_limit(params, 50, 500)
        state = params.get("state")
        if state is not None and state not in STATES:
            raise V3Error(bad_request("state", "does not have a valid value."))
        jobs = store.listing(state)
        start = 0
        nxt = params.get("next")
        if nxt is not None:
            keys = [j.activity_id for j in jobs]
            if nxt not in keys:
                raise V3Error(bad_request("cursor", "is not valid."))
            start = keys.index(nxt)
        chunk = jobs[start:start + limit]
        body: dict[str, Any] = {"activities": [activity_body(j) for j in chunk]}
        if start + limit < len(jobs):
            rest = {k: v for k, v in params.items() if k not in ("limit", "next")}
            body["_links"] = links_next("/v3/activities", {
                "limit": str(limit), "next": jobs[start + limit].activity_id, **rest})
        return v3_json(body)

    async def export_file(request: Request) -> Response:
        """``GET /v3/contact_exports/{file_export_id}``: the CSV of a completed export."""
        job = store.completed(request.path_params["file_export_id"])
        if job is None:
            raise V3Error(not_found("Export file"))
        return StreamingResponse(store.csv_chunks(job), media_type="text/csv")

    return [
        Route("/v3/activities", write(activities)),
        Route("/v3/activities/contact_exports", write(create), methods=["POST"]),
        Route("/v3/activities/{activity_id}", write(activity)),
        Route("/v3/contact_exports/{file_export_id}", write(export_file)),
    ]
