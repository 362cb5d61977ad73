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

import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from typing import cast

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox import registrations as regs
from ctctsync.sandbox import sending
from ctctsync.sandbox.activities import ActivityLog, Marker
from ctctsync.sandbox.clock import ANCHOR_MS, SandboxClock
from ctctsync.sandbox.contacts import ContactStore
from ctctsync.sandbox.generator import DAY_MS, HISTORY_MS
from ctctsync.sandbox.records import (
    AccountInfo,
    AccountSpec,
    AccountV3Info,
    Activity,
    CursorKey,
    build_info,
    build_v3_info,
)

__all__ = ["CAMPAIGN_ID_BASE", "Account", "AccountInfo", "AccountSpec", "Activity"]

CAMPAIGN_ID_BASE = 1_100_394_165_000
_KIND_NAMES = {name: code for code, name in enumerate(gen.ACTIVITY_TYPES)} | {
    name: code for code, name in enumerate(
        ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes"))} | {"optouts": 5}


def activity_type_code(kind: str | int) -> int:
    """The type code (``gen.SEND`` ...) of ``kind``: a code, ``EMAIL_OPEN`` (v2's
    ``activity_type``), ``opens`` (v2's summary names) or ``optouts`` (v3's); ValueError else."""
    if isinstance(kind, int) and 0 <= kind < len(gen.ACTIVITY_TYPES):
        return kind
    code = _KIND_NAMES.get(str(kind).strip()) if not isinstance(kind, int) else None
    if code is None:
        raise ValueError(f"unknown activity kind {kind!r}; known: {', '.join(gen.ACTIVITY_TYPES)}")
    return code


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


NEWEST_SEND_MS = ANCHOR_MS - 8 * 3_600_000
"""Decay model: the newest seeded send is at most this late (8 h before the anchor)."""


def _decay_slots(statuses: list[str], every_days: float) -> list[int]:
    """Send times of the seeded campaigns of a decay account (the unsent ones: creation
    times): one send every ``every_days`` up to :data:`NEWEST_SEND_MS`, so a clock frozen at
    the anchor still has the newest campaigns' activity to come; the campaigns after the last
    sent one (SCHEDULED, DRAFT) were created 3 days before the anchor, an hour apart."""
    sent = [i for i, st in enumerate(statuses) if st in ("SENT", "DELETED")]
    last_sent = sent[-1] if sent else -1
    # never before the six years of history (a very large account sends more often)
    every = int(min(every_days * DAY_MS, (HISTORY_MS - 40 * DAY_MS) / max(len(statuses), 1)))
    return [NEWEST_SEND_MS - (last_sent - i) * every if i <= last_sent
            else ANCHOR_MS - 3 * DAY_MS + (i - last_sent) * 3_600_000
            for i in range(len(statuses))]


def _created_for_send(seed: int, cid: int, index: int, status: str, send_ms: int) -> int:
    """The creation time that makes campaign ``cid`` go out at ``send_ms``: its send follows
    its creation by delays drawn from its own record stream, whatever the creation time."""
    probe = gen.build_campaign(seed, cid, index, status=status, created_ms=0, list_ids=[])
    return send_ms - (probe.last_run_ms or 0)


class Account:
    """The simulated account's state, its queries and its mutations (thread-safe)."""

    def __init__(self, spec: AccountSpec, clock: SandboxClock | None = None) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.clock = clock or SandboxClock()
        self.lock = threading.RLock()
        self._pinned_ms: int | None = None
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
        self._registrations: dict[int, list[regs.Registration]] = {}
        """Registrations of the events changed by a test hook (by event index); the others'
        are derived from the seed (``registrations.registrations``)."""
        self.info: AccountInfo = build_info(self.seed)
        # v3-only data, each from its own rng stream (v2 data is unchanged)
        self.tags: dict[int, gen.Tag] = {
            t: gen.build_tag(self.seed, t) for t in range(1, gen.TAG_COUNT + 1)}
        self.custom_fields: dict[int, gen.CustomFieldDef] = {
            n: gen.build_custom_field(self.seed, n) for n in range(1, gen.CUSTOM_FIELD_COUNT + 1)}
        self.segments: dict[int, gen.Segment] = {s: gen.build_segment(self.seed, s)
                                                 for s in range(1, 5)}
        self.v3_info: AccountV3Info = build_v3_info(self.seed, self.info)
        self._derived: dict[str, tuple[int, object]] = {}

    def _seed_campaigns(self) -> None:
        spec = self.spec
        n = spec.campaigns
        statuses = _seeded_statuses(n)
        start = ANCHOR_MS - HISTORY_MS + 30 * DAY_MS
        span = HISTORY_MS - 40 * DAY_MS
        slots = _decay_slots(statuses, spec.send_every_days) if spec.activity_model == "decay" \
            else None
        for i in range(n):
            cid = CAMPAIGN_ID_BASE + self.seed % 1000 * 1000 + i * 7 + 3
            rng = gen.rng_for(self.seed, gen.KIND_CAMPAIGN, cid, 1)
            if slots is None:
                created = start + int(span * (i + rng.random() * 0.5) / max(n, 1))
            else:
                # the newest send up to 18 h earlier than its slot, older ones up to 3/4 day
                slot = slots[i] - int(rng.random() * min(spec.send_every_days, 1.0)
                                      * DAY_MS * 0.75)
                created = _created_for_send(self.seed, cid, i, statuses[i], slot)
            n_lists = min(spec.lists, 1 + rng.randrange(2))
            lids = sorted(rng.sample(range(1, spec.lists + 1), n_lists))
            camp = gen.build_campaign(self.seed, cid, i, status=statuses[i], created_ms=created,
                                      list_ids=lids)
            self.campaigns[cid] = camp
            if camp.status == "SENT":
                assert camp.last_run_ms is not None
                sending.seed_send(self.activities, self.contacts, camp, rng,
                                  spec.activities_per_campaign, camp.last_run_ms,
                                  spec.activity_model)

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
    # Every read sees the activities stamped at or before the clock's now (or the instant
    # pinned by ``pinned_time``) and not retracted: the decay model's future is invisible.

    def _now(self) -> int:
        return self._pinned_ms if self._pinned_ms is not None else self.clock.now_ms()

    @contextlib.contextmanager
    def pinned_time(self) -> Iterator[int]:
        """Hold the lock and make every activity read inside see the account at one instant
        (the clock's now on entry), however long the reads take: a consistent snapshot."""
        with self.lock:
            outer = self._pinned_ms
            self._pinned_ms = self._now()
            try:
                yield self._pinned_ms
            finally:
                self._pinned_ms = outer

    def activity(self, seq: int) -> Activity:
        """Activity number ``seq`` of the log (whether visible or not)."""
        return self.activities.get(seq)

    def activity_page(
        self, *, campaign_id: int | None = None, contact_id: int | None = None,
        types: frozenset[int] | None = None, created_since_ms: int | None = None,
        after: CursorKey | None = None, limit: int = 500,
    ) -> tuple[list[Activity], CursorKey | None]:
        """Visible activities of one campaign or one contact, newest first, starting at cursor
        ``after`` (inclusive); returns the page and the cursor of the next page."""
        with self.lock:
            return self.activities.page(now=self._now(), campaign_id=campaign_id,
                                        contact_id=contact_id, types=types,
                                        created_since_ms=created_since_ms, after=after,
                                        limit=limit)

    def iter_activities(self) -> Iterator[Activity]:
        """Every activity visible now, in log order (lazily: the log only grows, and a
        retraction during the walk may or may not be seen, as before the models existed)."""
        with self.lock:
            now = self._now()
        return self.activities.visible(now)

    def activity_count(self) -> int:
        """Number of visible activities."""
        with self.lock:
            return self.activities.visible_count(self._now())

    def activity_marker(self, campaign_id: int) -> Marker:
        """A cache key of the campaign's visible activities (equal markers: equal sets)."""
        with self.lock:
            return self.activities.marker(campaign_id, self._now())

    def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Per-type visible activity counts of a campaign (each contact has at most one of
        each type, so these are the numbers of tracking records too)."""
        with self.lock:
            return self.activities.campaign_counts(campaign_id, self._now())

    def activity_seqs(self, campaign_id: int, types: frozenset[int]) -> list[int]:
        """Log sequence numbers of a campaign's visible activities of ``types``, newest first."""
        with self.lock:
            return self.activities.seqs(campaign_id, types, self._now())

    def link_clicks(self, campaign_id: int) -> dict[int, int]:
        """Visible clicks per link uid of a campaign."""
        with self.lock:
            return self.activities.link_clicks(campaign_id, self._now())

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
        earlier recipients first, then sends to new ones. Activities are stamped from "now" on;
        under the decay model a new campaign's sends are, the rest arrives later as the clock
        moves (``sandbox.decay``). Returns the campaign id."""
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
                sending.live_send(self.activities, self.contacts, camp, rng, target, self.clock,
                                  self.spec.activity_model)
                return cid
            camp = self.campaigns[campaign_id]
            if camp.status != "SENT":
                raise ValueError(f"campaign {campaign_id} is {camp.status}, not SENT")
            sending.more_activity(self.activities, self.contacts, camp, rng, target,
                                  self.clock.reserve(target))
            return campaign_id

    def retract_activities(self, campaign_id: int, kind: str | int, n: int) -> list[int]:
        """Remove ``n`` visible activities of ``kind`` (see :func:`activity_type_code`) of a
        campaign from every report, count and truth -- a bounce reclassified, the unsubscribe
        of a contact deleted for good -- so the campaign's counts go down. The oldest go first
        (deterministic); fewer when fewer are visible. Returns their log sequence numbers.
        KeyError for an unknown campaign, ValueError for an unknown kind."""
        code = activity_type_code(kind)
        with self.lock:
            if campaign_id not in self.campaigns:
                raise KeyError(f"no campaign {campaign_id}")
            self.version += 1
            return self.activities.retract(campaign_id, code, max(n, 0), self._now())

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

    # ------------------------------------------------------------------ additions for v3
    # Read by the v3 face (contacts: sandbox.v3.contacts; reports/campaigns may use the
    # deletion and status accessors). Every method takes the lock itself.

    def contact_status(self, cid: int) -> str:
        """The contact's version-neutral status: ACTIVE, UNCONFIRMED, OPTOUT or REMOVED."""
        with self.lock:
            return gen.CONTACT_STATUSES[self.contacts.status_code(cid)]

    def contact_deleted_ms(self, cid: int) -> int | None:
        """When contact ``cid`` was deleted (status REMOVED), else None.

        Deleting bumps the contact's modified time too (``set_contact_status``), and a seeded
        REMOVED contact was deleted at its modified time; a later edit keeps the deletion time.
        """
        with self.lock:
            return self.contacts.deleted_ms(cid)

    def contact_created_ms(self, cid: int) -> int:
        """The contact's creation time."""
        return self.contacts.created_ms(cid)

    def contact_version(self, cid: int) -> int:
        """The contact's edit version (0 until first edited)."""
        with self.lock:
            return self.contacts.edit_version(cid)

    def contact_v3_extras(self, cid: int) -> gen.ContactV3Extras:
        """What v3 shows of contact ``cid`` beyond :meth:`contact` (tags, birthday, opt-out
        source and reason), redrawn with every edit like the contact's own fields."""
        return gen.contact_v3_extras(self.seed, cid, self.contact_version(cid))

    def contact_tag_ids(self, cid: int) -> list[int]:
        """The ids of the tags on contact ``cid``."""
        return self.contact_v3_extras(cid).tag_ids

    def contact_ids_desc(
        self, upto: int, limit: int, *, codes: frozenset[int],
        modified_since_ms: int | None = None, keep: Callable[[int], bool] | None = None,
    ) -> tuple[list[int], int | None]:
        """Up to ``limit`` contact ids ``<= upto``, newest first, with a status code in
        ``codes`` (``gen.STATUS_*``), modified at or after ``modified_since_ms`` and accepted by
        ``keep``; and the id the next page starts at (None: no more)."""
        with self.lock:
            return self.contacts.ids_desc(upto, limit, codes=codes,
                                          modified_since_ms=modified_since_ms, keep=keep)

    def contact_in_lists(self, cid: int, lids: frozenset[int]) -> bool:
        """Whether contact ``cid`` belongs to one of the lists ``lids``."""
        return self.contacts.in_lists(cid, frozenset(lid - 1 for lid in lids))

    def _cached(self, key: str, compute: Callable[[], object]) -> object:
        # derived whole-account views are recomputed only after a mutation (version bump)
        with self.lock:
            hit = self._derived.get(key)
            if hit is not None and hit[0] == self.version:
                return hit[1]
            value = compute()
            self._derived[key] = (self.version, value)
            return value

    def contact_status_counts(self) -> dict[str, int]:
        """Number of contacts per version-neutral status."""
        with self.lock:
            counts = self.contacts.status_counts()
        return dict(zip(gen.CONTACT_STATUSES, counts, strict=True))

    def tag_counts(self) -> dict[int, int]:
        """Contacts (not deleted) per tag id; cached until the next mutation."""
        def compute() -> dict[int, int]:
            counts = dict.fromkeys(self.tags, 0)
            for cid in range(1, len(self.contacts) + 1):
                if self.contacts.status_code(cid) == gen.STATUS_REMOVED:
                    continue
                for tid in self.contact_v3_extras(cid).tag_ids:
                    counts[tid] += 1
            return counts
        return dict(cast("dict[int, int]", self._cached("tag_counts", compute)))

    def list_active_count(self, lid: int) -> int:
        """Members of list ``lid`` whose status is ACTIVE; cached until the next mutation."""
        def compute() -> list[int]:
            codes = frozenset({gen.STATUS_ACTIVE})
            return [self.contacts.list_member_count(i, codes)
                    for i in range(len(self.contacts.list_counts))]
        counts = cast("list[int]", self._cached("list_active_counts", compute))
        return counts[lid - 1] if lid - 1 < len(counts) else 0

    def delete_list(self, lid: int) -> None:
        """Delete list ``lid``: it keeps its record with ``deleted_ms`` = now and loses every
        member. UNCONFIRMED: the members' modified times are not bumped (CC does not say
        whether losing a list membership counts as a contact update)."""
        with self.lock:
            lst = self.lists[lid]
            lst.deleted_ms = lst.modified_ms = self._bump()
            self.contacts.drop_list(lid - 1)

    # ------------------------------------------------------------------ events (test hooks)
    # An event's seeded registrations derive from its seeded fields (status, count, times), so
    # each hook first takes its own copy of them (``_own_registrations``) and keeps
    # ``Event.registered`` equal to the REGISTERED count: v2's ``total_registered_count`` and
    # v3's ``registration_count`` follow. Adding or changing registrations does not count as an
    # edit of the event (its ``updated_ms`` stays) -- UNCONFIRMED.

    def event_registrations(self, index: int) -> tuple[regs.Registration, ...]:
        """Every registration of event ``index`` (0-based), in registration-number order."""
        with self.lock:
            own = self._registrations.get(index)
            if own is not None:
                return tuple(own)
            return regs.registrations(self.seed, index, self.events[index], self.spec.contacts)

    def _own_registrations(self, index: int) -> list[regs.Registration]:
        own = self._registrations.get(index)
        if own is None:
            own = list(regs.registrations(self.seed, index, self.events[index],
                                          self.spec.contacts))
            self._registrations[index] = own
        return own

    def _recount(self, index: int) -> None:
        self.events[index].registered = sum(
            r.status == "REGISTERED" for r in self._registrations[index])

    def add_event_registrations(self, index: int, n: int) -> list[regs.Registration]:
        """``n`` new REGISTERED registrations of event ``index``, registered now by contacts of
        the account (not REMOVED ones; any registrant when there is no such contact); the
        event's counts rise. Returns the new registrations."""
        with self.lock:
            now = self._bump()
            own = self._own_registrations(index)
            rng = self._mutation_rng
            added = [regs.new_registration(self.seed, index, len(own) + k + 1,
                                           self._registrant(rng), now, rng)
                     for k in range(max(n, 0))]
            own.extend(added)
            self._recount(index)
            return added

    def _registrant(self, rng: random.Random) -> int | None:
        # a random contact that is not REMOVED (a few draws, not a scan: accounts are large)
        total = len(self.contacts)
        for _ in range(32 if total else 0):
            cid = rng.randrange(1, total + 1)
            if self.contacts.status_code(cid) != gen.STATUS_REMOVED:
                return cid
        return None

    def update_event_registration(
        self, index: int, number: int, *, registration_status: str | None = None,
        payment_status: str | None = None, checked_in: bool | int | None = None,
    ) -> regs.Registration:
        """Change registration ``number`` (1-based) of event ``index``: see
        ``registrations.changed``. A payment or check-in change leaves the event's counts as
        they are; leaving or entering REGISTERED moves them, as in CC. KeyError for an unknown
        registration, ValueError for a bad change (nothing changes then)."""
        with self.lock:
            own = self._own_registrations(index)
            if not 1 <= number <= len(own):
                raise KeyError(f"no registration {number} of event {index}")
            new = regs.changed(own[number - 1], status=registration_status,
                               payment_status=payment_status, checked_in=checked_in)
            self._bump()
            own[number - 1] = new
            self._recount(index)
            return new

    def modify_event(self, index: int, *, name: str | None = None, title: str | None = None,
                     description: str | None = None, time_zone: str | None = None) -> gen.Event:
        """Edit event ``index`` (nothing given: its title gains " (edited)"); its
        ``updated_ms`` = now. ValueError for an unknown time zone (``gen.EVENT_TIME_ZONES``)
        or a name another event has (v3: ``name`` is unique, §3.11)."""
        with self.lock:
            e = self.events[index]
            if time_zone is not None and time_zone not in gen.EVENT_TIME_ZONES:
                raise ValueError(f"time_zone must be one of {', '.join(gen.EVENT_TIME_ZONES)}")
            if name is not None and any(o.name == name for o in self.events if o is not e):
                raise ValueError(f"another event is named {name!r}")
            self._own_registrations(index)
            e.updated_ms = self._bump()
            if (name, title, description, time_zone) == (None, None, None, None):
                title = f"{e.title} (edited)"
            e.name = name if name is not None else e.name
            e.title = title if title is not None else e.title
            e.description = description if description is not None else e.description
            e.time_zone = time_zone or e.time_zone
            return e

    def cancel_event(self, index: int) -> gen.Event:
        """Cancel event ``index``: status CANCELLED, ``cancelled_ms`` = ``updated_ms`` = now.
        Its registrations stay as they are (UNCONFIRMED: CC may cancel or refund them).
        ValueError if it is DELETED."""
        with self.lock:
            e = self.events[index]
            if e.status == "DELETED":
                raise ValueError("the event is DELETED")
            self._own_registrations(index)
            e.status = "CANCELLED"
            e.cancelled_ms = e.updated_ms = self._bump()
            return e

    def delete_event(self, index: int) -> gen.Event:
        """Delete event ``index``: status DELETED, ``deleted_ms`` = ``updated_ms`` = now. It
        stays in the account with its registrations: v3 lists it with status DELETED and
        answers its detail with ``deleted_time`` (constant-contact-v3-api.md §1.7, §3.11 give
        ``event_status=DELETED`` and ``deleted_time`` but no default filter -- UNCONFIRMED
        whether CC's unfiltered list hides deleted events). Deleting twice changes nothing."""
        with self.lock:
            e = self.events[index]
            self._own_registrations(index)
            if e.status != "DELETED":
                e.status = "DELETED"
                e.deleted_ms = e.updated_ms = self._bump()
            return e
