"""``ctctsync sandbox`` / ``python -m ctctsync.sandbox``: serve a demo account until Ctrl-C.

The banner gives what a client needs for either API version: the v2 lines first (unchanged),
then the v3 block (API base, authorization server base, client id and secret, the owner's
sign-in, and a ready v3 access token with every API scope)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from ctctsync.sandbox.account import AccountSpec
from ctctsync.sandbox.clock import ANCHOR_MS
from ctctsync.sandbox.faults import parse_fault
from ctctsync.sandbox.server import Sandbox
from ctctsync.sandbox.v3.oauth import AUTHZ_PATH
from ctctsync.sandbox.v3.tokens import TOKEN_ENDPOINT_QPS

DEFAULTS = AccountSpec(seed=1, contacts=2000, lists=8, campaigns=12, activities_per_campaign=200,
                       library_files=30, trash_files=5, events=4)


def parse_instant(text: str) -> int:
    """Epoch ms of ``"anchor"`` (the seeded history's end) or of an ISO-8601 instant (UTC
    when it names no offset); ValueError otherwise."""
    if text.strip().lower() == "anchor":
        return ANCHOR_MS
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 instant nor 'anchor': {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


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
    token_qps_limit: int | None = TOKEN_ENDPOINT_QPS,
    frozen_at: str | None = None,
    activity_model: str = "instant",
    app_limits: str | None = None,
) -> None:
    """Serve a sandbox account until interrupted; prints the base URLs and credentials.
    ``qps_limit``/``daily_limit`` (the API's) and ``token_qps_limit`` (the v3 token
    endpoint's) of None or 0 disable the limit; ``faults`` use the syntax of
    ``ctctsync.sandbox.faults``. ``frozen_at`` freezes the clock at an ISO-8601 instant, or at
    the seeded history's anchor with ``"anchor"``: it then moves only by
    ``POST /_sandbox/clock/advance``. ``activity_model`` ``decay`` spreads each send's
    activity over the following days and weeks (``sandbox.decay``). ``app_limits``
    (``partner``: 10/s, 250,000/day; ``default``: 4/s, 10,000/day) gives the application's key
    those limits instead of ``qps_limit``/``daily_limit``."""
    frozen_ms = parse_instant(frozen_at) if frozen_at else None
    for text in faults:
        parse_fault(text)  # fail fast on bad syntax
    spec = AccountSpec(seed=seed, contacts=contacts, lists=lists, campaigns=campaigns,
                       activities_per_campaign=activities_per_campaign,
                       library_files=library_files, trash_files=trash_files, events=events,
                       activity_model=activity_model)
    sb = Sandbox(spec, host=host, port=port, qps_limit=qps_limit or None,
                 daily_limit=daily_limit or None, faults=faults,
                 token_qps_limit=token_qps_limit or None, frozen_at_ms=frozen_ms,
                 app_limits=app_limits)
    c = sb.credentials
    limits = sb.limiter.limits_for(c.api_key)
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
            f"Constant Contact v3 API on {base}/v3",
            f"  authz base:          {base}{AUTHZ_PATH}",
            f"  client id:           {c.api_key}",
            f"  client secret:       {c.client_secret}",
            f"  sign-in email:       {c.email}",
            f"  sign-in password:    {c.password}",
            f"  v3 access token:     {c.v3_access_token}",
            f"  (every API scope, 24 h on the sandbox clock; more: POST {base}"
            "/_sandbox/v3/tokens/issue)",
            f"  authorize page:      {base}{AUTHZ_PATH}/authorize?response_type=code"
            f"&client_id={c.api_key}&redirect_uri=<your callback>&scope=contact_data"
            "%20offline_access&state=<state>&code_challenge=<S256 challenge>"
            "&code_challenge_method=S256",
            f"limits: {limits.qps_limit or 'no'} req/s, {limits.daily_limit or 'no'} req/day "
            "(v2 and v3); "
            f"v3 token endpoint {token_qps_limit or 'no'} req/s; "
            f"faults: {', '.join(faults) or 'none'}; clock: "
            f"{'frozen at ' + sb.account.clock.now().isoformat() if frozen_ms else 'real time'}; "
            f"activity model: {activity_model}",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        sb.serve_forever(announce)


def main(argv: Sequence[str] | None = None) -> int:
    """argparse front end for :func:`run_sandbox_command`."""
    p = argparse.ArgumentParser(prog="python -m ctctsync.sandbox",
                                description="Serve a simulated Constant Contact account "
                                            "(API v2 and v3).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    for name in ("seed", "contacts", "lists", "campaigns", "activities_per_campaign",
                 "library_files", "trash_files", "events"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int,
                       default=getattr(DEFAULTS, name))
    p.add_argument("--qps-limit", type=int, default=4, help="0 disables")
    p.add_argument("--daily-limit", type=int, default=10_000, help="0 disables")
    p.add_argument("--token-qps-limit", type=int, default=TOKEN_ENDPOINT_QPS,
                   help="requests/s per client id at the v3 token endpoint; 0 disables")
    p.add_argument("--fault", dest="faults", action="append", default=[],
                   help="KIND[:PATH_GLOB][:n=COUNT][:p=PROB][:ms=MS][:k=RECORDS] (repeatable)")
    p.add_argument("--app-limits", choices=("default", "partner"), default=None,
                   help="the application's limits: partner = 10 req/s, 250,000 req/day")
    p.add_argument("--activity-model", choices=("instant", "decay"), default="instant",
                   help="decay: each send's activity arrives over days and weeks")
    p.add_argument("--frozen-at", default=None,
                   help="freeze the clock at an ISO-8601 instant, or 'anchor' (2024-06-01)")
    args = p.parse_args(argv)
    try:
        run_sandbox_command(**vars(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
