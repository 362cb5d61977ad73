"""The error table: every rule, redaction, and the exceptions callers see."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from ctctsync import errors
from ctctsync.errors import (
    RULES,
    ConfigError,
    DailyQuotaExhausted,
    MalformedResponse,
    NotFound,
    ReauthorizeRequired,
    RequestRejected,
    RetriesExhausted,
    classify_response,
    classify_transport,
    next_utc_midnight,
    redact,
    register_secret,
)

EP = "GET /v2/contacts"


def v2_body(key: str, message: str = "text") -> bytes:
    return orjson.dumps([{"error_key": key, "error_message": message}])


@pytest.mark.parametrize(
    ("status", "body", "rule", "action", "failure_type"),
    [
        pytest.param(
            403,
            v2_body("mashery.not.authorized.over.qps"),
            "over_qps",
            "backoff",
            "transient",
            id="403-over-qps",
        ),
        pytest.param(
            401,
            v2_body("mashery.not.authorized.over.qps"),
            "over_qps",
            "backoff",
            "transient",
            id="401-over-qps",
        ),
        pytest.param(
            403,
            v2_body("mashery.not.authorized.over.ratelimit"),
            "daily_quota",
            "stop_for_today",
            "quota",
            id="403-over-ratelimit",
        ),
        pytest.param(
            401,
            v2_body("mashery.not.authorized.over.ratelimit"),
            "daily_quota",
            "stop_for_today",
            "quota",
            id="401-over-ratelimit",
        ),
        pytest.param(
            403,
            v2_body("mashery.not.authorized.over.something"),
            "over_other_limit",
            "backoff",
            "transient",
            id="403-over-other",
        ),
        pytest.param(
            429,
            b'{"error_key":"throttled","error_message":"Too Many Requests"}',
            "v3_throttled",
            "backoff",
            "transient",
            id="429-v3-throttled",
        ),
        pytest.param(
            429,
            b'{"error_key":"quota_exceeded","error_message":"Limit Exceeded"}',
            "v3_quota_exceeded",
            "stop_for_today",
            "quota",
            id="429-v3-quota",
        ),
        pytest.param(
            403,
            v2_body("mashery.not.authorized.inactive"),
            "inactive_api_key",
            "fail",
            "config",
            id="403-inactive-key",
        ),
        pytest.param(
            401,
            v2_body("mashery.not.authorized.inactive"),
            "inactive_api_key",
            "fail",
            "config",
            id="401-inactive-key",
        ),
        pytest.param(
            403,
            v2_body("mashery.not.authorized"),
            "api_key_not_authorized",
            "fail",
            "config",
            id="403-mashery-other",
        ),
        pytest.param(
            401,
            v2_body("http.status.authentication.invalid_token"),
            "invalid_token",
            "reauthorize",
            "auth",
            id="401-invalid-token",
        ),
        pytest.param(401, b"", "invalid_token", "reauthorize", "auth", id="401-no-body"),
        pytest.param(429, b"", "too_many_requests", "backoff", "transient", id="429-bare"),
        pytest.param(
            403, v2_body("http.status.forbidden"), "forbidden", "fail", "config", id="403-other"
        ),
        pytest.param(
            404, v2_body("http.status.not_found"), "not_found", "fail", "system", id="404"
        ),
        pytest.param(410, b"", "gone", "fail", "config", id="410"),
        pytest.param(
            400, v2_body("http.status.bad_request"), "bad_request", "fail", "system", id="400"
        ),
        pytest.param(409, b"[]", "bad_request", "fail", "system", id="409"),
        pytest.param(406, b"", "not_acceptable", "fail", "system", id="406"),
        pytest.param(415, b"", "not_acceptable", "fail", "system", id="415"),
        pytest.param(408, b"", "request_timeout", "retry", "transient", id="408"),
        pytest.param(
            500,
            v2_body("http.status.internal_server_error"),
            "server_error",
            "retry",
            "transient",
            id="500",
        ),
        pytest.param(503, b"<html>", "server_error", "retry", "transient", id="503-html"),
        pytest.param(522, b"", "server_error", "retry", "transient", id="522"),
        pytest.param(418, b"", "unknown_status", "fail", "system", id="418-unknown"),
        pytest.param(302, b"", "unknown_status", "fail", "system", id="302-redirect"),
    ],
)
def test_classify_response(status, body, rule, action, failure_type):
    failure = classify_response(status, body, EP)
    assert failure.rule.name == rule
    assert failure.rule.action == action
    assert failure.rule.failure_type == failure_type
    assert failure.status == status


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        pytest.param("timeout", "timeout", id="timeout"),
        pytest.param("connection", "connection", id="connection"),
        pytest.param("protocol", "protocol", id="dropped"),
        pytest.param("malformed", "malformed", id="malformed"),
    ],
)
def test_classify_transport_is_retried(kind, rule):
    failure = classify_transport(kind, EP, "boom")
    assert failure.rule.name == rule
    assert failure.rule.action == "retry"


def test_every_rule_is_reachable_and_has_a_message():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.message
        # the message template renders with the fields the table documents
        failure = errors.Failure(rule=rule, endpoint=EP, status=500, error_key="k")
        text = failure.user_message(daily=10_000, resume_at=datetime(2026, 1, 2, tzinfo=UTC))
        assert "{" not in text


@pytest.mark.parametrize(
    ("status", "body", "exc_type"),
    [
        pytest.param(
            401,
            v2_body("http.status.authentication.invalid_token"),
            ReauthorizeRequired,
            id="reauthorize",
        ),
        pytest.param(
            403, v2_body("mashery.not.authorized.over.ratelimit"), DailyQuotaExhausted, id="quota"
        ),
        pytest.param(403, v2_body("mashery.not.authorized.inactive"), ConfigError, id="config"),
        pytest.param(404, b"", NotFound, id="not-found"),
        pytest.param(400, b"", RequestRejected, id="rejected"),
        pytest.param(500, b"", RetriesExhausted, id="retries-exhausted"),
        pytest.param(
            403,
            v2_body("mashery.not.authorized.over.qps"),
            RetriesExhausted,
            id="throttled-too-long",
        ),
    ],
)
def test_to_exception(status, body, exc_type):
    exc = classify_response(status, body, EP).to_exception(daily=10_000)
    assert type(exc) is exc_type
    assert exc.user_message
    assert exc.endpoint == EP


def test_malformed_gives_malformed_response():
    exc = classify_transport("malformed", EP, "JSONDecodeError").to_exception()
    assert isinstance(exc, MalformedResponse)
    assert exc.failure_type == "system"


def test_quota_exception_says_when_to_resume():
    now = datetime(2026, 11, 27, 18, 5, tzinfo=UTC)
    exc = classify_response(403, v2_body("mashery.not.authorized.over.ratelimit"), EP).to_exception(
        daily=10_000, now=now
    )
    assert isinstance(exc, DailyQuotaExhausted)
    assert exc.resume_at == datetime(2026, 11, 28, tzinfo=UTC)
    # no quota figure: the server says the key's day is spent, which may be another
    # process's calls, so a "quota of 10,000" beside this run's few calls would contradict it
    assert "10,000" not in exc.user_message
    assert "quota is spent" in exc.user_message
    assert "read after 2026-11-28 00:00 UTC" in exc.user_message
    assert exc.failure_type == "quota"


def test_reauthorize_message_is_actionable():
    exc = classify_response(401, v2_body("http.status.authentication.invalid_token"), EP)
    text = exc.to_exception().user_message
    assert "Re-authorize" in text


def test_next_utc_midnight_from_other_timezone():
    eastern = timezone(timedelta(hours=-5))
    # 20:00 in UTC-5 is 01:00 UTC the next day
    assert next_utc_midnight(datetime(2026, 3, 1, 20, 0, tzinfo=eastern)) == datetime(
        2026, 3, 3, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        pytest.param(
            "https://api.constantcontact.com/v2/contacts?api_key=abc123xyz&limit=5",
            "abc123xyz",
            id="api_key-query",
        ),
        pytest.param("GET /x?limit=5&API_KEY=abc123xyz", "abc123xyz", id="api_key-uppercase"),
        pytest.param(
            "/oauth2/oauth/token?client_secret=s3cr3tvalue&code=authcode99",
            "s3cr3tvalue",
            id="client_secret",
        ),
        pytest.param(
            "/oauth2/oauth/token?client_secret=s3cr3tvalue&code=authcode99", "authcode99", id="code"
        ),
        pytest.param("access_token=tok-111-222", "tok-111-222", id="access_token-form"),
        pytest.param(
            '{"access_token":"tok-111-222","token_type":"Bearer"}',
            "tok-111-222",
            id="access_token-json",
        ),
        pytest.param('{"access_token": "tok-111-222"}', "tok-111-222", id="json-spaced"),
        pytest.param("Authorization: Bearer tok-111-222", "tok-111-222", id="bearer-header"),
        pytest.param("api_key%3Dabc123xyz", "abc123xyz", id="url-encoded"),
        pytest.param("password=hunter22", "hunter22", id="password"),
    ],
)
def test_redact_scrubs(text, leaked):
    out = redact(text)
    assert leaked not in out
    assert "***" in out


def test_redact_keeps_ordinary_text():
    text = "HTTP 500 from GET /v2/contacts: status code 500, next=abc"
    assert redact(text) == text


def test_redact_registered_secret_anywhere():
    register_secret("plain-secret-value-42")
    assert "plain-secret-value-42" not in redact("the server echoed plain-secret-value-42 back")
    assert redact("x", ("other-secret-9",)) == "x"
    assert "other-secret-9" not in redact("an other-secret-9 here", ("other-secret-9",))


def test_short_secrets_are_not_registered():
    register_secret("ab")
    assert redact("abc about") == "abc about"


def test_exception_text_never_contains_secrets():
    register_secret("leaky-token-123456")
    body = v2_body("http.status.authentication.invalid_token", "token leaky-token-123456 bad")
    exc = classify_response(401, body, EP).to_exception()
    for text in (str(exc), exc.user_message, exc.detail, repr(exc)):
        assert "leaky-token-123456" not in text


def test_redacting_filter_scrubs_log_records(caplog):
    logger = logging.getLogger("ctctsync.test.redact")
    errors.install_redacting_filter("ctctsync.test.redact")
    errors.install_redacting_filter("ctctsync.test.redact")  # idempotent
    assert len(logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="ctctsync.test.redact"):
        logger.info("GET %s", "https://h/v2/x?api_key=abc123xyz")
    assert "abc123xyz" not in caplog.text
    assert "api_key=***" in caplog.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'[{"error_key":"k","error_message":"m"}]', ("k", "m"), id="v2-array"),
        pytest.param(b'{"error_key":"k","error_message":"m"}', ("k", "m"), id="v3-object"),
        pytest.param(
            b'{"error":"access_denied","error_description":"d"}', ("access_denied", "d"), id="oauth"
        ),
        pytest.param(b"<html>", (None, None), id="html"),
        pytest.param(b"[]", (None, None), id="empty-array"),
        pytest.param(b'"text"', (None, None), id="json-string"),
    ],
)
def test_parse_error_body(body, expected):
    assert errors.parse_error_body(body) == expected


@pytest.mark.parametrize(
    ("status", "key"),
    [
        pytest.param(401, "http.status.authentication.invalid_token", id="reauthorize"),
        pytest.param(403, "mashery.not.authorized.over.ratelimit", id="quota"),
        pytest.param(500, "x", id="retries"),
    ],
)
def test_errors_survive_pickling(status, key):
    exc = classify_response(status, v2_body(key), EP).to_exception(daily=10_000)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.user_message == exc.user_message
    assert copy.rule == exc.rule
    assert getattr(copy, "resume_at", None) == getattr(exc, "resume_at", None)
