"""What a read could not load, told instead of lost (both API versions' readers use it).

Nothing is lost silently (docs/architecture.md, "No silent loss"): what a reader could not
read is noted in the :class:`ReadNotes` the caller passes, by a kind of :data:`LOSSES` that
says whether it is gone for good (a warning; the bookmark may move) or a later read can
recover it (a warning, and the table's bookmark stays).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Recovery = Literal["gone", "retry"]
"""``gone``: nothing a later read could load (the bookmark may move past it); ``retry``: the
data still exists and a later read can load it (the table's bookmark must stay)."""


@dataclass(frozen=True)
class LossKind:
    """One way a read can miss data: how it is recovered and how it is told to a user."""

    recovery: Recovery
    note: str
    """``{n}``: how many items, ``{s}``: "s" when more than one (``{ies}``: "y"/"ies"),
    ``{items}``: their ids."""


LOSSES: Mapping[str, LossKind] = MappingProxyType(
    {
        # Deleted campaigns answer 404 to every call (§1.8): their tracking is gone with them.
        "campaign_deleted": LossKind("gone", "{n} campaign{s} deleted during the run: {items}"),
        # The detail 404s but the tracking answers: the campaign exists, so the detail is
        # coming back; the clicks are loaded without link_uri, and re-read to fill it in.
        "link_lookup_missing": LossKind(
            "retry",
            "{n} campaign{s} answered 404 for the detail while the tracking answered: "
            "clicks loaded without link_uri, read again next run: {items}",
        ),
        # A full table: the next run replaces the row, so nothing holds a bookmark.
        "summary_without_detail": LossKind(
            "retry",
            "{n} campaign{s} answered 404 for the detail: summary read without "
            "last_run_date: {items}",
        ),
        # One tracking collection 404s while the campaign's detail answers: the campaign
        # exists, so these activities are there to be read next time.
        "tracking_missing": LossKind(
            "retry",
            "{n} tracking collection{s} answered 404 while the campaign exists: "
            "not loaded, read again next run: {items}",
        ),
        # v3: an event listed, then deleted before its detail or registrations were read.
        "event_deleted": LossKind("gone", "{n} event{s} deleted during the run: {items}"),
        # v3: a campaign activity that answers 404 (REMOVED activities cannot be read --
        # constant-contact-v3-api.md §1.7): nothing left to load.
        "activity_unreadable": LossKind(
            "gone", "{n} campaign activit{ies} could not be read (removed): {items}"
        ),
    }
)
"""Every kind of data a reader may fail to read without failing the table."""


class ReadNotes:
    """What one table's read could not load, by kind of :data:`LOSSES` (thread-safe: the
    readers run on a prefetch thread, the engine reads the notes after the last page)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, list[str]] = {}

    def add(self, kind: str, item: str) -> None:
        """Note that ``item`` (e.g. a campaign id) was missed in the way ``kind`` says."""
        if kind not in LOSSES:
            raise ValueError(f"unknown loss kind {kind!r}")
        with self._lock:
            items = self._items.setdefault(kind, [])
            if item not in items:
                items.append(item)

    def counts(self) -> dict[str, int]:
        """How many items of each kind were noted."""
        with self._lock:
            return {kind: len(items) for kind, items in self._items.items()}

    @property
    def hold_bookmark(self) -> bool:
        """True when a later read can recover something this read missed."""
        with self._lock:
            return any(LOSSES[kind].recovery == "retry" for kind in self._items)

    def messages(self) -> list[str]:
        """One line per kind, e.g. ``2 campaigns deleted during the run: 11, 12``."""
        with self._lock:
            noted = [(kind, list(items)) for kind, items in self._items.items()]
        return [
            LOSSES[kind].note.format(n=len(items), s="" if len(items) == 1 else "s",
                                     ies="y" if len(items) == 1 else "ies",
                                     items=", ".join(items))
            for kind, items in noted
        ]
