"""The one redactor: each pattern rule, the secrets it is given, the registry, and the
logging pieces built on it."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from ctctsync.errors import (
    STANDARD_PATTERNS,
    TOKEN_PATTERNS,
    RedactingFilter,
    RedactingFormatter,
    Redactor,
    SecretRegistry,
    redact,
)

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
