"""The sandbox's activity models: when the activities of a send arrive.

``instant`` (the default, what every test before issue 10 was written against): the seeded
history's activities follow their send within a few days and are all in the past; a live send
stamps its activities on consecutive milliseconds from "now", visible at once.

``decay`` (Constant Contact's reports: most activity in the first 48 hours, a tail for weeks):
each activity comes a random delay after what it follows, drawn from the distributions below.
An activity stamped after the sandbox clock's "now" does not exist yet for any report, count or
truth accessor; it appears when the clock passes its stamp (``ActivityLog`` filters by time).
With a frozen clock at :data:`~ctctsync.sandbox.clock.ANCHOR_MS` the newest seeded campaigns
still have activity to come, and ``advance(days)`` ages the account in no real time.

Delays (``Delay.sample``), all capped at :data:`MAX_DELAY_MS` (180 days):

=================  ======================  ===================================================
activity           follows                 delay
=================  ======================  ===================================================
SEND               the campaign's send     1 s .. 60 s, uniform (seeded); the next reserved
                                           millisecond (live)
BOUNCE             its SEND                exponential, mean 2 h
OPEN               its SEND                mixture: 75 % mean 8 h, 20 % mean 3 d, 5 % mean 20 d
CLICK              its OPEN                exponential, mean 10 min
FORWARD            its OPEN                exponential, mean 6 h
UNSUBSCRIBE        its OPEN                exponential, mean 30 min
=================  ======================  ===================================================

Share of opens still to come t after the send (``OPEN_DELAY.after(t)``): 2 days 15.0 %,
7 days 5.5 %, 30 days 1.1 %, 90 days 0.06 %. Seeded campaigns of a decay account are sent one
every :attr:`AccountSpec.send_every_days` (3 by default) up to about two days before the anchor.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ctctsync.sandbox.generator import DAY_MS

ACTIVITY_MODELS = ("instant", "decay")
"""The values of ``AccountSpec.activity_model``."""

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MAX_DELAY_MS = 180 * DAY_MS
"""No activity comes later than this after what it follows: a campaign is final 180 days (plus
the delays of a click after its open) after its send."""


@dataclass(frozen=True)
class Delay:
    """A mixture of exponential distributions: ``(weight, mean ms)`` per component (the
    weights sum to 1), every draw capped at :data:`MAX_DELAY_MS` and at least 1 ms."""

    components: tuple[tuple[float, float], ...]

    def sample(self, rng: random.Random) -> int:
        """One delay in ms: a component by weight, then an exponential draw of its mean (two
        draws of ``rng``, whatever the component)."""
        pick = rng.random()
        mean = self.components[-1][1]
        for weight, m in self.components:
            if pick < weight:
                mean = m
                break
            pick -= weight
        return max(1, min(MAX_DELAY_MS, int(-mean * math.log(1.0 - rng.random()))))

    def after(self, t_ms: float) -> float:
        """The share of draws longer than ``t_ms`` (the survival function, cap ignored)."""
        return sum(w * math.exp(-t_ms / m) for w, m in self.components)


BOUNCE_DELAY = Delay(((1.0, 2 * HOUR_MS),))
OPEN_DELAY = Delay(((0.75, 8 * HOUR_MS), (0.20, 3 * DAY_MS), (0.05, 20 * DAY_MS)))
CLICK_DELAY = Delay(((1.0, 10 * MINUTE_MS),))
FORWARD_DELAY = Delay(((1.0, 6 * HOUR_MS),))
UNSUBSCRIBE_DELAY = Delay(((1.0, 30 * MINUTE_MS),))

SEND_EVERY_DAYS = 3.0
"""Default interval between the seeded sends of a decay account."""

