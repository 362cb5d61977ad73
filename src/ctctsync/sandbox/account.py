"""The version-neutral account model: what the simulated account holds and how it changes.

Contacts are never all held as objects: per contact the model keeps only compact arrays (created
and modified times, status, up to two list memberships, an edit version) and rebuilds a full
record on demand from ``(seed, id, version)``. Lists, campaigns, library files, events and
email activities are small enough to be held directly (activities in compact column arrays).
"""

from __future__ import annotations

import random
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.clock import ANCHOR_MS, SandboxClock
from ctctsync.sandbox.generator import (
    BOUNCE,
    CLICK,
    DAY_MS,
    FORWARD,
    HISTORY_MS,
    OPEN,
    SEND,
    UNSUBSCRIBE,
)

CAMPAIGN_ID_BASE = 1_100_394_165_000
_SPARSE_FRACTION = 4  # use a sorted candidate list when <= 1/4 of contacts can match


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

    def __post_init__(self) -> None:
        if self.lists < 1:
            raise ValueError("an account needs at least one list")
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


_CursorKey = tuple[int, int]  # (-ts_ms, -seq): ascending order = newest first


class Account:
    """The simulated account's state, its queries and its mutations (thread-safe)."""

    def __init__(self, spec: AccountSpec, clock: SandboxClock | None = None) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.clock = clock or SandboxClock()
        self.lock = threading.RLock()
        self.version = 0
        """Bumped on every mutation (cache key for derived views)."""
        self._mutation_rng = random.Random(spec.seed * 7919 + 17)
        self._build_contacts(spec.contacts, spec.lists)
        self.lists: dict[int, gen.ContactList] = {
            i + 1: gen.build_list(self.seed, i + 1, i) for i in range(spec.lists)
        }
        self._build_campaigns()
        self._build_library()
        self.events: list[gen.Event] = [gen.build_event(self.seed, i) for i in range(spec.events)]
        self.info = self._build_info()

    # ------------------------------------------------------------------ construction
    def _build_contacts(self, n: int, n_lists: int) -> None:
        rng = random.Random(self.seed)
        raw = array("Q", rng.randbytes(8 * n)) if n else array("Q")
        start = ANCHOR_MS - HISTORY_MS
        step = (HISTORY_MS - 2 * DAY_MS) / max(n, 1)
        created = array("q", bytes(8 * n))
        modified = array("q", bytes(8 * n))
        status = bytearray(n)
        list_a = array("h", bytes(2 * n))
        list_b = array("h", bytes(2 * n))
        counts = [0] * n_lists
        # status by one byte of the draw: ~85 % ACTIVE, 5 % UNCONFIRMED, 7 % OPTOUT, 3 % REMOVED
        by_byte = bytes(gen.STATUS_ACTIVE if s < 218 else gen.STATUS_UNCONFIRMED if s < 231
                        else gen.STATUS_OPTOUT if s < 248 else gen.STATUS_REMOVED
                        for s in range(256))
        removed, anchor, jitter = gen.STATUS_REMOVED, ANCHOR_MS, step / 65536
        for i, x in enumerate(raw):
            c = int(start + i * step + (x & 0xFFFF) * jitter)
            created[i] = c
            frac = ((x >> 16) & 0xFFFF) / 65536
            modified[i] = c + int((anchor - c) * frac * frac)
            st = by_byte[(x >> 32) & 0xFF]
            status[i] = st
            if st == removed:  # removed contacts belong to no list (§2 fixture)
                list_a[i] = list_b[i] = -1
                continue
            a = (x >> 40) % n_lists
            list_a[i] = a
            counts[a] += 1
            b = (x >> 48) % (n_lists * 2)
            if b < n_lists and b != a:
                list_b[i] = b
                counts[b] += 1
            else:
                list_b[i] = -1
        self._created = created
        self._modified = modified
        self._status = status
        self._list_a = list_a
        self._list_b = list_b
        self.list_counts = counts
        self._edit_version: dict[int, int] = {}
        self._touched: set[int] = set()
        order = sorted(range(n), key=modified.__getitem__)
        self._base_by_mod_index = array("i", order)  # contact index (id - 1), by modified time
        self._base_by_mod_ts = array("q", map(modified.__getitem__, order))
        self._candidate_cache: dict[tuple[int, int, int], list[int]] = {}

    def _build_campaigns(self) -> None:
        spec = self.spec
        n = spec.campaigns
        statuses = ["SENT"] * n
        if n >= 4:
            statuses[-1] = "DRAFT"
            statuses[-2] = "SCHEDULED"
            statuses[1] = "DELETED"
        elif n == 3:
            statuses[-1] = "DRAFT"
        self.campaigns: dict[int, gen.Campaign] = {}
        start = ANCHOR_MS - HISTORY_MS + 30 * DAY_MS
        span = HISTORY_MS - 40 * DAY_MS
        self._act_camp = array("q")
        self._act_contact = array("q")
        self._act_type = array("b")
        self._act_ts = array("q")
        self._act_extra = array("q")
        self._by_campaign: dict[int, list[_CursorKey]] = {}
        self._by_contact: dict[int, list[_CursorKey]] = {}
        for i in range(n):
            cid = CAMPAIGN_ID_BASE + self.seed % 1000 * 1000 + i * 7 + 3
            rng = gen.rng_for(self.seed, gen.KIND_CAMPAIGN, cid, 1)
            created = start + int(span * (i + rng.random() * 0.5) / max(n, 1))
            n_lists = min(spec.lists, 1 + rng.randrange(2))
            lids = sorted(rng.sample(range(1, spec.lists + 1), n_lists))
            camp = gen.build_campaign(self.seed, cid, i, status=statuses[i], created_ms=created,
                                      list_ids=lids)
            self.campaigns[cid] = camp
            if camp.status == "SENT":
                assert camp.last_run_ms is not None
                self._generate_activities(camp, rng, spec.activities_per_campaign,
                                          camp.last_run_ms, spread=True)

    def _build_library(self) -> None:
        spec = self.spec
        self.files: dict[int, gen.LibraryFile] = {}
        for fid in range(1, spec.library_files + spec.trash_files + 1):
            f = gen.build_file(self.seed, fid)
            if fid > spec.library_files:
                f.status = "Deleted"  # trash items keep their folder, status Deleted (§6)
            self.files[fid] = f

    def _build_info(self) -> AccountInfo:
        rng = gen.rng_for(self.seed, gen.KIND_ACCOUNT, 0)
        first = gen.FIRST_NAMES[rng.randrange(len(gen.FIRST_NAMES))]
        last = gen.LAST_NAMES[rng.randrange(len(gen.LAST_NAMES))]
        city, _state, code, country, postal = gen.CITIES[rng.randrange(6)]
        return AccountInfo(
            website="http://www.example.com",
            organization_name=f"{last} & Co. (sandbox {self.seed})",
            time_zone="US/Eastern", first_name=first, last_name=last,
            email=f"owner{self.seed}@example.com", phone=gen.phone(rng),
            company_logo="" if rng.random() < 0.3 else
            f"https://ih.constantcontact.com/fs137/11003715{self.seed % 100000:05d}/img/90.jpg",
            country_code=country.upper(), state_code=code, city=city,
            line1=f"{rng.randrange(1, 999)} Maple Street", line2=f"Suite {rng.randrange(100, 999)}",
            line3=rng.choice(("", "Building B")), postal_code=postal,
        )

    # ------------------------------------------------------------------ contacts
    @property
    def contact_count(self) -> int:
        """Number of contacts (including REMOVED ones)."""
        return len(self._modified)

    def contact_exists(self, cid: int) -> bool:
        """Whether contact ``cid`` exists."""
        return 1 <= cid <= len(self._modified)

    def contact_modified_ms(self, cid: int) -> int:
        """The contact's modified time."""
        return self._modified[cid - 1]

    def contact_list_ids(self, cid: int) -> list[int]:
        """The ids of the lists the contact belongs to."""
        out = []
        for arr in (self._list_a, self._list_b):
            v = arr[cid - 1]
            if v >= 0:
                out.append(v + 1)
        return sorted(out)

    def contact(self, cid: int) -> gen.Contact | None:
        """The full contact ``cid``, or None."""
        if not self.contact_exists(cid):
            return None
        i = cid - 1
        return gen.build_contact(
            self.seed, cid, status=self._status[i], list_ids=self.contact_list_ids(cid),
            created_ms=self._created[i], modified_ms=self._modified[i],
            version=self._edit_version.get(cid, 0),
        )

    def contact_email(self, cid: int) -> str:
        """The contact's email address (fixed for the contact's life)."""
        return gen.contact_names(self.seed, cid)[2]

    def contact_uuid(self, cid: int) -> str:
        """The contact's v3 id (a UUID)."""
        return gen.stable_uuid(self.seed, gen.KIND_CONTACT, cid)

    def list_uuid(self, lid: int) -> str:
        """The list's v3 id (a UUID)."""
        return gen.stable_uuid(self.seed, gen.KIND_LIST, lid)

    def contact_ids_page(
        self, start_id: int, limit: int, *, status: int | None = None,
        modified_since_ms: int | None = None,
    ) -> tuple[list[int], int | None]:
        """Up to ``limit`` matching contact ids >= ``start_id`` in ascending order, and the id
        to start the next page at (None when there is no more)."""
        with self.lock:
            n = len(self._modified)
            start_id = max(start_id, 1)
            if modified_since_ms is not None:
                cands = self._modified_candidates(modified_since_ms, status)
                if cands is not None:
                    pos = bisect_left(cands, start_id)
                    chunk = cands[pos:pos + limit + 1]
                    nxt = chunk[limit] if len(chunk) > limit else None
                    return chunk[:limit], nxt
            out: list[int] = []
            mod, st = self._modified, self._status
            since = modified_since_ms
            for i in range(start_id - 1, n):
                if status is not None and st[i] != status:
                    continue
                if since is not None and mod[i] < since:
                    continue
                if len(out) == limit:
                    return out, i + 1
                out.append(i + 1)
            return out, None

    def _modified_candidates(self, since: int, status: int | None) -> list[int] | None:
        """Sorted ids modified on or after ``since`` when they are few, else None."""
        key = (since, -1 if status is None else status, self.version)
        cached = self._candidate_cache.get(key)
        if cached is not None:
            return cached
        pos = bisect_left(self._base_by_mod_ts, since)
        n_base = len(self._base_by_mod_ts) - pos
        if n_base + len(self._touched) > len(self._modified) // _SPARSE_FRACTION:
            return None
        ids = {i + 1 for i in self._base_by_mod_index[pos:]} | self._touched
        mod, st = self._modified, self._status
        result = sorted(c for c in ids if mod[c - 1] >= since
                        and (status is None or st[c - 1] == status))
        if len(self._candidate_cache) > 16:
            self._candidate_cache.clear()
        self._candidate_cache[key] = result
        return result

    # ------------------------------------------------------------------ lists
    def list_count(self, lid: int) -> int:
        """Number of contacts in list ``lid``."""
        return self.list_counts[lid - 1]

    # ------------------------------------------------------------------ activities
    def _append_activity(
        self, camp_id: int, contact_id: int, typ: int, ts: int, extra: int,
    ) -> None:
        seq = len(self._act_ts)
        self._act_camp.append(camp_id)
        self._act_contact.append(contact_id)
        self._act_type.append(typ)
        self._act_ts.append(ts)
        self._act_extra.append(extra)
        key = (-ts, -seq)
        self._by_campaign.setdefault(camp_id, []).append(key)
        self._by_contact.setdefault(contact_id, []).append(key)

    def _pick_recipients(self, camp: gen.Campaign, rng: random.Random, wanted: int,
                         exclude: set[int] | None = None) -> list[int]:
        """Up to ``wanted`` random ACTIVE/OPTOUT members of the campaign's lists."""
        n_contacts = len(self._modified)
        lists = {lid - 1 for lid in camp.list_ids}
        chosen: list[int] = []
        seen = set(exclude or ())
        tries = 0
        rnd = rng.random
        status, list_a, list_b = self._status, self._list_a, self._list_b
        while n_contacts and len(chosen) < wanted and tries < wanted * 30:
            tries += 1
            i = int(rnd() * n_contacts)
            cid = i + 1
            if cid in seen or status[i] not in (gen.STATUS_ACTIVE, gen.STATUS_OPTOUT):
                continue
            if list_a[i] not in lists and list_b[i] not in lists:
                continue
            seen.add(cid)
            chosen.append(cid)
        return chosen

    def _generate_activities(
        self, camp: gen.Campaign, rng: random.Random, target: int, t0: int, *, spread: bool,
        exclude: set[int] | None = None,
    ) -> int:
        """Add about ``target`` activities for a send of ``camp`` at ``t0``; returns the count."""
        if target <= 0:
            return 0
        chosen = self._pick_recipients(camp, rng, max(1, round(target / 1.6)), exclude)
        added = 0
        touched_camps = {camp.id}
        # a live send gets distinct increasing instants from "now" on (see SandboxClock.reserve)
        live = [self.clock.reserve(len(chosen) * 5) if not spread else 0]
        for cid in chosen:
            def at(delay_max: int, base: int) -> int:
                if not spread:
                    live[0] += 1
                    return live[0] - 1
                return base + rng.randrange(1000, delay_max)
            t_send = at(60_000, t0)
            self._append_activity(camp.id, cid, SEND, t_send, 0)
            added += 1
            if rng.random() < 0.05:
                self._append_activity(camp.id, cid, BOUNCE, at(3_600_000, t_send),
                                      rng.randrange(len(gen.BOUNCES)))
                added += 1
                continue
            if rng.random() < 0.45:
                t_open = at(4 * DAY_MS, t_send)
                self._append_activity(camp.id, cid, OPEN, t_open, 0)
                added += 1
                if rng.random() < 0.3:
                    link = camp.links[rng.randrange(len(camp.links))]
                    self._append_activity(camp.id, cid, CLICK, at(600_000, t_open), link.uid)
                    added += 1
                if rng.random() < 0.04:
                    self._append_activity(camp.id, cid, FORWARD, at(DAY_MS, t_open), 0)
                    added += 1
                if rng.random() < 0.03:
                    self._append_activity(camp.id, cid, UNSUBSCRIBE, at(DAY_MS, t_open),
                                          rng.randrange(len(gen.UNSUB_SOURCES))
                                          * 16 + rng.randrange(len(gen.UNSUB_REASONS)))
                    added += 1
        for cid in touched_camps:
            self._by_campaign[cid].sort()
        for cid in chosen:
            self._by_contact[cid].sort()
        return added

    def activity(self, seq: int) -> Activity:
        """Activity number ``seq`` of the log."""
        typ = self._act_type[seq]
        extra = self._act_extra[seq]
        camp_id = self._act_camp[seq]
        link_uid, link_url, bcode, bdesc, usrc, ureason = 0, "", "", "", "", ""
        if typ == CLICK:
            link_uid = extra
            camp = self.campaigns[camp_id]
            link_url = next((lk.url for lk in camp.links if lk.uid == extra), "")
        elif typ == BOUNCE:
            bcode, bdesc = gen.BOUNCES[extra]
        elif typ == UNSUBSCRIBE:
            usrc = gen.UNSUB_SOURCES[extra // 16]
            ureason = gen.UNSUB_REASONS[extra % 16]
        contact_id = self._act_contact[seq]
        return Activity(
            seq=seq, campaign_id=camp_id, contact_id=contact_id,
            email=self.contact_email(contact_id), type=typ, ts_ms=self._act_ts[seq],
            link_uid=link_uid, link_url=link_url, bounce_code=bcode, bounce_description=bdesc,
            unsubscribe_source=usrc, unsubscribe_reason=ureason,
        )

    def activity_page(
        self, *, campaign_id: int | None = None, contact_id: int | None = None,
        types: frozenset[int] | None = None, created_since_ms: int | None = None,
        after: _CursorKey | None = None, limit: int = 500,
    ) -> tuple[list[Activity], _CursorKey | None]:
        """Activities of one campaign or one contact, newest first, starting at cursor
        ``after`` (inclusive); returns the page and the cursor of the next page."""
        with self.lock:
            if campaign_id is not None:
                keys = self._by_campaign.get(campaign_id, [])
            else:
                keys = self._by_contact.get(contact_id or 0, [])
            pos = bisect_left(keys, after) if after is not None else 0
            end = len(keys)
            if created_since_ms is not None:
                end = bisect_right(keys, (-created_since_ms, 1))
            out: list[Activity] = []
            for k in range(pos, end):
                seq = -keys[k][1]
                if types is not None and self._act_type[seq] not in types:
                    continue
                if len(out) == limit:
                    return out, keys[k]
                out.append(self.activity(seq))
            return out, None

    def iter_activities(self) -> Iterator[Activity]:
        """Every activity, in log order."""
        for seq in range(len(self._act_ts)):
            yield self.activity(seq)

    def activity_count(self) -> int:
        """Number of activities in the log."""
        return len(self._act_ts)

    def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Per-type activity counts of a campaign (each contact has at most one of each)."""
        counts = {"sends": 0, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0,
                  "bounces": 0}
        names = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")
        for _ts, neg_seq in self._by_campaign.get(campaign_id, []):
            counts[names[self._act_type[-neg_seq]]] += 1
        return counts

    def link_clicks(self, campaign_id: int) -> dict[int, int]:
        """Clicks per link uid of a campaign."""
        out: dict[int, int] = {}
        for _ts, neg_seq in self._by_campaign.get(campaign_id, []):
            seq = -neg_seq
            if self._act_type[seq] == CLICK:
                out[self._act_extra[seq]] = out.get(self._act_extra[seq], 0) + 1
        return out

    # ------------------------------------------------------------------ mutations
    def _bump(self) -> int:
        self.version += 1
        self._candidate_cache.clear()
        return self.clock.now_ms()

    def advance(self, seconds: float) -> int:
        """Move the sandbox clock forward; returns the new time in epoch ms."""
        self.clock.advance(seconds)
        return self.clock.now_ms()

    def _set_lists(self, i: int, a: int, b: int) -> None:
        for old in (self._list_a[i], self._list_b[i]):
            if old >= 0:
                self.list_counts[old] -= 1
        self._list_a[i], self._list_b[i] = a, b
        for new in (a, b):
            if new >= 0:
                self.list_counts[new] += 1

    def update_contacts(self, n: int, *, change_lists: float = 0.3,
                        ids: list[int] | None = None) -> list[int]:
        """Edit ``n`` random contacts (or ``ids``): new field values, modified_date = now;
        a fraction ``change_lists`` of them also changes list membership. Returns the ids."""
        with self.lock:
            now = self._bump()
            rng = self._mutation_rng
            total = len(self._modified)
            if ids is None:
                ids = rng.sample(range(1, total + 1), min(n, total))
            for cid in ids:
                if not self.contact_exists(cid):
                    raise KeyError(f"no contact {cid}")
                i = cid - 1
                self._edit_version[cid] = self._edit_version.get(cid, 0) + 1
                self._modified[i] = now
                self._touched.add(cid)
                if self._status[i] != gen.STATUS_REMOVED and rng.random() < change_lists:
                    a = rng.randrange(len(self.lists))
                    b = rng.randrange(len(self.lists))
                    self._set_lists(i, a, b if b != a and rng.random() < 0.5 else -1)
            return sorted(ids)

    def add_contacts(self, n: int) -> list[int]:
        """Create ``n`` new ACTIVE contacts (created = modified = now); returns their ids."""
        with self.lock:
            now = self._bump()
            rng = self._mutation_rng
            first = len(self._modified) + 1
            for _ in range(n):
                self._created.append(now)
                self._modified.append(now)
                self._status.append(gen.STATUS_ACTIVE)
                self._list_a.append(-1)
                self._list_b.append(-1)
                self._set_lists(len(self._modified) - 1, rng.randrange(len(self.lists)), -1)
            new_ids = list(range(first, first + n))
            self._touched.update(new_ids)
            return new_ids

    def set_contact_status(self, cid: int, status: str) -> None:
        """Change a contact's status (ACTIVE, UNCONFIRMED, OPTOUT, REMOVED); bumps modified."""
        with self.lock:
            code = gen.CONTACT_STATUSES.index(status)
            now = self._bump()
            i = cid - 1
            self._status[i] = code
            if code == gen.STATUS_REMOVED:
                self._set_lists(i, -1, -1)
            self._modified[i] = now
            self._touched.add(cid)

    def add_list(self, name: str | None = None) -> int:
        """Create a list (created = modified = now); returns its id."""
        with self.lock:
            now = self._bump()
            lid = max(self.lists) + 1
            lst = gen.build_list(self.seed, lid, lid - 1)
            lst.created_ms = lst.modified_ms = now
            lst.status = "ACTIVE"
            if name:
                lst.name = name
            self.lists[lid] = lst
            self.list_counts.append(0)
            return lid

    def modify_list(self, lid: int, name: str | None = None) -> None:
        """Rename list ``lid`` (default: append " (edited)"); modified_date = now."""
        with self.lock:
            lst = self.lists[lid]
            lst.modified_ms = self._bump()
            lst.name = name or f"{lst.name} (edited)"

    def send_campaign(self, campaign_id: int | None = None, activities: int | None = None) -> int:
        """Send a new campaign (``campaign_id`` None, about ``activities`` activities) or add
        exactly ``activities`` (while recipients remain) to a SENT campaign: opens and clicks of
        earlier recipients first, then sends to new ones. Activities are stamped from "now" on.
        Returns the campaign id."""
        with self.lock:
            now = self._bump()
            rng = self._mutation_rng
            target = activities if activities is not None else max(
                self.spec.activities_per_campaign, 5)
            if campaign_id is None:
                index = len(self.campaigns)
                cid = max(self.campaigns, default=CAMPAIGN_ID_BASE) + 7
                lids = sorted(rng.sample(sorted(self.lists), min(len(self.lists), 2)))
                camp = gen.build_campaign(self.seed, cid, index, status="SENT", created_ms=now,
                                          list_ids=lids)
                camp.created_ms = camp.modified_ms = camp.last_run_ms = now
                self.campaigns[cid] = camp
                self._generate_activities(camp, rng, target, now, spread=False)
                return cid
            camp = self.campaigns[campaign_id]
            if camp.status != "SENT":
                raise ValueError(f"campaign {campaign_id} is {camp.status}, not SENT")
            recipients = {self._act_contact[-s] for _t, s in self._by_campaign.get(campaign_id, [])}
            # more opens/clicks from earlier recipients, plus a few new recipients
            added = 0
            stamp = self.clock.reserve(target)
            for cid_ in sorted(recipients):
                if added >= target:
                    break
                have = {self._act_type[-s] for _t, s in self._by_contact.get(cid_, [])
                        if self._act_camp[-s] == campaign_id}
                if BOUNCE in have:
                    continue
                if OPEN not in have:
                    self._append_activity(campaign_id, cid_, OPEN, stamp + added, 0)
                    added += 1
                elif CLICK not in have:
                    link = camp.links[rng.randrange(len(camp.links))]
                    self._append_activity(campaign_id, cid_, CLICK, stamp + added, link.uid)
                    added += 1
                else:
                    continue
                self._by_contact[cid_].sort()
            # then sends to members who had not received it yet, one activity each
            for cid_ in self._pick_recipients(camp, rng, target - added, recipients):
                self._append_activity(campaign_id, cid_, SEND, stamp + added, 0)
                self._by_contact[cid_].sort()
                added += 1
            self._by_campaign.setdefault(campaign_id, []).sort()
            return campaign_id

    def trash_files(self, n: int) -> list[int]:
        """Move the ``n`` newest active library files to the trash; returns their ids."""
        with self.lock:
            now = self._bump()
            active = sorted((f for f in self.files.values() if f.status == "Active"),
                            key=lambda f: (-f.created_ms, -f.id))[:n]
            for f in active:
                f.status = "Deleted"
                f.modified_ms = now
            return [f.id for f in active]
