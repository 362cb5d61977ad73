"""Client behaviour the sandbox cannot provoke, against a scripted real HTTP server."""

from __future__ import annotations

import pytest

from ctctsync.api import ApiClient, RateLimiter
from ctctsync.api.cancel import Cancelled
from ctctsync.errors import ConfigError, MalformedResponse, PaginationLoop, RequestRejected


def client_for(server, waits: list[float] | None = None) -> ApiClient:
    return ApiClient(
        server.base_url,
        "scripted-key-123",
        "scripted-token-456",
        limiter=RateLimiter(None, None),
        sleep=(waits.append if waits is not None else lambda _s: None),
        jitter=lambda: 0.0,
    )


def page(ids: list[int], next_link: str | None) -> dict:
    pagination = {"next_link": next_link} if next_link else {}
    return {"meta": {"pagination": pagination}, "results": [{"id": i} for i in ids]}


def test_repeated_next_link_raises_pagination_loop(scripted_server):
    scripted_server.answer(
        "/v2/contacts",
        (200, {}, page([1], "/v2/contacts?next=A")),
        (200, {}, page([2], "/v2/contacts?next=B")),
        (200, {}, page([3], "/v2/contacts?next=A")),
    )
    with client_for(scripted_server) as client:
        pages = client.pages("/v2/contacts", {"limit": 1, "status": "ALL"})
        seen = [next(pages).records, next(pages).records, next(pages).records]
        with pytest.raises(PaginationLoop):
            next(pages)
    assert seen == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    assert len(scripted_server.requests) == 3


def test_next_page_sends_only_next_and_api_key(scripted_server):
    scripted_server.answer(
        "/v2/contacts",
        (200, {}, page([1], "/v2/contacts?next=TOKEN")),
        (200, {}, page([2], None)),
    )
    with client_for(scripted_server) as client:
        list(client.pages("/v2/contacts", {"limit": 1, "modified_since": "x"}))
    first, second = scripted_server.requests
    assert "limit=1" in first
    assert "modified_since=x" in first
    assert second == "/v2/contacts?next=TOKEN&api_key=scripted-key-123"


def test_next_link_to_another_host_is_not_followed(scripted_server):
    scripted_server.answer(
        "/v2/contacts", (200, {}, page([1], "https://evil.example/v2/contacts?next=A"))
    )
    with client_for(scripted_server) as client, pytest.raises(MalformedResponse):
        list(client.pages("/v2/contacts"))
    assert len(scripted_server.requests) == 1


def test_retry_after_is_honoured(scripted_server):
    scripted_server.answer(
        "/v2/account/info",
        (503, {"Retry-After": "7"}, b"[]"),
        (200, {}, {"email": "a@b"}),
    )
    waits: list[float] = []
    with client_for(scripted_server, waits) as client:
        assert client.get_json("/v2/account/info") == {"email": "a@b"}
    assert waits == [7.0]


def test_retry_after_is_capped(scripted_server):
    scripted_server.answer(
        "/v2/account/info",
        (503, {"Retry-After": "86400"}, b"[]"),
        (200, {}, {}),
    )
    waits: list[float] = []
    with client_for(scripted_server, waits) as client:
        client.get_json("/v2/account/info")
    assert waits == [client.retry.max_retry_after]


def test_redirects_are_not_followed(scripted_server):
    scripted_server.answer(
        "/v2/account/info", (302, {"Location": "https://evil.example/steal"}, b"")
    )
    with client_for(scripted_server) as client, pytest.raises(RequestRejected) as info:
        client.get_json("/v2/account/info")
    assert info.value.status == 302
    assert len(scripted_server.requests) == 1


def test_every_request_carries_key_token_and_accept(scripted_server):
    scripted_server.answer("/v2/account/info", (200, {}, {}))
    with client_for(scripted_server) as client:
        client.get_json("/v2/account/info")
    seen = scripted_server.headers[0]
    assert scripted_server.requests == ["/v2/account/info?api_key=scripted-key-123"]
    assert seen["authorization"] == "Bearer scripted-token-456"
    assert seen["accept"] == "application/json"
    assert seen["user-agent"].startswith("ctctsync/")


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("api.constantcontact.com", id="no-scheme"),
        pytest.param("ftp://api.constantcontact.com", id="ftp"),
    ],
)
def test_base_url_must_be_http(base_url):
    with pytest.raises(ConfigError) as info:
        ApiClient(base_url, "k-123456", "t-123456", limiter=RateLimiter(None, None))
    assert info.value.failure_type == "config"


def test_retries_and_throttling_are_counted_by_cause(scripted_server):
    # issue 8: the run log's WARN line per table comes from these counts
    throttle = {"error_key": "mashery.not.authorized.over.qps", "error_message": "over qps"}
    scripted_server.answer(
        "/v2/account/info",
        (500, {}, b"[]"),
        (503, {"Retry-After": "0"}, b"[]"),
        (500, {}, b"[]"),
        (403, {}, [throttle]),
        (200, {}, {"email": "a@b"}),
    )
    with client_for(scripted_server) as client:
        before = client.calls.retry_stats()
        assert client.get_json("/v2/account/info") == {"email": "a@b"}
        stats = client.calls.retry_stats().since(before)
    assert dict(stats.retries) == {"500": 2, "503": 1}
    assert stats.throttles == 1
    assert stats.extra_calls == 4 == client.calls.total - 1
    assert stats.summary() == "3 retries (500 x2, 503 x1), 1 throttling answer; 4 extra calls"
    assert before.summary() is None


def test_a_cancel_ends_a_retry_wait_and_sends_nothing_more(scripted_server):
    # issue 8: cancel stops within the current request, not after the backoff and retries
    scripted_server.answer(
        "/v2/account/info",
        (503, {"Retry-After": "60"}, b"[]"),
        (200, {}, {"email": "a@b"}),
    )
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = ApiClient(
        scripted_server.base_url,
        "scripted-key-123",
        "scripted-token-456",
        limiter=RateLimiter(None, None),
        sleep=sleep,
        should_stop=lambda: sum(slept) >= 0.5,  # cancelled half a second into the wait
    )
    with client, pytest.raises(Cancelled):
        client.get_json("/v2/account/info")
    assert len(scripted_server.requests) == 1
    assert sum(slept) == pytest.approx(0.5)


def test_a_cancelled_client_sends_nothing(scripted_server):
    scripted_server.answer("/v2/account/info", (200, {}, {"email": "a@b"}))
    with ApiClient(
        scripted_server.base_url,
        "scripted-key-123",
        "scripted-token-456",
        limiter=RateLimiter(4, None),
        should_stop=lambda: True,
    ) as client, pytest.raises(Cancelled):
        client.get_json("/v2/account/info")
    assert scripted_server.requests == []
    assert client.calls.total == 0 and client.limiter.used_today == 0
