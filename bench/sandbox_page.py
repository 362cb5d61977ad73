"""Benchmark: build + serialize a 500-contact page, HTTP round trip, and RSS of a big sandbox.

Run: .venv/bin/python bench/sandbox_page.py [--contacts 1000000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
import orjson
import psutil

from ctctsync.sandbox import AccountSpec, Sandbox
from ctctsync.sandbox.v2 import render
from ctctsync.sandbox.v2.paging import encode_token


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args()
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    spec = AccountSpec(seed=1, contacts=args.contacts, lists=20, campaigns=20,
                       activities_per_campaign=5000, library_files=100, trash_files=10, events=10)
    sb = Sandbox(spec, qps_limit=None, daily_limit=None).start()
    build_s = time.perf_counter() - t0
    acc = sb.account
    statuses = {lid: lst.status for lid, lst in acc.lists.items()}
    timings = []
    for i in range(args.repeat):
        start = 1 + (i * 7919 * 500) % max(args.contacts - 500, 1)
        t = time.perf_counter()
        ids, _ = acc.contact_ids_page(start, 500)
        body = orjson.dumps({"meta": {"pagination": {}},
                             "results": [render.contact(acc.contact(c), statuses)  # type: ignore[arg-type]
                                         for c in ids]})
        timings.append((time.perf_counter() - t) * 1000)
    c = sb.credentials
    http_ms = []
    with httpx.Client(base_url=sb.base_url, params={"api_key": c.api_key},
                      headers={"Authorization": f"Bearer {c.access_token}"}) as client:
        for i in range(args.repeat):
            start = max(1, args.contacts - 500 - (i * 1000) % args.contacts)
            token = encode_token({"startAt": start, "limit": 500})
            t = time.perf_counter()
            r = client.get("/v2/contacts", params={"next": token})
            r.raise_for_status()
            http_ms.append((time.perf_counter() - t) * 1000)
    rss = proc.memory_info().rss
    sb.stop()
    print(f"contacts={args.contacts} activities={acc.activity_count()}")
    print(f"construct+start: {build_s:.2f} s")
    print(f"500-contact page build+orjson: median {statistics.median(timings):.1f} ms, "
          f"p90 {sorted(timings)[int(len(timings) * 0.9)]:.1f} ms, body {len(body) / 1e3:.0f} kB")
    print("500-contact page over HTTP (loopback, httpx): "
          f"median {statistics.median(http_ms):.1f} ms")
    print(f"RSS: {rss / 1e6:.0f} MB total, {(rss - rss0) / 1e6:.0f} MB for the sandbox")


if __name__ == "__main__":
    main()
