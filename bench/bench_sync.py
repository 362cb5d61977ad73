"""Benchmark: ctctsync's sync (Arrow pages -> dlt -> DuckDB) against a plain dlt pipeline.

The sandbox serves the account from this process; each sync runs in a child process, so the
peak RSS measured (psutil, the child and its own children, sampled every 50 ms) is the
sync's alone.

    python bench/bench_sync.py                        # 100k contacts, rate limit off
    python bench/bench_sync.py --contacts 1000000 --skip-plain
    python bench/bench_sync.py --rate-limited --seconds 60   # real 4 requests/s limit

Figures and the exact commands used are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve()


# --------------------------------------------------------------------------- children


def child_sync(raw_config: str, stop_after: float | None) -> None:
    """Run ctctsync's run_sync; print one JSON line with its figures."""
    import httpx

    from ctctsync.api import ApiClient, fingerprint, limiter_for
    from ctctsync.config import SourceConfig, SyncConfig
    from ctctsync.sync import engine, run_sync

    sent: list[float] = []

    class Recording(httpx.HTTPTransport):
        """Notes when each request leaves, to measure the pacing between requests."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(time.monotonic())
            return super().handle_request(request)

    clients: list[ApiClient] = []

    def recording_client(src: SourceConfig, should_stop=None, redactor=None,
                         renew_token=None) -> ApiClient:
        # what engine.make_client builds (one client per table, sharing the key's limiter),
        # plus the recording transport
        key = src.api_key.get_secret_value()
        client = ApiClient(src.base_url, key, src.access_token.get_secret_value(),
                           limiter=limiter_for(fingerprint(key), src.qps_limit, src.daily_limit),
                           transport=Recording(), should_stop=should_stop, redactor=redactor,
                           send_api_key=src.api_version == "v2", renew_token=renew_token)
        clients.append(client)
        return client

    engine.make_client = recording_client  # measuring only; run_sync builds its clients
    cfg = SyncConfig.model_validate(json.loads(raw_config))
    t0 = time.monotonic()

    def should_stop() -> bool:
        return stop_after is not None and time.monotonic() - t0 > stop_after

    result = run_sync(cfg, should_stop=should_stop)
    elapsed = time.monotonic() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sent.sort()
    gaps = sorted(((b - a, a - t0) for a, b in itertools.pairwise(sent)), reverse=True)
    print(json.dumps({
        "status": result.status,
        "error": result.error,
        "seconds": elapsed,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "rows": result.rows,
        "api_calls": result.api_calls,
        "slowdowns": clients[0].limiter.slowdowns if clients else 0,
        "request_span": (sent[-1] - sent[0]) if len(sent) > 1 else 0.0,
        "requests": len(sent),
        "largest_gaps": [(round(g, 2), round(at, 1)) for g, at in gaps[:5]],
        "tables": {n: {"rows": t.rows, "api_calls": t.api_calls, "status": t.status}
                   for n, t in result.tables.items()},
    }), flush=True)


def child_plain(base_url: str, api_key: str, token: str, db_path: str) -> None:
    """The baseline: dlt's default path, a resource yielding dicts from httpx (contacts)."""
    import dlt
    import httpx

    @dlt.resource(name="contacts", write_disposition="replace", primary_key="id")
    def contacts() -> Any:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as http:
            params: dict[str, Any] = {"api_key": api_key, "limit": 500, "status": "ALL"}
            url = "/v2/contacts"
            while True:
                body = http.get(url, params=params).json()
                yield from body["results"]
                nxt = body["meta"]["pagination"].get("next_link")
                if not nxt:
                    return
                url, query = nxt.split("?", 1)
                params = dict(p.split("=", 1) for p in query.split("&"))
                params["api_key"] = api_key

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        pipeline = dlt.pipeline("bench_plain", destination=dlt.destinations.duckdb(db_path),
                                dataset_name="baseline", pipelines_dir=workdir)
        pipeline.run(contacts())
        with pipeline.sql_client() as c:
            rows = c.execute_sql("SELECT COUNT(*) FROM contacts")[0][0]
    print(json.dumps({"seconds": time.monotonic() - t0, "rows": rows}), flush=True)


# --------------------------------------------------------------------------- parent


def _run_child(args: list[str]) -> tuple[dict[str, Any], int]:
    """Run a child; returns its JSON line and its peak RSS (bytes, incl. its children)."""
    proc = subprocess.Popen([sys.executable, str(HERE), *args], stdout=subprocess.PIPE,
                            text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                rss = parent.memory_info().rss
                for child in parent.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        rss += child.memory_info().rss
            except psutil.NoSuchProcess:
                return
            peak = max(peak, rss)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), peak


def _spec(contacts: int) -> Any:
    from ctctsync.sandbox import AccountSpec

    # ratios of a mid-size account: 30 sent campaigns a year, each reaching ~3% of the
    # contacts with sends/opens/clicks; a few hundred library files; a handful of events
    return AccountSpec(seed=42, contacts=contacts, lists=20, campaigns=30,
                       activities_per_campaign=max(50, contacts * 3 // 100),
                       library_files=200, trash_files=20, events=10)


def _report(res: dict, peak: int, sandbox_cpu: float, throttled: int, *,
            rate_limited: bool) -> None:
    """Print the figures of one ctctsync run."""
    print(f"\nctctsync run_sync -> DuckDB: status {res['status']}"
          + (f" ({res['error']})" if res["error"] else ""))
    print(f"  rows {res['rows']:,} in {res['seconds']:.1f} s = "
          f"{res['rows'] / res['seconds']:,.0f} rows/s end to end")
    print(f"  API calls {res['api_calls']:,} = {res['api_calls'] / res['seconds']:.2f} "
          f"requests/s; throttling answers from the sandbox: {throttled}; client "
          f"slow-downs: {res['slowdowns']}")
    if rate_limited:
        print(f"  request rate {res['api_calls'] / res['seconds'] / 4:.1%} of the "
              f"allowed 4 requests/s over the whole run")
        if res["request_span"]:
            paced = (res["requests"] - 1) / res["request_span"]
            print(f"  between first and last request: {paced:.2f} requests/s = "
                  f"{paced / 4:.1%} of the allowed rate; largest gaps (s, at s): "
                  f"{res['largest_gaps']}")
    print(f"  peak RSS (sync process tree): {peak / 2**20:,.0f} MiB")
    print(f"  CPU: sync process {res['cpu_seconds']:.1f} s "
          f"({res['rows'] / res['cpu_seconds']:,.0f} rows per CPU-second), sandbox "
          f"(this process) {sandbox_cpu:.1f} s; {psutil.cpu_count()} cores, load "
          f"average {psutil.getloadavg()[0]:.1f}")
    print("  per table: " + ", ".join(
        f"{n} {t['rows']:,} rows/{t['api_calls']} calls" for n, t in res["tables"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--skip-plain", action="store_true", help="skip the plain dlt baseline")
    ap.add_argument("--rate-limited", action="store_true",
                    help="sandbox and client at the real 4 requests/s")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="with --rate-limited: stop the sync after this long")
    ap.add_argument("--destination", default="duckdb", choices=["duckdb"])
    ap.add_argument("--child-sync", help=argparse.SUPPRESS)
    ap.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--child-plain", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_sync:
        child_sync(args.child_sync, args.stop_after)
        return
    if args.child_plain:
        child_plain(*args.child_plain)
        return

    from ctctsync.sandbox import Sandbox

    spec = _spec(args.contacts)
    qps = 4 if args.rate_limited else None
    t0 = time.monotonic()
    sb = Sandbox(spec, qps_limit=qps, daily_limit=None).start()
    print(f"sandbox: {spec.contacts:,} contacts, {spec.campaigns} campaigns x "
          f"{spec.activities_per_campaign:,} activities, built in {time.monotonic() - t0:.1f} s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            creds = sb.credentials
            cfg = {
                "integration": "bench",
                "source": {"base_url": sb.base_url, "api_key": creds.api_key,
                           "access_token": creds.access_token, "qps_limit": qps,
                           "daily_limit": None},
                "warehouse": {"destination": "duckdb", "path": str(Path(tmp) / "bench.duckdb")},
                "state_url": f"sqlite:///{Path(tmp) / 'state.db'}",
            }
            child = ["--child-sync", json.dumps(cfg)]
            if args.rate_limited:
                child += ["--stop-after", str(args.seconds)]
            sb.counters.reset()
            me = psutil.Process()
            cpu0 = sum(me.cpu_times()[:2])
            res, peak = _run_child(child)
            sandbox_cpu = sum(me.cpu_times()[:2]) - cpu0
            snap = sb.counters.snapshot()
            throttled = sum(r.get("403", 0) + r.get("429", 0)
                            for r in snap["endpoints"].values())
            _report(res, peak, sandbox_cpu, throttled, rate_limited=args.rate_limited)
            if not args.skip_plain and not args.rate_limited:
                plain_db = str(Path(tmp) / "plain_bench.duckdb")
                plain, ppeak = _run_child(["--child-plain", sb.base_url, creds.api_key,
                                           creds.access_token, plain_db])
                print("\nplain dlt (dicts from httpx, default settings) -> DuckDB, contacts only:")
                print(f"  rows {plain['rows']:,} in {plain['seconds']:.1f} s = "
                      f"{plain['rows'] / plain['seconds']:,.0f} rows/s; "
                      f"peak RSS {ppeak / 2**20:,.0f} MiB")
    finally:
        sb.stop()


if __name__ == "__main__":
    main()
