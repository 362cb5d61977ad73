"""``ctctsync auth login|status|logout`` and ``ctctsync check`` for API v3, against the
sandbox's authorization server (constant-contact-v3-api.md §1.2): the device flow end to end
through a real ``ctctsync auth login`` process, approved on the sandbox's verification page;
the tokens in the state store, never printed; check's scope and privilege report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ctctsync.api.v3 import oauth
from ctctsync.cli.app import app
from ctctsync.config import load_config
from ctctsync.errors import ReauthorizeRequired
from ctctsync.sandbox import Sandbox
from ctctsync.sandbox.testing import HtmlForm, v3_tokens_by_pkce
from ctctsync.sandbox.v3.tokens import CAMPAIGN_CREATOR_PRIVILEGES
from ctctsync.token_store import SqlTokenVault, cli_authorization_problem, cli_keeper

COMPLETE_URL = re.compile(r"\(or open (\S+)\)")


def _config(tmp_path: Path, sb: Sandbox) -> Path:
    path = tmp_path / "ctctsync.toml"
    path.write_text(
        'integration = "acme"\n'
        f'state_url = "sqlite:///{tmp_path / "state" / "state.db"}"\n'
        "[source]\n"
        'api_version = "v3"\n'
        f'base_url = "{sb.base_url}"\n'
        "[warehouse]\n"
        f'path = "{tmp_path / "warehouse.duckdb"}"\n'
    )
    return path


def _vault(tmp_path: Path) -> SqlTokenVault:
    return SqlTokenVault(f"sqlite:///{tmp_path / 'state' / 'state.db'}", "acme")


def _cli(args: list[str], sb: Sandbox) -> tuple[int, str]:
    res = CliRunner().invoke(app, args, env={"CTCTSYNC_API_KEY": sb.credentials.api_key,
                                             "COLUMNS": "200"})
    return res.exit_code, res.output


def _approve(url: str, sb: Sandbox) -> None:
    c = sb.credentials
    with httpx.Client(timeout=10) as client:
        page = client.get(url)
        signed_in = HtmlForm.parse(page.text, "activate").submit(
            client, str(page.url), email=c.email, password=c.password)
        done = HtmlForm.parse(signed_in.text, "consent").submit(
            client, str(page.url), ("decision", "allow"))
    assert "Device activated" in done.text


def test_login_status_check_logout(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sandbox)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env["CTCTSYNC_API_KEY"] = sandbox.credentials.api_key
    login = subprocess.Popen(
        [sys.executable, "-m", "ctctsync", "auth", "login", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert login.stdout is not None
        shown = [login.stdout.readline()]
        while not COMPLETE_URL.search(shown[-1]):
            assert shown[-1], f"no verification URL in {shown}"
            shown.append(login.stdout.readline())
        assert shown[0].startswith(f"To sign in, open {sandbox.base_url}/activate and enter")
        _approve(COMPLETE_URL.search(shown[-1]).group(1), sandbox)  # type: ignore[union-attr]
        out, err = login.communicate(timeout=30)  # the CLI polls every 5 s (the server's)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, err
    assert "Signed in for integration acme: scopes account_read contact_data campaign_data " \
        "offline_access" in out
    vault = _vault(tmp_path)
    try:
        record = vault.load()
    finally:
        vault.close()
    assert record is not None and record.needs_reauth is None
    tokens = record.tokens
    assert tokens.refresh_token and tokens.scope == oauth.SCOPES
    state_file = tmp_path / "state" / "state.db"
    assert state_file.stat().st_mode & 0o777 == 0o600  # why unencrypted is acceptable
    secrets = (tokens.access_token, tokens.refresh_token)

    code, status = _cli(["auth", "status", "--config", str(cfg)], sandbox)
    assert code == 0, status
    assert "account_read contact_data campaign_data offline_access" in status
    assert re.search(r"needs re-authorization\s*│\s*no\s*│", status), status
    code, checked = _cli(["check", "--config", str(cfg)], sandbox)
    assert code == 0, checked
    assert "answers (API v3); account:" in checked
    for text in ("".join(shown) + out + err, status, checked):
        assert not any(s in text for s in secrets)

    code, bye = _cli(["auth", "logout", "--config", str(cfg)], sandbox)
    assert code == 0, bye
    assert "tokens revoked and deleted" in bye
    with httpx.Client(timeout=10) as http, pytest.raises(ReauthorizeRequired):
        oauth.refresh(http, sandbox.authz_url, sandbox.credentials.api_key, None,
                      tokens.refresh_token, pacer=None)
    code, status = _cli(["auth", "status", "--config", str(cfg)], sandbox)
    assert code == 4 and "Not signed in" in status


def _store(tmp_path: Path, tokens: oauth.TokenSet) -> None:
    vault = _vault(tmp_path)
    try:
        vault.store(tokens)
    finally:
        vault.close()


def test_check_reports_missing_scopes_and_privileges(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sandbox)
    body = v3_tokens_by_pkce(sandbox, ("account_read", "campaign_data", "offline_access"))
    _store(tmp_path, oauth.token_set_from(body))
    sandbox.v3_tokens.privileges = CAMPAIGN_CREATOR_PRIVILEGES
    code, out = _cli(["check", "--config", str(cfg)], sandbox)
    assert code == 4, out
    assert "Missing access: missing scope contact_data: Contacts, ContactLists" in out
    assert "lacks the privilege ui:campaign:metrics: ContactTracking, EmailCampaignSummary" in out


def test_status_of_a_refused_grant_and_not_signed_in(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sandbox)
    code, out = _cli(["auth", "status", "--config", str(cfg)], sandbox)
    assert code == 4 and "Not signed in" in out
    assert not (tmp_path / "state").exists()  # status creates no store
    code, out = _cli(["check", "--config", str(cfg)], sandbox)
    assert code == 4 and "ctctsync auth login" in out
    body = v3_tokens_by_pkce(sandbox)
    tokens = oauth.token_set_from(body)
    # expired, and its refresh token revoked: check tries to refresh, which is refused
    _store(tmp_path, oauth.TokenSet(tokens.access_token, tokens.refresh_token,
                                    datetime.now(UTC) - timedelta(minutes=1), tokens.scope,
                                    tokens.obtained_at))
    assert tokens.refresh_token is not None
    assert sandbox.v3_tokens.revoke(tokens.refresh_token)
    code, out = _cli(["check", "--config", str(cfg)], sandbox)
    assert code == 4 and oauth.REFRESH_REFUSED_MESSAGE in out.replace("\n", " ")
    code, out = _cli(["auth", "status", "--config", str(cfg), "--json"], sandbox)
    assert code == 4
    assert '"needs_reauth": true' in out and "180 days" in out
    assert tokens.refresh_token not in out and tokens.access_token not in out
    code, out = _cli(["auth", "logout", "--config", str(cfg), "--local"], sandbox)
    assert code == 0 and "deleted here (not revoked)" in out


def test_auth_needs_a_v3_config_with_a_client_id(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sandbox)
    res = CliRunner().invoke(app, ["auth", "login", "--config", str(cfg)],
                             env={"CTCTSYNC_API_KEY": ""})
    assert res.exit_code == 2 and "set CTCTSYNC_API_KEY" in res.output
    cfg.write_text(cfg.read_text().replace('api_version = "v3"', 'api_version = "v2"'))
    code, out = _cli(["auth", "status", "--config", str(cfg)], sandbox)
    assert code == 2 and "for Constant Contact API v3" in out


def test_refresh_token_from_the_environment_seeds_the_store_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = _config(tmp_path, sandbox)
    env = {"CTCTSYNC_API_KEY": sandbox.credentials.api_key}
    assert "run ctctsync auth login" in str(cli_authorization_problem(load_config(path, env)))
    given = oauth.token_set_from(v3_tokens_by_pkce(sandbox)).refresh_token
    assert given is not None
    cfg = load_config(path, {**env, "CTCTSYNC_REFRESH_TOKEN": given})
    assert cli_authorization_problem(cfg) is None
    keeper = cli_keeper(cfg)
    try:
        first = keeper.fresh_access_token()  # seeded without an access token: refreshes
    finally:
        keeper.vault.close()  # type: ignore[attr-defined]
    assert keeper.refreshes == 1
    # the variable's token is spent now; the next run keeps the stored (rotated) one
    again = cli_keeper(cfg)
    try:
        assert again.fresh_access_token() == first and again.refreshes == 0
        with again.vault.locked() as vault:
            vault.mark_needs_reauth("signed out elsewhere")
    finally:
        again.vault.close()  # type: ignore[attr-defined]
    assert cli_authorization_problem(cfg) == "signed out elsewhere"
    # a new authorization given by the variable replaces a store that needs one
    fresh = oauth.token_set_from(v3_tokens_by_pkce(sandbox)).refresh_token
    assert fresh is not None
    renewed = load_config(path, {**env, "CTCTSYNC_REFRESH_TOKEN": fresh})
    assert cli_authorization_problem(renewed) is None
    third = cli_keeper(renewed)
    try:
        assert third.fresh_access_token() != first and third.refreshes == 1
    finally:
        third.vault.close()  # type: ignore[attr-defined]
