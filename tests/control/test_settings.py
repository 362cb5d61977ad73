"""Settings: environment, defaults, key files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ctctsync.control.crypto import SecretBox
from ctctsync.control.settings import ControlSettings


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
