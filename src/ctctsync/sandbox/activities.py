"""The account's email activity log: compact column arrays plus two indexes.

Activity ``seq`` is row ``seq`` of five parallel arrays (campaign, contact, type, time, extra);
``extra`` is the link uid of a CLICK, the bounce index of a BOUNCE, or ``source * 16 + reason``
of an UNSUBSCRIBE. Each campaign and each contact has a list of ``CursorKey``s kept sorted, so
"newest first from a cursor" is a bisection. Contact tracking and campaign tracking are two
views of this one log. Not thread-safe on its own: ``Account`` holds its lock around every call.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.generator import BOUNCE, CLICK, UNSUBSCRIBE
from ctctsync.sandbox.records import Activity, CursorKey

_COUNT_NAMES = ("sends", "opens", "clicks", "forwards", "bounces", "unsubscribes")
"""Summary count name per activity type code (SEND, OPEN, CLICK, FORWARD, BOUNCE, UNSUBSCRIBE)."""


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

    def __len__(self) -> int:
        return len(self._ts)

    def __iter__(self) -> Iterator[Activity]:
        for seq in range(len(self._ts)):
            yield self.get(seq)

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
        self, *, campaign_id: int | None = None, contact_id: int | None = None,
        types: frozenset[int] | None = None, created_since_ms: int | None = None,
        after: CursorKey | None = None, limit: int = 500,
    ) -> tuple[list[Activity], CursorKey | None]:
        """Activities of one campaign or one contact, newest first, starting at cursor
        ``after`` (inclusive); the page and the cursor of the next page."""
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
            if types is not None and self._type[seq] not in types:
                continue
            if len(out) == limit:
                return out, keys[k]
            out.append(self.get(seq))
        return out, None

    def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Per-type activity counts of a campaign (each contact has at most one of each)."""
        counts = {"sends": 0, "opens": 0, "clicks": 0, "forwards": 0, "unsubscribes": 0,
                  "bounces": 0}
        for _ts, neg_seq in self._by_campaign.get(campaign_id, []):
            counts[_COUNT_NAMES[self._type[-neg_seq]]] += 1
        return counts

    def link_clicks(self, campaign_id: int) -> dict[int, int]:
        """Clicks per link uid of a campaign."""
        out: dict[int, int] = {}
        for _ts, neg_seq in self._by_campaign.get(campaign_id, []):
            seq = -neg_seq
            if self._type[seq] == CLICK:
                out[self._extra[seq]] = out.get(self._extra[seq], 0) + 1
        return out

    def recipients(self, campaign_id: int) -> set[int]:
        """Ids of the contacts with any activity of the campaign."""
        return {self._contact[-s] for _t, s in self._by_campaign.get(campaign_id, [])}

    def types_received(self, contact_id: int, campaign_id: int) -> set[int]:
        """The activity types the contact has for the campaign."""
        return {self._type[-s] for _t, s in self._by_contact.get(contact_id, [])
                if self._camp[-s] == campaign_id}
