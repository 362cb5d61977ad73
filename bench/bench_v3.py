"""Benchmark of the v3 read, side by side with v2 on the same sandbox account.

    python bench/bench_v3.py                                  # 100k contacts
    python bench/bench_v3.py --contacts 20000 --paced-seconds 20 --changes 500
    python bench/bench_v3.py --skip-sync --paced-seconds 0      # calls only (machine-independent)
    python bench/bench_v3.py --paced-sweep 3100,6000,10000,20000  # paging vs export, paced

Four figures (docs/performance.md, section "v3"):

1. rows/s with the rate limit off: a full ``run_sync`` into DuckDB, v2 then v3, each in a
   child process (every table each version fills); the v3/v2 ratio is what to compare
   (machines differ 2-3x in absolute speed).
2. API calls per 100k contacts for the contacts table: a first load by paging and by the bulk
   export (``ctctsync.api.v3.export``), and an incremental read after ``--changes`` edits;
   v2's paging beside them. Calls do not depend on the machine; times are printed for the
   ratio only.
3. calls per sent campaign: tracking (contact_tracking), summaries (email_campaign_summary)
   and, v3 only, campaign activities (email_campaign_activities), with the sent-campaign
   listing they share.
4. the share of the 4 requests/s budget a paced run uses: sandbox limited to 4 requests/s,
   client pacing on, ``run_sync`` stopped after ``--paced-seconds``: calls / (4 x elapsed);
   then a paced contacts first load by paging and by export (the time a real account sees).

The load average is printed with the figures (1-minute, psutil).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from ctctsync.tables import ApiVersion

HERE = Path(__file__).resolve()
PER = 100_000
"""Calls are reported per this many contacts."""


# --------------------------------------------------------------------------- child


def child_sync(raw_config: str, stop_after: float | None) -> None:
    """Run run_sync; print one JSON line with its figures."""
    from ctctsync.config import SyncConfig
    from ctctsync.sync import run_sync

    cfg = SyncConfig.model_validate(json.loads(raw_config))
    t0 = time.monotonic()

    def should_stop() -> bool:
        return stop_after is not None and time.monotonic() - t0 > stop_after

    result = run_sync(cfg, should_stop=should_stop)
    elapsed = time.monotonic() - t0
    print(json.dumps({
        "status": result.status, "error": result.error, "seconds": elapsed,
        "rows": result.rows, "api_calls": result.api_calls,
        "tables": {n: {"rows": t.rows, "api_calls": t.api_calls, "status": t.status}
                   for n, t in result.tables.items()},
    }), flush=True)


def _run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE), *args], stdout=subprocess.PIPE,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}): {out.stdout[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- helpers


def _spec(contacts: int) -> Any:
    from ctctsync.sandbox import AccountSpec

    # bench_sync.py's account: 30 sent campaigns, ~3 % of the contacts as activities each
    return AccountSpec(seed=42, contacts=contacts, lists=20, campaigns=30,
                       activities_per_campaign=max(50, contacts * 3 // 100),
                       library_files=200, trash_files=20, events=10)


def _load() -> str:
    return f"load average {psutil.getloadavg()[0]:.1f}"


def _config(sb: Any, version: str, tmp: Path, qps: float | None) -> dict[str, Any]:
    creds = sb.credentials
    token = creds.v3_access_token if version == "v3" else creds.access_token
    return {
        "integration": f"bench{version}",
        "source": {"api_version": version, "base_url": sb.base_url, "api_key": creds.api_key,
                   "access_token": token, "qps_limit": qps, "daily_limit": None},
        "warehouse": {"destination": "duckdb", "path": str(tmp / f"{version}.duckdb")},
        "state_url": f"sqlite:///{tmp / f'state-{version}.db'}",
    }


def _sync(sb: Any, version: str, qps: float | None, stop_after: float | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--child-sync", json.dumps(_config(sb, version, Path(tmp), qps))]
        if stop_after is not None:
            args += ["--stop-after", str(stop_after)]
        return _run_child(args)


def _client(sb: Any, version: str) -> Any:
    from ctctsync.api.client import ApiClient
    from ctctsync.api.ratelimit import RateLimiter

    creds = sb.credentials
    if version == "v3":
        return ApiClient(sb.base_url, creds.api_key, creds.v3_access_token,
                         send_api_key=False, limiter=RateLimiter(qps=None, daily=None))
    return ApiClient(sb.base_url, creds.api_key, creds.access_token,
                     limiter=RateLimiter(qps=None, daily=None))


def _count(sb: Any, version: str, read: Callable[[Any], Iterator[list[Any]]]
           ) -> tuple[int, int, float]:
    """(rows, calls, seconds) of one read with a fresh client."""
    with _client(sb, version) as client:
        t0 = time.monotonic()
        rows = sum(len(page) for page in read(client))
        return rows, client.calls.total, time.monotonic() - t0


# --------------------------------------------------------------------------- figures


def rows_per_second(sb: Any) -> None:
    print(f"\n(i) full run_sync -> DuckDB, rate limit off ({_load()} before)")
    res = {v: _sync(sb, v, None, None) for v in ("v2", "v3")}
    for v, r in res.items():
        print(f"  {v}: status {r['status']}{' (' + r['error'] + ')' if r['error'] else ''}; "
              f"{r['rows']:,} rows in {r['seconds']:.1f} s = {r['rows'] / r['seconds']:,.0f} "
              f"rows/s; {r['api_calls']:,} calls")
        print("      " + ", ".join(f"{n} {t['rows']:,}/{t['api_calls']}"
                                   for n, t in r["tables"].items()))
    v2, v3 = res["v2"], res["v3"]
    print(f"  v3/v2: rows/s x{(v3['rows'] / v3['seconds']) / (v2['rows'] / v2['seconds']):.2f}, "
          f"calls x{v3['api_calls'] / v2['api_calls']:.2f} ({_load()} after)")


def contacts_calls(sb: Any, changes: int) -> None:
    from ctctsync.api.v2.extract import extract as v2_extract
    from ctctsync.api.v3 import export
    from ctctsync.api.v3.extract import extract as v3_extract
    from ctctsync.tables import TABLES

    n = sb.account.contact_count
    t = TABLES["contacts"].for_version("v3")
    src = t.sources["v3"]
    exportable = replace(t, columns=tuple(c for c in t.columns
                                          if c.name in export.EXPORT_COLUMNS))
    print(f"\n(ii) contacts table, {n:,} contacts ({_load()} before); calls per "
          f"{PER:,} contacts in brackets (the export's do not grow with contacts)")
    reads: list[tuple[str, str, Callable[[Any], Iterator[list[Any]]]]] = [
        ("v2 first load, paging", "v2", lambda c: v2_extract("contacts", c)),
        ("v3 first load, paging", "v3", lambda c: v3_extract("contacts", c)),
        ("v3 first load, export (read_contacts, export columns)", "v3",
         lambda c: export.read_contacts(c, None, table=exportable, source=src)),
    ]
    for label, version, read in reads:
        rows, calls, secs = _count(sb, version, read)
        scaled = "fixed" if "export" in label else f"{calls * PER / n:,.1f}"
        print(f"  {label}: {rows:,} rows, {calls} calls [{scaled}], {secs:.1f} s")
    print(f"  strategy at {n:,} contacts: {export.first_load_strategy(n)} (export columns), "
          f"{export.first_load_strategy(n, t.column_names)} (every column); threshold "
          f"{export.EXPORT_THRESHOLD:,}")
    before = sb.account.advance(1)
    sb.account.update_contacts(changes)
    since = datetime.fromtimestamp(before / 1000, UTC)
    for label, version, read in [
        ("v2 incremental", "v2", lambda c: v2_extract("contacts", c, since)),
        ("v3 incremental", "v3", lambda c: v3_extract("contacts", c, since)),
        ("v3 incremental via read_contacts (export columns: counts, then pages)", "v3",
         lambda c: export.read_contacts(c, since, table=exportable, source=src)),
    ]:
        rows, calls, secs = _count(sb, version, read)
        print(f"  {label}, {changes:,} changes: {rows:,} rows, {calls} calls, {secs:.2f} s")


PER_CAMPAIGN: dict[ApiVersion, tuple[str, ...]] = {
    "v2": ("contact_tracking", "email_campaign_summary"),
    "v3": ("contact_tracking", "email_campaign_summary", "email_campaign_activities"),
}


def campaign_calls(sb: Any) -> None:
    from ctctsync.api.readers import READERS_BY_VERSION

    print(f"\n(iii) calls per sent campaign ({sb.account.spec.activities_per_campaign:,} "
          "activities per campaign)")
    for version, names in PER_CAMPAIGN.items():
        reader = READERS_BY_VERSION[version]
        with _client(sb, version) as client:
            sent = reader.sent_campaigns(client)
            parts = {"sent campaign list": client.calls.total}
            for name in names:
                before = client.calls.total
                for _ in reader.extract(name, client, None, campaigns=sent):  # type: ignore[arg-type]
                    pass
                parts[name] = client.calls.total - before
        total = sum(parts.values())
        print(f"  {version}: {len(sent)} sent campaigns, {total} calls = "
              f"{total / len(sent):.2f} per campaign; "
              + ", ".join(f"{k} {v} ({v / len(sent):.2f})" for k, v in parts.items()))


def paced_share(spec: Any, seconds: float) -> None:
    from ctctsync.sandbox import Sandbox

    sb = Sandbox(spec, qps_limit=4, daily_limit=None).start()
    try:
        print(f"\n(iv) paced run_sync (sandbox and client at 4 requests/s), stopped after "
              f"{seconds:.0f} s ({_load()} before)")
        for version in ("v2", "v3"):
            sb.counters.reset()
            r = _sync(sb, version, 4, seconds)
            snap = sb.counters.snapshot()
            throttled = sum(e.get("403", 0) + e.get("429", 0)
                            for e in snap["endpoints"].values())
            print(f"  {version}: {r['api_calls']} calls in {r['seconds']:.1f} s = "
                  f"{r['api_calls'] / (4 * r['seconds']):.1%} of 4 requests/s; status "
                  f"{r['status']}; throttling answers {throttled}")
        paced_contacts(sb)
        print(f"  ({_load()} after)")
    finally:
        sb.stop()


def paced_contacts(sb: Any) -> None:
    """A contacts first load at 4 requests/s, by paging and by export: the time a real
    account would see (calls cost at least 0.25 s each)."""
    from ctctsync.api.client import ApiClient
    from ctctsync.api.ratelimit import RateLimiter
    from ctctsync.api.v3 import export
    from ctctsync.tables import TABLES

    t = TABLES["contacts"].for_version("v3")
    src = t.sources["v3"]
    exportable = replace(t, columns=tuple(c for c in t.columns
                                          if c.name in export.EXPORT_COLUMNS))
    creds = sb.credentials
    for label, table in (("paging", t), ("export", exportable)):
        with ApiClient(sb.base_url, creds.api_key, creds.v3_access_token, send_api_key=False,
                       limiter=RateLimiter(qps=4, daily=None)) as client:
            t0 = time.monotonic()
            rows = sum(len(p) for p in export.read_contacts(client, None, table=table,
                                                            source=src))
            secs = time.monotonic() - t0
        throttled = client.calls.retry_stats().throttles
        print(f"  v3 contacts first load by {label}, paced: {rows:,} rows, "
              f"{client.calls.total} calls ({throttled} of them retries after a throttling "
              f"answer) in {secs:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--changes", type=int, default=1000,
                    help="contacts edited before the incremental read")
    ap.add_argument("--paced-seconds", type=float, default=60.0,
                    help="length of each paced run (0: skip)")
    ap.add_argument("--skip-sync", action="store_true", help="skip figure (i)")
    ap.add_argument("--paced-sweep", default="",
                    help="only: paced contacts first loads at these sizes (e.g. 3100,6000)")
    ap.add_argument("--child-sync", help=argparse.SUPPRESS)
    ap.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_sync:
        child_sync(args.child_sync, args.stop_after)
        return

    from ctctsync.sandbox import Sandbox

    if args.paced_sweep:
        for n in (int(x) for x in args.paced_sweep.split(",")):
            sb = Sandbox(_spec(n), qps_limit=4, daily_limit=None).start()
            try:
                print(f"{n:,} contacts, sandbox and client at 4 requests/s ({_load()}):")
                paced_contacts(sb)
            finally:
                sb.stop()
        return
    spec = _spec(args.contacts)
    t0 = time.monotonic()
    sb = Sandbox(spec, qps_limit=None, daily_limit=None).start()
    print(f"sandbox: {spec.contacts:,} contacts, {spec.campaigns} campaigns x "
          f"{spec.activities_per_campaign:,} activities, built in {time.monotonic() - t0:.1f} s;"
          f" {psutil.cpu_count()} cores, {_load()}")
    try:
        if not args.skip_sync:
            rows_per_second(sb)
        campaign_calls(sb)
        contacts_calls(sb, args.changes)  # last: it edits contacts
    finally:
        sb.stop()
    if args.paced_seconds > 0:
        paced_share(spec, args.paced_seconds)


if __name__ == "__main__":
    main()
