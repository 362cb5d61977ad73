"""The account's contacts as compact arrays, never all held as objects.

Per contact the store keeps its created and modified times, status, up to two list memberships
(list *indexes*, ``lid - 1``; -1 for none) and, once edited, an edit version; a full record is
rebuilt on demand from ``(seed, id, version)``. Not thread-safe on its own: ``Account`` holds
its lock around every call.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.generator import DAY_MS, HISTORY_MS

_SPARSE_FRACTION = 4  # use a sorted candidate list when <= 1/4 of contacts can match
_CANDIDATE_CACHE_SIZE = 16
# status by one byte of the draw: ~85 % ACTIVE, 5 % UNCONFIRMED, 7 % OPTOUT, 3 % REMOVED
_STATUS_BY_BYTE = bytes(
    gen.STATUS_ACTIVE if s < 218 else gen.STATUS_UNCONFIRMED if s < 231
    else gen.STATUS_OPTOUT if s < 248 else gen.STATUS_REMOVED
    for s in range(256))
_RECIPIENT_STATUSES = (gen.STATUS_ACTIVE, gen.STATUS_OPTOUT)


class ContactStore:
    """Every contact of one account (ids ``1..len``), with per-list membership counts."""

    def __init__(self, seed: int, n: int, n_lists: int) -> None:
        self.seed = seed
        rng = random.Random(seed)
        raw = array("Q", rng.randbytes(8 * n)) if n else array("Q")
        start = ANCHOR_MS - HISTORY_MS
        step = (HISTORY_MS - 2 * DAY_MS) / max(n, 1)
        created = array("q", bytes(8 * n))
        modified = array("q", bytes(8 * n))
        status = bytearray(n)
        list_a = array("h", bytes(2 * n))
        list_b = array("h", bytes(2 * n))
        counts = [0] * n_lists
        by_byte, removed, anchor = _STATUS_BY_BYTE, gen.STATUS_REMOVED, ANCHOR_MS
        jitter = step / 65536
        # one 64-bit draw per contact, sliced: created jitter, modified fraction, status, lists
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
        """Members per list index (``lid - 1``)."""
        self._edit_version: dict[int, int] = {}
        self._deleted_ms: dict[int, int] = {}
        """Deletion time of REMOVED contacts whose ``modified`` no longer is it (deleted live,
        or edited after deletion); a seeded REMOVED contact was deleted at its ``modified``."""
        self._touched: set[int] = set()
        """Ids modified or added since construction (not in the by-modified-time index)."""
        order = sorted(range(n), key=modified.__getitem__)
        self._base_by_mod_index = array("i", order)  # contact index (id - 1), by modified time
        self._base_by_mod_ts = array("q", map(modified.__getitem__, order))
        self._candidate_cache: dict[tuple[int, int], list[int]] = {}

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._modified)

    def exists(self, cid: int) -> bool:
        """Whether contact ``cid`` exists."""
        return 1 <= cid <= len(self._modified)

    def modified_ms(self, cid: int) -> int:
        """The contact's modified time."""
        return self._modified[cid - 1]

    def list_ids(self, cid: int) -> list[int]:
        """The ids of the lists the contact belongs to."""
        out = []
        for arr in (self._list_a, self._list_b):
            v = arr[cid - 1]
            if v >= 0:
                out.append(v + 1)
        return sorted(out)

    def get(self, cid: int) -> gen.Contact | None:
        """The full contact ``cid``, or None."""
        if not 1 <= cid <= len(self._modified):
            return None
        i = cid - 1
        return gen.build_contact(
            self.seed, cid, status=self._status[i], list_ids=self.list_ids(cid),
            created_ms=self._created[i], modified_ms=self._modified[i],
            version=self._edit_version.get(cid, 0),
        )

    def email(self, cid: int) -> str:
        """The contact's email address (fixed for the contact's life)."""
        return gen.contact_names(self.seed, cid)[2]

    def ids_page(
        self, start_id: int, limit: int, *, status: int | None = None,
        modified_since_ms: int | None = None,
    ) -> tuple[list[int], int | None]:
        """Up to ``limit`` matching ids >= ``start_id`` in ascending order, and the id to start
        the next page at (None when there is no more)."""
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
        key = (since, -1 if status is None else status)
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
        if len(self._candidate_cache) > _CANDIDATE_CACHE_SIZE:
            self._candidate_cache.clear()
        self._candidate_cache[key] = result
        return result

    def pick_recipients(self, list_ids: list[int], rng: random.Random, wanted: int,
                        exclude: set[int] | None = None) -> list[int]:
        """Up to ``wanted`` random ACTIVE/OPTOUT members of the lists ``list_ids``."""
        n_contacts = len(self._modified)
        lists = {lid - 1 for lid in list_ids}
        chosen: list[int] = []
        seen = set(exclude or ())
        tries = 0
        rnd = rng.random
        status, list_a, list_b = self._status, self._list_a, self._list_b
        while n_contacts and len(chosen) < wanted and tries < wanted * 30:
            tries += 1
            i = int(rnd() * n_contacts)
            cid = i + 1
            if cid in seen or status[i] not in _RECIPIENT_STATUSES:
                continue
            if list_a[i] not in lists and list_b[i] not in lists:
                continue
            seen.add(cid)
            chosen.append(cid)
        return chosen

    # ------------------------------------------------------------------ changes
    def add_list_slot(self) -> None:
        """Make room for one more (empty) list."""
        self.list_counts.append(0)

    def edit(self, ids: list[int], now: int, rng: random.Random, change_lists: float) -> None:
        """Give ``ids`` new field values (a new edit version) and ``modified`` = ``now``; with
        probability ``change_lists`` a contact also gets new memberships. KeyError for an
        unknown id (the ids before it stay edited)."""
        self._candidate_cache.clear()
        n_lists = len(self.list_counts)
        for cid in ids:
            if not self.exists(cid):
                raise KeyError(f"no contact {cid}")
            i = cid - 1
            self._edit_version[cid] = self._edit_version.get(cid, 0) + 1
            if self._status[i] == gen.STATUS_REMOVED:
                self._deleted_ms.setdefault(cid, self._modified[i])  # deleted_at survives edits
            self._modified[i] = now
            self._touched.add(cid)
            if self._status[i] != gen.STATUS_REMOVED and rng.random() < change_lists:
                a = rng.randrange(n_lists)
                b = rng.randrange(n_lists)
                self._set_lists(i, a, b if b != a and rng.random() < 0.5 else -1)

    def append(self, n: int, now: int, rng: random.Random) -> list[int]:
        """Add ``n`` ACTIVE contacts created at ``now``, each in one random list; their ids."""
        self._candidate_cache.clear()
        n_lists = len(self.list_counts)
        first = len(self._modified) + 1
        for _ in range(n):
            self._created.append(now)
            self._modified.append(now)
            self._status.append(gen.STATUS_ACTIVE)
            self._list_a.append(-1)
            self._list_b.append(-1)
            self._set_lists(len(self._modified) - 1, rng.randrange(n_lists), -1)
        new_ids = list(range(first, first + n))
        self._touched.update(new_ids)
        return new_ids

    def set_status(self, cid: int, code: int, now: int) -> None:
        """Set the status of ``cid`` (REMOVED also leaves every list); ``modified`` = ``now``."""
        self._candidate_cache.clear()
        i = cid - 1
        if code == gen.STATUS_REMOVED:
            if self._status[i] == gen.STATUS_REMOVED:
                self._deleted_ms.setdefault(cid, self._modified[i])  # already deleted: keep
            else:
                self._deleted_ms[cid] = now
        else:
            self._deleted_ms.pop(cid, None)  # un-deleted (v3: re-adding un-deletes, §1.7)
        self._status[i] = code
        if code == gen.STATUS_REMOVED:
            self._set_lists(i, -1, -1)
        self._modified[i] = now
        self._touched.add(cid)

    def _set_lists(self, i: int, a: int, b: int) -> None:
        for old in (self._list_a[i], self._list_b[i]):
            if old >= 0:
                self.list_counts[old] -= 1
        self._list_a[i], self._list_b[i] = a, b
        for new in (a, b):
            if new >= 0:
                self.list_counts[new] += 1

    # ------------------------------------------------------------------ additions for v3
    def status_code(self, cid: int) -> int:
        """The contact's status code (``gen.STATUS_*``)."""
        return self._status[cid - 1]

    def created_ms(self, cid: int) -> int:
        """The contact's creation time."""
        return self._created[cid - 1]

    def edit_version(self, cid: int) -> int:
        """How many times the contact was edited (0: as seeded or created)."""
        return self._edit_version.get(cid, 0)

    def deleted_ms(self, cid: int) -> int | None:
        """When the contact was deleted (REMOVED), else None."""
        if self._status[cid - 1] != gen.STATUS_REMOVED:
            return None
        return self._deleted_ms.get(cid, self._modified[cid - 1])

    def status_counts(self) -> list[int]:
        """Number of contacts per status code."""
        return [self._status.count(code) for code in range(len(gen.CONTACT_STATUSES))]

    def in_lists(self, cid: int, indexes: frozenset[int]) -> bool:
        """Whether the contact belongs to one of the lists of ``indexes`` (``lid - 1``)."""
        return self._list_a[cid - 1] in indexes or self._list_b[cid - 1] in indexes

    def list_member_count(self, index: int, codes: frozenset[int]) -> int:
        """Members of list ``index`` (``lid - 1``) whose status code is in ``codes``."""
        st, a, b = self._status, self._list_a, self._list_b
        return sum(1 for i in range(len(st)) if (a[i] == index or b[i] == index) and st[i] in codes)

    def ids_desc(
        self, upto: int, limit: int, *, codes: frozenset[int],
        modified_since_ms: int | None = None, keep: Callable[[int], bool] | None = None,
    ) -> tuple[list[int], int | None]:
        """Up to ``limit`` ids ``<= upto``, newest (highest) first, whose status code is in
        ``codes``, modified at or after ``modified_since_ms`` and accepted by ``keep``; and
        the id the next page starts at (inclusive; None when no more match)."""
        n = len(self._modified)
        upto = min(upto, n)
        out: list[int] = []
        if modified_since_ms is not None:
            cands = self._modified_candidates(modified_since_ms, None)
            if cands is not None:
                source: Iterable[int] = reversed(cands[:bisect_right(cands, upto)])
            else:
                source = range(upto, 0, -1)
        else:
            source = range(upto, 0, -1)
        mod, st = self._modified, self._status
        since = modified_since_ms
        for cid in source:
            i = cid - 1
            if st[i] not in codes or (since is not None and mod[i] < since):
                continue
            if keep is not None and not keep(cid):
                continue
            if len(out) == limit:
                return out, cid
            out.append(cid)
        return out, None

    def drop_list(self, index: int) -> None:
        """Remove every membership of list ``index`` (the list was deleted)."""
        self._candidate_cache.clear()
        a, b = self._list_a, self._list_b
        for i in range(len(a)):
            if a[i] == index or b[i] == index:
                self._set_lists(i, -1 if a[i] == index else a[i], -1 if b[i] == index else b[i])
