"""``ctctsync sandbox`` / ``python -m ctctsync.sandbox``: serve a demo account until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.faults import parse_fault
from ctctsync.sandbox.server import Sandbox

DEFAULTS = AccountSpec(seed=1, contacts=2000, lists=8, campaigns=12, activities_per_campaign=200,
                       library_files=30, trash_files=5, events=4)


def run_sandbox_command(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = DEFAULTS.seed,
    contacts: int = DEFAULTS.contacts,
    lists: int = DEFAULTS.lists,
    campaigns: int = DEFAULTS.campaigns,
    activities_per_campaign: int = DEFAULTS.activities_per_campaign,
    library_files: int = DEFAULTS.library_files,
    trash_files: int = DEFAULTS.trash_files,
    events: int = DEFAULTS.events,
    qps_limit: int | None = 4,
    daily_limit: int | None = 10_000,
    faults: Sequence[str] = (),
) -> None:
    """Serve a sandbox account until interrupted; prints the base URL and credentials.
    ``qps_limit``/``daily_limit`` of None or 0 disable the limit; ``faults`` use the syntax of
    ``ctctsync.sandbox.faults``."""
    for text in faults:
        parse_fault(text)  # fail fast on bad syntax
    spec = AccountSpec(seed=seed, contacts=contacts, lists=lists, campaigns=campaigns,
                       activities_per_campaign=activities_per_campaign,
                       library_files=library_files, trash_files=trash_files, events=events)
    sb = Sandbox(spec, host=host, port=port, qps_limit=qps_limit or None,
                 daily_limit=daily_limit or None, faults=faults)
    c = sb.credentials
    host_shown = f"[{host}]" if ":" in host else host

    def announce() -> None:
        base = f"http://{host_shown}:{sb.port}"  # the bound port (port 0 = any free port)
        lines = [
            f"Constant Contact v2 sandbox on {base}",
            f"  API key (client_id): {c.api_key}",
            f"  client secret:       {c.client_secret}",
            f"  access token:        {c.access_token}",
            f"  login email:         {c.email}",
            f"  login password:      {c.password}",
            f"  authorize page:      {base}/oauth2/oauth/siteowner/authorize"
            f"?response_type=code&client_id={c.api_key}&redirect_uri=<your callback>",
            f"  limits: {qps_limit or 'no'} req/s, {daily_limit or 'no'} req/day; "
            f"faults: {', '.join(faults) or 'none'}",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        sb.serve_forever(announce)


def main(argv: Sequence[str] | None = None) -> int:
    """argparse front end for :func:`run_sandbox_command`."""
    p = argparse.ArgumentParser(prog="python -m ctctsync.sandbox",
                                description="Serve a simulated Constant Contact v2 account.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    for name in ("seed", "contacts", "lists", "campaigns", "activities_per_campaign",
                 "library_files", "trash_files", "events"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int,
                       default=getattr(DEFAULTS, name))
    p.add_argument("--qps-limit", type=int, default=4, help="0 disables")
    p.add_argument("--daily-limit", type=int, default=10_000, help="0 disables")
    p.add_argument("--fault", dest="faults", action="append", default=[],
                   help="KIND[:PATH_GLOB][:n=COUNT][:p=PROB][:ms=MS][:k=RECORDS] (repeatable)")
    args = p.parse_args(argv)
    try:
        run_sandbox_command(**vars(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
