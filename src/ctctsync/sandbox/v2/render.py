"""Neutral account records -> v2 JSON objects (field names, order, types and date formats).

Shapes follow the 2015 Java captures and the SDK fixtures (constant-contact-api.md §2-§10).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.account import Account
from ctctsync.sandbox.records import AccountInfo, Activity

JSONDict = dict[str, Any]
EASTERN = ZoneInfo("America/New_York")


@functools.lru_cache(maxsize=16384)
def _utc_day(day: int) -> str:
    """``2015-02-11T`` for day ``day`` since the epoch (a few thousand distinct days)."""
    t = time.gmtime(day * 86400)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"


def utc_date(ms: int) -> str:
    """``2015-02-11T13:12:06.000Z``: UTC with milliseconds (§1.5)."""
    s, milli = divmod(ms, 1000)
    day, s = divmod(s, 86400)
    hour, s = divmod(s, 3600)
    minute, sec = divmod(s, 60)
    return f"{_utc_day(day)}{hour:02d}:{minute:02d}:{sec:02d}.{milli:03d}Z"


def eastern_date(ms: int) -> str:
    """``2015-02-11T10:43:48.000-05:00``: MyLibrary dates are US-Eastern with offset (§1.5)."""
    s, milli = divmod(ms, 1000)
    dt = datetime.fromtimestamp(s, EASTERN).replace(microsecond=milli * 1000)
    return dt.isoformat(timespec="milliseconds")


def parse_date(text: str) -> int:
    """Parse an ISO-8601 query date (``Z`` or offset; date only = midnight UTC) to epoch ms;
    raises ValueError."""
    value = text.strip().replace(" ", "+")  # an unencoded '+' arrives as a space
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def contact(c: gen.Contact, list_status: dict[int, str], v3_id: str | None = None) -> JSONDict:
    """A contact as ``GET /v2/contacts`` returns it (§2; ids are strings of digits);
    ``v3_id`` adds ``contact_id`` (``include_contact_id=true``)."""
    email: JSONDict = {
        "id": c.email_id, "status": c.status, "confirm_status": c.confirm_status,
        "opt_in_source": c.opt_in_source, "opt_in_date": utc_date(c.opt_in_ms),
    }
    if c.opt_out_ms is not None:  # absent unless opted out, as the 2015 capture (§2)
        email["opt_out_date"] = utc_date(c.opt_out_ms)
    email["email_address"] = c.email
    out: JSONDict = {"id": str(c.id)}
    if v3_id is not None:
        out["contact_id"] = v3_id
    out.update({
        "status": c.status,
        "fax": c.fax,  # empty string, not null, when missing (§1.5)
        "addresses": [
            {"id": a.id, "line1": a.line1, "line2": a.line2, "line3": a.line3, "city": a.city,
             "address_type": a.kind, "state_code": a.state_code, "state": a.state,
             "country_code": a.country_code, "postal_code": a.postal_code,
             "sub_postal_code": a.sub_postal_code}
            for a in c.addresses
        ],
        "notes": [
            {"id": n.id, "note": n.text, "created_date": utc_date(n.created_ms),
             "modified_date": utc_date(n.modified_ms)}
            for n in c.notes
        ],
        "confirmed": c.confirmed,
        "lists": [{"id": str(lid), "status": list_status.get(lid, "ACTIVE")} for lid in c.list_ids],
        "source": c.source,
        "email_addresses": [email],
        "prefix_name": c.prefix_name,
        "first_name": c.first_name,
        "middle_name": c.middle_name,
        "last_name": c.last_name,
        "job_title": c.job_title,
        "company_name": c.company_name,
        "home_phone": c.home_phone,
        "work_phone": c.work_phone,
        "cell_phone": c.cell_phone,
        "custom_fields": [
            {"name": f"CustomField{n}", "label": f"CustomField{n}", "value": v}
            for n, v in c.custom_fields
        ],
        "created_date": utc_date(c.created_ms),
        "modified_date": utc_date(c.modified_ms),
        "source_details": c.source_details,
    })
    return out


def campaign_summary(c: gen.Campaign) -> JSONDict:
    """A campaign as the collection lists it: four fields only (§3)."""
    return {"id": str(c.id), "name": c.name, "status": c.status,
            "modified_date": utc_date(c.modified_ms)}


def tracking_summary(account: Account, c: gen.Campaign) -> JSONDict:
    """The campaign's counts; consistent with its activities (§9)."""
    counts = account.campaign_counts(c.id)
    return {"sends": counts["sends"], "opens": counts["opens"], "clicks": counts["clicks"],
            "forwards": counts["forwards"], "unsubscribes": counts["unsubscribes"],
            "bounces": counts["bounces"],
            "spam_count": c.spam_count if counts["sends"] else 0}


def campaign_detail(account: Account, c: gen.Campaign) -> JSONDict:
    """``GET /v2/emailmarketing/campaigns/{id}`` (§3)."""
    out: JSONDict = {
        "id": str(c.id), "name": c.name, "subject": c.subject, "status": c.status,
        "from_name": c.from_name, "from_email": c.from_email, "reply_to_email": c.from_email,
        "template_type": "CUSTOM", "created_date": utc_date(c.created_ms),
        "modified_date": utc_date(c.modified_ms),
    }
    if c.last_run_ms is not None:
        out["last_run_date"] = utc_date(c.last_run_ms)
    if c.next_run_ms is not None:
        out["next_run_date"] = utc_date(c.next_run_ms)
    if c.status == "SENT":
        out["permalink_url"] = (f"http://myemail.constantcontact.com/{c.name.split(' #')[0]}"
                                f".html?soid=1100{account.seed}&aid={c.id}").replace(" ", "-")
    clicks = account.link_clicks(c.id)
    out.update({
        "is_permission_reminder_enabled": False,
        "permission_reminder_text": "You're receiving this email because of your relationship "
                                    "with our organization.",
        "is_view_as_webpage_enabled": False,
        "view_as_web_page_text": "Having trouble viewing this email?",
        "view_as_web_page_link_text": "Click here",
        "greeting_salutations": "Hello", "greeting_name": "FIRST_NAME",
        "greeting_string": c.greeting,
        "email_content": f"<html><body><p>{c.subject}</p>"
                         + "".join(f'<a href="{lk.url}">{lk.url}</a>' for lk in c.links)
                         + "</body></html>",
        "text_content": f"{c.subject}\n" + "\n".join(lk.url for lk in c.links),
        "email_content_format": "HTML",
        "style_sheet": "",
        "message_footer": {
            "city": account.info.city, "state": account.info.state_code,
            "country": account.info.country_code,
            "organization_name": account.info.organization_name,
            "address_line_1": account.info.line1, "address_line_2": "", "address_line_3": "",
            "international_state": "", "postal_code": account.info.postal_code,
            "include_forward_email": True, "forward_email_link_text": "Forward this email",
            "include_subscribe_link": True, "subscribe_link_text": "Subscribe to my list",
        },
        "tracking_summary": tracking_summary(account, c),
        "sent_to_contact_lists": [{"id": str(lid)} for lid in c.list_ids],
        "click_through_details": [
            {"url": lk.url, "url_uid": str(lk.uid), "click_count": clicks.get(lk.uid, 0)}
            for lk in c.links
        ] if c.status == "SENT" else [],
    })
    return out


def activity(a: Activity, *, contact_view: bool) -> JSONDict:
    """One tracking item. ``campaign_id`` is a JSON number in campaign tracking and a string in
    contact tracking, as the fixtures show (§1.5, §8, §9.1)."""
    out: JSONDict = {
        "activity_type": a.type_name,
        "campaign_id": str(a.campaign_id) if contact_view else a.campaign_id,
        "contact_id": str(a.contact_id),
        "email_address": a.email,
    }
    date = utc_date(a.ts_ms)
    t = a.type
    if t == gen.SEND:
        out["send_date"] = date
    elif t == gen.OPEN:
        out["open_date"] = date
    elif t == gen.CLICK:
        out["link_id"] = str(a.link_uid)
        if contact_view:  # campaign-level click items carry no link_uri (§9.1)
            out["link_uri"] = a.link_url
        out["click_date"] = date
    elif t == gen.FORWARD:
        out["forward_date"] = date
    elif t == gen.BOUNCE:
        out.update({"bounce_code": a.bounce_code, "bounce_description": a.bounce_description,
                    "bounce_message": "", "bounce_date": date})
    else:
        out.update({"unsubscribe_date": date, "unsubscribe_source": a.unsubscribe_source,
                    "unsubscribe_reason": a.unsubscribe_reason})
    return out


def library_file(f: gen.LibraryFile) -> JSONDict:
    """A MyLibrary file (also the trash item shape, §4/§6)."""
    return {
        "name": f.name, "id": str(f.id), "description": f.description, "folder": f.folder,
        "height": f.height, "width": f.width, "size": f.size, "url": f.url, "source": f.source,
        "status": f.status,
        "thumbnail": {"url": f.thumb_url, "height": f.thumb_height, "width": f.thumb_width},
        "created_date": eastern_date(f.created_ms), "modified_date": eastern_date(f.modified_ms),
        "folder_id": f.folder_id, "is_image": f.is_image, "file_type": f.file_type,
    }


def contact_list(lst: gen.ContactList, count: int, v3_id: str | None = None) -> JSONDict:
    """A contact list (§7); ``v3_id`` adds ``list_id`` (``include_list_id=true``)."""
    out: JSONDict = {"id": str(lst.id)}
    if v3_id is not None:
        out["list_id"] = v3_id
    out.update({"name": lst.name, "status": lst.status,
                "created_date": utc_date(lst.created_ms),
                "modified_date": utc_date(lst.modified_ms), "contact_count": count})
    return out


def account_info(info: AccountInfo) -> JSONDict:
    """``GET /v2/account/info`` (§5); empty address lines are omitted."""
    address: JSONDict = {"city": info.city, "line1": info.line1}
    for key, value in (("line2", info.line2), ("line3", info.line3)):
        if value:  # line2/line3 omitted when empty (§5, java5 @JsonInclude NON_EMPTY)
            address[key] = value
    address.update({"postal_code": info.postal_code, "country_code": info.country_code,
                    "state_code": info.state_code})
    return {
        "website": info.website, "organization_name": info.organization_name,
        "time_zone": info.time_zone, "first_name": info.first_name, "last_name": info.last_name,
        "email": info.email, "phone": info.phone, "company_logo": info.company_logo,
        "country_code": info.country_code, "state_code": info.state_code,
        "organization_addresses": [address],
    }


def event_summary(e: gen.Event) -> JSONDict:
    """An event as the collection lists it; null properties are omitted (§10)."""
    out: JSONDict = {"id": e.id, "name": e.name, "title": e.title, "status": e.status}
    if e.location is not None:
        out["location"] = e.location
    out["type"] = e.type
    address: JSONDict = {"city": e.city, "state": e.state, "country": e.country}
    if e.latitude is not None and e.longitude is not None:
        address["latitude"] = e.latitude
        address["longitude"] = e.longitude
    address.update({"line1": e.line1, "line2": "", "line3": "", "state_code": e.state_code,
                    "country_code": e.country_code, "postal_code": e.postal_code})
    out["address"] = address
    out.update({"description": e.description, "start_date": utc_date(e.start_ms),
                "end_date": utc_date(e.end_ms), "created_date": utc_date(e.created_ms),
                "time_zone_id": e.time_zone})
    if e.active_ms is not None:
        out["active_date"] = utc_date(e.active_ms)
    out["is_checkin_available"] = False
    out["event_detail_url"] = f"/v2/eventspot/events/{e.id}"
    return out


def event_detail(e: gen.Event) -> JSONDict:
    """``GET /v2/eventspot/events/{id}`` (§10)."""
    out = event_summary(e)
    out.pop("event_detail_url")
    out.update({
        "contact": {"name": e.contact_name, "email_address": e.contact_email,
                    "phone_number": e.contact_phone, "organization_name": "My Organization"},
        "registration_url": f"http://events.constantcontact.com/register/event?llr=sandbox&oeidk={e.id}",
        "theme_name": "Default", "currency_type": "USD", "is_virtual_event": False,
        "notification_options": [{"notification_type": "SO_REGISTRATION_NOTIFICATION",
                                  "is_opted_in": False}],
        "is_home_page_displayed": True, "is_map_displayed": True, "is_calendar_displayed": True,
        "is_listed_in_external_directory": False, "are_registrants_public": False,
        "track_information": {
            "information_sections": ["CONTACT", "TIME", "LOCATION"],
            "is_registration_closed_manually": False, "is_ticketing_link_displayed": False,
            "guest_limit": 0, "registration_limit_count": 0, "guest_display_label": "Guest(s)",
            "is_guest_name_required": False, "is_guest_anonymous_enabled": False,
        },
        "total_registered_count": e.registered,
    })
    # model-only fields (constant-contact-api.md §10), set once a test hook cancels/deletes
    # the event -- UNCONFIRMED whether CC fills them
    if e.cancelled_ms is not None:
        out["cancelled_date"] = utc_date(e.cancelled_ms)
    if e.deleted_ms is not None:
        out["deleted_date"] = utc_date(e.deleted_ms)
    return out
