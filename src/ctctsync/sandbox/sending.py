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

from ctctsync.sandbox import decay
from ctctsync.sandbox import generator as gen
from ctctsync.sandbox.activities import ActivityLog
from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.contacts import ContactStore
from ctctsync.sandbox.generator import BOUNCE, CLICK, DAY_MS, FORWARD, OPEN, SEND, UNSUBSCRIBE

_RECIPIENTS_PER_ACTIVITY = 1.6  # a recipient yields ~1.6 activities on average


class _Times(Protocol):
    """When each activity of one recipient happens (one method per activity type)."""

    def send(self, t0: int) -> int: ...
    def bounce(self, t_send: int) -> int: ...
    def open(self, t_send: int) -> int: ...
    def click(self, t_open: int) -> int: ...
    def forward(self, t_open: int) -> int: ...
    def unsubscribe(self, t_open: int) -> int: ...


class _SeededTimes:
    """The instant model's seeded history: a random delay of 1 s .. a maximum per type after
    what the activity follows (one ``randrange`` each, in the order the account's identity
    depends on)."""

    def __init__(self, rng: random.Random) -> None:
        self._randrange = rng.randrange

    def _after(self, base: int, delay_max: int) -> int:
        return base + self._randrange(1000, delay_max)

    def send(self, t0: int) -> int:
        return self._after(t0, 60_000)

    def bounce(self, t_send: int) -> int:
        return self._after(t_send, 3_600_000)

    def open(self, t_send: int) -> int:
        return self._after(t_send, 4 * DAY_MS)

    def click(self, t_open: int) -> int:
        return self._after(t_open, 600_000)

    def forward(self, t_open: int) -> int:
        return self._after(t_open, DAY_MS)

    def unsubscribe(self, t_open: int) -> int:
        return self._after(t_open, DAY_MS)


class _LiveTimes:
    """The instant model's live send: distinct increasing instants from ``first`` on (see
    SandboxClock.reserve), so a ``created_since`` taken before the send sees every activity."""

    def __init__(self, first: int) -> None:
        self._next = first

    def _tick(self, base: int) -> int:
        t = self._next
        self._next += 1
        return t

    send = bounce = open = click = forward = unsubscribe = _tick


class _DecayTimes:
    """The decay model (``sandbox.decay``): each activity a random delay after what it
    follows. Sends of a seeded campaign come 1-60 s after its start; a live send's on the
    reserved instants from ``first_send`` on (visible at once); the rest lies in the future of
    a live send and appears as the clock passes it."""

    def __init__(self, rng: random.Random, first_send: int | None) -> None:
        self._rng = rng
        self._next_send = first_send

    def send(self, t0: int) -> int:
        if self._next_send is None:
            return t0 + self._rng.randrange(1000, 60_000)
        t = self._next_send
        self._next_send += 1
        return t

    def bounce(self, t_send: int) -> int:
        return t_send + decay.BOUNCE_DELAY.sample(self._rng)

    def open(self, t_send: int) -> int:
        return t_send + decay.OPEN_DELAY.sample(self._rng)

    def click(self, t_open: int) -> int:
        return t_open + decay.CLICK_DELAY.sample(self._rng)

    def forward(self, t_open: int) -> int:
        return t_open + decay.FORWARD_DELAY.sample(self._rng)

    def unsubscribe(self, t_open: int) -> int:
        return t_open + decay.UNSUBSCRIBE_DELAY.sample(self._rng)


def _recipient_activities(log: ActivityLog, camp: gen.Campaign, cid: int, rng: random.Random,
                          t0: int, times: _Times) -> None:
    """One recipient's activities for a send at ``t0``."""
    t_send = times.send(t0)
    log.append(camp.id, cid, SEND, t_send, 0)
    if rng.random() < 0.05:
        log.append(camp.id, cid, BOUNCE, times.bounce(t_send), rng.randrange(len(gen.BOUNCES)))
        return
    if rng.random() >= 0.45:
        return
    t_open = times.open(t_send)
    log.append(camp.id, cid, OPEN, t_open, 0)
    if rng.random() < 0.3:
        link = camp.links[rng.randrange(len(camp.links))]
        log.append(camp.id, cid, CLICK, times.click(t_open), link.uid)
    if rng.random() < 0.04:
        log.append(camp.id, cid, FORWARD, times.forward(t_open), 0)
    if rng.random() < 0.03:
        log.append(camp.id, cid, UNSUBSCRIBE, times.unsubscribe(t_open),
                   rng.randrange(len(gen.UNSUB_SOURCES)) * 16
                   + rng.randrange(len(gen.UNSUB_REASONS)))


def _send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
          target: int, t0: int, clock: SandboxClock | None, model: str) -> None:
    if target <= 0:
        return
    chosen = contacts.pick_recipients(camp.list_ids, rng,
                                      max(1, round(target / _RECIPIENTS_PER_ACTIVITY)))
    times: _Times
    if model == "decay":
        # a live send reserves one instant per recipient: only the sends are stamped "now"
        times = _DecayTimes(rng, None if clock is None else clock.reserve(len(chosen)))
    elif clock is None:
        times = _SeededTimes(rng)
    else:
        # up to 5 activities per recipient, so a live send reserves 5 instants for each
        times = _LiveTimes(clock.reserve(len(chosen) * 5))
    for cid in chosen:
        _recipient_activities(log, camp, cid, rng, t0, times)
    log.reindex(campaigns=(camp.id,), contacts=chosen)


def seed_send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
              target: int, t0: int, model: str = "instant") -> None:
    """About ``target`` activities of a send of ``camp`` at ``t0`` in the seeded history, timed
    by activity ``model`` (``sandbox.decay``)."""
    _send(log, contacts, camp, rng, target, t0, None, model)


def live_send(log: ActivityLog, contacts: ContactStore, camp: gen.Campaign, rng: random.Random,
              target: int, clock: SandboxClock, model: str = "instant") -> None:
    """About ``target`` activities of a send of ``camp`` now: the instant model stamps them
    from the clock's now on; the decay model stamps the sends now and the rest later."""
    _send(log, contacts, camp, rng, target, 0, clock, model)


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
