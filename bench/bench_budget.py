"""Benchmark of the API budget: calls per run, counted, never timed (issue 10).

    python bench/bench_budget.py                                  # everything (long)
    python bench/bench_budget.py --account small --api v2         # one account, one version
    python bench/bench_budget.py --account large --scenario first,unchanged,day
    python bench/bench_budget.py --account large --scenario week --days 2
    python bench/bench_budget.py --account small --scenario week --tiers both

Each (account, API version) gets its own sandbox and warehouse; the syncs run in this process
against the sandbox's clock (``run_sync(clock=...)``), so every figure is a count of API calls
(``SyncResult.api_calls``) and of rows, the same on any machine. The scenarios, in order, on
one warehouse:

- ``first``: the first load of every table the version fills (v3: the contacts columns the
  bulk export fills, so the first load takes the export);
- ``unchanged``: the next run a minute later, nothing changed (the decay model may still let
  an activity arrive: the campaigns with new activity are counted from the sandbox and named
  in the goal);
- ``day``: a day later, after 1 % of the contacts changed and a day of campaign activity;
- ``week``: hourly runs for ``--days`` simulated days (new sends on some days, 1 % of the
  contacts changing a day): calls per day, the largest day, the goal checks, and how long
  activity waited between arriving at CC and landing in the warehouse.

After the runs the warehouse is compared with the sandbox's truth: every visible activity
(by its key) and every contact must be loaded, and each contact the bench changed must carry
its last change. Goals are printed PASS/FAIL; figures and commands are in
docs/performance.md ("API budget").
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HOUR = 3600
DAY = 24 * HOUR
DAILY_QUOTA = 10_000
"""Constant Contact's calls per day per application."""


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class AccountPlan:
    """An account of the bench: its size, and what happens to it during a simulated week."""

    name: str
    contacts: int
    campaigns: int
    activities_per_campaign: int
    lists: int
    send_every_days: float
    """The account sends a campaign every this many days: the seeded ones before the first
    load (the newest ~2 days before it), and new ones during the simulated week."""
    seed: int = 42

    def spec(self) -> Any:
        from ctctsync.sandbox import AccountSpec

        return AccountSpec(seed=self.seed, contacts=self.contacts, lists=self.lists,
                           campaigns=self.campaigns,
                           activities_per_campaign=self.activities_per_campaign,
                           library_files=50, trash_files=5, events=5,
                           activity_model="decay", send_every_days=self.send_every_days)

    def label(self) -> str:
        return (f"{self.name}: {self.contacts:,} contacts, {self.campaigns} campaigns x "
                f"~{self.activities_per_campaign:,} activities, one sent every "
                f"{self.send_every_days:g} days")


ACCOUNTS: dict[str, AccountPlan] = {
    # the smoke test's account: seconds per run
    "tiny": AccountPlan("tiny", 600, 8, 60, 4, 3.0, seed=7),
    # the issue's two accounts: a weekly newsletter for a year (3 % of the contacts' worth
    # of activities per campaign); a daily send for ~16 months, its activities scaled down
    # to ~200 per campaign (~100k tracking rows: 500 x 30,000 = 15M rows would not load in
    # this bench's time on 2 cores). An incremental run's calls depend on the campaigns
    # and the changes, not on the rows already loaded.
    "small": AccountPlan("small", 100_000, 50, 3_000, 20, 7.0),
    "large": AccountPlan("large", 1_000_000, 500, 200, 50, 1.0, seed=43),
}

SCENARIOS = ("first", "unchanged", "day", "week")


# --------------------------------------------------------------------------- the sandbox


def start_sandbox(plan: AccountPlan) -> Any:
    """The account's sandbox: no rate limit, the decay activity model, and a clock frozen at
    the anchor (it moves only by ``advance``), so no count depends on how long anything
    takes."""
    from ctctsync.sandbox import Sandbox
    from ctctsync.sandbox.clock import ANCHOR_MS

    return Sandbox(plan.spec(), qps_limit=None, daily_limit=None, token_qps_limit=None,
                   frozen_at_ms=ANCHOR_MS).start()


def sent_campaigns(sb: Any) -> dict[int, int]:
    """SENT campaign id -> its send time (epoch ms)."""
    return {c.id: c.last_run_ms for c in sb.account.campaigns.values()
            if c.status == "SENT" and c.last_run_ms is not None}


def campaign_markers(sb: Any) -> dict[int, Any]:
    """A marker of the visible activities of every sent campaign (equal markers: equal
    sets), to count the campaigns with new (or retracted) activity between two runs."""
    acct = sb.account
    with acct.lock:
        return {cid: acct.activity_marker(cid) for cid in sent_campaigns(sb)}


def moved(before: dict[int, Any], after: dict[int, Any]) -> int:
    """Campaigns whose visible activity differs (new ones included)."""
    return sum(1 for cid, c in after.items() if before.get(cid) != c)


# --------------------------------------------------------------------------- truth


def _instant(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


class Ids:
    """Record ids as the warehouse of one API version holds them."""

    def __init__(self, sb: Any, api: str) -> None:
        from ctctsync.sandbox import generator as gen

        self._sb = sb
        self._api = api
        self._gen = gen

    def campaign(self, cid: int) -> str:
        if self._api == "v2":
            return str(cid)
        return str(self._gen.stable_uuid(self._sb.account.seed, self._gen.KIND_CAMPAIGN, cid))

    def contact(self, cid: int) -> Any:
        return cid if self._api == "v2" else self._sb.account.contact_uuid(cid)


def expected_tracking_keys(sb: Any, api: str) -> dict[str, tuple[int, int]]:
    """activity_id -> (campaign id, activity time ms) of every visible activity, keyed the
    way the loader keys it (``ctctsync.sync.rows.activity_id``)."""
    from ctctsync.sync.rows import activity_id

    ids = Ids(sb, api)
    camp = {cid: ids.campaign(cid) for cid in sb.account.campaigns}
    out: dict[str, tuple[int, int]] = {}
    for a in sb.account.iter_activities():  # the visible ones: arrived, not retracted
        link = str(a.link_uid) if a.type_name == "EMAIL_CLICK" else None
        key = activity_id(ids.contact(a.contact_id), camp[a.campaign_id], a.type_name,
                          _instant(a.ts_ms), link)
        out[key] = (a.campaign_id, a.ts_ms)
    return out


# --------------------------------------------------------------------------- warehouse


class Warehouse:
    """Read-only queries on the bench's DuckDB file (between runs, never during one)."""

    def __init__(self, path: Path, dataset: str, integration: str) -> None:
        self.path = path
        self.dataset = dataset
        self.integration = integration

    def _name(self, table: str) -> str:
        from ctctsync.tables import warehouse_table_name

        return f'"{self.dataset}"."{warehouse_table_name(self.integration, table)}"'

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def tracking_ids(self) -> set[str]:
        return {r[0] for r in self.query(f"SELECT activity_id FROM {self._name('contact_tracking')}")}  # noqa: E501

    def tracking_of_run(self, run_id: str) -> list[tuple[str, datetime, str]]:
        """(activity_id, activity_date, campaign_id) of the rows a run wrote."""
        return [(r[0], r[1], str(r[2])) for r in self.query(
            "SELECT activity_id, activity_date, campaign_id FROM "
            f"{self._name('contact_tracking')} WHERE _ctctsync_run_id = ?", [run_id])]

    def contacts(self) -> dict[Any, datetime | None]:
        return dict(self.query(f"SELECT id, modified_date FROM {self._name('contacts')}"))


# --------------------------------------------------------------------------- one bench


@dataclass
class RunFigure:
    label: str
    at: datetime
    calls: int
    tables: dict[str, int]
    rows: int
    status: str
    campaigns_moved: int = 0
    """Campaigns whose visible counts changed since the previous run."""


@dataclass
class Bench:
    """One (account, API version, tier setting): a sandbox, a warehouse, a state store."""

    plan: AccountPlan
    api: str
    tiers: str
    workdir: Path
    sb: Any = None
    runs: list[RunFigure] = field(default_factory=list)
    changed_contacts: set[int] = field(default_factory=set)
    seen: dict[str, datetime] = field(default_factory=dict)
    """activity_id -> the run start that first loaded it (after the first load)."""
    delays: list[tuple[float, float]] = field(default_factory=list)
    """(campaign age at arrival in days, hours from arrival to loaded) per activity that
    arrived after the first load."""

    def __post_init__(self) -> None:
        self.sb = start_sandbox(self.plan)
        self.warehouse = Warehouse(self.workdir / "wh.duckdb", "bench", "b")
        self._markers = campaign_markers(self.sb)

    def close(self) -> None:
        self.sb.stop()

    # -- configuration ---------------------------------------------------------------------

    def config(self, tiers: str | None = None) -> Any:
        from ctctsync.api.v3 import export
        from ctctsync.config import SyncConfig
        from ctctsync.tables import tables_for

        creds = self.sb.credentials
        # a fresh v3 token each run: the sandbox's expire after 24 h of its clock, and a
        # worker refreshes its token outside the run's counted calls
        token = (self.sb.v3_tokens.issue_access_token() if self.api == "v3"
                 else creds.access_token)
        tables: dict[str, Any] = dict.fromkeys(tables_for(self.api))  # type: ignore[arg-type]
        if self.api == "v3":
            tables["contacts"] = sorted(export.EXPORT_COLUMNS)
        raw: dict[str, Any] = {
            "integration": "b",
            "source": {"api_version": self.api, "base_url": self.sb.base_url,
                       "api_key": creds.api_key, "access_token": token,
                       "qps_limit": None, "daily_limit": None},
            "warehouse": {"destination": "duckdb", "path": str(self.warehouse.path),
                          "dataset": "bench"},
            "state_url": f"sqlite:///{self.workdir / 'state.db'}",
            "tables": tables,
        }
        raw |= tier_config(tiers or self.tiers)
        return SyncConfig.model_validate(raw)

    @property
    def table_count(self) -> int:
        from ctctsync.tables import tables_for

        return len(tables_for(self.api))  # type: ignore[arg-type]

    # -- running ---------------------------------------------------------------------------

    def run(self, label: str, *, track: bool = True, tiers: str | None = None) -> RunFigure:
        from ctctsync.sync import run_sync

        markers = campaign_markers(self.sb)
        result = run_sync(self.config(tiers), clock=self.sb.account.clock.now)
        fig = RunFigure(label, result.started_at, result.api_calls,
                        {n: t.api_calls for n, t in result.tables.items()}, result.rows,
                        result.status, moved(self._markers, markers))
        self._markers = markers
        if result.status != "succeeded":
            fig.label += f" [{result.status}: {result.error}]"
        self.runs.append(fig)
        if track:
            self._track(result.run_id, result.started_at)
        return fig

    def _track(self, run_id: str, started: datetime) -> None:
        """Note when each activity first landed; the first load only fills ``seen``."""
        rows = self.warehouse.tracking_of_run(run_id)
        if not self.seen:
            self.seen = {a: started for a, _, _ in rows}
            return
        ids = Ids(self.sb, self.api)
        sent = {ids.campaign(c): ms for c, ms in sent_campaigns(self.sb).items()}
        for activity, when, campaign in rows:
            if activity in self.seen or when is None or campaign not in sent:
                continue
            self.seen[activity] = started
            arrived = when if when.tzinfo else when.replace(tzinfo=UTC)
            age = (arrived.timestamp() * 1000 - sent[campaign]) / (DAY * 1000)
            self.delays.append((age, (started - arrived).total_seconds() / HOUR))

    # -- the account changing --------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        """Move the sandbox clock on: the decay model's activity of that time arrives."""
        self.sb.account.advance(seconds)

    def retract(self, day: int) -> str:
        """A day's retraction: one unsubscribe (of a contact deleted for good) removed from
        an older campaign, a different one each day, so its count goes down."""
        sends = sorted(sent_campaigns(self.sb).items(), key=lambda kv: kv[1])
        cid = sends[(day * 7) % max(1, len(sends) // 2)][0]  # the older half, in turn
        gone = self.sb.account.retract_activities(cid, "EMAIL_UNSUBSCRIBE", 1)
        return f"{len(gone)} unsubscribe of campaign {cid} retracted"

    def change_contacts(self, n: int) -> None:
        self.changed_contacts.update(self.sb.account.update_contacts(n))

    def send(self) -> int:
        return int(self.sb.account.send_campaign())

    # -- the truth -------------------------------------------------------------------------

    def audit(self) -> dict[str, int]:
        """What the warehouse lacks or has in excess against the sandbox's truth now."""
        want = expected_tracking_keys(self.sb, self.api)
        have = self.warehouse.tracking_ids()
        ids = Ids(self.sb, self.api)
        loaded = self.warehouse.contacts()
        acct = self.sb.account
        contacts = [ids.contact(c) for c in range(1, acct.contact_count + 1)]
        stale = 0
        for cid in self.changed_contacts:
            got = loaded.get(ids.contact(cid))
            want_s = acct.contact_modified_ms(cid) // 1000
            if got is None or int(got.timestamp()) != want_s:
                stale += 1
        return {
            "activities": len(want),
            "activities_missing": len(want.keys() - have),
            "activities_extra": len(have - want.keys()),
            "contacts": len(contacts),
            "contacts_missing": sum(1 for c in contacts if c not in loaded),
            "contacts_stale": stale,
        }


def tier_config(tiers: str) -> dict[str, Any]:
    """The config of a tier setting: ``default`` (the shipped tiers) or ``off`` (every
    campaign checked on every run)."""
    if tiers == "default":
        return {}
    return {"tracking": {"tiers": [[0, 0]]}}


# --------------------------------------------------------------------------- printing


def out(text: str = "") -> None:
    print(text, flush=True)


def show_run(fig: RunFigure) -> None:
    per = ", ".join(f"{n} {c}" for n, c in fig.tables.items() if c)
    out(f"  {fig.label}: {fig.calls:,} calls ({per}); {fig.rows:,} rows")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


# --------------------------------------------------------------------------- scenarios


def scenario_first(b: Bench) -> None:
    fig = b.run("first load")
    show_run(fig)
    audit = b.audit()
    out(f"  after the first load: {audit['activities']:,} visible activities, "
        f"{audit['activities_missing']} missing, {audit['activities_extra']} extra; "
        f"{audit['contacts']:,} contacts, {audit['contacts_missing']} missing")


def scenario_unchanged(b: Bench) -> bool:
    b.advance(60)
    fig = b.run("unchanged incremental (a minute later)")
    show_run(fig)
    bound = b.table_count + fig.campaigns_moved + 1
    ok = fig.calls <= bound
    out(f"  GOAL unchanged run <= tables {b.table_count} + campaigns with new activity "
        f"{fig.campaigns_moved} + 1 = {bound}: {fig.calls:,} calls -> {verdict(ok)}")
    if not ok:
        over = ", ".join(f"{n} {c}" for n, c in fig.tables.items() if c > 1)
        out(f"    tables above one call: {over}")
    return ok


def scenario_day(b: Bench) -> None:
    n = max(1, b.plan.contacts // 100)
    b.advance(DAY)
    b.change_contacts(n)
    fig = b.run(f"a day later, {n:,} contacts changed, a day of campaign activity")
    show_run(fig)
    out(f"  campaigns with new activity: {fig.campaigns_moved}")


def week_hours(plan: AccountPlan, days: int) -> dict[int, int]:
    """Hour of the simulated days -> new campaigns sent just before that hour's run: one
    every ``send_every_days``, at 10:00."""
    sends: dict[int, int] = {}
    t = 0.0
    while t < days:
        h = int(t) * 24 + 10
        sends[h] = sends.get(h, 0) + 1
        t += plan.send_every_days
    return sends


def scenario_week(b: Bench, days: int) -> dict[str, Any]:
    """Hourly runs for ``days`` days; returns the figures of the goals."""
    per_hour = max(1, b.plan.contacts // 100 // 24)
    sends = week_hours(b.plan, days)
    start = len(b.runs)
    per_day: list[int] = []
    over_bound = 0
    for day in range(days):
        calls = 0
        for hour in range(24):
            h = day * 24 + hour
            b.advance(HOUR)
            b.change_contacts(per_hour)
            for _ in range(sends.get(h, 0)):
                b.send()
            if hour == 12:
                b.retract(day)
            fig = b.run(f"day {day + 1} {hour:02d}:00")
            calls += fig.calls
            if fig.status != "succeeded":
                out(f"  {fig.label}")
            if fig.calls > b.table_count + fig.campaigns_moved + 1:
                over_bound += 1
        per_day.append(calls)
        sent = sum(sends.get(day * 24 + h, 0) for h in range(24))
        out(f"  day {day + 1}: {calls:,} calls in 24 runs (largest run "
            f"{max(r.calls for r in b.runs[-24:]):,}; campaigns sent {sent})")
    week = b.runs[start:]
    by_table: Counter[str] = Counter()
    for r in week:
        by_table.update(r.tables)
    out(f"  calls per day: {', '.join(f'{c:,}' for c in per_day)}; max {max(per_day):,}, "
        f"mean {statistics.mean(per_day):,.0f}")
    out("  calls over the week by table: " + ", ".join(
        f"{n} {c:,}" for n, c in by_table.most_common()))
    out(f"  hourly runs above tables + campaigns with new activity + 1: {over_bound} of "
        f"{len(week)}")
    return {"per_day": per_day, "by_table": by_table, "over_bound": over_bound}


def report_delays(b: Bench) -> None:
    """How long activity waited between arriving at CC and landing in the warehouse, by
    the age of its campaign when it arrived."""
    if not b.delays:
        out("  no activity arrived after the first load")
        return
    bands = ((0, 30, "< 30 days"), (30, 90, "30-90 days"), (90, 10**6, "> 90 days"))
    for lo, hi, name in bands:
        d = [h for age, h in b.delays if lo <= age < hi]
        if d:
            out(f"  arrival -> loaded, campaigns {name} old: {len(d):,} activities, "
                f"p50 {percentile(d, 0.5):.1f} h, p95 {percentile(d, 0.95):.1f} h, "
                f"max {max(d):.1f} h")
        else:
            out(f"  arrival -> loaded, campaigns {name} old: no activity arrived")


def report_model(sb: Any) -> None:
    """The activity model's tail: the share of the non-send activity of the sent campaigns
    that arrives 30 and 90 days or more after the send (every activity, arrived or not)."""
    acct = sb.account
    sends = sent_campaigns(sb)
    with acct.lock:
        log = acct.activities  # the whole log: arrived or still to come
        acts = [log.get(seq) for seq in range(len(log))]
    ages = [(a.ts_ms - sends[a.campaign_id]) / (DAY * 1000) for a in acts
            if a.campaign_id in sends and a.type_name != "EMAIL_SEND"]
    if not ages:
        return
    ages.sort()
    after30 = 1 - bisect.bisect_left(ages, 30) / len(ages)
    after90 = 1 - bisect.bisect_left(ages, 90) / len(ages)
    after2 = 1 - bisect.bisect_left(ages, 2) / len(ages)
    out(f"  activity model: of {len(ages):,} opens/clicks/forwards/bounces/unsubscribes, "
        f"{after2:.1%} arrive 2 days or more after the send, {after30:.2%} after 30 days, "
        f"{after90:.2%} after 90 days")


def show_audit(b: Bench, label: str) -> dict[str, int]:
    audit = b.audit()
    out(f"  {label}: {audit['activities']:,} visible activities, "
        f"{audit['activities_missing']} missing, {audit['activities_extra']} extra "
        f"(retracted at the source); {audit['contacts']:,} contacts, "
        f"{audit['contacts_missing']} missing, {audit['contacts_stale']} of the "
        f"{len(b.changed_contacts):,} changed ones stale")
    return audit


# --------------------------------------------------------------------------- main


def bench_one(plan: AccountPlan, api: str, tiers: str, scenarios: list[str], days: int
              ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        b = Bench(plan, api, tiers, Path(tmp))
        try:
            out(f"\n== {plan.label()}; API {api}; tiers {tiers}; sandbox: "
                f"frozen clock, decay model (built in {time.monotonic() - t0:.0f} s)")
            report_model(b.sb)
            scenario_first(b)  # every other scenario starts from a loaded warehouse
            if "unchanged" in scenarios:
                results["unchanged_ok"] = scenario_unchanged(b)
            if "day" in scenarios:
                scenario_day(b)
            if "week" in scenarios and days > 0:
                results["week"] = scenario_week(b, days)
                report_delays(b)
            show_audit(b, "truth after the runs")
            if tiers != "off":
                # what the tiers left for later is delayed, not lost: one run that checks
                # every campaign must bring the warehouse level with the truth
                show_run(b.run("catch-up run, every campaign due (tiers [[0, 0]])",
                               tiers="off"))
            audit = show_audit(b, "truth now")
            lost = (audit["activities_missing"] + audit["activities_extra"]
                    + audit["contacts_missing"] + audit["contacts_stale"])
            results["lost"] = lost
            out(f"  GOAL 0 rows lost against the sandbox's truth: {lost} -> "
                f"{verdict(lost == 0)}")
            results["runs"] = b.runs
        finally:
            b.close()
        out(f"  ({time.monotonic() - t0:.0f} s of wall time; not a figure)")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--account", default="small,large",
                    help="comma-separated: " + ", ".join(ACCOUNTS))
    ap.add_argument("--api", default="v2,v3", help="comma-separated: v2, v3")
    ap.add_argument("--scenario", default=",".join(SCENARIOS),
                    help="comma-separated: " + ", ".join(SCENARIOS)
                    + " (the first load always runs)")
    ap.add_argument("--days", type=int, default=7, help="simulated days of hourly runs")
    ap.add_argument("--tiers", default="default", choices=("default", "off", "both"),
                    help="the campaign tiers: shipped defaults, off (every campaign every "
                    "run), or both one after the other")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    scenarios = [s for s in args.scenario.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    tiers = ["default", "off"] if args.tiers == "both" else [args.tiers]
    out(f"bench_budget: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; calls are counts, "
        f"independent of the machine")
    failed = False
    for name in args.account.split(","):
        plan = ACCOUNTS[name]
        for api in args.api.split(","):
            for tier in tiers:
                res = bench_one(plan, api, tier, scenarios, args.days)
                failed |= res.get("lost", 0) != 0
                week = res.get("week")
                if week is not None and plan.campaigns >= 500:
                    worst = max(week["per_day"])
                    ok = worst <= DAILY_QUOTA
                    out(f"  GOAL hourly schedule of the {plan.campaigns}-campaign account "
                        f"within {DAILY_QUOTA:,} calls a day: max {worst:,}/day, room "
                        f"{DAILY_QUOTA - worst:,} -> {verdict(ok)}")
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
