"""``ctctsync auth login|status|logout``: the CLI's Constant Contact v3 sign-in, and the v3
half of ``ctctsync check``.

``login`` runs OAuth's device flow (RFC 8628; constant-contact-v3-api.md §1.2) against the
configured authorization server with the application's client id (``CTCTSYNC_API_KEY``):
it prints the verification URL and a code, the person opens the URL in any browser, signs in
and allows access, and the tokens land in the CLI's state store (``state_url``, table
``cli_oauth_tokens``). Every later run refreshes them there (rotating refresh tokens:
:mod:`ctctsync.api.v3.tokens`).

The stored tokens are not encrypted: the state store is a 0600 file in a 0700 folder,
readable by its owner only (the control plane, serving many users, encrypts its own). They
are never printed or logged; ``status`` shows dates, scopes and the re-authorization state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from ctctsync.cli.output import EXIT_CONFIG, EXIT_OK, EXIT_REAUTH, console, err_console
from ctctsync.errors import ErrorRule, ReauthorizeRequired

if TYPE_CHECKING:
    from ctctsync.api.v3.oauth import DeviceGrant, TokenSet
    from ctctsync.api.v3.tokens import VaultRecord
    from ctctsync.config import SyncConfig
    from ctctsync.errors import CtctError

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file (secrets come from CTCTSYNC_* environment variables).",
        envvar="CTCTSYNC_CONFIG",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

auth_app = typer.Typer(
    help="Sign in to Constant Contact (API v3, OAuth2) and manage the stored tokens."
)


def register(app: typer.Typer) -> None:
    """Add ``auth`` to the ``ctctsync`` command line."""
    app.add_typer(auth_app, name="auth")


# ---------------------------------------------------------------------------- helpers


def _say_failed(what: str, message: str) -> None:
    err_console.print(f"[red]{what}:[/red] {escape(message)}", soft_wrap=True)


def _exit_for(error: CtctError, what: str) -> typer.Exit:
    from ctctsync.errors import FAILURES

    _say_failed(what, error.user_message)
    return typer.Exit(FAILURES[error.failure_type].exit_code)


def _load_v3(config: Path | None) -> SyncConfig:
    """The configuration, which must be a v3 one with a client id; else exit 2."""
    from ctctsync.config import load_config
    from ctctsync.errors import ConfigError

    if config is None and Path("ctctsync.toml").exists():
        config = Path("ctctsync.toml")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _say_failed("Configuration error", str(exc))
        raise typer.Exit(EXIT_CONFIG) from None
    problem = v3_credentials_problem(cfg)
    if problem is not None:
        _say_failed("Cannot start", problem)
        raise typer.Exit(EXIT_CONFIG)
    return cfg


def v3_credentials_problem(cfg: SyncConfig) -> str | None:
    """None when a v3 config can sign in (its client id is set); else the one line that
    says what to set."""
    if cfg.source.api_version != "v3":
        return ("ctctsync auth is for Constant Contact API v3 (api_version = \"v3\" in the "
                "[source] section); v2 uses a long-lived CTCTSYNC_ACCESS_TOKEN")
    if not cfg.source.api_key.get_secret_value().strip():
        return ("the application's client id is missing: set CTCTSYNC_API_KEY (the API key "
                "of the application in Constant Contact's developer portal)")
    return None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------------- login


def _show_grant(grant: DeviceGrant) -> None:
    console.print(
        f"To sign in, open {grant.verification_uri} and enter the code {grant.user_code}",
        soft_wrap=True, highlight=False, markup=False)
    if grant.verification_uri_complete:
        console.print(f"(or open {grant.verification_uri_complete})", soft_wrap=True,
                      highlight=False, markup=False)
    console.print(f"Waiting for you to allow access (the code expires at "
                  f"{_utc(grant.expires_at)})...", highlight=False)


@auth_app.command("login")
def login(config: ConfigOpt = None) -> None:
    """Sign in with the device flow: open the printed URL in any browser, enter the code,
    sign in to Constant Contact and allow access. The tokens are kept in the state store
    (unencrypted there: the file is readable by you only) and never printed."""
    import httpx

    from ctctsync.api.v3 import oauth
    from ctctsync.errors import CtctError
    from ctctsync.token_store import SqlTokenVault, oauth_app

    cfg = _load_v3(config)
    app = oauth_app(cfg.source)
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
            grant = oauth.device_authorize(http, app.auth_base_url, app.client_id,
                                           oauth.SCOPES)
            _show_grant(grant)
            tokens = oauth.poll_device(http, app.auth_base_url, app.client_id, grant)
        vault = SqlTokenVault(cfg.state_url, cfg.integration, client_id=app.client_id)
        try:
            vault.store(tokens)  # before anything uses it (rotating tokens, §1.2)
        finally:
            vault.close()
    except CtctError as exc:
        raise _exit_for(exc, "Sign-in failed") from None
    console.print(
        f"[green]Signed in[/green] for integration {cfg.integration}: scopes "
        f"{' '.join(tokens.scope)}; the access token is valid until {_utc(tokens.expires_at)} "
        "and is refreshed automatically.", soft_wrap=True, highlight=False)
    if not tokens.refresh_token:
        console.print("[yellow]warning:[/yellow] no refresh token was granted "
                      "(offline_access): sign in again when the access token expires.")
    raise typer.Exit(check_v3(cfg, quiet_ok=True))


# ---------------------------------------------------------------------------- status


def _status_fields(record: VaultRecord | None, now: datetime) -> dict[str, Any]:
    """What ``status`` shows: dates, scopes and the re-authorization state, no values."""
    from ctctsync.api.v3.oauth import REFRESH_IDLE_LIMIT

    if record is None:
        return {"signed_in": False}
    t = record.tokens
    refresh_dead = t.refresh_token is None or t.refresh_expired(now)
    return {
        "signed_in": True,
        "scopes": list(t.scope),
        "access_token_expires_at": t.expires_at.isoformat(),
        "access_token_expired": t.expires_at <= now,
        "last_refresh": t.obtained_at.isoformat(),
        "refresh_token": t.refresh_token is not None,
        "refresh_token_unused_expiry": (t.obtained_at + REFRESH_IDLE_LIMIT).isoformat(),
        "needs_reauth": record.needs_reauth is not None
        or (refresh_dead and t.expires_at <= now),
        "reason": record.needs_reauth,
    }


def _print_status(integration: str, fields: dict[str, Any]) -> None:
    grid = RichTable(title=f"Constant Contact sign-in of {integration}", title_justify="left",
                     show_header=False)
    grid.add_column("what")
    grid.add_column("value")
    expires = fields["access_token_expires_at"]
    grid.add_row("scopes", " ".join(fields["scopes"]))
    grid.add_row("access token valid until",
                 _utc(datetime.fromisoformat(expires))
                 + (" (expired)" if fields["access_token_expired"] else ""))
    grid.add_row("last refresh or sign-in", _utc(datetime.fromisoformat(fields["last_refresh"])))
    grid.add_row("refresh token", "stored" if fields["refresh_token"] else "none")
    grid.add_row("refresh token expires if unused until",
                 _utc(datetime.fromisoformat(fields["refresh_token_unused_expiry"])))
    grid.add_row("needs re-authorization",
                 fields["reason"] or ("yes" if fields["needs_reauth"] else "no"))
    console.print(grid)


@auth_app.command("status")
def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show the stored sign-in: scopes, expiry, last refresh, whether re-authorization is
    needed (never the tokens). Exit 4 when not signed in or re-authorization is needed."""
    from ctctsync.db import sqlite_file
    from ctctsync.token_store import SqlTokenVault

    cfg = _load_v3(config)
    fields: dict[str, Any] = {"signed_in": False}
    store_file = sqlite_file(cfg.state_url)
    if store_file is None or store_file.exists():  # status creates no state store
        vault = SqlTokenVault(cfg.state_url, cfg.integration)
        try:
            fields = _status_fields(vault.load(), datetime.now(UTC))
        finally:
            vault.close()
    code = EXIT_REAUTH if not fields["signed_in"] or fields["needs_reauth"] else EXIT_OK
    if as_json:
        console.print_json(json.dumps({"integration": cfg.integration, **fields}))
    elif not fields["signed_in"]:
        console.print(f"Not signed in to Constant Contact for integration {cfg.integration}: "
                      "run ctctsync auth login.", highlight=False)
    else:
        _print_status(cfg.integration, fields)
        if fields["needs_reauth"]:
            console.print("Run ctctsync auth login to sign in again.")
    raise typer.Exit(code)


# ---------------------------------------------------------------------------- logout


def _revoke_all(cfg: SyncConfig, tokens: TokenSet) -> None:
    """Revoke the refresh token (its whole grant) and the access token (RFC 7009)."""
    import httpx

    from ctctsync.api.v3 import oauth
    from ctctsync.token_store import oauth_app

    app = oauth_app(cfg.source)
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
        if tokens.refresh_token:
            oauth.revoke(http, app.auth_base_url, app.client_id, app.client_secret,
                         tokens.refresh_token, "refresh_token")
        if tokens.access_token:
            oauth.revoke(http, app.auth_base_url, app.client_id, app.client_secret,
                         tokens.access_token, "access_token")


@auth_app.command("logout")
def logout(
    config: ConfigOpt = None,
    local: Annotated[
        bool,
        typer.Option("--local", help="Only delete the stored tokens; do not revoke them at "
                     "Constant Contact."),
    ] = False,
) -> None:
    """Sign out: revoke the tokens at Constant Contact, then delete them from the state store."""
    from ctctsync.errors import CtctError
    from ctctsync.token_store import SqlTokenVault

    cfg = _load_v3(config)
    vault = SqlTokenVault(cfg.state_url, cfg.integration)
    try:
        record = vault.load()
        if record is None:
            console.print(f"Not signed in for integration {cfg.integration}; nothing to do.",
                          highlight=False)
            return
        if not local:
            try:
                _revoke_all(cfg, record.tokens)
            except CtctError as exc:
                _say_failed("Could not revoke the tokens at Constant Contact",
                            f"{exc.user_message} They are still stored: run this again, or "
                            "use --local to only delete them here.")
                raise typer.Exit(1) from None
        vault.delete()
    finally:
        vault.close()
    done = "deleted here (not revoked)" if local else "revoked and deleted"
    console.print(f"Signed out of integration {cfg.integration}: tokens {done}.",
                  highlight=False)


# ---------------------------------------------------------------------------- check


def check_v3(cfg: SyncConfig, *, quiet_ok: bool = False) -> int:
    """The v3 half of ``ctctsync check`` (and the end of ``auth login``): a valid access
    token from the state store (refreshed if needed), ``GET /v3/account/summary``, and the
    scopes and user privileges the selected tables need (``missing_access``). One line per
    problem; returns the exit code (4 when access is missing: re-authorize)."""
    from pydantic import SecretStr

    from ctctsync.api.v3 import oauth
    from ctctsync.api.v3.tokens import TokenKeeper
    from ctctsync.errors import CtctError
    from ctctsync.sync.engine import make_client
    from ctctsync.token_store import cli_vault, oauth_app

    vault = cli_vault(cfg)
    try:
        keeper = TokenKeeper(vault, oauth_app(cfg.source))
        token = keeper.fresh_access_token()
        record = vault.load()
        scopes = oauth.token_scopes(token) or (record.tokens.scope if record else ())
        source = cfg.source.model_copy(update={"access_token": SecretStr(token)})
        with make_client(source, renew_token=keeper.renew) as client:
            summary = client.get_json("/v3/account/summary")
            problems = oauth.missing_access(client, scopes, tables=list(cfg.tables))
    except CtctError as exc:
        return int(_exit_for(exc, "Check failed").exit_code)
    finally:
        vault.close()
    name = summary.get("organization_name") if isinstance(summary, dict) else None
    if not quiet_ok or problems:
        console.print(f"[green]OK[/green] {cfg.source.base_url} answers (API v3); account: "
                      f"{escape(str(name or 'unnamed'))}", soft_wrap=True, highlight=False)
    for problem in problems:
        _say_failed("Missing access", problem)
    return int(EXIT_REAUTH) if problems else int(EXIT_OK)


@contextmanager
def v3_run(cfg: SyncConfig) -> Iterator[tuple[SyncConfig, Callable[[str], str] | None]]:
    """The credentials of a v3 ``ctctsync sync``: the config with a fresh access token and
    the renewer its clients call on a 401 (refreshing with the stored refresh token, under
    the vault's lock: a rotated token is saved before it is used, §1.2).

    Without stored tokens or ``CTCTSYNC_REFRESH_TOKEN``, an access token given in
    ``CTCTSYNC_ACCESS_TOKEN`` is used as it is (24 h; no renewal), e.g. the sandbox's
    printed one. Raises ``CtctError`` (re-authorize, …) when no usable token can be had.
    """
    from pydantic import SecretStr

    from ctctsync.api.v3.tokens import TokenKeeper
    from ctctsync.token_store import cli_authorization_problem, cli_vault, oauth_app

    given = cfg.source.access_token.get_secret_value()
    problem = cli_authorization_problem(cfg)
    if problem is not None and given and cfg.source.refresh_token is None:
        yield cfg, None  # a bare access token: no refresh token to renew it with
        return
    if problem is not None:
        raise ReauthorizeRequired(problem, rule=NOT_SIGNED_IN_RULE)
    vault = cli_vault(cfg)
    try:
        keeper = TokenKeeper(vault, oauth_app(cfg.source))
        token = keeper.fresh_access_token()
        source = cfg.source.model_copy(update={"access_token": SecretStr(token)})
        yield cfg.model_copy(update={"source": source}), keeper.renew
    finally:
        vault.close()


NOT_SIGNED_IN_RULE = ErrorRule(
    name="v3_not_signed_in",
    action="reauthorize",
    failure_type="auth",
    message="{detail}",
)
"""A v3 CLI run with nothing to authenticate with (never signed in, or re-authorization
needed): the one line says what to do."""


__all__ = ["auth_app", "check_v3", "register", "v3_credentials_problem", "v3_run"]
