"""Settings: environment, defaults, key files."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ctctsync.control.crypto import SecretBox
from ctctsync.control.settings import ControlSettings, generate_secret_key


def test_environment_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTCTSYNC_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("CTCTSYNC_PUBLIC_BASE_URL", "https://ctct.example.com/")
    monkeypatch.setenv("CTCTSYNC_WORKERS", "3")
    s = ControlSettings()
    assert s.host == "127.0.0.1" and s.port == 8000 and s.workers == 3
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'd' / 'control.db'}"
    assert s.oauth_redirect_uri == "https://ctct.example.com/oauth/callback"
    assert s.default_warehouse().path == tmp_path / "d" / "warehouse.duckdb"
    assert not s.secret_key_explicit


def test_key_files_created_once_owner_only(tmp_path: Path) -> None:
    s = ControlSettings(data_dir=tmp_path)
    key = s.fernet_key()
    assert s.fernet_key() == key
    SecretBox(key)  # a valid Fernet key
    for name in ("encryption.key", "secret_key"):
        s.session_secret()
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_keys_from_environment_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CTCTSYNC_ENCRYPTION_KEY", key)
    monkeypatch.setenv("CTCTSYNC_SECRET_KEY", "x" * 40)
    s = ControlSettings(data_dir=tmp_path)
    assert s.fernet_key() == key.encode() and s.session_secret() == "x" * 40
    assert s.secret_key_explicit
    assert not (tmp_path / "encryption.key").exists()


def test_bad_encryption_key_is_explained() -> None:
    with pytest.raises(ValueError, match="not a Fernet key"):
        SecretBox(b"too-short")


def test_stale_must_exceed_heartbeats() -> None:
    with pytest.raises(ValueError, match="stale_after_seconds"):
        ControlSettings(heartbeat_seconds=30, stale_after_seconds=40)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        pytest.param("postgres://u@h/db", "postgresql+psycopg://u@h/db", id="heroku-style"),
        pytest.param("postgresql://u@h/db", "postgresql+psycopg://u@h/db", id="plain"),
        pytest.param("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db", id="explicit"),
        pytest.param("sqlite:////tmp/x.db", "sqlite:////tmp/x.db", id="sqlite"),
        pytest.param(
            "postgres://u:p%40ss@h:6543/db?sslmode=require",
            "postgresql+psycopg://u:p%40ss@h:6543/db?sslmode=require",
            id="password-port-query-kept",
        ),
        pytest.param("postgresqlx://u@h/db", "postgresqlx://u@h/db", id="other-scheme-untouched"),
    ],
)
def test_database_url_driver(given: str, used: str) -> None:
    assert ControlSettings(database_url=given).resolved_database_url == used


# --------------------------------------------------------------------------- the secret key


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("change-me", id="short"),
        pytest.param("x" * 64, id="one-character"),
        pytest.param("ab" * 32, id="repeated-pair"),
        pytest.param("password123" * 4, id="repeated-word"),
        pytest.param(secrets.token_urlsafe(24), id="24-random-bytes"),
        pytest.param(secrets.token_hex(31), id="31-random-bytes-hex"),
    ],
)
def test_weak_secret_keys_are_refused(key: str) -> None:
    problem = ControlSettings(secret_key=key).secret_key_problem()
    assert problem is not None and "ctctsync keys generate" in problem
    assert key == "" or key not in problem  # the key itself is never echoed


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(secrets.token_urlsafe(32), id="urlsafe-32"),
        pytest.param(secrets.token_hex(32), id="hex-32"),
        pytest.param(base64.b64encode(secrets.token_bytes(48)).decode(), id="base64-48"),
        pytest.param(generate_secret_key(), id="generated"),
    ],
)
def test_random_secret_keys_are_accepted(key: str) -> None:
    assert ControlSettings(secret_key=key).secret_key_problem() is None


def test_no_key_means_the_generated_file(tmp_path: Path) -> None:
    s = ControlSettings(data_dir=tmp_path)
    assert s.secret_key_problem() is None
    assert (
        ControlSettings(data_dir=tmp_path, secret_key=s.session_secret()).secret_key_problem()
        is None
    )


def test_keys_generate_prints_keys_that_pass(capsys: pytest.CaptureFixture[str]) -> None:
    from ctctsync.cli import control_commands as commands

    assert commands.keys_generate() == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert set(lines) == {"CTCTSYNC_SECRET_KEY", "CTCTSYNC_ENCRYPTION_KEY"}
    assert ControlSettings(secret_key=lines["CTCTSYNC_SECRET_KEY"]).secret_key_problem() is None
    SecretBox(lines["CTCTSYNC_ENCRYPTION_KEY"].encode())


def test_serve_refuses_a_weak_key_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env |= {"CTCTSYNC_SECRET_KEY": "", "CTCTSYNC_DATA_DIR": str(tmp_path / "d")}
    with socket.socket() as sock:  # a free port, in case the key were (wrongly) accepted
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "ctctsync", "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ctctsync keys generate" in lines[0], done.stderr


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"])
def test_serve_refuses_an_unusable_encryption_key_in_one_line(tmp_path: Path, key: str) -> None:
    # e.g. a blank `CTCTSYNC_ENCRYPTION_KEY=` line of a compose .env file: before, a traceback
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTCTSYNC_")}
    env |= {"CTCTSYNC_ENCRYPTION_KEY": key, "CTCTSYNC_DATA_DIR": str(tmp_path / "d")}
    done = subprocess.run(
        [sys.executable, "-m", "ctctsync", "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "CTCTSYNC_ENCRYPTION_KEY" in lines[0], done.stderr
    assert "ctctsync keys generate" in lines[0] and "Traceback" not in done.stderr
    assert not key or key not in done.stderr
    assert not (tmp_path / "d" / "encryption.key").exists()  # nothing made on the way out


def test_the_control_planes_own_keys_are_scrubbed_from_log_lines(tmp_path: Path) -> None:
    """The session secret and the credential-encryption key, once this process uses them, are
    scrubbed by the process-wide redactor from any text a log line or message carries."""
    from ctctsync.errors.redaction import redact

    settings = ControlSettings(data_dir=tmp_path)
    session = settings.session_secret()
    fernet = settings.fernet_key().decode()
    line = f"driver said: bad value {session!r} near {fernet}"
    scrubbed = redact(line)
    assert session not in scrubbed and fernet not in scrubbed, scrubbed
    assert "driver said: bad value" in scrubbed
