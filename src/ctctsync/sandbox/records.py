"""Value types of the account model: its size (``AccountSpec``), its owner (``AccountInfo``) and
one email activity (``Activity``), plus the cursor key of the activity indexes."""

from __future__ import annotations

from dataclasses import dataclass

from ctctsync.sandbox import decay
from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.clock import ANCHOR_MS

CursorKey = tuple[int, int]
"""``(-ts_ms, -seq)`` of an activity: ascending order is newest first, ties by log position."""


@dataclass(frozen=True)
class AccountSpec:
    """How big the synthetic account is; the same spec always yields the same account."""

    seed: int = 1
    contacts: int = 200
    lists: int = 5
    campaigns: int = 6
    activities_per_campaign: int = 40
    """Approximate number of activity records (sends, opens, clicks, ...) per SENT campaign."""
    library_files: int = 12
    trash_files: int = 3
    events: int = 3
    activity_model: str = "instant"
    """When activities arrive (``sandbox.decay``): ``instant`` (all seeded history in the past,
    live sends visible at once) or ``decay`` (spread over days and weeks after each send; the
    part after the clock's now is invisible until the clock passes it)."""
    send_every_days: float = decay.SEND_EVERY_DAYS
    """Decay model only: the seeded campaigns are sent one every this many days, the newest
    about two days before the anchor."""

    def __post_init__(self) -> None:
        if self.lists < 1:
            raise ValueError("an account needs at least one list")
        if self.activity_model not in decay.ACTIVITY_MODELS:
            raise ValueError("activity_model must be 'instant' or 'decay'")
        if self.send_every_days <= 0:
            raise ValueError("send_every_days must be > 0")
        for name in ("contacts", "campaigns", "activities_per_campaign", "library_files",
                     "trash_files", "events"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True, slots=True)
class Activity:
    """One email activity (a send, open, click, forward, bounce or unsubscribe)."""

    seq: int
    """Position in the account's activity log (stable; a tie-breaker for equal times)."""
    campaign_id: int
    contact_id: int
    email: str
    type: int
    ts_ms: int
    link_uid: int
    link_url: str
    bounce_code: str
    bounce_description: str
    unsubscribe_source: str
    unsubscribe_reason: str

    @property
    def type_name(self) -> str:
        """EMAIL_SEND, EMAIL_OPEN, ..."""
        return gen.ACTIVITY_TYPES[self.type]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The account's owner and organisation."""

    website: str
    organization_name: str
    time_zone: str
    first_name: str
    last_name: str
    email: str
    phone: str
    company_logo: str
    country_code: str
    state_code: str
    city: str
    line1: str
    line2: str
    line3: str
    postal_code: str


def build_info(seed: int) -> AccountInfo:
    """The owner and organisation of the account of ``seed``."""
    rng = gen.rng_for(seed, gen.KIND_ACCOUNT, 0)
    first = gen.FIRST_NAMES[rng.randrange(len(gen.FIRST_NAMES))]
    last = gen.LAST_NAMES[rng.randrange(len(gen.LAST_NAMES))]
    city, _state, code, country, postal = gen.CITIES[rng.randrange(6)]
    return AccountInfo(
        website="http://www.example.com",
        organization_name=f"{last} & Co. (sandbox {seed})",
        time_zone="US/Eastern", first_name=first, last_name=last,
        email=f"owner{seed}@example.com", phone=gen.phone(rng),
        company_logo="" if rng.random() < 0.3 else
        f"https://ih.constantcontact.com/fs137/11003715{seed % 100000:05d}/img/90.jpg",
        country_code=country.upper(), state_code=code, city=city,
        line1=f"{rng.randrange(1, 999)} Maple Street", line2=f"Suite {rng.randrange(100, 999)}",
        line3=rng.choice(("", "Building B")), postal_code=postal,
    )


# -- additions for the v3 face (their own rng stream: build_info's draws are unchanged) --------


@dataclass(frozen=True, slots=True)
class AccountEmail:
    """One email address of the account (v3 ``GET /account/emails``, §3.10)."""

    email_id: int
    address: str
    roles: tuple[str, ...]
    confirmed: bool
    confirm_ms: int | None
    confirm_source_type: str


@dataclass(frozen=True, slots=True)
class AccountV3Info:
    """What v3 shows of the account beyond :class:`AccountInfo`."""

    encoded_account_id: str
    encoded_partner_id: str
    organization_phone: str
    emails: tuple[AccountEmail, ...]


def build_v3_info(seed: int, info: AccountInfo) -> AccountV3Info:
    """The v3-only account data of ``seed``: ids, the organisation phone and the verified
    addresses (the owner's, the campaigns' sender, and one still unconfirmed)."""
    rng = gen.rng_for(seed, gen.KIND_ACCOUNT_V3, 0)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    encoded = "a07e" + "".join(rng.choice(alphabet) for _ in range(10))
    partner = "a01-" + "".join(rng.choice(alphabet) for _ in range(4))
    confirm = ANCHOR_MS - gen.HISTORY_MS + rng.randrange(gen.DAY_MS)
    emails = (
        AccountEmail(1, info.email, ("BILLING", "CONTACT", "REPLY_TO"), True, confirm,
                     "SITE_OWNER"),
        AccountEmail(2, "news@example.com", ("OTHER",), True,
                     confirm + rng.randrange(gen.DAY_MS, 30 * gen.DAY_MS), "SITE_OWNER"),
        AccountEmail(3, f"events{seed}@example.org", (), False, None, ""),
    )
    return AccountV3Info(encoded, partner, gen.phone(rng), emails)
