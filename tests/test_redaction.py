"""The one redactor: each pattern rule, the secrets it is given, the registry, and the
logging pieces built on it."""

from __future__ import annotations

import gc
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr

from ctctsync.api.ratelimit import clear_registry
from ctctsync.config import SyncConfig
from ctctsync.errors import (
    STANDARD_PATTERNS,
    TOKEN_PATTERNS,
    RedactingFilter,
    RedactingFormatter,
    Redactor,
    SecretRegistry,
    redact,
)
from ctctsync.sandbox.testing import SMALL_SPEC, SandboxFactory
from ctctsync.sync import run_sync

UUID = "3f2a9c1e-7b4d-4e8f-9a6b-1c2d3e4f5a6b"
RANDOM = "Ab3dEf6hIj9kLm2nOp5qRs8tUv"


@pytest.mark.parametrize(
    ("text", "leaked", "kept"),
    [
        pytest.param("GET /v2/x?api_key=abc123xyz&limit=5", "abc123xyz", "limit=5", id="param"),
        pytest.param("api_key%3Dabc123xyz", "abc123xyz", "api_key%3D***", id="param-encoded"),
        pytest.param('{"client_secret": "cs-9999"}', "cs-9999", "client_secret", id="param-json"),
        pytest.param("Authorization: Bearer tok-1234", "tok-1234", "Bearer ***", id="bearer"),
        pytest.param(
            "connect postgresql://loader:pw123@db:5432/x", "pw123", "db:5432/x", id="url-userinfo"
        ),
        pytest.param(f"token {UUID} rejected", UUID, "rejected", id="uuid"),
        pytest.param(f"key {RANDOM} here", RANDOM, "key", id="random-token"),
    ],
)
def test_token_patterns_scrub(text: str, leaked: str, kept: str) -> None:
    out = Redactor(registry=None)(text)
    assert leaked not in out and "***" in out and kept in out


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"campaign {UUID} sent", id="uuid"),
        pytest.param(f"cursor {RANDOM}", id="random-token"),
        pytest.param("HTTP 500 from GET /v2/contacts: next=abc", id="ordinary"),
    ],
)
def test_standard_patterns_guess_no_token_shapes(text: str) -> None:
    # error messages and the process log keep ids; run logs (TOKEN_PATTERNS) do not
    assert Redactor(patterns=STANDARD_PATTERNS, registry=None)(text) == text
    assert set(STANDARD_PATTERNS) < set(TOKEN_PATTERNS)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("run 185b1e6bebd64566988c7a5646b0fe8a succeeded", id="run-id"),
        pytest.param("email_campaign_summary_extra_long_name", id="identifier"),
        pytest.param("see https://example.com/docs@v2", id="url-without-credentials"),
    ],
)
def test_ordinary_text_kept(text: str) -> None:
    assert Redactor(registry=None)(text) == text


@pytest.mark.parametrize(
    ("secret", "text", "leaked"),
    [
        pytest.param("plain-secret-42", "echoed plain-secret-42 back", "plain-secret-42",
                     id="plain"),
        pytest.param(SecretStr("wrapped-secret-42"), "a wrapped-secret-42 b", "wrapped-secret-42",
                     id="secret-str"),
        pytest.param("postgresql://u:s3cr3tpw@h/db", "auth failed for password s3cr3tpw",
                     "s3cr3tpw", id="url-bare-password"),
        pytest.param("postgresql://u:s3cr3tpw@h/db", "dsn postgresql://u:s3cr3tpw@h/db",
                     "s3cr3tpw", id="url-whole"),
    ],
)
def test_given_secrets_are_scrubbed_anywhere(secret: object, text: str, leaked: str) -> None:
    out = Redactor([secret], patterns=(), registry=None)(text)  # type: ignore[list-item]
    assert leaked not in out and "***" in out


def test_longest_secret_first_and_short_ones_ignored() -> None:
    redactor = Redactor(["abcd", "abcdefgh", "ab", None, ""], patterns=(), registry=None)
    assert redactor("abcdefgh abcd ab about") == "*** *** ab about"


def test_registry_is_shared_by_its_redactors() -> None:
    registry = SecretRegistry()
    redactor = Redactor(registry=registry)
    registry.add("late-secret-77")
    registry.add("ab")
    assert redactor("a late-secret-77 ab") == "a *** ab"
    assert Redactor(registry=None)("a late-secret-77") == "a late-secret-77"


def test_module_redact_takes_extra_secrets() -> None:
    assert redact("x other-secret-9", ("other-secret-9",)) == "x ***"
    assert redact("x", (SecretStr("other-secret-9"), None)) == "x"


def test_filter_and_formatter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("ctctsync.tests.one_redactor")
    scrub = RedactingFilter(Redactor(["filter-secret-1"], registry=None))
    logger.addFilter(scrub)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("using %s and api_key=k-123456", "filter-secret-1")
    finally:
        logger.removeFilter(scrub)
    assert "filter-secret-1" not in caplog.text and "k-123456" not in caplog.text
    formatter = RedactingFormatter(Redactor([], registry=None), "%(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (UUID,), None)
    assert formatter.format(record) == "token ***"


# --------------------------------------------------------------------------- one per run


class _Lines(logging.Handler):
    """Keeps the messages of the records it sees (after the loggers' filters)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _echo(token: str) -> None:
    logging.getLogger("httpx").debug("echo %s", token)


def _held_secrets() -> set[str]:
    """Every secret value any redactor of this process holds right now."""
    from ctctsync.errors import redaction

    gc.collect()
    held = set(redaction.KNOWN_SECRETS.values())
    held |= getattr(redaction, "IN_USE", redaction.KNOWN_SECRETS).values()
    for obj in gc.get_objects():
        if isinstance(obj, Redactor):
            held |= obj.secrets
    return held


def test_each_run_has_its_own_redactor_dropped_when_it_ends(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Issue 8 §2: two runs with different tokens; each run's log (httpx's debug lines too)
    is scrubbed of its own token, and once they end no redactor holds either token."""
    clear_registry()
    # A seed of its own: sandboxes of one seed share credentials, and other tests of this
    # process may hold those legitimately (a control plane registers its OAuth app's key).
    sandbox = sandbox_factory(replace(SMALL_SPEC, seed=8117))
    creds = sandbox.credentials
    tokens = [creds.access_token, sandbox.issue_token()]
    capture = _Lines()
    http_loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    levels = [lg.level for lg in http_loggers]
    for lg in http_loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(capture)
    try:
        for n, token in enumerate(tokens):
            cfg = SyncConfig.model_validate(
                {
                    "integration": f"run{n}",
                    "source": {
                        "base_url": sandbox.base_url,
                        "api_key": creds.api_key,
                        "access_token": token,
                        "qps_limit": None,
                        "daily_limit": None,
                    },
                    "warehouse": {"destination": "duckdb", "path": str(tmp_path / "wh.duckdb")},
                    "state_url": f"sqlite:///{tmp_path / 'state.db'}",
                    "tables": {"contact_lists": None},
                }
            )
            # httpx (or a server body it logs) echoing the token, from inside the run
            result = run_sync(cfg, progress=lambda _e, t=token: _echo(t))
            assert result.status == "succeeded", result.error
            run_lines = capture.lines[:]
            capture.lines.clear()
            assert any(line.startswith("HTTP Request: GET") for line in run_lines)
            assert "echo ***" in run_lines
            for line in run_lines:
                assert token not in line and creds.api_key not in line, line
    finally:
        for lg, level in zip(http_loggers, levels, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)
    held = _held_secrets()
    for token in tokens:
        assert token not in held
    assert creds.api_key not in held


def test_in_use_lasts_as_long_as_the_use() -> None:
    token = "tok-in-use-12345"
    scoped = Redactor([token], patterns=())
    assert redact(f"a {token}") == f"a {token}"
    with scoped.in_use():
        assert redact(f"a {token}") == "a ***"
        with Redactor([token], patterns=()).in_use():  # a second use of the same value
            pass
        assert redact(f"a {token}") == "a ***"
    assert redact(f"a {token}") == f"a {token}"
    assert Redactor(patterns=())(f"a {token}") == f"a {token}"  # a run's: its own only
