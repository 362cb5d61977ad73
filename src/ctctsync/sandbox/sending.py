"""Activity generation: what a campaign send writes to the activity log.

Each recipient gets one SEND, then possibly a BOUNCE (5 %) or an OPEN (45 %) followed by a
CLICK (30 %), FORWARD (4 %) and UNSUBSCRIBE (3 %): at most one activity of each type per contact
and campaign, so summary counts equal record counts (docs/sandbox.md, "The account"). The draw
order of the random generator is part of the account's identity: the same spec must keep
yielding the same activities.
"""

from __future__ import annotations

import random
from typing import Protocol

from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.activities import ActivityLog
from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.contacts import ContactStore
from ctctsync.sandbox.generator import BOUNCE, CLICK, DAY_MS, FORWARD, OPEN, SEND, UNSUBSCRIBE

_RECIPIENTS_PER_ACTIVITY = 1.6  # a recipient yields ~1.6 activities on average


class _Times(Protocol):
    def after(self, base: int, delay_max: int) -> int:
        """The time of an activity that follows one at ``base``."""
        ...


class _SeededTimes:
    """A send in the seeded history: a random delay of 1 s .. ``delay_max`` after ``base``."""

    def __init__(self, rng: random.Random) -> None:
        self._randrange = rng.randrange

    def after(self, base: int, delay_max: int) -> int:
        return base + self._randrange(1000, delay_max)


class _LiveTimes:
    """A live send: distinct increasing instants from ``first`` on (see SandboxClock.reserve),
    so a ``created_since`` taken before the send sees every activity of it."""

    def __init__(self, first: int) -> None:
        self._next = first

    def after(self, base: int, delay_max: int) -> int:
        t = self._next
        self._next += 1
        return t


def _recipient_activities(log: ActivityLog, camp: gen.Campaign, cid: int, rng: random.Random,
                          t0: int, times: _Times) -> None:
    """One recipient's activities for a send at ``t0``."""
    t_send = times.after(t0, 60_000)
    log.append(camp.id, cid, SEND, t_send, 0)
    if rng.random() < 0.05:
        log.append(camp.id, cid, BOUNCE, times.after(t_send, 3_600_000),
                   rng.randrange(len(gen.BOUNCES)))
        return
    if rng.random() >= 0.45:
        return
    t_open = times.after(t_send, 4 * DAY_MS)
    log.append(camp.id, cid, OPEN, t_open, 0)
    if rng.random() < 0.3:
        link = camp.links[rng.randrange(len(camp.links))]
        log.append(camp.id, cid, CLICK, times.after(t_open, 600_000), link.uid)
    if rng.random() < 0.04:
        log.append(camp.id, cid, FORWARD, times.after(t_open, DAY_MS), 0)
    if rng.random() < 0.03:
        log.append(camp.id, cid, UNSUBSCRIBE, times.after(t_open, DAY_MS),
                   rng.randrange(len(gen.UNSUB_SOURCES)) * 16
                   + rng.randrange(len(gen.UNSUB_REASONS)))


def _send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
          target: int, t0: int, clock: SandboxClock | None) -> None:
    if target <= 0:
        return
    chosen = contacts.pick_recipients(camp.list_ids, rng,
                                      max(1, round(target / _RECIPIENTS_PER_ACTIVITY)))
    # up to 5 activities per recipient, so a live send reserves 5 instants for each
    times = _SeededTimes(rng) if clock is None else _LiveTimes(clock.reserve(len(chosen) * 5))
    for cid in chosen:
        _recipient_activities(log, camp, cid, rng, t0, times)
    log.reindex(campaigns=(camp.id,), contacts=chosen)


def seed_send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
              target: int, t0: int) -> None:
    """About ``target`` activities of a send of ``camp`` at ``t0`` in the seeded history."""
    _send(log, contacts, camp, rng, target, t0, None)


def live_send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
              target: int, clock: SandboxClock) -> None:
    """About ``target`` activities of a send of ``camp`` now, stamped from the clock's now on."""
    _send(log, contacts, camp, rng, target, 0, clock)


def more_activity(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign,
                  rng: random.Random, target: int, stamp: int) -> None:
    """Exactly ``target`` more activities of the SENT ``camp`` (while recipients remain),
    stamped ``stamp``, ``stamp + 1``, ...: an OPEN or else a CLICK from earlier recipients
    first, then a SEND to members who had not received it yet."""
    recipients = log.recipients(camp.id)
    added = 0
    for cid in sorted(recipients):
        if added >= target:
            break
        have = log.types_received(cid, camp.id)
        if BOUNCE in have:
            continue
        if OPEN not in have:
            log.append(camp.id, cid, OPEN, stamp + added, 0)
        elif CLICK not in have:
            link = camp.links[rng.randrange(len(camp.links))]
            log.append(camp.id, cid, CLICK, stamp + added, link.uid)
        else:
            continue
        log.reindex(contacts=(cid,))
        added += 1
    for cid in contacts.pick_recipients(camp.list_ids, rng, target - added, recipients):
        log.append(camp.id, cid, SEND, stamp + added, 0)
        log.reindex(contacts=(cid,))
        added += 1
    log.reindex(campaigns=(camp.id,))
