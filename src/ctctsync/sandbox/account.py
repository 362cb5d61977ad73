"""The version-neutral account model: what the simulated account holds and how it changes.

``Account`` is the thread-safe face of the model; it composes the parts, each in its own module:

- ``records``: ``AccountSpec`` (the size), ``AccountInfo`` (the owner), ``Activity``;
- ``contacts``: ``ContactStore``, every contact as compact arrays, records rebuilt on demand
  from ``(seed, id, version)``;
- ``activities``: ``ActivityLog``, the email activities in compact column arrays with a
  newest-first index per campaign and per contact;
- ``sending``: what a campaign send writes to the log.

Lists, campaigns, library files and events are small enough to be held directly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox import sending
from ctctsync.sandbox.activities import ActivityLog
from ctctsync.sandbox.clock import ANCHOR_MS, SandboxClock
from ctctsync.sandbox.contacts import ContactStore
from ctctsync.sandbox.generator import DAY_MS, HISTORY_MS
from ctctsync.sandbox.records import AccountInfo, AccountSpec, Activity, CursorKey, build_info

__all__ = ["CAMPAIGN_ID_BASE", "Account", "AccountInfo", "AccountSpec", "Activity"]

CAMPAIGN_ID_BASE = 1_100_394_165_000


def _seeded_statuses(n: int) -> list[str]:
    """Campaign statuses by index: mostly SENT; with >= 4 one DELETED, one SCHEDULED and one
    DRAFT (3: the last is DRAFT)."""
    statuses = ["SENT"] * n
    if n >= 4:
        statuses[-1] = "DRAFT"
        statuses[-2] = "SCHEDULED"
        statuses[1] = "DELETED"
    elif n == 3:
        statuses[-1] = "DRAFT"
    return statuses


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
        self.contacts = ContactStore(self.seed, spec.contacts, spec.lists)
        self.lists: dict[int, gen.ContactList] = {
            i + 1: gen.build_list(self.seed, i + 1, i) for i in range(spec.lists)
        }
        self.campaigns: dict[int, gen.Campaign] = {}
        self.activities = ActivityLog(self.seed, self.campaigns)
        self._seed_campaigns()
        self.files: dict[int, gen.LibraryFile] = {}
        for fid in range(1, spec.library_files + spec.trash_files + 1):
            f = gen.build_file(self.seed, fid)
            if fid > spec.library_files:
                f.status = "Deleted"  # trash items keep their folder, status Deleted (§6)
            self.files[fid] = f
        self.events: list[gen.Event] = [gen.build_event(self.seed, i) for i in range(spec.events)]
        self.info: AccountInfo = build_info(self.seed)

    def _seed_campaigns(self) -> None:
        spec = self.spec
        n = spec.campaigns
        statuses = _seeded_statuses(n)
        start = ANCHOR_MS - HISTORY_MS + 30 * DAY_MS
        span = HISTORY_MS - 40 * DAY_MS
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
                sending.seed_send(self.activities, self.contacts, camp, rng,
                                  spec.activities_per_campaign, camp.last_run_ms)

    # ------------------------------------------------------------------ contacts and lists
    @property
    def contact_count(self) -> int:
        """Number of contacts (including REMOVED ones)."""
        return len(self.contacts)

    @property
    def list_counts(self) -> list[int]:
        """Members per list index (``lid - 1``)."""
        return self.contacts.list_counts

    def contact_exists(self, cid: int) -> bool:
        """Whether contact ``cid`` exists."""
        return self.contacts.exists(cid)

    def contact_modified_ms(self, cid: int) -> int:
        """The contact's modified time."""
        return self.contacts.modified_ms(cid)

    def contact_list_ids(self, cid: int) -> list[int]:
        """The ids of the lists the contact belongs to."""
        return self.contacts.list_ids(cid)

    def contact(self, cid: int) -> gen.Contact | None:
        """The full contact ``cid``, or None (per-row loops can bind ``contacts.get``)."""
        return self.contacts.get(cid)

    def contact_email(self, cid: int) -> str:
        """The contact's email address (fixed for the contact's life)."""
        return self.contacts.email(cid)

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
            return self.contacts.ids_page(start_id, limit, status=status,
                                          modified_since_ms=modified_since_ms)

    def list_count(self, lid: int) -> int:
        """Number of contacts in list ``lid``."""
        return self.contacts.list_counts[lid - 1]

    # ------------------------------------------------------------------ activities
    def activity(self, seq: int) -> Activity:
        """Activity number ``seq`` of the log."""
        return self.activities.get(seq)

    def activity_page(
        self, *, campaign_id: int | None = None, contact_id: int | None = None,
        types: frozenset[int] | None = None, created_since_ms: int | None = None,
        after: CursorKey | None = None, limit: int = 500,
    ) -> tuple[list[Activity], CursorKey | None]:
        """Activities of one campaign or one contact, newest first, starting at cursor
        ``after`` (inclusive); returns the page and the cursor of the next page."""
        with self.lock:
            return self.activities.page(campaign_id=campaign_id, contact_id=contact_id,
                                        types=types, created_since_ms=created_since_ms,
                                        after=after, limit=limit)

    def iter_activities(self) -> Iterator[Activity]:
        """Every activity, in log order."""
        return iter(self.activities)

    def activity_count(self) -> int:
        """Number of activities in the log."""
        return len(self.activities)

    def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Per-type activity counts of a campaign (each contact has at most one of each)."""
        return self.activities.campaign_counts(campaign_id)

    def link_clicks(self, campaign_id: int) -> dict[int, int]:
        """Clicks per link uid of a campaign."""
        return self.activities.link_clicks(campaign_id)

    # ------------------------------------------------------------------ mutations
    def _bump(self) -> int:
        self.version += 1
        return self.clock.now_ms()

    def advance(self, seconds: float) -> int:
        """Move the sandbox clock forward; returns the new time in epoch ms."""
        self.clock.advance(seconds)
        return self.clock.now_ms()

    def update_contacts(self, n: int, *, change_lists: float = 0.3,
                        ids: list[int] | None = None) -> list[int]:
        """Edit ``n`` random contacts (or ``ids``): new field values, modified_date = now;
        a fraction ``change_lists`` of them also changes list membership. Returns the ids."""
        with self.lock:
            now = self._bump()
            rng = self._mutation_rng
            if ids is None:
                total = len(self.contacts)
                ids = rng.sample(range(1, total + 1), min(n, total))
            self.contacts.edit(ids, now, rng, change_lists)
            return sorted(ids)

    def add_contacts(self, n: int) -> list[int]:
        """Create ``n`` new ACTIVE contacts (created = modified = now); returns their ids."""
        with self.lock:
            now = self._bump()
            return self.contacts.append(n, now, self._mutation_rng)

    def set_contact_status(self, cid: int, status: str) -> None:
        """Change a contact's status (ACTIVE, UNCONFIRMED, OPTOUT, REMOVED); bumps modified."""
        with self.lock:
            code = gen.CONTACT_STATUSES.index(status)
            self.contacts.set_status(cid, code, self._bump())

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
            self.contacts.add_list_slot()
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
                sending.live_send(self.activities, self.contacts, camp, rng, target, self.clock)
                return cid
            camp = self.campaigns[campaign_id]
            if camp.status != "SENT":
                raise ValueError(f"campaign {campaign_id} is {camp.status}, not SENT")
            sending.more_activity(self.activities, self.contacts, camp, rng, target,
                                  self.clock.reserve(target))
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
