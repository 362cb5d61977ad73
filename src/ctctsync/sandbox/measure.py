"""``python -m ctctsync.sandbox.measure``: the figures docs/sandbox.md quotes of the decay
activity model (``sandbox.decay``): how long a decay account takes to build and how much memory,
how much activity is still to come as a frozen clock advances, and the measured arrival shares."""

from __future__ import annotations

import argparse
import resource
import time

from ctctsync.sandbox.account import Account
from ctctsync.sandbox.clock import ANCHOR_MS, SandboxClock
from ctctsync.sandbox.decay import OPEN_DELAY
from ctctsync.sandbox.generator import DAY_MS
from ctctsync.sandbox.records import AccountSpec


def measure(argv: list[str] | None = None) -> None:
    """``python -m ctctsync.sandbox.measure``: build a decay account on a clock frozen at the
    anchor and print what docs/sandbox.md quotes -- build time and memory, the activities still
    to come as the clock advances, and the measured share of each kind arriving after 2, 7, 30
    and 90 days of its campaign's send."""
    p = argparse.ArgumentParser(prog="python -m ctctsync.sandbox.measure")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--contacts", type=int, default=200_000)
    p.add_argument("--lists", type=int, default=10)
    p.add_argument("--campaigns", type=int, default=100)
    p.add_argument("--activities-per-campaign", type=int, default=3000)
    args = p.parse_args(argv)
    spec = AccountSpec(seed=args.seed, contacts=args.contacts, lists=args.lists,
                       campaigns=args.campaigns,
                       activities_per_campaign=args.activities_per_campaign,
                       activity_model="decay")
    started = time.perf_counter()
    acc = Account(spec, SandboxClock(frozen_at_ms=ANCHOR_MS))
    built = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = len(acc.activities)
    print(f"{spec.contacts:,} contacts, {spec.campaigns} campaigns x "
          f"{spec.activities_per_campaign}: {total:,} activities; built in {built:.1f} s, "
          f"max RSS {rss:.0f} MB")
    at = 0
    for day in (0, 1, 7, 30, 90, 200):
        acc.advance((day - at) * 86_400)
        at = day
        print(f"  anchor + {day:3} d: {total - acc.activity_count():7,} still to come")
    days = (2, 7, 30, 90)
    delays: dict[str, list[int]] = {}
    for a in acc.iter_activities():
        delays.setdefault(a.type_name, []).append(a.ts_ms - (acc.campaigns[a.campaign_id]
                                                             .last_run_ms or 0))
    delays["all but sends"] = [d for k, v in delays.items() if k != "EMAIL_SEND" for d in v]
    print(f"{'arrived after its send':22} {'n':>8} " + " ".join(f"{f'>{d} d':>7}" for d in days))
    for kind, ds in delays.items():
        shares = [100 * sum(1 for x in ds if x > d * DAY_MS) / len(ds) for d in days]
        print(f"{kind:22} {len(ds):8,} " + " ".join(f"{s:6.2f}%" for s in shares))
    print(f"{'OPEN_DELAY (analytic)':22} {'':8} "
          + " ".join(f"{100 * OPEN_DELAY.after(d * DAY_MS):6.2f}%" for d in days))


if __name__ == "__main__":
    measure()
