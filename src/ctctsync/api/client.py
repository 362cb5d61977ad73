"""The HTTP client every ctctsync call to Constant Contact goes through.

One :class:`ApiClient` holds one keep-alive ``httpx.Client`` and the credentials; it paces
every attempt through the key's shared :class:`RateLimiter`, classifies every failure with
the error table (:mod:`ctctsync.errors`), retries what is transient, counts calls per
endpoint template (and every retried or throttled answer, by cause), logs each call at DEBUG
with the URL redacted, and stops promptly when its ``should_stop`` says so
(:mod:`ctctsync.api.cancel`).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any, TypeVar

import httpx
import orjson

from ctctsync import __version__
from ctctsync.api.cancel import StopCheck, check_stop, pause
from ctctsync.api.paging import (
    Envelope,
    LoopGuard,
    Page,
    Paginator,
    ShapeError,
    paginator_for,
    resolve_next_link,
)
from ctctsync.api.ratelimit import Priority, RateLimiter, fingerprint, limiter_for
from ctctsync.errors import (
    STANDARD_PATTERNS,
    ConfigError,
    CtctError,
    ErrorRule,
    Failure,
    Redactor,
    TransportKind,
    classify_response,
    classify_transport,
    install_redacting_filter,
    redact,
)

log = logging.getLogger("ctctsync.api")

# httpx logs every request URL at INFO -- with our api_key in the query. Scrub its records
# (and httpcore's) wherever logging is configured to show them.
install_redacting_filter("httpx", "httpcore")

T = TypeVar("T")

INVALID_BASE_URL_RULE = ErrorRule(
    name="invalid_base_url",
    action="fail",
    failure_type="config",
    message="The API base URL is not an http(s) URL.",
)

CONNECT_TIMEOUT = 10.0
"""Seconds to establish a connection, whatever the read timeout: a host that does not
answer is given up on quickly (see ``RetryPolicy.connect_attempts``)."""
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=CONNECT_TIMEOUT)
"""30 s to read an answer, 10 s to connect."""

USER_AGENT = f"ctctsync/{__version__} (+https://github.com/ctctsync/ctctsync)"

_ID_SEGMENT = re.compile(r"\d")
_VERSION_SEGMENT = re.compile(r"v\d+")


def endpoint_template(method: str, path: str) -> str:
    """``"GET /v2/emailmarketing/campaigns/{id}/tracking/opens"`` for a concrete path.

    A path segment holding a digit is an id (numeric v2 ids, negative folder ids, EventSpot
    ids such as ``a07e1iw09oscc73adfe`` -- constant-contact-api.md §1.5).
    """
    path = path.split("?", 1)[0]
    segments = [
        "{id}" if _ID_SEGMENT.search(s) and not _VERSION_SEGMENT.fullmatch(s) else s
        for s in path.split("/")
    ]
    return f"{method} {'/'.join(segments)}"


TRANSPORT_KINDS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], TransportKind], ...] = (
    # No connection at all: refused, unknown host, nothing answered within the connect timeout.
    ((httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError), "connection"),
    (httpx.TimeoutException, "timeout"),
    # Dropped connection (reset while reading or writing), incomplete body (Content-Length
    # not met), bad gzip, anything else.
    (
        (httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError, httpx.TransportError),
        "protocol",
    ),
)
"""httpx's failures without an answer, as the error table's transport kinds (first match)."""


@dataclass(frozen=True)
class RetryStats:
    """Answers a client threw away and asked again: retries by cause (an HTTP status such
    as ``"500"``, or a transport kind such as ``"timeout"``) and throttling answers (the
    server said "over the rate limit"). Each one cost an extra call against the quota."""

    retries: Mapping[str, int] = field(default_factory=dict)
    throttles: int = 0

    @property
    def retry_count(self) -> int:
        """Retried answers, all causes."""
        return sum(self.retries.values())

    @property
    def extra_calls(self) -> int:
        """Calls spent beyond one per answer used: every retry and every throttled call."""
        return self.retry_count + self.throttles

    def since(self, earlier: RetryStats) -> RetryStats:
        """What happened after ``earlier`` (a snapshot of the same counter)."""
        causes = {
            cause: n - earlier.retries.get(cause, 0)
            for cause, n in self.retries.items()
            if n > earlier.retries.get(cause, 0)
        }
        return RetryStats(causes, self.throttles - earlier.throttles)

    def summary(self) -> str | None:
        """``"12 retries (500 x9, timeout x3), 4 throttling answers; 16 extra calls"``, or
        None when there was nothing to say."""
        if not self.extra_calls:
            return None
        parts = []
        if self.retry_count:
            causes = ", ".join(
                f"{cause} x{n}"
                for cause, n in sorted(self.retries.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            noun = "retry" if self.retry_count == 1 else "retries"
            parts.append(f"{self.retry_count} {noun} ({causes})")
        if self.throttles:
            noun = "answer" if self.throttles == 1 else "answers"
            parts.append(f"{self.throttles} throttling {noun}")
        extra = "extra call" if self.extra_calls == 1 else "extra calls"
        return f"{', '.join(parts)}; {self.extra_calls} {extra}"


class CallCounter:
    """Calls sent per endpoint template (every attempt, retries included: each one counts
    against the daily quota), and the answers that were retried or throttled. Thread-safe;
    the sync engine reads it for "API calls used" and for the run log's retry WARN lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._retries: dict[str, int] = {}
        self._throttles = 0

    def add(self, endpoint: str) -> None:
        with self._lock:
            self._counts[endpoint] = self._counts.get(endpoint, 0) + 1

    def retried(self, cause: str) -> None:
        """An answer (or its absence) of kind ``cause`` is being retried."""
        with self._lock:
            self._retries[cause] = self._retries.get(cause, 0) + 1

    def throttled(self) -> None:
        """The server answered "over the rate limit"; the call is made again, slower."""
        with self._lock:
            self._throttles += 1

    def retry_stats(self) -> RetryStats:
        """Retries and throttling answers so far."""
        with self._lock:
            return RetryStats(dict(self._retries), self._throttles)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


@dataclass(frozen=True)
class RetryPolicy:
    """How long the client keeps trying.

    ``max_attempts`` bounds retried failures (5xx, 522, timeouts, drops); waits are
    exponential with full jitter, ``uniform(0, min(max_delay, base_delay * 2**n))``, or the
    server's ``Retry-After`` (capped at ``max_retry_after``). Malformed bodies get
    ``malformed_attempts`` tries; over-qps answers ``throttle_attempts`` (the limiter does
    the waiting for those). A host that cannot be connected to (refused, unknown name,
    connect timeout) gets ``connect_attempts`` tries: with the 10 s connect timeout and the
    waits between them (at most 0.5 s + 1 s) that is at most about 32 s, after which the
    request fails with the ``unreachable`` rule, which stops the run.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    malformed_attempts: int = 4
    throttle_attempts: int = 20
    connect_attempts: int = 3

    def attempts_for(self, transport: TransportKind | None) -> int:
        """The tries a retried failure of this transport kind (None: an HTTP answer) gets."""
        special = {"malformed": self.malformed_attempts, "connection": self.connect_attempts}
        return min(self.max_attempts, special.get(transport or "", self.max_attempts))


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _with_connect_timeout(timeout: httpx.Timeout | float) -> httpx.Timeout:
    """``timeout`` as an httpx timeout; a plain number (the read timeout of the
    configuration) keeps :data:`CONNECT_TIMEOUT` for connecting."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))


def _cause(failure: Failure) -> str:
    """What the run log calls a retried failure: its HTTP status, else its transport kind."""
    if failure.status is not None:
        return str(failure.status)
    return failure.rule.transport or failure.rule.name


class ApiClient:
    """Talks HTTP to one Constant Contact account.

    Every request carries the ``api_key`` query parameter *and* ``Authorization: Bearer``
    -- constant-contact-api.md §1.1. ``base_url`` is the origin (plus an optional path
    prefix) *without* ``/v2``: paths start with ``/v2/``.

    Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        access_token: str,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        should_stop: StopCheck | None = None,
        redactor: Redactor | None = None,
        send_api_key: bool = True,
        renew_token: Callable[[str], str] | None = None,
        priority: Priority = "high",
    ) -> None:
        """``priority``: this client's class at its key's budget (``low``: a backfill's
        calls, which let scheduled runs' calls go first; ctctsync.api.ratelimit).
        ``send_api_key``: v2 sends the key as a query parameter on every call; v3 sends
        only the Bearer token (v3 reference §1.1). ``renew_token``: called once per request
        with the access token the API refused (401), returns a fresh one (v3's 24 h tokens
        are refreshed with a rotating refresh token); the request is retried once with it.
        Given the refused token, one hook shared by a run's clients refreshes once: the
        others are handed the token the first one got (``TokenKeeper.renew``)."""
        # This client's secrets, scrubbed while it works (``_request``) and forgotten with
        # it; a run passes its own redactor (its credentials, its warehouse's).
        self.redactor = redactor or Redactor((api_key, access_token), patterns=STANDARD_PATTERNS)
        if not base_url.startswith(("http://", "https://")):
            # Without this, httpx's UnsupportedProtocol would be retried as a transient error.
            raise ConfigError(
                f"The API base URL {redact(base_url, (api_key, access_token))!r} is not "
                "an http(s) URL. "
                "Check the base URL in the integration settings.",
                rule=INVALID_BASE_URL_RULE,
            )
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._access_token = access_token
        self._send_api_key = send_api_key
        self._renew_token = renew_token
        self.limiter = limiter if limiter is not None else limiter_for(fingerprint(api_key))
        self.priority: Priority = priority
        self.retry = retry or RetryPolicy()
        self.calls = CallCounter()
        self._sleep = sleep
        self._jitter = jitter
        self._wall_clock = wall_clock
        self.should_stop = should_stop
        """Checked before every request and during every wait: True raises ``Cancelled``."""
        self._http = httpx.Client(
            timeout=_with_connect_timeout(timeout),
            transport=transport,
            headers={
                "Accept": "application/json",  # anything else -> 406 -- §1.1
                "Authorization": f"Bearer {access_token}",
                "User-Agent": user_agent,
            },
            follow_redirects=False,  # a redirect could carry the api_key elsewhere
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ public calls

    def get_json(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        endpoint: str | None = None,
    ) -> Any:
        """GET ``path`` and return the decoded JSON body (retried as the error table says).

        Raises a :class:`~ctctsync.errors.CtctError` subclass when the call cannot succeed.
        """
        url = self.base_url + path
        template = endpoint or endpoint_template("GET", path)
        return self._request(url, dict(params or {}), template, lambda body: body)

    def pages(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        envelope: Envelope | Paginator = "v2_results",
        *,
        endpoint: str | None = None,
        records_key: str | None = None,
    ) -> Iterator[Page]:
        """Every page of a collection, following next links until the last page.

        The first request sends ``params``; each next page is requested with the next link's
        own parameters only (§1.3). A repeated next link raises
        :class:`~ctctsync.errors.PaginationLoop`; a body of the wrong shape is retried, then
        raises :class:`~ctctsync.errors.MalformedResponse`.
        """
        paginator = paginator_for(envelope, records_key) if isinstance(envelope, str) else envelope
        template = endpoint or endpoint_template("GET", path)
        guard = LoopGuard(template)
        url, query = self.base_url + path, dict(params or {})
        while True:
            page = self._request(url, query, template, paginator.parse)
            yield page
            if page.next_link is None:
                return
            guard.check(page.next_link)
            try:
                url, next_query = resolve_next_link(self.base_url, page.next_link)
            except ShapeError as exc:
                raise classify_transport("malformed", template, str(exc)).to_exception() from None
            query = dict(next_query)

    def post_json(self, path: str, body: Mapping[str, Any], *, endpoint: str | None = None) -> Any:
        """POST ``body`` as JSON to ``path`` and return the decoded answer (None when empty),
        paced, counted and retried like a GET (v3 bulk activities, §3.13).

        Only for requests that are safe to repeat: a retried POST may be received twice (a
        second export activity costs one call, nothing else)."""
        template = endpoint or endpoint_template("POST", path)
        data = self._send("POST", path, orjson.dumps(dict(body)), None, template)
        return orjson.loads(data) if data else None

    def download(self, path: str, sink: IO[bytes], *, accept: str = "text/csv",
                 endpoint: str | None = None) -> None:
        """Stream a (non-JSON) file into ``sink`` chunk by chunk, so memory does not grow
        with its size; a retried download starts ``sink`` over."""
        template = endpoint or endpoint_template("GET", path)
        self._send("GET", path, None, sink, template, accept=accept)

    def _send(self, method: str, path: str, content: bytes | None, sink: IO[bytes] | None,
              template: str, *, accept: str | None = None) -> bytes:
        failures: dict[str, int] = {}
        with self.redactor.in_use():
            while True:
                grant = self.limiter.acquire(self.should_stop, self.priority)
                try:
                    check_stop(self.should_stop)
                    self.calls.add(template)
                    result = self._send_once(method, path, content, sink, template, accept)
                finally:
                    # answered (or failed): the call's hold on the key's window ends
                    self.limiter.done(grant)
                if isinstance(result, bytes):
                    return result
                self._handle(result, failures)

    def _send_once(self, method: str, path: str, content: bytes | None,
                   sink: IO[bytes] | None, template: str, accept: str | None) -> bytes | Failure:
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if accept is not None:
            headers["Accept"] = accept
        try:
            with self._http.stream(method, self.base_url + path, content=content,
                                   headers=headers) as response:
                if not response.is_success:
                    return classify_response(response.status_code, response.read(), template)
                if sink is None:
                    return response.read()
                sink.seek(0)
                sink.truncate()  # a retried download starts over
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                return b""
        except (httpx.TransportError, httpx.DecodingError) as exc:
            kind = next(k for types, k in TRANSPORT_KINDS if isinstance(exc, types))
            return self._transport_failure(kind, template, self.base_url + path, exc)

    # ------------------------------------------------------------------ the retry loop

    def _request(
        self,
        url: str,
        params: dict[str, str | int],
        template: str,
        parse: Callable[[Any], T],
    ) -> T:
        # v2: api_key is required on every call, next-page calls included -- §1.1, §1.3.
        query = {**params, "api_key": self._api_key} if self._send_api_key else dict(params)
        failures: dict[str, int] = {}
        # in use: httpx's log lines and the error table's messages, written without knowing
        # this client, are scrubbed of its secrets too (on whichever thread calls)
        with self.redactor.in_use():
            while True:
                failure, result = self._attempt(url, query, template, parse)
                if failure is None:
                    return result  # type: ignore[return-value]
                self._handle(failure, failures)

    def _attempt(
        self,
        url: str,
        query: dict[str, str | int],
        template: str,
        parse: Callable[[Any], T],
    ) -> tuple[Failure | None, T | None]:
        """One try: pace, send, classify. Returns (failure, None) or (None, result)."""
        # raises DailyQuotaExhausted before sending, Cancelled while waiting for a slot
        grant = self.limiter.acquire(self.should_stop, self.priority)
        try:
            check_stop(self.should_stop)  # the last moment a cancel costs no call
            self.calls.add(template)
            started = time.monotonic()
            response = self._http.get(url, params=query)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            kind = next(k for types, k in TRANSPORT_KINDS if isinstance(exc, types))
            return self._transport_failure(kind, template, url, exc), None
        finally:
            # answered (or failed): the server has counted the call; its hold on the key's
            # window ends (ctctsync.api.ratelimit, the hold rule)
            self.limiter.done(grant)
        elapsed_ms = (time.monotonic() - started) * 1000
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s -> %s in %.0f ms (%s)",
                template,
                response.status_code,
                elapsed_ms,
                self.redactor(str(response.request.url)),
            )
        if not response.is_success:
            retry_after = _retry_after_seconds(
                response.headers.get("Retry-After"), self._wall_clock()
            )
            return (
                classify_response(
                    response.status_code, response.content, template, retry_after=retry_after
                ),
                None,
            )
        try:
            body = orjson.loads(response.content)
            return None, parse(body)
        except (orjson.JSONDecodeError, ShapeError) as exc:
            return classify_transport("malformed", template, f"{type(exc).__name__}: {exc}"), None

    def _transport_failure(
        self, kind: TransportKind, template: str, url: str, exc: Exception
    ) -> Failure:
        detail = f"{type(exc).__name__}: {exc} ({url})"
        target = httpx.URL(url)
        where = f"{target.host}:{target.port}" if target.port else target.host
        return classify_transport(
            kind, template, detail, reason=f"{where}: {str(exc) or type(exc).__name__}"
        )

    def _handle(self, failure: Failure, failures: dict[str, int]) -> None:
        """Act on a failed attempt: wait and return (to retry) or raise."""
        rule = failure.rule
        count = failures.get(rule.name, 0) + 1
        failures[rule.name] = count
        if rule.action == "reauthorize" and self._renew_token is not None and count == 1:
            # an access token expired (or was revoked) mid-run: renew it once and retry; a
            # refused renewal raises its own reauthorize error
            self._use_token(self._renew_token(self._access_token))
            return
        if rule.action == "backoff":
            if count >= self.retry.throttle_attempts:
                raise self._give_up(failure)
            log.info("%s: over the rate limit (%s); slowing down", failure.endpoint, rule.name)
            self.calls.throttled()
            self.limiter.slow_down()
            if failure.retry_after:
                self._pause(min(failure.retry_after, self.retry.max_retry_after))
            return
        if rule.action == "stop_for_today":
            error = failure.to_exception(daily=self.limiter.daily, now=self._wall_clock())
            resume_at = getattr(error, "resume_at", None)
            self.limiter.mark_exhausted(resume_at)
            raise error
        if rule.action != "retry":
            raise self._give_up(failure)
        limit = self.retry.attempts_for(rule.transport)
        if count >= limit:
            raise self._give_up(failure)
        if failure.retry_after is not None:
            delay = min(failure.retry_after, self.retry.max_retry_after)
        else:
            cap = min(self.retry.max_delay, self.retry.base_delay * 2 ** (count - 1))
            delay = self._jitter() * cap
        log.warning(
            "%s failed (%s, attempt %d of %d); retrying in %.1f s: %s",
            failure.endpoint,
            rule.name,
            count,
            limit,
            delay,
            failure.detail,
        )
        self.calls.retried(_cause(failure))
        self._pause(delay)

    def _use_token(self, access_token: str) -> None:
        """Send ``access_token`` from now on (kept secret like the first one)."""
        self.redactor.add(access_token)
        self._access_token = access_token
        self._http.headers["Authorization"] = f"Bearer {access_token}"

    def _pause(self, seconds: float) -> None:
        """Wait before the next attempt; a cancel ends the wait (raising ``Cancelled``)."""
        pause(seconds, self._sleep, self.should_stop)

    def _give_up(self, failure: Failure) -> CtctError:
        error = failure.to_exception(daily=self.limiter.daily, now=self._wall_clock())
        log.debug("giving up on %s: %s", failure.endpoint, error.detail)
        return error
