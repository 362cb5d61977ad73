"""The v3 id of every record, and back.

v3 names records by UUID where v2 used sequence numbers (§1.1), and CC publishes
cross-references for contacts, lists and campaigns (§3.1, §3.2, §3.6). The sandbox derives
each UUID from ``(seed, kind, v2 id)`` (:func:`~ctctsync.sandbox.generator.stable_uuid`), so
the same contact has the same v2 id and v3 UUID in every run, and keeps a reverse index built
on demand (records are only ever added, never renumbered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ctctsync.sandbox import generator as gen

# kinds beyond the generator's own (their UUIDs must not collide with theirs)
KIND_ACTIVITY_PRIMARY = 20
KIND_ACTIVITY_PERMALINK = 21
KIND_TAG = 22
KIND_CUSTOM_FIELD = 23
KIND_REGISTRATION = 24
KIND_EVENT_V3 = 25
KIND_BULK_ACTIVITY = 40
"""Bulk activities (contact exports, §3.13)."""

ROLE_KINDS = {"primary_email": KIND_ACTIVITY_PRIMARY, "permalink": KIND_ACTIVITY_PERMALINK}
"""The campaign activities every campaign has, by role (§3.6)."""


class _Reverse:
    """UUID -> integer id for one kind, extended as the record count grows."""

    def __init__(self, seed: int, kind: int) -> None:
        self._seed = seed
        self._kind = kind
        self._index: dict[str, int] = {}
        self._covered = 0
        self._lock = threading.Lock()

    def lookup(self, value: str, upper: int, first: int = 1) -> int | None:
        """The id in ``first..upper`` whose UUID is ``value`` (None if none)."""
        with self._lock:
            start = max(self._covered + 1, first)
            for ident in range(start, upper + 1):
                self._index[gen.stable_uuid(self._seed, self._kind, ident)] = ident
            self._covered = max(self._covered, upper)
            found = self._index.get(value.lower())
            return found if found is not None and first <= found <= upper else None


class V3Ids:
    """UUIDs of one account's records (deterministic from the seed)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._reverse: dict[int, _Reverse] = {}

    def uuid(self, kind: int, ident: int) -> str:
        """The UUID of record ``ident`` of ``kind``."""
        return gen.stable_uuid(self.seed, kind, ident)

    def contact(self, cid: int) -> str:
        return self.uuid(gen.KIND_CONTACT, cid)

    def list(self, lid: int) -> str:
        return self.uuid(gen.KIND_LIST, lid)

    def campaign(self, campaign_id: int) -> str:
        return self.uuid(gen.KIND_CAMPAIGN, campaign_id)

    def activity(self, campaign_id: int, role: str = "primary_email") -> str:
        """A campaign activity's id: one per campaign and role."""
        return self.uuid(ROLE_KINDS[role], campaign_id)

    def find(self, kind: int, value: str, upper: int, first: int = 1) -> int | None:
        """The integer id of a UUID among ids ``first..upper`` of ``kind`` (None if unknown)."""
        rev = self._reverse.get(kind)
        if rev is None:
            rev = self._reverse.setdefault(kind, _Reverse(self.seed, kind))
        return rev.lookup(value, upper, first)

    def finder(self, kind: int, upper: Callable[[], int], first: int = 1
               ) -> Callable[[str], int | None]:
        """A lookup bound to a kind and its current id range."""
        return lambda value: self.find(kind, value, upper(), first)
