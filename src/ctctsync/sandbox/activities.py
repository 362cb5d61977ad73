"""The account's email activity log: compact column arrays plus two indexes.

Activity ``seq`` is row ``seq`` of five parallel arrays (campaign, contact, type, time, extra);
``extra`` is the link uid of a CLICK, the bounce index of a BOUNCE, or ``source * 16 + reason``
of an UNSUBSCRIBE. Each campaign and each contact has a list of ``CursorKey``s kept sorted, so
"newest first from a cursor" is a bisection. Contact tracking and campaign tracking are two
views of this one log. Not thread-safe on its own: ``Account`` holds its lock around every call.

Two things hide an activity from every read (pages, counts, link clicks, iteration):

- **its time is still to come**: every read takes ``now`` (the sandbox clock's reading) and
  skips the activities stamped after it. The indexes are sorted newest first, so the future
  ones are a prefix that one bisection steps over (the "decay" model, ``sandbox.decay``);
- **it was retracted** (:meth:`ActivityLog.retract`: a bounce reclassified, the unsubscribe of
  a contact deleted for good): it leaves both indexes and is marked gone in the log.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.generator import BOUNCE, CLICK, UNSUBSCRIBE
from ctctsync.sandbox.records import Activity, CursorKey

_COUNT_NAMES = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")
"""Summary count name per activity type code (SEND, OPEN, CLICK, FORWARD, BOUNCE, UNSUBSCRIBE)."""
_OLDEST_SEQ = -(1 << 62)


class Marker(NamedTuple):
    """What a campaign's visible activities depend on: the log's generation (bumped by every
    append and retraction) and how many of the campaign's activities are still to come. Equal
    markers mean equal visible sets, so derived views can be cached by it."""

    generation: int
    first_visible: int


def first_visible(keys: list[CursorKey], now: int) -> int:
    """Index of the first key of ``keys`` (newest first) stamped at or before ``now``."""
    return bisect_left(keys, (-now, _OLDEST_SEQ))


class ActivityLog:
    """Every email activity of one account, in the order it happened to be generated."""

    def __init__(self, seed: int, campaigns: dict[int, gen.Campaign]) -> None:
        self._seed = seed
        self._campaigns = campaigns  # the account's own dict: a CLICK's link url lives there
        self._camp = array("q")
        self._contact = array("q")
        self._type = array("b")
        self._ts = array("q")
        self._extra = array("q")
        self._by_campaign: dict[int, list[CursorKey]] = {}
        self._by_contact: dict[int, list[CursorKey]] = {}
        self._gone = bytearray()
        """1 for a retracted activity (it is in no index any more)."""
        self.generation = 0
        """Bumped by every append and retraction (part of :class:`Marker`)."""
        self._counts: dict[int, tuple[Marker, dict[str, int]]] = {}

    def __len__(self) -> int:
        """Every activity ever written, retracted and future ones included."""
        return len(self._ts)

    def visible(self, now: int) -> Iterator[Activity]:
        """The activities stamped at or before ``now`` and not retracted, in log order."""
        ts, gone = self._ts, self._gone
        for seq in range(len(ts)):
            if ts[seq] <= now and not gone[seq]:
                yield self.get(seq)

    def visible_count(self, now: int) -> int:
        """How many activities :meth:`visible` yields."""
        return sum(len(keys) - first_visible(keys, now) for keys in self._by_campaign.values())

    def marker(self, campaign_id: int, now: int) -> Marker:
        """The campaign's :class:`Marker` at ``now``."""
        return Marker(self.generation,
                      first_visible(self._by_campaign.get(campaign_id, []), now))

    # ------------------------------------------------------------------ writing
    def append(self, camp_id: int, contact_id: int, typ: int, ts: int, extra: int) -> None:
        """Add one activity at the end of the log. The indexes of its campaign and contact
        are left unsorted until :meth:`reindex`."""
        seq = len(self._ts)
        self._camp.append(camp_id)
        self._contact.append(contact_id)
        self._type.append(typ)
        self._ts.append(ts)
        self._extra.append(extra)
        self._gone.append(0)
        self.generation += 1
        key = (-ts, -seq)
        self._by_campaign.setdefault(camp_id, []).append(key)
        self._by_contact.setdefault(contact_id, []).append(key)

    def reindex(self, *, campaigns: Iterable[int] = (), contacts: Iterable[int] = ()) -> None:
        """Sort the indexes of ``campaigns`` and ``contacts`` after appends."""
        for camp_id in campaigns:
            self._by_campaign.setdefault(camp_id, []).sort()
        for cid in contacts:
            self._by_contact[cid].sort()

    # ------------------------------------------------------------------ reading
    def get(self, seq: int) -> Activity:
        """Activity number ``seq`` of the log."""
        typ = self._type[seq]
        extra = self._extra[seq]
        camp_id = self._camp[seq]
        link_uid, link_url, bcode, bdesc, usrc, ureason = 0, "", "", "", "", ""
        if typ == CLICK:
            link_uid = extra
            camp = self._campaigns[camp_id]
            link_url = next((lk.url for lk in camp.links if lk.uid == extra), "")
        elif typ == BOUNCE:
            bcode, bdesc = gen.BOUNCES[extra]
        elif typ == UNSUBSCRIBE:
            usrc = gen.UNSUB_SOURCES[extra // 16]
            ureason = gen.UNSUB_REASONS[extra % 16]
        contact_id = self._contact[seq]
        return Activity(
            seq=seq, campaign_id=camp_id, contact_id=contact_id,
            email=gen.contact_names(self._seed, contact_id)[2], type=typ, ts_ms=self._ts[seq],
            link_uid=link_uid, link_url=link_url, bounce_code=bcode, bounce_description=bdesc,
            unsubscribe_source=usrc, unsubscribe_reason=ureason,
        )

    def page(
        self, *, now: int, campaign_id: int | None = None, contact_id: int | None = None,
        types: frozenset[int] | None = None, created_since_ms: int | None = None,
        after: CursorKey | None = None, limit: int = 500,
    ) -> tuple[list[Activity], CursorKey | None]:
        """Activities of one campaign or one contact stamped at or before ``now``, newest
        first, starting at cursor ``after`` (inclusive); the page and the next page's cursor."""
        if campaign_id is not None:
            keys = self._by_campaign.get(campaign_id, [])
        else:
            keys = self._by_contact.get(contact_id or 0, [])
        pos = first_visible(keys, now)
        if after is not None:
            pos = max(pos, bisect_left(keys, after))
        end = len(keys)
        if created_since_ms is not None:
            end = bisect_right(keys, (-created_since_ms, 1))
        out: list[Activity] = []
        for k in range(pos, end):
            seq = -keys[k][1]
            if types is not None and self._type[seq] not in types:
                continue
            if len(out) == limit:
                return out, keys[k]
            out.append(self.get(seq))
        return out, None

    def campaign_counts(self, campaign_id: int, now: int) -> dict[str, int]:
        """Per-type counts of a campaign's visible activities (each contact has at most one of
        each); cached by the campaign's :class:`Marker`."""
        marker = self.marker(campaign_id, now)
        hit = self._counts.get(campaign_id)
        if hit is not None and hit[0] == marker:
            return dict(hit[1])
        counts = {"sends": 0, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0,
                  "bounces": 0}
        keys = self._by_campaign.get(campaign_id, [])
        typ = self._type
        for k in range(marker.first_visible, len(keys)):
            counts[_COUNT_NAMES[typ[-keys[k][1]]]] += 1
        self._counts[campaign_id] = (marker, counts)
        return dict(counts)

    def link_clicks(self, campaign_id: int, now: int) -> dict[int, int]:
        """Visible clicks per link uid of a campaign."""
        out: dict[int, int] = {}
        keys = self._by_campaign.get(campaign_id, [])
        for k in range(first_visible(keys, now), len(keys)):
            seq = -keys[k][1]
            if self._type[seq] == CLICK:
                out[self._extra[seq]] = out.get(self._extra[seq], 0) + 1
        return out

    def seqs(self, campaign_id: int, types: frozenset[int], now: int) -> list[int]:
        """Sequence numbers of a campaign's visible activities of ``types``, newest first
        (no records built: for counts by a property of the sequence number)."""
        keys = self._by_campaign.get(campaign_id, [])
        typ = self._type
        return [-keys[k][1] for k in range(first_visible(keys, now), len(keys))
                if typ[-keys[k][1]] in types]

    def retract(self, campaign_id: int, typ: int, n: int, now: int) -> list[int]:
        """Remove up to ``n`` visible activities of type ``typ`` of a campaign from the log's
        every view: the oldest first (ties: the earlier logged), so the choice is
        deterministic. Returns their sequence numbers."""
        keys = self._by_campaign.get(campaign_id, [])
        picked: list[CursorKey] = []
        for k in range(len(keys) - 1, first_visible(keys, now) - 1, -1):
            if len(picked) == n:
                break
            if self._type[-keys[k][1]] == typ:
                picked.append(keys[k])
        for key in picked:
            seq = -key[1]
            del keys[bisect_left(keys, key)]
            by_contact = self._by_contact[self._contact[seq]]
            del by_contact[bisect_left(by_contact, key)]
            self._gone[seq] = 1
        if picked:
            self.generation += 1
        return [-key[1] for key in picked]

    def recipients(self, campaign_id: int) -> set[int]:
        """Ids of the contacts with any activity of the campaign (future ones included)."""
        return {self._contact[-s] for _t, s in self._by_campaign.get(campaign_id, [])}

    def types_received(self, contact_id: int, campaign_id: int) -> set[int]:
        """The activity types the contact has for the campaign (future ones included: a
        contact never gets two of one type)."""
        return {self._type[-s] for _t, s in self._by_contact.get(contact_id, [])
                if self._camp[-s] == campaign_id}
