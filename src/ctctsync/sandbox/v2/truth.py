"""The v2 "truth" of each replicated table: exactly the records the v2 API serves right now
(``event_registrations``, which v2 does not serve: the v3 API's records)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ctctsync.sandbox.account import Account
from ctctsync.sandbox.v2 import render
from ctctsync.sandbox.v3.events import registration_row, track_id
from ctctsync.sandbox.v3.ids import KIND_EVENT_V3, V3Ids

JSONDict = dict[str, Any]


def _contacts(account: Account) -> list[JSONDict]:
    list_status = {lid: lst.status for lid, lst in account.lists.items()}
    contact = account.contacts.get  # bound once: this loop runs per row
    out: list[JSONDict] = []
    for cid in range(1, account.contact_count + 1):
        c = contact(cid)
        assert c is not None
        out.append(render.contact(c, list_status))
    return out


def _email_campaigns(account: Account) -> list[JSONDict]:
    camps = [c for c in account.campaigns.values() if c.status != "DELETED"]
    camps.sort(key=lambda c: (c.modified_ms, c.id), reverse=True)
    return [render.campaign_summary(c) for c in camps]


def _library_files(account: Account, *, status: str) -> list[JSONDict]:
    files = sorted((f for f in account.files.values() if f.status == status),
                   key=lambda f: (f.created_ms, f.id), reverse=True)
    return [render.library_file(f) for f in files]


def _account_info(account: Account) -> list[JSONDict]:
    return [render.account_info(account.info)]


def _contact_lists(account: Account) -> list[JSONDict]:
    return [render.contact_list(lst, account.list_count(lid))
            for lid, lst in sorted(account.lists.items()) if lst.deleted_ms is None]


def _contact_tracking(account: Account) -> list[JSONDict]:
    out: list[JSONDict] = []
    contact_ids = sorted({a.contact_id for a in account.iter_activities()})
    for cid in contact_ids:
        acts, _ = account.activity_page(contact_id=cid, limit=10**9)
        out.extend(render.activity(a, contact_view=True) for a in acts)
    return out


def _email_campaign_summary(account: Account) -> list[JSONDict]:
    out: list[JSONDict] = []
    for camp in sorted(account.campaigns.values(), key=lambda x: x.id):
        if camp.status != "SENT" or camp.last_run_ms is None:
            continue
        row = render.tracking_summary(account, camp)
        row["campaign_id"] = str(camp.id)
        row["last_run_date"] = render.utc_date(camp.last_run_ms)
        out.append(row)
    return out


def _events(account: Account) -> list[JSONDict]:
    return [render.event_summary(e) for e in account.events]


def _event_registrations(account: Account) -> list[JSONDict]:
    # a v3-only table (ctctsync.tables): the v3 list records plus the event's ids, events in
    # account order, each event's registrations in registration order
    ids = V3Ids(account.seed)
    out: list[JSONDict] = []
    for index in range(len(account.events)):
        event_id = ids.uuid(KIND_EVENT_V3, index + 1)
        track = track_id(ids, index)
        out.extend({**registration_row(ids, index, r), "event_id": event_id, "track_id": track}
                   for r in account.event_registrations(index))
    return out


_TRUTHS: dict[str, Callable[[Account], list[JSONDict]]] = {
    "contacts": _contacts,
    "email_campaigns": _email_campaigns,
    "my_library_files": partial(_library_files, status="Active"),
    "account_info": _account_info,
    "trash_files": partial(_library_files, status="Deleted"),
    "contact_lists": _contact_lists,
    "contact_tracking": _contact_tracking,
    "email_campaign_summary": _email_campaign_summary,
    "events": _events,
    "event_registrations": _event_registrations,
}
TABLE_NAMES = tuple(_TRUTHS)


def truth(account: Account, table: str) -> list[JSONDict]:
    """Records of ``table`` (names as in ``ctctsync.tables``), as the v2 API would serve them.

    ``contact_tracking`` is every visible activity of every contact in the contact-tracking
    shape (contacts ascending, newest activity first); ``email_campaign_summary`` is one summary per
    SENT campaign plus its ``campaign_id`` (string) and ``last_run_date``.
    """
    build = _TRUTHS.get(table)
    if build is None:
        raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLE_NAMES)}")
    with account.pinned_time():  # one instant for every row: the decay model moves on
        return build(account)
