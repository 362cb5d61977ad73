"""The v2 "truth" of each replicated table: exactly the records the v2 API serves right now."""

from __future__ import annotations

from typing import Any

from ctctsync.sandbox.account import Account
from ctctsync.sandbox.v2 import render

JSONDict = dict[str, Any]
TABLE_NAMES = ("contacts", "email_campaigns", "my_library_files", "account_info", "trash_files",
               "contact_lists", "contact_tracking", "email_campaign_summary", "events")


def truth(account: Account, table: str) -> list[JSONDict]:
    """Records of ``table`` (names as in ``ctctsync.tables``), as the v2 API would serve them.

    ``contact_tracking`` is every activity of every contact in the contact-tracking shape
    (contacts ascending, newest activity first); ``email_campaign_summary`` is one summary per
    SENT campaign plus its ``campaign_id`` (string) and ``last_run_date``.
    """
    with account.lock:
        if table == "contacts":
            list_status = {lid: lst.status for lid, lst in account.lists.items()}
            out = []
            for cid in range(1, account.contact_count + 1):
                c = account.contact(cid)
                assert c is not None
                out.append(render.contact(c, list_status))
            return out
        if table == "email_campaigns":
            camps = [c for c in account.campaigns.values() if c.status != "DELETED"]
            camps.sort(key=lambda c: (c.modified_ms, c.id), reverse=True)
            return [render.campaign_summary(c) for c in camps]
        if table in ("my_library_files", "trash_files"):
            status = "Active" if table == "my_library_files" else "Deleted"
            files = sorted((f for f in account.files.values() if f.status == status),
                           key=lambda f: (f.created_ms, f.id), reverse=True)
            return [render.library_file(f) for f in files]
        if table == "account_info":
            return [render.account_info(account.info)]
        if table == "contact_lists":
            return [render.contact_list(lst, account.list_count(lid))
                    for lid, lst in sorted(account.lists.items())]
        if table == "contact_tracking":
            out = []
            contact_ids = sorted({a.contact_id for a in account.iter_activities()})
            for cid in contact_ids:
                acts, _ = account.activity_page(contact_id=cid, limit=10**9)
                out.extend(render.activity(a, contact_view=True) for a in acts)
            return out
        if table == "email_campaign_summary":
            out = []
            for camp in sorted(account.campaigns.values(), key=lambda x: x.id):
                if camp.status != "SENT" or camp.last_run_ms is None:
                    continue
                row = render.tracking_summary(account, camp)
                row["campaign_id"] = str(camp.id)
                row["last_run_date"] = render.utc_date(camp.last_run_ms)
                out.append(row)
            return out
        if table == "events":
            return [render.event_summary(e) for e in account.events]
    raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLE_NAMES)}")
