"""The container files stay true to the code: Dockerfile, compose.yaml, .env.example.

No Docker daemon is needed (CI has none): the files are read as text and YAML, and every name
they hand to ctctsync is checked against the CLI and ``ControlSettings``, which ignores an
unknown ``CTCTSYNC_*`` variable silently (``extra="ignore"``): a misspelt setting in a compose
file would otherwise do nothing and say nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from ctctsync.cli import app
from ctctsync.control.settings import ControlSettings, secret_key_problem

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")

PREFIX = ControlSettings.model_config.get("env_prefix", "")
SETTINGS = {
    PREFIX.upper() + name.upper(): field for name, field in ControlSettings.model_fields.items()
}
SECRET_SETTINGS = {
    env for env, field in SETTINGS.items() if SecretStr in getattr(field.annotation, "__args__", ())
}
CTCTSYNC_NAME = re.compile(rf"\b{PREFIX}[A-Z0-9_]+\b")
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")
"""A compose interpolation, ``${NAME}``, ``${NAME:-default}`` or ``${NAME:?message}``."""
TOKEN = re.compile(r"[A-Za-z0-9_+/=-]+")
"""The alphabet of hex, base64 and Fernet keys (a URL or a sentence is not a key)."""


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    pairs = _dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(pairs) if word == "FROM")
    return pairs[last_from:]


def _env_example() -> dict[str, str]:
    """Every ``NAME=value`` of .env.example, commented-out ones included."""
    found = {}
    for line in ENV_EXAMPLE.splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so that the checks below read it"
    return {str(k): str(v) for k, v in env.items()}


def test_image_is_multi_stage_non_root_and_installs_the_server_extra_pinned() -> None:
    pairs = _dockerfile_instructions()
    assert sum(word == "FROM" for word, _ in pairs) >= 2
    runs = " ".join(args for word, args in pairs if word == "RUN")
    assert re.search(r"pip install -c constraints\.txt '\.\[server\]'", runs)
    users = [args for word, args in _final_stage() if word == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_image_runs_serve_on_all_interfaces_with_a_python_healthcheck() -> None:
    final = dict(_final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["ctctsync"]
    assert json.loads(final["CMD"]) == ["serve", "--host", "0.0.0.0"]
    check = final["HEALTHCHECK"]
    assert "/healthz" in check
    assert '"python", "-c"' in check, "slim images have no curl"
    assert "CTCTSYNC_DATA_DIR=/data" in final["ENV"]
    assert json.loads(final["VOLUME"]) == ["/data"]


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "test-artifacts", ".ctctsync", "data", ".env"} <= ignored


def test_compose_services_and_their_health() -> None:
    assert set(SERVICES) == {"db", "web", "worker"}
    db = SERVICES["db"]
    assert db["image"] == "postgres:16"
    volume = db["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"], "the database lives in a named volume"
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in ("web", "worker"):
        service = SERVICES[name]
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        env = _environment(service)
        assert env["CTCTSYNC_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@db:5432/" in env["CTCTSYNC_DATABASE_URL"]
        assert env["CTCTSYNC_RATE_BUDGET"] == "postgres"
        assert env["CTCTSYNC_QUEUE"] == "procrastinate"
    web = SERVICES["web"]
    assert web["command"] == ["serve", "--host", "0.0.0.0"]
    assert "8000:8000" in web["ports"]
    assert "healthcheck" not in web, "web keeps the image's /healthz check"
    worker = SERVICES["worker"]
    assert worker["command"] == ["worker", "--concurrency", "2"]
    assert worker["deploy"]["replicas"] == 3


@pytest.mark.parametrize("service", ["web", "worker"])
def test_compose_commands_exist_in_the_cli(service: str) -> None:
    # Options are parsed before --help acts: an unknown verb or option fails here.
    res = CliRunner().invoke(app, [*SERVICES[service]["command"], "--help"])
    assert res.exit_code == 0, res.output


def test_every_ctctsync_variable_named_is_a_setting() -> None:
    named = set(CTCTSYNC_NAME.findall(COMPOSE_TEXT)) | set(CTCTSYNC_NAME.findall(ENV_EXAMPLE))
    assert {"CTCTSYNC_SECRET_KEY", "CTCTSYNC_ENCRYPTION_KEY", "CTCTSYNC_DATABASE_URL"} <= named
    assert named - set(SETTINGS) == set()


def test_no_secret_is_committed() -> None:
    example = _env_example()
    assert {"POSTGRES_PASSWORD", "CTCTSYNC_SECRET_KEY", "CTCTSYNC_ENCRYPTION_KEY"} <= set(example)
    for name in SECRET_SETTINGS | {"POSTGRES_PASSWORD"}:
        assert example.get(name, "") == "", f".env.example gives {name} a value"
    values = list(example.values())
    for service in SERVICES.values():
        env = _environment(service)
        for name in SECRET_SETTINGS | {"POSTGRES_PASSWORD"}:
            if name in env:
                assert REFERENCE.fullmatch(env[name]), f"compose.yaml gives {name} a value"
        # A URL's password must come from the environment too.
        for value in env.values():
            userinfo = re.match(r"[a-z+]+://([^@/]*)@", value)
            if userinfo:
                assert REFERENCE.search(userinfo.group(1)), f"a password in {value!r}"
        values += [REFERENCE.sub("", value) for value in env.values()]
    # A token-shaped value random enough to pass as a session key is a key someone pasted.
    pasted = [v for v in values if TOKEN.fullmatch(v) and secret_key_problem(v) is None]
    assert pasted == []
