"""Deterministic, version-neutral generation of account records from a seed.

Every record is derived from ``(seed, kind, id)`` alone, so a record can be rebuilt on demand
instead of being held in memory. Records are plain dataclasses with epoch-millisecond times and
integer ids; the API layers (``sandbox.v2``) turn them into wire formats.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from dataclasses import dataclass, field

from ctctsync.sandbox.clock import ANCHOR_MS

DAY_MS = 86_400_000
HISTORY_MS = 6 * 365 * DAY_MS
"""Seeded history spans the six years before the anchor."""

FIRST_NAMES = (
    "John", "Mary", "Ronald", "Stefan", "Zoë", "José", "Ana", "Björn", "Chloé", "François",
    "Łukasz", "Søren", "Aoife", "Nguyễn", "Dmitri", "Olga", "Mei", "Hiroshi", "Fatima", "Ahmed",
    "Priya", "Raj", "Emily", "Michael", "Sarah", "David", "Laura", "Kevin", "Jürgen", "Renée",
    "Ines", "Tomás", "Siobhán", "Ngozi", "Kwame", "Ingrid", "Pablo", "Lucía", "Noah", "Emma",
)
LAST_NAMES = (
    "Smith", "Martone", "Halus", "Müller", "García", "O'Brien", "Nowak", "Johansson", "Dubois",
    "Rossi", "Kowalski", "Jensen", "Nguyen", "Ivanov", "Chen", "Tanaka", "Haddad", "Patel",
    "Brown", "Wilson", "Lefèvre", "Gonçalves", "Schröder", "Østergaard", "MacDonald", "Kim",
    "Okafor", "Mensah", "Larsen", "Fernández", "Doe", "Taylor", "Anderson", "Thomas", "Moore",
)
PREFIXES = ("", "", "", "Mr.", "Ms.", "Mrs.", "Dr.")
JOB_TITLES = (
    "", "", "Software Engineer", "Systems Analyst 3", "Marketing Manager", "Owner", "CEO",
    "Office Manager", "Sales Associate", "Teacher", "Nurse", "Director of Operations", "Chef",
)
COMPANIES = (
    "", "", "Constant Contact", "System Optimizations", "Acme Corp", "Globex", "Initech",
    "Umbrella Ltd", "Café Münster", "Stark Industries", "Wayne Enterprises", "Hooli",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "ctctgen.com")
CITIES = (
    ("Waltham", "Massachusetts", "MA", "us", "02451"),
    ("Boston", "Massachusetts", "MA", "us", "02158"),
    ("Cambridge", "Massachusetts", "MA", "us", "01555"),
    ("Springfield", "Illinois", "IL", "us", "62701"),
    ("Austin", "Texas", "TX", "us", "73301"),
    ("Portland", "Oregon", "OR", "us", "97201"),
    ("Toronto", "Ontario", "ON", "ca", "M5H 2N2"),
    ("Suceava", "", "", "ro", "720199"),
    ("München", "", "", "de", "80331"),
)
STREETS = ("Trapelo Rd", "Maple Street", "Brighton Ave.", "Shawmut Ave.", "Main St", "Elm St")
SOURCES = (
    ("", ""), ("API", "CTCT Java V2 SDK"), ("API", "WebhooksCTCT"), ("Signup Form", ""),
    ("Import", "upload_from_json.csv"),
)
NOTES = (
    "Met at the spring trade show", "Prefers email on Fridays", "VIP customer — handle with care",
    "Asked about the 2-for-1 offer", "Here are some cool notes to add",
)
CONTACT_STATUSES = ("ACTIVE", "UNCONFIRMED", "OPTOUT", "REMOVED")
STATUS_ACTIVE, STATUS_UNCONFIRMED, STATUS_OPTOUT, STATUS_REMOVED = range(4)

CAMPAIGN_THEMES = (
    "Spring Newsletter", "Summer Sale", "Product Update", "Holiday Greetings", "Webinar Invite",
    "Customer Survey", "Weekly Digest", "New Arrivals", "Event Reminder", "Thank You",
)
LINK_URLS = (
    "http://www.constantcontact.com", "http://www.facebook.com/my.organization",
    "https://www.example.com/offers", "https://www.example.com/blog/latest",
    "https://twitter.com/example",
)
BOUNCES = (
    ("B", "Non-existent address"), ("S", "Suspended address"), ("D", "Undeliverable"),
    ("F", "Mailbox full"), ("V", "Vacation or autoreply"), ("Z", "Blocked"), ("X", "Other"),
)
UNSUB_SOURCES = ("ACTION_BY_CUSTOMER", "ACTION_BY_OWNER")
UNSUB_REASONS = ("", "", "Too many emails", "No longer interested")
ACTIVITY_TYPES = (
    "EMAIL_SEND", "EMAIL_OPEN", "EMAIL_CLICK", "EMAIL_FORWARD", "EMAIL_BOUNCE", "EMAIL_UNSUBSCRIBE",
)
SEND, OPEN, CLICK, FORWARD, BOUNCE, UNSUBSCRIBE = range(6)
FILE_KINDS = (
    ("PNG", True), ("JPG", True), ("JPEG", True), ("GIF", True), ("PDF", False), ("DOCX", False),
)
EVENT_TYPES = (
    "AUCTION", "CLASSES_WORKSHOPS", "CONFERENCE_SEMINAR", "FESTIVALS_FAIRS", "MEETINGS_NETWORKING",
    "OTHER", "PERFORMING_ARTS", "WEBINAR_TELESEMINAR_TELECLASS",
)
EVENT_STATUSES = ("ACTIVE", "ACTIVE", "COMPLETE", "DRAFT", "CANCELLED")


def rng_for(seed: int, kind: int, ident: int, version: int = 0) -> random.Random:
    """A random generator private to one record: the same arguments give the same stream."""
    return random.Random((seed * 1_000_003 + kind) * 4_294_967_311 + ident * 65_537 + version)


(KIND_CONTACT, KIND_LIST, KIND_CAMPAIGN, KIND_FILE, KIND_EVENT, KIND_ACCOUNT,
 KIND_MUTATION) = range(7)


def uuid_from(rng: random.Random) -> str:
    """A version-1-looking UUID string (as 2015 sub-object ids are) drawn from ``rng``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=1))


def stable_uuid(seed: int, kind: int, ident: int) -> str:
    """The v3-era UUID of a record (e.g. what v2's ``include_contact_id`` reveals)."""
    return str(uuid.UUID(int=rng_for(seed, kind + 100, ident).getrandbits(128), version=4))


def phone(rng: random.Random) -> str:
    """A phone number with the punctuation people really type."""
    a, b, c = rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(0, 10_000)
    style = rng.randrange(6)
    if style == 0:
        return f"{a}-{b}-{c:04d}"
    if style == 1:
        return f"({a}) {b}-{c:04d}"
    if style == 2:
        return f"+1 {a} {b} {c:04d}"
    if style == 3:
        return f"{a}.{b}.{c:04d} x{rng.randrange(10, 999)}"
    if style == 4:
        return f"{a}{b}{c:04d}"
    return f"+44 20 {b} {c:04d}"


_FOLD = {"ë": "e", "é": "e", "è": "e", "ç": "c", "ü": "u", "ö": "o", "ø": "o", "Ø": "o",
         "ł": "l", "Ł": "l", "ñ": "n", "á": "a", "í": "i", "ó": "o", "ễ": "e", "ã": "a"}


@functools.lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters of ``text`` (for email local parts).

    Cached (bounded): it is called with the names of the fixed name lists for every contact
    and every tracking activity rendered."""
    out = "".join(_FOLD.get(ch, ch) for ch in text.lower())
    return "".join(ch for ch in out if ch.isascii() and ch.isalpha()) or "x"


@dataclass(slots=True)
class Address:
    """A postal address of a contact."""

    id: str
    kind: str  # PERSONAL | BUSINESS
    line1: str
    line2: str
    line3: str
    city: str
    state: str
    state_code: str
    country_code: str
    postal_code: str
    sub_postal_code: str


@dataclass(slots=True)
class Note:
    """A note on a contact."""

    id: str
    text: str
    created_ms: int
    modified_ms: int


@dataclass(slots=True)
class Contact:
    """One contact, version-neutral."""

    id: int
    status: str
    email: str
    email_id: str
    confirm_status: str
    opt_in_source: str
    opt_in_ms: int
    opt_out_ms: int | None
    prefix_name: str
    first_name: str
    middle_name: str
    last_name: str
    job_title: str
    company_name: str
    home_phone: str
    work_phone: str
    cell_phone: str
    fax: str
    addresses: list[Address]
    notes: list[Note]
    list_ids: list[int]
    custom_fields: list[tuple[int, str]]
    source: str
    source_details: str
    confirmed: bool
    created_ms: int
    modified_ms: int


def contact_names(seed: int, cid: int) -> tuple[str, str, str]:
    """(first name, last name, email) of contact ``cid``: stable for the contact's life."""
    rng = rng_for(seed, KIND_CONTACT, cid)
    first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
    domain = DOMAINS[rng.randrange(len(DOMAINS))]
    return first, last, f"{ascii_fold(first)}.{ascii_fold(last)}.{cid}@{domain}"


def build_contact(
    seed: int,
    cid: int,
    *,
    status: int,
    list_ids: list[int],
    created_ms: int,
    modified_ms: int,
    version: int = 0,
) -> Contact:
    """Build contact ``cid``; ``version`` > 0 re-draws the editable fields after a change."""
    rng = rng_for(seed, KIND_CONTACT, cid)
    first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
    domain = DOMAINS[rng.randrange(len(DOMAINS))]
    email = f"{ascii_fold(first)}.{ascii_fold(last)}.{cid}@{domain}"
    email_id = uuid_from(rng)
    if version:
        rng = rng_for(seed, KIND_MUTATION, cid, version)
    sparse = rng.random() < 0.3  # many real contacts carry only an email address
    addresses: list[Address] = []
    if not sparse and rng.random() < 0.6:
        for kind in ("PERSONAL", "BUSINESS")[: 1 + (rng.random() < 0.3)]:
            city, state, code, country, postal = CITIES[rng.randrange(len(CITIES))]
            addresses.append(Address(
                id=uuid_from(rng), kind=kind,
                line1=f"{rng.randrange(1, 9999)} {STREETS[rng.randrange(len(STREETS))]}",
                line2=f"Suite {rng.randrange(100, 999)}" if rng.random() < 0.3 else "",
                line3="", city=city, state=state, state_code=code, country_code=country,
                postal_code=postal,
                sub_postal_code=f"{rng.randrange(1000, 9999)}" if rng.random() < 0.2 else "",
            ))
    notes: list[Note] = []
    if not sparse and rng.random() < 0.25:
        ts = created_ms + int((modified_ms - created_ms) * rng.random())
        notes.append(Note(uuid_from(rng), NOTES[rng.randrange(len(NOTES))], ts, ts))
    custom: list[tuple[int, str]] = []
    if not sparse and rng.random() < 0.4:
        for n in sorted(rng.sample(range(1, 16), rng.randrange(1, 4))):
            custom.append((n, _custom_value(rng, n)))
    source, details = SOURCES[rng.randrange(len(SOURCES))]
    status_name = CONTACT_STATUSES[status]
    opt_out_ms: int | None = None
    if status in (STATUS_OPTOUT, STATUS_REMOVED):
        opt_out_ms = created_ms + int((modified_ms - created_ms) * rng.random())
    return Contact(
        id=cid, status=status_name, email=email, email_id=email_id,
        confirm_status=(
            "UNCONFIRMED" if status == STATUS_UNCONFIRMED else "NO_CONFIRMATION_REQUIRED"),
        opt_in_source="ACTION_BY_OWNER" if rng.random() < 0.6 else "ACTION_BY_VISITOR",
        opt_in_ms=created_ms, opt_out_ms=opt_out_ms,
        prefix_name="" if sparse else PREFIXES[rng.randrange(len(PREFIXES))],
        first_name="" if sparse and rng.random() < 0.5 else first,
        middle_name="" if sparse or rng.random() < 0.7 else rng.choice("ABCDEFGHJKLMS"),
        last_name="" if sparse and rng.random() < 0.5 else last,
        job_title="" if sparse else JOB_TITLES[rng.randrange(len(JOB_TITLES))],
        company_name="" if sparse else COMPANIES[rng.randrange(len(COMPANIES))],
        home_phone="" if sparse or rng.random() < 0.5 else phone(rng),
        work_phone="" if sparse or rng.random() < 0.6 else phone(rng),
        cell_phone="" if sparse or rng.random() < 0.5 else phone(rng),
        fax="" if sparse or rng.random() < 0.9 else phone(rng),
        addresses=addresses, notes=notes, list_ids=list_ids, custom_fields=custom,
        source=source, source_details=details,
        confirmed=status == STATUS_ACTIVE and rng.random() < 0.1,
        created_ms=created_ms, modified_ms=modified_ms,
    )


def _custom_value(rng: random.Random, n: int) -> str:
    choice = (n + rng.randrange(3)) % 4
    if choice == 0:
        month, day, year = rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(10, 24)
        return f"{month}/{day}/20{year} 11:09 AM EDT"
    if choice == 1:
        return rng.choice(("Site owner", "Gold member", "Lead", "Partner", "Bénévole"))
    if choice == 2:
        return str(rng.randrange(0, 100_000))
    return rng.choice(("yes", "no", "", "n/a"))


@dataclass(slots=True)
class ContactList:
    """A contact list."""

    id: int
    name: str
    status: str  # ACTIVE | HIDDEN
    created_ms: int
    modified_ms: int
    deleted_ms: int | None = None
    """When the list was deleted (``Account.delete_list``); None while it exists. Seeded lists
    are never deleted, so the v2 data of every seed is unchanged."""


LIST_NAMES = (
    "General Interest", "Newsletter", "Customers", "VIP", "Prospects", "Events", "Partners",
    "Volunteers", "Donors", "Beta Testers", "Café Regulars", "Staff",
)


def build_list(seed: int, lid: int, index: int) -> ContactList:
    """List number ``index`` (0-based) with id ``lid``."""
    rng = rng_for(seed, KIND_LIST, lid)
    base = LIST_NAMES[index % len(LIST_NAMES)]
    name = base if index < len(LIST_NAMES) else f"{base} {index // len(LIST_NAMES) + 1}"
    created = ANCHOR_MS - HISTORY_MS + int(HISTORY_MS * 0.1 * rng.random())
    modified = created + int((ANCHOR_MS - created) * rng.random())
    return ContactList(lid, name, "HIDDEN" if rng.random() < 0.1 else "ACTIVE", created, modified)


@dataclass(slots=True)
class Link:
    """A tracked link of a campaign."""

    url: str
    uid: int


@dataclass(slots=True)
class Campaign:
    """An email campaign."""

    id: int
    name: str
    subject: str
    status: str  # DRAFT | SCHEDULED | SENT | DELETED
    created_ms: int
    modified_ms: int
    last_run_ms: int | None
    next_run_ms: int | None
    list_ids: list[int]
    links: list[Link]
    from_name: str
    from_email: str
    spam_count: int
    greeting: str = "Dear"
    extra: dict[str, str] = field(default_factory=dict)


def build_campaign(
    seed: int, cid: int, index: int, *, status: str, created_ms: int, list_ids: list[int],
) -> Campaign:
    """Campaign ``index`` (0-based, chronological) with id ``cid`` and the given status."""
    rng = rng_for(seed, KIND_CAMPAIGN, cid)
    theme = CAMPAIGN_THEMES[index % len(CAMPAIGN_THEMES)]
    when = time.strftime("%a %b %d %Y", time.gmtime(created_ms // 1000))
    name = f"{theme} #{index + 1} — {when}"
    modified = created_ms + rng.randrange(DAY_MS // 24, 2 * DAY_MS)
    last_run = next_run = None
    if status in ("SENT", "DELETED"):
        last_run = modified + rng.randrange(60_000, 3_600_000)
    if status == "SCHEDULED":
        # a date in the future of any realistic sandbox clock, still derived from the anchor
        next_run = ANCHOR_MS + (3650 + rng.randrange(30, 400)) * DAY_MS
    links = [Link(LINK_URLS[(index + k) % len(LINK_URLS)], cid * 10 + k)
             for k in range(1 + rng.randrange(3))]
    return Campaign(
        id=cid, name=name, subject=f"{theme}: news for you", status=status, created_ms=created_ms,
        modified_ms=modified, last_run_ms=last_run, next_run_ms=next_run, list_ids=list_ids,
        links=links, from_name="My Organization", from_email="news@example.com",
        spam_count=rng.randrange(0, 3),
    )


@dataclass(slots=True)
class LibraryFile:
    """A MyLibrary file (in the library or in its trash)."""

    id: int
    name: str
    description: str
    folder: str
    folder_id: str | None
    file_type: str
    is_image: bool
    width: int
    height: int
    size: int
    url: str
    thumb_url: str
    thumb_width: int
    thumb_height: int
    source: str
    status: str  # Active | Deleted | ...
    created_ms: int
    modified_ms: int


FOLDERS = (("Images", None), ("wildflowers", "-1"), ("Newsletters", "-2"), ("Logos", "-3"),
           ("Documents", "-4"))
GENERIC_DOC_THUMB = "https://imgssl.constantcontact.com/ui/images1/mlui/mlui_document.png"


def build_file(seed: int, fid: int) -> LibraryFile:
    """Library file ``fid``."""
    rng = rng_for(seed, KIND_FILE, fid)
    ftype, is_image = FILE_KINDS[rng.randrange(len(FILE_KINDS))]
    folder, folder_id = FOLDERS[rng.randrange(len(FOLDERS))]
    created = ANCHOR_MS - HISTORY_MS + int(HISTORY_MS * rng.random())
    modified = created + int(min(ANCHOR_MS - created, 90 * DAY_MS) * rng.random())
    key = uuid_from(rng)
    ext = ftype.lower()
    url = f"https://mlsvc01-prod.s3.amazonaws.com/{seed:x}a1301/{key}.{ext}"
    if is_image:
        width, height = rng.choice(((800, 600), (640, 480), (792, 612), (100, 100), (640, 360)))
        tw, th = 200, height * 200 // width
        thumb = url
        name = f"IMG_{rng.randrange(1000, 9999)}.{ftype}"
    else:
        width = height = 0
        tw, th, thumb = 178, 200, GENERIC_DOC_THUMB
        name = rng.choice(("flyer", "menu", "price list", "Annual Report")) + f" {fid}.{ext}"
    return LibraryFile(
        id=fid, name=name, description=rng.choice(("chocolates", "buildings_steel", "", "logo")),
        folder=folder, folder_id=folder_id, file_type=ftype, is_image=is_image,
        width=width, height=height, size=rng.randrange(1024, 2_000_000), url=url,
        thumb_url=thumb, thumb_width=tw, thumb_height=th, source="MyComputer", status="Active",
        created_ms=created, modified_ms=modified,
    )


@dataclass(slots=True)
class Event:
    """An EventSpot event."""

    id: str
    name: str
    title: str
    status: str
    type: str
    location: str | None
    city: str
    state: str
    state_code: str
    country: str
    country_code: str
    postal_code: str
    line1: str
    latitude: float | None
    longitude: float | None
    description: str
    start_ms: int
    end_ms: int
    created_ms: int
    active_ms: int | None
    registered: int
    contact_name: str
    contact_email: str
    contact_phone: str
    # changed only by the account's event mutations (admin test hooks); the defaults are what
    # every seeded event has, so seeded renderings are unchanged
    time_zone: str = "US/Eastern"
    updated_ms: int | None = None
    """Last edit, status change included (None: never edited since published)."""
    cancelled_ms: int | None = None
    deleted_ms: int | None = None


EVENT_TIME_ZONES = {"US/Eastern": "EST", "US/Central": "CST", "US/Mountain": "MST",
                    "US/Pacific": "PST", "US/Alaska": "AKST", "US/Hawaii": "HST"}
"""Time zones an event can be moved to, and the abbreviation v3 shows for each
(``time_zone_abbreviation``, the list's ``time_zone_type``; seeded events: US/Eastern, EST).
UNCONFIRMED: CC shows the standard-time abbreviation whatever the date, as the contract's
"US/Eastern"/"EST" example pair suggests."""


def build_event(seed: int, index: int) -> Event:
    """Event number ``index`` (0-based)."""
    rng = rng_for(seed, KIND_EVENT, index)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    eid = "a07e" + "".join(rng.choice(alphabet) for _ in range(15))
    status = EVENT_STATUSES[rng.randrange(len(EVENT_STATUSES))]
    created = ANCHOR_MS - HISTORY_MS + int(HISTORY_MS * rng.random())
    start = created + rng.randrange(7, 120) * DAY_MS
    title = rng.choice(("My First Event", "Charitable Auction", "Monthly Seminar", "Open House",
                        "Webinar: Email Basics", "Summer Fête"))
    has_place = rng.random() < 0.7
    city, state, code, country_code, postal = CITIES[rng.randrange(len(CITIES))]
    return Event(
        id=eid, name=f"{title} {index + 1}", title=title, status=status,
        type=EVENT_TYPES[rng.randrange(len(EVENT_TYPES))],
        location=(rng.choice(("The Great Room", "1 Infinity Loop Boston, MA"))
                  if has_place else None),
        city=city if has_place else "", state=state if has_place else "",
        state_code=code if has_place else "",
        country=(("United States" if country_code == "us" else country_code.upper())
                 if has_place else ""),
        country_code=country_code if has_place else "", postal_code=postal if has_place else "",
        line1=f"{rng.randrange(1, 999)} Maple Street" if has_place else "",
        latitude=round(42 + rng.random(), 6) if has_place else None,
        longitude=round(-71 - rng.random(), 6) if has_place else None,
        description="Please join us and learn some new skills while meeting new friends.",
        start_ms=start, end_ms=start + rng.randrange(2, 10) * 3_600_000, created_ms=created,
        active_ms=None if status == "DRAFT" else created + rng.randrange(60_000, DAY_MS),
        registered=0 if status == "DRAFT" else rng.randrange(0, 250),
        contact_name="Mary Jane Doe", contact_email="events@example.com",
        contact_phone="555-555-1212",
    )


# -- additions for the v3 face (each from a NEW rng stream: v2 data never changes) -------------

(KIND_CONTACT_V3, KIND_LIST_V3, KIND_TAG_DEF, KIND_CUSTOM_FIELD_DEF, KIND_SEGMENT,
 KIND_ACCOUNT_V3, KIND_SUBRECORD_V3) = range(50, 57)
"""rng kinds of the data only v3 shows (distinct from the kinds above and from the UUID
kinds, which :func:`stable_uuid` offsets by 100)."""

TAG_NAMES = ("Gold card member", "VIP", "Trade show 2023", "Webinar attendee",
             "Lapsed customer", "Newsletter signup")
TAG_SOURCES = ("", "", "Contact", "ESTY", "Shopify")
TAG_COUNT = len(TAG_NAMES)
"""The account's contact tags: a fixed handful (ids ``1..TAG_COUNT``)."""
CUSTOM_FIELD_COUNT = 15
"""v2's numbered custom fields ``CustomField1..15`` are v3 custom field definitions 1..15."""
OPT_OUT_REASONS = ("", "", "I am no longer interested in this service.", "Too many emails")


@dataclass(slots=True)
class Tag:
    """A contact tag (v3 only; v2 has no tags)."""

    id: int
    name: str
    source: str
    created_ms: int
    modified_ms: int


def build_tag(seed: int, tid: int) -> Tag:
    """Tag ``tid`` (1-based)."""
    rng = rng_for(seed, KIND_TAG_DEF, tid)
    created = ANCHOR_MS - HISTORY_MS + int(HISTORY_MS * 0.5 * rng.random())
    modified = created + int((ANCHOR_MS - created) * rng.random() * 0.5)
    return Tag(tid, TAG_NAMES[(tid - 1) % TAG_COUNT], TAG_SOURCES[rng.randrange(len(TAG_SOURCES))],
               created, modified)


@dataclass(slots=True)
class CustomFieldDef:
    """A custom field definition: v2's ``CustomField<n>`` seen from v3."""

    number: int
    label: str
    name: str
    type: str
    created_ms: int
    modified_ms: int


def build_custom_field(seed: int, number: int) -> CustomFieldDef:
    """Custom field ``number`` (1..:data:`CUSTOM_FIELD_COUNT`)."""
    rng = rng_for(seed, KIND_CUSTOM_FIELD_DEF, number)
    created = ANCHOR_MS - HISTORY_MS + int(HISTORY_MS * 0.2 * rng.random())
    modified = created + int((ANCHOR_MS - created) * rng.random() * 0.3)
    return CustomFieldDef(number, f"Custom Field {number}", f"custom_field_{number}", "string",
                          created, modified)


@dataclass(slots=True)
class Segment:
    """A saved segment (v3 only): an integer id and escaped-JSON criteria."""

    id: int
    name: str
    criteria: str
    created_ms: int
    edited_ms: int
    deleted: bool


_SEGMENTS = (
    ("Re-engage contacts who did not open the last 5 campaigns", "not_opened", "5"),
    ("Clicked in the last 30 days", "clicked", "30"),
    ("Opened any of the last 3 campaigns", "opened", "3"),
    ("Old test segment", "opened", "1"),
)


def build_segment(seed: int, sid: int) -> Segment:
    """Segment ``sid`` (1-based); the last of :data:`_SEGMENTS` is deleted."""
    rng = rng_for(seed, KIND_SEGMENT, sid)
    name, field_name, param = _SEGMENTS[(sid - 1) % len(_SEGMENTS)]
    criteria = ('{"version":"1.0.0","criteria":{"type":"and","group":[{"source":"tracking",'
                f'"field":"{field_name}","op":"contains-any","const_value":"last-n-campaigns",'
                f'"param":"{param}"}}]}}}}')
    created = ANCHOR_MS - int(HISTORY_MS * 0.3 * rng.random()) - DAY_MS
    edited = created + int((ANCHOR_MS - created) * rng.random())
    return Segment(sid, name, criteria, created, edited, deleted=sid % len(_SEGMENTS) == 0)


@dataclass(slots=True)
class ContactV3Extras:
    """What v3 shows of a contact beyond the version-neutral record (per contact version)."""

    tag_ids: list[int]
    birthday_month: int | None
    birthday_day: int | None
    anniversary: str | None
    opt_out_by_contact: bool
    """An unsubscribe by the contact (else by the account owner)."""
    opt_out_reason: str
    updated_by_contact: bool


def contact_v3_extras(seed: int, cid: int, version: int) -> ContactV3Extras:
    """The v3-only data of contact ``cid`` at edit ``version`` (its own rng stream)."""
    rng = rng_for(seed, KIND_CONTACT_V3, cid, version)
    tags = sorted(rng.sample(range(1, TAG_COUNT + 1), rng.randrange(1, 3))) \
        if rng.random() < 0.35 else []
    birthday = rng.random() < 0.2
    month, day = rng.randrange(1, 13), rng.randrange(1, 29)
    anniversary = rng.random() < 0.1
    year = rng.randrange(1990, 2023)
    return ContactV3Extras(
        tag_ids=tags, birthday_month=month if birthday else None,
        birthday_day=day if birthday else None,
        anniversary=f"{year}-{month:02d}-{day:02d}" if anniversary else None,
        opt_out_by_contact=rng.random() < 0.8,
        opt_out_reason=OPT_OUT_REASONS[rng.randrange(len(OPT_OUT_REASONS))],
        updated_by_contact=rng.random() < 0.2,
    )


def subrecord_uuid(seed: int, cid: int, slot: int) -> str:
    """A stable UUID for sub-record ``slot`` of contact ``cid`` (e.g. a phone number)."""
    return uuid_from(rng_for(seed, KIND_SUBRECORD_V3, cid * 8 + slot))


@dataclass(slots=True)
class ListV3Extras:
    """What v3 shows of a list beyond the version-neutral record."""

    favorite: bool
    description: str


def list_v3_extras(seed: int, lid: int) -> ListV3Extras:
    """The v3-only data of list ``lid``."""
    rng = rng_for(seed, KIND_LIST_V3, lid)
    favorite = rng.random() < 0.2
    description = rng.choice(("", "", "Customers who bought twice.", "Signed up at events."))
    return ListV3Extras(favorite, description)
