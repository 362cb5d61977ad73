"""Benchmark: the sync's own CPU per row, side by side with plain dlt fed Arrow tables.

For each table (and API version) two child processes read the same sandbox account:

* ``ours``: ctctsync's ``run_sync`` limited to that table (registry mapping to typed Arrow,
  de-duplication, dlt load with ctctsync's settings) into a fresh DuckDB file;
* ``dlt``: the baseline a dlt user would write: the same raw pages, read by the same
  ctctsync reader and HTTP client (so fetching and JSON parsing cost both sides the same),
  each page turned into Arrow with ``pyarrow.Table.from_pylist`` and handed to a
  ``dlt.resource`` that ``pipeline.run`` loads into DuckDB with dlt's default settings,
  except the one its error message asks for (``arrow_concat_promote_options="default"``:
  pages infer different Arrow schemas, which dlt refuses by default).

The sandbox serves the account from this (the parent) process; the figure is the child's
own CPU (``getrusage(RUSAGE_SELF)``, every thread of it: HTTP, mapping, dlt, DuckDB) from
just before the sync to just after, interpreter start-up and imports excluded; the part of
it spent in Python's cyclic garbage collector is printed beside it. Each pair is
run ``--repeats`` times, alternating which goes first; the medians are printed with the
ratio ours/dlt of rows per CPU-second (> 1: ours uses less CPU per row). Absolute rates
differ between machines 2-3x; the ratio, measured in one run, is the figure to compare.

    python bench/bench_cpu.py                              # 300k contacts, both versions
    python bench/bench_cpu.py --contacts 50000 --repeats 1 # quick look
    python bench/bench_cpu.py --code before=/tmp/old/src --code after=src
        # ctctsync of two source trees (e.g. a git worktree of an older commit) in one run
    python bench/bench_cpu.py --profile /tmp/ours.prof --tables contacts --versions v2
        # cProfile of one ours child per (version, table), to read with pstats

Figures and the commands used are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _GcClock:
    """CPU spent in Python's cyclic garbage collector (``gc.callbacks``), for the report."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0
        self.on = False
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.process_time()
        elif self.on:
            self.seconds += time.process_time() - self._start


_GC = _GcClock()


# --------------------------------------------------------------------------- children


def child_ours(raw_config: str, table: str, profile: str | None) -> None:
    """ctctsync's run_sync of one table; prints one JSON line (rows, cpu, seconds)."""
    from ctctsync.config import SyncConfig
    from ctctsync.sync import run_sync

    cfg = SyncConfig.model_validate(json.loads(raw_config))
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    cpu0, t0 = _cpu(), time.monotonic()
    _GC.on = True
    if prof is not None:
        prof.enable()
    result = run_sync(cfg, only_tables=[table])
    if prof is not None:
        prof.disable()
    cpu, seconds = _cpu() - cpu0, time.monotonic() - t0
    _GC.on = False
    if prof is not None and profile:
        prof.dump_stats(profile)
    if result.status != "succeeded":
        raise SystemExit(f"sync {result.status}: {result.error}")
    print(json.dumps({"rows": result.rows, "cpu": cpu, "seconds": seconds, "gc": _GC.seconds}),
          flush=True)


def child_dlt(raw_config: str, table: str) -> None:
    """The baseline: the same pages, ``pa.Table.from_pylist`` each, dlt's defaults."""
    # the one setting dlt's own error message asks for: the pages' inferred Arrow schemas
    # differ (struct fields in another order, a column all null on one page), which dlt's
    # default ("none") refuses; "default" is its lossless promotion
    os.environ.setdefault("DATA_WRITER__ARROW_CONCAT_PROMOTE_OPTIONS", "default")
    import dlt
    import pyarrow as pa

    from ctctsync.api import ApiClient
    from ctctsync.api.ratelimit import RateLimiter
    from ctctsync.api.readers import READERS_BY_VERSION
    from ctctsync.api.readnotes import ReadNotes
    from ctctsync.config import SyncConfig

    cfg = SyncConfig.model_validate(json.loads(raw_config))
    src = cfg.source
    version = src.api_version
    spec = cfg.table(table)
    reader = READERS_BY_VERSION[version]
    cpu0, t0 = _cpu(), time.monotonic()
    _GC.on = True
    with ApiClient(src.base_url, src.api_key.get_secret_value(),
                   src.access_token.get_secret_value(), send_api_key=version == "v2",
                   limiter=RateLimiter(qps=None, daily=None)) as client:
        walks = spec.sources[version].walks_sent_campaigns
        campaigns = reader.sent_campaigns(client) if walks else None

        @dlt.resource(name=table, write_disposition="replace")
        def pages() -> Any:
            for page in reader.extract(spec, client, None, campaigns=campaigns,
                                       notes=ReadNotes()):
                if page:
                    yield pa.Table.from_pylist(page)

        with tempfile.TemporaryDirectory() as workdir:
            pipeline = dlt.pipeline(f"bench_cpu_{table}",
                                    destination=dlt.destinations.duckdb(cfg.warehouse.path),
                                    dataset_name="baseline", pipelines_dir=workdir)
            pipeline.run(pages())
            with pipeline.sql_client() as c:
                rows = c.execute_sql(f"SELECT COUNT(*) FROM {table}")[0][0]
    cpu, seconds = _cpu() - cpu0, time.monotonic() - t0
    _GC.on = False
    print(json.dumps({"rows": rows, "cpu": cpu, "seconds": seconds, "gc": _GC.seconds}),
          flush=True)


# --------------------------------------------------------------------------- parent


def _spec(contacts: int) -> Any:
    from ctctsync.sandbox import AccountSpec

    # bench_sync.py's account: 30 sent campaigns, ~3 % of the contacts as activities each
    return AccountSpec(seed=42, contacts=contacts, lists=20, campaigns=30,
                       activities_per_campaign=max(50, contacts * 3 // 100),
                       library_files=200, trash_files=20, events=10)


def _config(sb: Any, version: str, tmp: Path, table: str) -> dict[str, Any]:
    creds = sb.credentials
    token = creds.v3_access_token if version == "v3" else creds.access_token
    return {
        "integration": f"cpu{version}",
        "source": {"api_version": version, "base_url": sb.base_url, "api_key": creds.api_key,
                   "access_token": token, "qps_limit": None, "daily_limit": None},
        "warehouse": {"destination": "duckdb", "path": str(tmp / "bench.duckdb")},
        "state_url": f"sqlite:///{tmp / 'state.db'}",
        "tables": {table: None},
    }


def _run_child(args: list[str], src: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, str(HERE), *args], stdout=subprocess.PIPE,
                         text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}): {out.stdout[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _one(sb: Any, version: str, table: str, who: str, src: str | None,
         profile: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        raw = json.dumps(_config(sb, version, Path(tmp), table))
        if who == "dlt":
            return _run_child(["--child-dlt", raw, table], src)
        args = ["--child-ours", raw, table]
        if profile:
            args += ["--profile", profile]
        return _run_child(args, src)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--contacts", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tables", default="contacts,contact_tracking")
    ap.add_argument("--versions", default="v2,v3")
    ap.add_argument("--code", action="append", default=[], metavar="NAME=SRC",
                    help="ctctsync source tree to measure as 'ours' (repeatable; default: "
                         "this checkout's src)")
    ap.add_argument("--profile", help="write a cProfile of each ours child to "
                                      "PROFILE.<version>.<table>")
    ap.add_argument("--child-ours", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-dlt", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_ours:
        child_ours(*args.child_ours, args.profile)
        return
    if args.child_dlt:
        child_dlt(*args.child_dlt)
        return

    from ctctsync.sandbox import Sandbox

    codes = [tuple(c.split("=", 1)) for c in args.code] or [("ours", str(REPO / "src"))]
    codes = [(name, str(Path(src).resolve())) for name, src in codes]
    tables = args.tables.split(",")
    versions = args.versions.split(",")
    spec = _spec(args.contacts)
    t0 = time.monotonic()
    sb = Sandbox(spec, qps_limit=None, daily_limit=None).start()
    print(f"sandbox: {spec.contacts:,} contacts, {spec.campaigns} campaigns x "
          f"{spec.activities_per_campaign:,} activities, built in {time.monotonic() - t0:.1f} s;"
          f" {psutil.cpu_count()} cores, load average {psutil.getloadavg()[0]:.1f}", flush=True)
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    whos = [*(name for name, _ in codes), "dlt"]
    srcs = dict(codes)
    try:
        for rep in range(args.repeats):
            for version in versions:
                for table in tables:
                    # alternate the order, so a drift of the machine's speed hits both sides
                    order = whos if rep % 2 == 0 else list(reversed(whos))
                    for who in order:
                        profile = (f"{args.profile}.{version}.{table}"
                                   if args.profile and who != "dlt" else None)
                        res = _one(sb, version, table, who, srcs.get(who, codes[0][1]),
                                   profile)
                        runs.setdefault((version, table, who), []).append(res)
                        print(f"  run {rep + 1} {version} {table:<17} {who:<8} "
                              f"{res['rows']:>9,} rows  {res['cpu']:7.2f} CPU-s  "
                              f"{res['rows'] / res['cpu']:>9,.0f} rows/CPU-s  "
                              f"(GC {res.get('gc', 0):.2f} CPU-s; "
                              f"{res['seconds']:.1f} s wall, load "
                              f"{psutil.getloadavg()[0]:.1f})", flush=True)
    finally:
        sb.stop()
    print(f"\nmedians of {args.repeats} run(s); ratio = ours rows/CPU-s / dlt rows/CPU-s "
          "(> 1: ours spends less CPU per row)")
    print("| version | table | code | rows | CPU-s | rows/CPU-s | ratio to dlt |")
    print("|---|---|---|---|---|---|---|")
    for version in versions:
        for table in tables:
            base = _median_rate(runs[(version, table, "dlt")])
            for who in whos:
                rs = runs[(version, table, who)]
                rate = _median_rate(rs)
                cpu = statistics.median(r["cpu"] for r in rs)
                ratio = "" if who == "dlt" else f"{rate / base:.2f}"
                print(f"| {version} | {table} | {who} | {rs[0]['rows']:,} | {cpu:.2f} | "
                      f"{rate:,.0f} | {ratio} |")


def _median_rate(rs: list[dict[str, Any]]) -> float:
    return statistics.median(r["rows"] / r["cpu"] for r in rs)


if __name__ == "__main__":
    main()
