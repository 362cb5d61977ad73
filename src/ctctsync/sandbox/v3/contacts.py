"""v3 contacts endpoints: contacts, lists, tags, custom fields, segments (constant-contact-v3-api.md
§3.1-§3.5), plus the bulk export routes of :mod:`~ctctsync.sandbox.v3.exports`.

Everything reads the version-neutral account: a contact is the same record v2 serves, seen
through the v3 mapping of §4 (status -> ``permission_to_send``, home, work and cell phones ->
``phone_numbers``, numbered custom fields -> custom field UUIDs). Shapes follow the contract's
``ContactResource``, ``ContactList``, ``Tag``, ``CustomField`` and ``SegmentDetail``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.faults import DUPLICATE_SCOPE_KEY
from ctctsync.sandbox.v3 import exports
from ctctsync.sandbox.v3.common import (
    V3Error,
    bad_request,
    date_only,
    links_next,
    not_found,
    parse_limit,
    parse_time,
    query,
    ts_millis,
    ts_seconds,
    v3_json,
)
from ctctsync.sandbox.v3.face import V3Face
from ctctsync.sandbox.v3.ids import KIND_CUSTOM_FIELD, KIND_TAG, V3Ids

SCOPE = "contact_data"
READ = "contacts:read"
LISTS_READ = "contacts:lists:read"

INCLUDES = ("custom_fields", "list_memberships", "phone_numbers", "street_addresses",
            "taggings", "notes")
"""``include`` values of ``GET /contacts`` (§3.1). UNCONFIRMED (§7.6): ``sms_channel`` is
refused (a 400 like any unknown value) because the newest contract's enum no longer has it."""
RENDER_ORDER = ("custom_fields", "phone_numbers", "street_addresses", "list_memberships",
                "taggings", "notes")
"""The order sub-resources come in, whatever the request's order (the real capture)."""

_ALL = frozenset({gen.STATUS_ACTIVE, gen.STATUS_UNCONFIRMED, gen.STATUS_OPTOUT,
                  gen.STATUS_REMOVED})
STATUS_CODES: dict[str, frozenset[int]] = {
    "all": _ALL,
    "active": frozenset({gen.STATUS_ACTIVE}),
    "deleted": frozenset({gen.STATUS_REMOVED}),
    "unsubscribed": frozenset({gen.STATUS_OPTOUT}),
    "pending_confirmation": frozenset({gen.STATUS_UNCONFIRMED}),
    "not_set": frozenset({gen.STATUS_UNCONFIRMED}),
    "temp_hold": frozenset(),  # v2 has no such state: nobody is on temp hold
}
"""v3 ``status`` filter -> the version-neutral status codes it selects (§3.1)."""
DEFAULT_CODES = _ALL - {gen.STATUS_REMOVED}
"""Without ``status``, every contact except deleted ones (§1.7)."""
UNCONFIRMED_SPLIT = frozenset({"pending_confirmation", "not_set"})

COUNTRY_NAMES = {"us": "United States", "ca": "Canada", "ro": "Romania", "de": "Germany"}
PHONE_KINDS = (("home", "home_phone"), ("work", "work_phone"), ("mobile", "cell_phone"))
"""v2's phone columns as v3 ``phone_numbers`` kinds (§4); v2's fax has no v3 field."""
ADDRESS_KINDS = {"PERSONAL": "home", "BUSINESS": "work"}
CONFIRM_STATUS = {"pending_confirmation": "pending"}
"""``confirm_status`` (pending, confirmed, off) of a permission awaiting confirmation."""
_EMAIL_ID = re.compile(r"\.(\d+)@")  # generated addresses are first.last.<id>@domain
MAX_LIST_FILTER = 25
MAX_TAG_FILTER = 50
MAX_XREFS = 500

T = TypeVar("T")


# -- the v3 view of a contact ------------------------------------------------------------------


def permission(c: gen.Contact) -> str:
    """``email_address.permission_to_send`` of a contact (§3.1, §4).

    UNCONFIRMED: the v2 -> v3 mapping is ours. ACTIVE (and REMOVED, which keeps the last
    permission) -> ``explicit`` when the contact opted in themselves (v2 ``ACTION_BY_VISITOR``),
    else ``implicit``; OPTOUT -> ``unsubscribed``; UNCONFIRMED -> ``not_set`` for imported
    contacts (no permission recorded), else ``pending_confirmation`` (awaiting double opt-in).
    """
    if c.status == "OPTOUT":
        return "unsubscribed"
    if c.status == "UNCONFIRMED":
        return "not_set" if c.source == "Import" else "pending_confirmation"
    return "explicit" if c.opt_in_source == "ACTION_BY_VISITOR" else "implicit"


def _text(value: str) -> str | None:
    return value or None  # v3 omits empty values (§1.6): "" becomes an absent key


Stamp = Callable[[int], str]
"""Epoch ms -> a contact-style timestamp (memoised per body: a contact repeats its times)."""


def _stamper() -> Stamp:
    memo: dict[int, str] = {}

    def stamp(ms: int) -> str:
        text = memo.get(ms)
        if text is None:
            text = memo[ms] = ts_seconds(ms)
        return text

    return stamp


def _email_address(c: gen.Contact, extras: gen.ContactV3Extras, ts: Stamp) -> dict[str, Any]:
    perm = permission(c)
    opted_out = perm == "unsubscribed" and c.opt_out_ms is not None
    opted_in = perm in ("explicit", "implicit", "unsubscribed")
    confirm = CONFIRM_STATUS.get(perm) or ("confirmed" if c.confirmed else "off")
    return {
        "address": c.email,
        "permission_to_send": perm,
        "created_at": ts(c.created_ms),
        "updated_at": ts(c.opt_out_ms if opted_out and c.opt_out_ms else c.opt_in_ms),
        "opt_in_source": ("Contact" if c.opt_in_source == "ACTION_BY_VISITOR" else "Account")
        if opted_in or perm == "pending_confirmation" else None,
        "opt_in_date": ts(c.opt_in_ms) if opted_in else None,
        # opt_out_* only when unsubscribed (§3.1)
        "opt_out_source": ("Contact" if extras.opt_out_by_contact else "Account")
        if opted_out else None,
        "opt_out_date": ts(c.opt_out_ms) if opted_out and c.opt_out_ms else None,
        "opt_out_reason": _text(extras.opt_out_reason) if opted_out else None,
        "confirm_status": confirm,
    }


def _phones(seed: int, c: gen.Contact, source: str, ts: Stamp) -> list[dict[str, Any]]:
    out = []
    for slot, (kind, attr) in enumerate(PHONE_KINDS):
        number = getattr(c, attr)
        if number:
            out.append({"phone_number_id": gen.subrecord_uuid(seed, c.id, slot),
                        "phone_number": number, "kind": kind,
                        "created_at": ts(c.created_ms), "updated_at": ts(c.modified_ms),
                        "update_source": source, "create_source": "Account"})
    return out


def _addresses(c: gen.Contact, ts: Stamp) -> list[dict[str, Any]]:
    return [{"street_address_id": a.id, "kind": ADDRESS_KINDS.get(a.kind, "other"),
             "street": ", ".join(p for p in (a.line1, a.line2) if p), "city": _text(a.city),
             "state": _text(a.state or a.state_code), "postal_code": _text(a.postal_code),
             "country": COUNTRY_NAMES.get(a.country_code, a.country_code.upper() or None),
             "created_at": ts(c.created_ms), "updated_at": ts(c.modified_ms)}
            for a in c.addresses]


@dataclass(frozen=True)
class ContactRenderer:
    """Turns account contacts into ``ContactResource`` bodies (§3.1)."""

    account: Account
    ids: V3Ids
    _uuids: dict[tuple[int, int], str] = field(default_factory=dict)

    def _uuid(self, kind: int, ident: int) -> str:
        # lists, tags and custom fields are few and repeat on every row: derive each UUID once
        key = (kind, ident)
        value = self._uuids.get(key)
        if value is None:
            value = self._uuids[key] = self.ids.uuid(kind, ident)
        return value

    def body(self, cid: int, includes: frozenset[str]) -> dict[str, Any] | None:
        """Contact ``cid`` with the requested sub-resources (``[]`` when empty), or None."""
        acc = self.account
        c = acc.contact(cid)
        if c is None:
            return None
        extras = acc.contact_v3_extras(cid)
        deleted = acc.contact_deleted_ms(cid)
        source = "Contact" if extras.updated_by_contact else "Account"
        ts = _stamper()
        out: dict[str, Any] = {
            "contact_id": self.ids.contact(cid),
            "email_address": _email_address(c, extras, ts),
            "first_name": _text(c.first_name), "last_name": _text(c.last_name),
            "job_title": _text(c.job_title), "company_name": _text(c.company_name),
            "birthday_month": extras.birthday_month, "birthday_day": extras.birthday_day,
            "anniversary": extras.anniversary,
            "update_source": source,
            "create_source": "Contact" if c.source == "Signup Form" else "Account",
            "created_at": ts(c.created_ms), "updated_at": ts(c.modified_ms),
            # a date only, unlike every other contact time (§1.6, §1.7)
            "deleted_at": date_only(deleted) if deleted is not None else None,
        }
        parts: dict[str, Callable[[], list[Any]]] = {
            "custom_fields": lambda: [
                {"custom_field_id": self._uuid(KIND_CUSTOM_FIELD, n), "value": v}
                for n, v in c.custom_fields if v],
            "phone_numbers": lambda: _phones(acc.seed, c, source, ts),
            "street_addresses": lambda: _addresses(c, ts),
            "list_memberships": lambda: [self._uuid(gen.KIND_LIST, lid) for lid in c.list_ids],
            "taggings": lambda: [self._uuid(KIND_TAG, t) for t in extras.tag_ids],
            "notes": lambda: [  # most recent first (§1.8)
                {"note_id": n.id, "created_at": ts(n.created_ms), "content": n.text}
                for n in sorted(c.notes, key=lambda n: -n.created_ms)],
        }
        for name in RENDER_ORDER:
            if name in includes:
                out[name] = parts[name]()
        return out


# -- parameters --------------------------------------------------------------------------------


def _csv(params: Mapping[str, str], name: str) -> list[str]:
    raw = params.get(name)
    return [v.strip() for v in raw.split(",") if v.strip()] if raw else []


def parse_include(params: Mapping[str, str], allowed: Sequence[str] = INCLUDES
                  ) -> frozenset[str]:
    """The ``include`` csv; an unknown value is a 400 (§1.4)."""
    values = _csv(params, "include")
    for v in values:
        if v not in allowed:
            raise V3Error(bad_request("include", f"value '{v}' is not valid."))
    return frozenset(values)


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter (``true``/``false``); anything else is a 400."""
    raw = params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() not in ("true", "false"):
        raise V3Error(bad_request(name, "must be true or false."))
    return raw.lower() == "true"


def parse_choice(params: Mapping[str, str], name: str, allowed: Sequence[str]) -> str | None:
    """An enumerated parameter; a value outside ``allowed`` is a 400."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise V3Error(bad_request(name, "does not have a valid value."))
    return raw


@dataclass(frozen=True)
class ContactFilter:
    """The row filters of ``GET /contacts`` (§3.1, §1.9).

    UNCONFIRMED: ``*_after`` bounds are inclusive and ``*_before`` exclusive (CC does not say);
    inclusive lower bounds make a bookmark re-read its last instant rather than miss it.
    """

    codes: frozenset[int]
    permissions: frozenset[str] | None
    """For UNCONFIRMED contacts, the permissions selected (None: both)."""
    list_ids: frozenset[int] | None
    tag_ids: frozenset[int] | None
    updated_after: int | None
    updated_before: int | None
    created_after: int | None
    created_before: int | None
    optout_after: int | None
    optout_before: int | None

    @classmethod
    def parse(cls, params: Mapping[str, str], account: Account, ids: V3Ids) -> ContactFilter:
        """The filters of a request (a bad value is a 400)."""
        statuses = _csv(params, "status")
        for s in statuses:
            if s not in STATUS_CODES:
                raise V3Error(bad_request("status", f"value '{s}' is not valid."))
        codes = DEFAULT_CODES
        permissions: frozenset[str] | None = None
        if statuses:
            codes = frozenset().union(*(STATUS_CODES[s] for s in statuses))
            split = UNCONFIRMED_SPLIT.intersection(statuses)
            if "all" not in statuses and len(split) == 1:
                permissions = frozenset(split)
        times = {name: parse_time(params, name) for name in (
            "updated_after", "updated_before", "created_after", "created_before",
            "optout_after", "optout_before")}
        if times["optout_after"] is not None or times["optout_before"] is not None:
            codes = codes & {gen.STATUS_OPTOUT}  # only the unsubscribed have an opt-out date
        return cls(codes=codes, permissions=permissions,
                   list_ids=_list_filter(params, account, ids),
                   tag_ids=_tag_filter(params, ids), **times)

    def keep(self, account: Account) -> Callable[[int], bool] | None:
        """The per-contact test beyond status and ``updated_after`` (None: nothing to test)."""
        tests: list[Callable[[int], bool]] = []
        if self.list_ids is not None:
            lids = self.list_ids
            tests.append(lambda cid: account.contact_in_lists(cid, lids))
        if self.tag_ids is not None:
            tids = self.tag_ids
            tests.append(lambda cid: not tids.isdisjoint(account.contact_tag_ids(cid)))
        lo, hi = self.created_after, self.created_before
        if lo is not None or hi is not None:
            tests.append(lambda cid: _within(account.contact_created_ms(cid), lo, hi))
        if self.updated_before is not None:
            before = self.updated_before
            tests.append(lambda cid: account.contact_modified_ms(cid) < before)
        if self.permissions is not None:
            perms = self.permissions
            tests.append(lambda cid: account.contact_status(cid) != "UNCONFIRMED"
                         or _permission_of(account, cid) in perms)
        olo, ohi = self.optout_after, self.optout_before
        if olo is not None or ohi is not None:
            tests.append(lambda cid: _within(_opt_out_ms(account, cid), olo, ohi))
        if not tests:
            return None
        return lambda cid: all(t(cid) for t in tests)


def _within(value: int | None, lo: int | None, hi: int | None) -> bool:
    return value is not None and (lo is None or value >= lo) and (hi is None or value < hi)


def _permission_of(account: Account, cid: int) -> str:
    c = account.contact(cid)
    return permission(c) if c is not None else ""


def _opt_out_ms(account: Account, cid: int) -> int | None:
    c = account.contact(cid)
    return c.opt_out_ms if c is not None else None


def _list_filter(params: Mapping[str, str], account: Account, ids: V3Ids) -> frozenset[int] | None:
    values = _csv(params, "lists")
    if not values:
        return None
    if len(values) > MAX_LIST_FILTER:  # at most 25 list ids (§3.1)
        raise V3Error(bad_request("lists", f"must not contain more than {MAX_LIST_FILTER} ids."))
    found = {ids.find(gen.KIND_LIST, v, max(account.lists)) for v in values}
    return frozenset(lid for lid in found if lid is not None)  # an unknown list has no members


def _tag_filter(params: Mapping[str, str], ids: V3Ids) -> frozenset[int] | None:
    values = _csv(params, "tags")
    if not values:
        return None
    if len(values) > MAX_TAG_FILTER:  # at most 50 tag ids (§3.1)
        raise V3Error(bad_request("tags", f"must not contain more than {MAX_TAG_FILTER} ids."))
    found = {ids.find(KIND_TAG, v, gen.TAG_COUNT) for v in values}
    return frozenset(t for t in found if t is not None)


def _segment_filter(params: Mapping[str, str], account: Account) -> None:
    """``segment_id``: an unknown segment is a 404. UNCONFIRMED: the sandbox does not evaluate
    segment criteria, so a known segment selects what the other filters select, and it never
    answers 202 "processing" (§3.1)."""
    raw = params.get("segment_id")
    if raw and not (raw.isdigit() and int(raw) in account.segments):
        raise V3Error(not_found("Segment"))


def _next_key(params: Mapping[str, str]) -> str | None:
    return params.get("next") or None


def _cursor_params(params: Mapping[str, str], limit: int, nxt: str) -> dict[str, str]:
    """``limit=N&next=<key>&<filters>``: what a v3 cursor carries (§1.3)."""
    rest = {k: v for k, v in params.items() if k not in ("limit", "next", "cursor")}
    return {"limit": str(limit), "next": nxt, **rest}


def page_of(items: Sequence[T], key: Callable[[T], str], params: Mapping[str, str], limit: int,
            path: str) -> tuple[list[T], dict[str, Any] | None]:
    """One page of a small, fully ordered collection with a key-based cursor: ``next`` is the
    key of the next page's first item (§1.3), so removals elsewhere cannot shift the page."""
    start = 0
    nxt = _next_key(params)
    if nxt is not None:
        keys = [key(i) for i in items]
        if nxt not in keys:
            raise V3Error(bad_request("cursor", "is not valid."))
        start = keys.index(nxt)
    chunk = list(items[start:start + limit])
    links = None
    if start + limit < len(items):
        links = links_next(path, _cursor_params(params, limit, key(items[start + limit])))
    return chunk, links


# -- routes ------------------------------------------------------------------------------------


class ContactRoutes:
    """``/v3/contacts`` and its neighbours (contact lists, tags, custom fields, segments)."""

    def __init__(self, face: V3Face) -> None:
        self.face = face
        self.account = face.ctx.account
        self.ids = face.ids
        self.render = ContactRenderer(self.account, self.ids)
        self._counts: tuple[int, dict[str, int]] | None = None

    def routes(self) -> list[Route]:
        """Every route behind its scope and privilege (contract x-authorization-privileges)."""
        read = self.face.guarded(SCOPE, READ)
        lists_read = self.face.guarded(SCOPE, LISTS_READ)
        return [  # literal paths before /contacts/{contact_id}
            Route("/v3/contacts", read(self.contacts)),
            Route("/v3/contacts/counts", read(self.counts)),
            Route("/v3/contacts/contact_id_xrefs", read(self.contact_xrefs)),
            Route("/v3/contacts/{contact_id}", read(self.contact)),
            Route("/v3/contact_lists", lists_read(self.lists)),
            Route("/v3/contact_lists/list_id_xrefs", lists_read(self.list_xrefs)),
            Route("/v3/contact_lists/{list_id}", lists_read(self.contact_list)),
            Route("/v3/contact_tags", read(self.tags)),
            Route("/v3/contact_tags/{tag_id}", read(self.tag)),
            Route("/v3/contact_custom_fields", read(self.custom_fields)),
            Route("/v3/contact_custom_fields/{custom_field_id}", read(self.custom_field)),
            Route("/v3/segments", lists_read(self.segments)),
            Route("/v3/segments/{segment_id}", lists_read(self.segment)),
        ]

    # ------------------------------------------------------------------ contacts
    async def contacts(self, request: Request) -> Response:
        """``GET /v3/contacts``: newest first (ids descending), key-based cursor (§3.1, §1.3).

        UNCONFIRMED: deleting a contact bumps its ``updated_at`` (the model stamps the deletion
        as a modification), so ``updated_after`` with ``status=all|deleted`` sees deletions.
        """
        params = query(request)
        limit = parse_limit(params, 50, 500)
        includes = parse_include(params)
        include_count = parse_bool(params, "include_count")
        filt = ContactFilter.parse(params, self.account, self.ids)
        _segment_filter(params, self.account)
        acc = self.account
        keep = filt.keep(acc)
        with acc.lock:
            upto = self._cursor_id(params)
            email = params.get("email")
            if email is not None:
                page, nxt = self._by_email(email, filt, keep), None
            else:
                page, nxt = acc.contact_ids_desc(upto, limit, codes=filt.codes,
                                                 modified_since_ms=filt.updated_after, keep=keep)
            body: dict[str, Any] = {"contacts": [self.render.body(cid, includes) for cid in page]}
            if include_count:
                body["contacts_count"] = len(page) if email is not None else len(
                    acc.contact_ids_desc(acc.contact_count, acc.contact_count + 1,
                                         codes=filt.codes, modified_since_ms=filt.updated_after,
                                         keep=keep)[0])
        if nxt is not None:  # no _links at all on the last page (§1.3)
            k = int(request.scope.get(DUPLICATE_SCOPE_KEY, 0))
            if k and page:
                # the `duplicate` fault: the next page starts k records early, so they come
                # twice (as real paging does when records move between calls)
                nxt = page[max(1, len(page) - k)]
            body["_links"] = links_next("/v3/contacts", _cursor_params(params, limit, str(nxt)))
        return v3_json(body)

    def _cursor_id(self, params: Mapping[str, str]) -> int:
        nxt = _next_key(params)
        if nxt is None:
            return self.account.contact_count
        if not nxt.isdigit():
            raise V3Error(bad_request("cursor", "is not valid."))
        return int(nxt)

    def _by_email(self, email: str, filt: ContactFilter,
                  keep: Callable[[int], bool] | None) -> list[int]:
        acc = self.account
        m = _EMAIL_ID.search(email)
        cid = int(m.group(1)) if m else 0
        if not acc.contact_exists(cid) or acc.contact_email(cid) != email.strip().lower():
            return []
        ids, _ = acc.contact_ids_desc(cid, 1, codes=filt.codes,
                                      modified_since_ms=filt.updated_after, keep=keep)
        return ids if ids == [cid] else []

    async def contact(self, request: Request) -> Response:
        """``GET /v3/contacts/{contact_id}``: deleted contacts too (§1.7); 404 if unknown."""
        params = query(request)
        includes = parse_include(params)
        acc = self.account
        with acc.lock:
            cid = self.ids.find(gen.KIND_CONTACT, request.path_params["contact_id"],
                                acc.contact_count)
            body = self.render.body(cid, includes) if cid is not None else None
        if body is None:
            raise V3Error(not_found("Contact"))
        return v3_json(body)

    async def counts(self, request: Request) -> Response:
        """``GET /v3/contacts/counts`` (§3.1): contacts per permission, deleted ones excluded.

        UNCONFIRMED: ``total`` counts every contact not deleted (``not_set`` ones too, which have
        no bucket of their own); ``pending`` counts ``pending_confirmation``; ``new_subscriber``
        (only with ``include=new_subscriber``) counts subscribers created in the last 30 days.
        """
        params = query(request)
        includes = parse_include(params, ("new_subscriber",))
        counts = self._permission_counts()
        body = {k: counts[k] for k in ("total", "explicit", "implicit", "pending", "unsubscribed")}
        if "new_subscriber" in includes:
            body["new_subscriber"] = counts["new_subscriber"]
        return v3_json(body)

    def _permission_counts(self) -> dict[str, int]:
        acc = self.account
        with acc.lock:
            if self._counts is not None and self._counts[0] == acc.version:
                return self._counts[1]
            since = acc.clock.now_ms() - 30 * gen.DAY_MS
            counts = dict.fromkeys(("total", "explicit", "implicit", "pending",
                                    "unsubscribed", "new_subscriber"), 0)
            bucket = {"explicit": "explicit", "implicit": "implicit",
                      "pending_confirmation": "pending", "unsubscribed": "unsubscribed"}
            for cid in range(1, acc.contact_count + 1):
                c = acc.contact(cid)
                if c is None or c.status == "REMOVED":
                    continue
                counts["total"] += 1
                perm = permission(c)
                if perm in bucket:
                    counts[bucket[perm]] += 1
                if perm in ("explicit", "implicit") and c.created_ms >= since:
                    counts["new_subscriber"] += 1
            self._counts = (acc.version, counts)
            return counts

    async def contact_xrefs(self, request: Request) -> Response:
        """``GET /v3/contacts/contact_id_xrefs?sequence_ids=``: v2 id -> v3 UUID (§3.1)."""
        acc = self.account
        pairs = _sequence_ids(query(request), acc.contact_exists)
        return v3_json({"xrefs": [{"sequence_id": raw, "contact_id": self.ids.contact(n)}
                                  for raw, n in pairs]})

    # ------------------------------------------------------------------ lists
    def _list_body(self, lst: gen.ContactList, membership: str | None) -> dict[str, Any]:
        acc = self.account
        extras = gen.list_v3_extras(acc.seed, lst.id)
        count = None
        if membership == "all":
            count = 0 if lst.deleted_ms is not None else acc.list_count(lst.id)
        elif membership == "active":
            count = 0 if lst.deleted_ms is not None else acc.list_active_count(lst.id)
        return {
            "list_id": self.ids.list(lst.id), "name": lst.name,
            "description": _text(extras.description), "favorite": extras.favorite,
            "created_at": ts_seconds(lst.created_ms), "updated_at": ts_seconds(lst.modified_ms),
            # a date-time, unlike a contact's deleted_at (§1.6)
            "deleted_at": ts_seconds(lst.deleted_ms) if lst.deleted_ms is not None else None,
            "membership_count": count,
        }

    async def lists(self, request: Request) -> Response:
        """``GET /v3/contact_lists`` (§3.2): newest first, key-based cursor.

        UNCONFIRMED: no documented order (§1.8), so newest first like contacts; without
        ``status`` only lists not deleted come back (§7.4); ``limit`` defaults to 50 (the
        contract's value, not the guide's 1000); v2's HIDDEN lists are ordinary v3 lists;
        ``channel_type=sms`` finds none (the sandbox has no SMS lists).
        """
        params = query(request)
        limit = parse_limit(params, 50, 1000)
        membership = parse_choice(params, "include_membership_count", ("all", "active"))
        include_count = parse_bool(params, "include_count")
        statuses = _csv(params, "status") or ["active"]
        for s in statuses:
            if s not in ("all", "active", "deleted"):
                raise V3Error(bad_request("status", f"value '{s}' is not valid."))
        channel = parse_choice(params, "channel_type", ("email", "sms"))
        name = params.get("name")
        acc = self.account
        with acc.lock:
            rows = [lst for _, lst in sorted(acc.lists.items(), reverse=True)
                    if _list_status_ok(lst, statuses) and (name is None or lst.name == name)
                    and channel != "sms"]
            chunk, links = page_of(rows, lambda lst: str(lst.id), params, limit,
                                   "/v3/contact_lists")
            body: dict[str, Any] = {"lists": [self._list_body(lst, membership) for lst in chunk]}
        if include_count:
            body["lists_count"] = len(rows)
        if links is not None:
            body["_links"] = links
        return v3_json(body)

    async def contact_list(self, request: Request) -> Response:
        """``GET /v3/contact_lists/{list_id}`` (§3.2); deleted lists too.

        UNCONFIRMED: the contract declares no 400 for this operation, so an unknown
        ``include_membership_count`` value is ignored (no count) instead of refused.
        """
        params = query(request)
        membership = params.get("include_membership_count")
        acc = self.account
        with acc.lock:
            lid = self.ids.find(gen.KIND_LIST, request.path_params["list_id"], max(acc.lists))
            lst = acc.lists.get(lid) if lid is not None else None
            if lst is None:
                raise V3Error(not_found("List"))
            return v3_json(self._list_body(lst, membership))

    async def list_xrefs(self, request: Request) -> Response:
        """``GET /v3/contact_lists/list_id_xrefs?sequence_ids=``: v2 id -> v3 UUID (§3.2)."""
        acc = self.account
        pairs = _sequence_ids(query(request), lambda n: n in acc.lists)
        return v3_json({"xrefs": [{"sequence_id": raw, "list_id": self.ids.list(n)}
                                  for raw, n in pairs]})

    # ------------------------------------------------------------------ tags, custom fields
    def _tag_body(self, tag: gen.Tag, counts: dict[int, int] | None) -> dict[str, Any]:
        return {"tag_id": self.ids.uuid(KIND_TAG, tag.id), "name": tag.name,
                "contacts_count": counts.get(tag.id, 0) if counts is not None else None,
                "created_at": ts_seconds(tag.created_ms),
                "updated_at": ts_seconds(tag.modified_ms), "tag_source": _text(tag.source)}

    def _tags_newest_first(self) -> list[gen.Tag]:
        # UNCONFIRMED: no documented order; newest first like contacts (§1.8)
        return sorted(self.account.tags.values(), key=lambda t: (-t.created_ms, -t.id))

    async def tags(self, request: Request) -> Response:
        """``GET /v3/contact_tags`` (§3.3); ``contacts_count`` only with ``include_count``."""
        params = query(request)
        limit = parse_limit(params, 50, 500)
        counts = self.account.tag_counts() if parse_bool(params, "include_count") else None
        chunk, links = page_of(self._tags_newest_first(), lambda t: self.ids.uuid(KIND_TAG, t.id),
                               params, limit, "/v3/contact_tags")
        body: dict[str, Any] = {"tags": [self._tag_body(t, counts) for t in chunk]}
        if links is not None:
            body["_links"] = links
        return v3_json(body)

    async def tag(self, request: Request) -> Response:
        """``GET /v3/contact_tags/{tag_id}`` (§3.3)."""
        params = query(request)
        counts = self.account.tag_counts() if parse_bool(params, "include_count") else None
        tid = self.ids.find(KIND_TAG, request.path_params["tag_id"], gen.TAG_COUNT)
        if tid is None:
            raise V3Error(not_found("Tag"))
        return v3_json(self._tag_body(self.account.tags[tid], counts))

    def _field_body(self, f: gen.CustomFieldDef) -> dict[str, Any]:
        return {"custom_field_id": self.ids.uuid(KIND_CUSTOM_FIELD, f.number), "label": f.label,
                "name": f.name, "type": f.type, "version": 1,
                "updated_at": ts_seconds(f.modified_ms), "created_at": ts_seconds(f.created_ms)}

    async def custom_fields(self, request: Request) -> Response:
        """``GET /v3/contact_custom_fields`` (§3.4): limit 1-100, default 50; newest first
        (as the real capture)."""
        params = query(request)
        limit = parse_limit(params, 50, 100)
        fields = sorted(self.account.custom_fields.values(),
                        key=lambda f: (-f.created_ms, -f.number))
        chunk, links = page_of(fields, lambda f: self.ids.uuid(KIND_CUSTOM_FIELD, f.number),
                               params, limit, "/v3/contact_custom_fields")
        body: dict[str, Any] = {"custom_fields": [self._field_body(f) for f in chunk]}
        if links is not None:
            body["_links"] = links
        return v3_json(body)

    async def custom_field(self, request: Request) -> Response:
        """``GET /v3/contact_custom_fields/{custom_field_id}`` (§3.4)."""
        n = self.ids.find(KIND_CUSTOM_FIELD, request.path_params["custom_field_id"],
                          gen.CUSTOM_FIELD_COUNT)
        if n is None:
            raise V3Error(not_found("Custom field"))
        return v3_json(self._field_body(self.account.custom_fields[n]))

    # ------------------------------------------------------------------ segments
    async def segments(self, request: Request) -> Response:
        """``GET /v3/segments`` (§3.5): deleted segments excluded; ``sort_by=date`` (most
        recently edited first, the default) or ``name``; ``limit`` a string, default "1000"."""
        params = query(request)
        limit = parse_limit(params, 1000, 1000)
        sort_by = parse_choice(params, "sort_by", ("date", "name")) or "date"
        live = [s for s in self.account.segments.values() if not s.deleted]
        if sort_by == "name":
            live.sort(key=lambda s: (s.name, s.id))
        else:
            live.sort(key=lambda s: (-s.edited_ms, s.id))
        chunk, links = page_of(live, lambda s: str(s.id), params, limit, "/v3/segments")
        body: dict[str, Any] = {"segments": [
            {"name": s.name, "segment_id": s.id, "created_at": ts_millis(s.created_ms),
             "edited_at": ts_millis(s.edited_ms)} for s in chunk]}
        if links is not None:
            body["_links"] = links
        return v3_json(body)

    async def segment(self, request: Request) -> Response:
        """``GET /v3/segments/{segment_id}`` (§3.5): deleted segments too; the criteria are an
        escaped JSON string."""
        raw = request.path_params["segment_id"]
        seg = self.account.segments.get(int(raw)) if raw.isdigit() else None
        if seg is None:
            raise V3Error(not_found("Segment"))
        return v3_json({"name": seg.name, "segment_criteria": seg.criteria,
                        "segment_id": seg.id, "created_at": ts_millis(seg.created_ms),
                        "edited_at": ts_millis(seg.edited_ms)})


def _list_status_ok(lst: gen.ContactList, statuses: Sequence[str]) -> bool:
    deleted = lst.deleted_ms is not None
    return "all" in statuses or ("deleted" in statuses and deleted) or (
        "active" in statuses and not deleted)


def _sequence_ids(params: Mapping[str, str], exists: Callable[[int], bool]
                  ) -> list[tuple[str, int]]:
    """``sequence_ids``: required csv of at most 500 v2 ids; the known ones, sorted by id
    (§3.1). An id that is not a number is a 400; an unknown one is left out."""
    values = _csv(params, "sequence_ids")
    if not values:
        raise V3Error(bad_request("sequence_ids", "is required."))
    if len(values) > MAX_XREFS:
        raise V3Error(bad_request("sequence_ids", f"must not contain more than {MAX_XREFS} ids."))
    if not all(v.isdigit() for v in values):
        raise V3Error(bad_request("sequence_ids", "must be numeric."))
    known = {(v, int(v)) for v in values if exists(int(v))}
    return sorted(known, key=lambda pair: (pair[1], pair[0]))


def contacts_truth(account: Account, *, status: str = "all") -> list[dict[str, Any]]:
    """Exactly the rows a full walk of ``GET /v3/contacts?status=<status>&include=<all>`` returns
    now, in order (for end-to-end tests comparing a v3 sync with the account)."""
    render = ContactRenderer(account, V3Ids(account.seed))
    filt = ContactFilter.parse({"status": status}, account, render.ids)
    everything = frozenset(INCLUDES)
    with account.lock:
        n = account.contact_count
        ids, _ = account.contact_ids_desc(n, n + 1, codes=filt.codes, keep=filt.keep(account))
        # through the wire encoding, so the omitted (None) values are gone as on the wire
        return [orjson.loads(v3_json(render.body(cid, everything)).body) for cid in ids]


def routes(face: V3Face) -> list[Route]:
    """The contacts area: contacts, lists, tags, custom fields, segments, bulk exports."""
    area = ContactRoutes(face)
    everything = frozenset(INCLUDES)
    return [*area.routes(), *exports.routes(face, lambda cid: area.render.body(cid, everything))]
