"""One redactor: what ctctsync shows or stores for people never contains a secret.

A :class:`Redactor` scrubs, in order:

1. the secret values it was given (and the password inside a given connection URL, which
   a driver may echo on its own), plus the process's own secrets (:func:`register_secret`:
   the control plane's keys and its OAuth application's secret, never an integration's);
2. its pattern rules (:class:`Pattern`): the values of secret parameters (``api_key=``,
   ``"access_token": "..."``), ``Bearer`` tokens, the credentials of a URL
   (``scheme://user:password@``) and -- for text stored for people to read, such as run
   logs -- UUID-shaped tokens (v2 access tokens are UUIDs) and long random-looking words
   mixing upper case, lower case and digits (run ids, lower-case hex, stay readable).

Each run (and each API client) has its own redactor, built from its own secrets and dropped
with it: nothing keeps an integration's token once its run has ended. While a redactor is
:meth:`~Redactor.in_use`, its secrets are also scrubbed by the process-wide redactor, which
sees log lines from code that knows no run (httpx's request log, the error table's
messages, from whichever thread made the request).

:func:`redact` is the standard redactor (no token-shape guessing: API messages keep their
ids) for the error messages and the process log; :class:`RedactingFilter` and
:class:`RedactingFormatter` put a redactor in front of the logging machinery.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Protocol

REDACTED: Final = "***"
MIN_SECRET_LENGTH: Final = 4
"""Shorter values are not scrubbed as plain text: doing so would mangle ordinary words."""

SECRET_PARAMS: frozenset[str] = frozenset(
    {
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "token",
        "client_secret",
        "code",
        "password",
        "client_id",
    }
)
"""Query/form parameter names whose values are always scrubbed."""


class SupportsSecret(Protocol):
    """A wrapped secret, such as pydantic's ``SecretStr``."""

    def get_secret_value(self) -> str:
        """The secret in clear."""
        ...


SecretLike = str | SupportsSecret | None


@dataclass(frozen=True)
class Pattern:
    """One pattern rule: every match of ``regex`` is replaced by ``replace(match)``."""

    name: str
    regex: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]

    def apply(self, text: str) -> str:
        """``text`` with this rule applied."""
        return self.regex.sub(self.replace, text)


def _looks_random(word: str) -> bool:
    return (
        any(c.isupper() for c in word)
        and any(c.islower() for c in word)
        and any(c.isdigit() for c in word)
    )


SECRET_PARAM = Pattern(
    "secret_param",
    re.compile(
        r"(?P<name>\b(?:" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r"))"
        r"(?P<sep>=|%3D|\"\s*:\s*\"|'\s*:\s*')(?P<value>[^&\s\"',;}]+)",
        re.IGNORECASE,
    ),
    lambda m: f"{m['name']}{m['sep']}{REDACTED}",
)
BEARER = Pattern(
    "bearer",
    re.compile(r"(?P<prefix>\bBearer\s+)[^\s\"',;]+", re.IGNORECASE),
    lambda m: f"{m['prefix']}{REDACTED}",
)
URL_CREDENTIALS = Pattern(
    "url_credentials",
    re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"),
    lambda m: f"{m['scheme']}{REDACTED}@",
)
UUID_TOKEN = Pattern(
    "uuid_token",
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    lambda m: REDACTED,
)
RANDOM_TOKEN = Pattern(
    "random_token",
    re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{24,}(?![A-Za-z0-9_\-])"),
    lambda m: REDACTED if _looks_random(m[0]) else m[0],
)

STANDARD_PATTERNS: Final[tuple[Pattern, ...]] = (SECRET_PARAM, BEARER, URL_CREDENTIALS)
"""For error messages and the process log: secrets named as such."""
TOKEN_PATTERNS: Final[tuple[Pattern, ...]] = (*STANDARD_PATTERNS, UUID_TOKEN, RANDOM_TOKEN)
"""For text stored for people to read (run logs, run errors): also whatever looks like a
credential even when nobody said it was one."""


def _url_password(value: str) -> str | None:
    """The password inside a connection URL's userinfo (``scheme://user:password@...``)."""
    if "://" not in value or "@" not in value:
        return None
    userinfo = value.split("://", 1)[1].split("@", 1)[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def _values(secrets: Iterable[SecretLike]) -> Iterator[str]:
    """The plain values to scrub for ``secrets``: each one, and a URL's password too."""
    for secret in secrets:
        value = secret if isinstance(secret, str) or secret is None else secret.get_secret_value()
        if not value:
            continue
        for part in (value, _url_password(value)):
            if part and len(part) >= MIN_SECRET_LENGTH:
                yield part


class SecretRegistry:
    """A thread-safe set of secret values that every redactor using it scrubs."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: SecretLike) -> None:
        """Remember ``value`` (ignored when shorter than :data:`MIN_SECRET_LENGTH`)."""
        with self._lock:
            self._values.update(_values((value,)))

    def values(self) -> frozenset[str]:
        """A snapshot of the values."""
        with self._lock:
            return frozenset(self._values)

    def restore(self, snapshot: frozenset[str]) -> None:
        """Go back to an earlier :meth:`values` snapshot (for a test harness that creates
        many throwaway key sets in one process and must not make every redaction slower)."""
        with self._lock:
            self._values = set(snapshot)


PROCESS_SECRETS: Final = SecretRegistry()
"""The process's own secrets, for its whole life: the control plane's session and
encryption keys, its OAuth application's client secret. Never an integration's token."""
KNOWN_SECRETS: Final = PROCESS_SECRETS
"""Former name of :data:`PROCESS_SECRETS`."""


class _InUse:
    """The secrets of the redactors in use right now (:meth:`Redactor.in_use`), which the
    process-wide redactor scrubs too. Each use is removed when it ends."""

    def __init__(self) -> None:
        self._uses: dict[int, frozenset[str]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._snapshot: frozenset[str] = frozenset()

    def enter(self, values: frozenset[str]) -> int:
        with self._lock:
            self._next += 1
            self._uses[self._next] = values
            self._snapshot = frozenset().union(*self._uses.values())
            return self._next

    def leave(self, key: int) -> None:
        with self._lock:
            self._uses.pop(key, None)
            self._snapshot = frozenset().union(*self._uses.values())

    def values(self) -> frozenset[str]:
        return self._snapshot  # replaced whole under the lock: reading it needs none


IN_USE: Final = _InUse()
"""Secrets of the runs and API clients at work now (see :meth:`Redactor.in_use`)."""


class Redactor:
    """Scrubs the given secrets, the process's secrets and its pattern rules' matches.

    >>> Redactor(["postgresql://u:pw-1234@db/x"])("connect postgresql://u:pw-1234@db/x: pw-1234")
    'connect ***: ***'

    Args:
        secrets: the values to scrub (one run's credentials, say).
        patterns: the pattern rules, in order.
        registry: secrets shared by every redactor (default :data:`PROCESS_SECRETS`).
        in_use_too: also scrub the secrets of every redactor :meth:`in_use` at the time of
            the call (for the process log, whose lines come from any run).
    """

    def __init__(
        self,
        secrets: Iterable[SecretLike] = (),
        *,
        patterns: tuple[Pattern, ...] = TOKEN_PATTERNS,
        registry: SecretRegistry | None = PROCESS_SECRETS,
        in_use_too: bool = False,
    ) -> None:
        self._secrets = frozenset(_values(secrets))
        self._patterns = patterns
        self._registry = registry
        self._in_use_too = in_use_too

    @property
    def secrets(self) -> frozenset[str]:
        """The values this redactor was given (not the shared ones)."""
        return self._secrets

    def add(self, secret: SecretLike) -> None:
        """Scrub ``secret`` too from now on (a renewed access token, say)."""
        self._secrets = self._secrets | frozenset(_values((secret,)))

    @contextmanager
    def in_use(self) -> Iterator[Redactor]:
        """Within: the process-wide redactor scrubs this one's secrets too (a run's httpx
        log lines and error messages are written by code that does not know the run)."""
        key = IN_USE.enter(self._secrets)
        try:
            yield self
        finally:
            IN_USE.leave(key)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        values = self._secrets
        if self._registry is not None:
            values = values | self._registry.values()
        if self._in_use_too:
            values = values | IN_USE.values()
        # Longest first so a secret containing another is scrubbed whole.
        for value in sorted(values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        for pattern in self._patterns:
            text = pattern.apply(text)
        return text


_STANDARD = Redactor(patterns=STANDARD_PATTERNS, in_use_too=True)


def register_secret(value: str | None) -> None:
    """Remember one of the *process's own* secrets (a key of the control plane, its OAuth
    application's client secret) so that every redactor scrubs it for the rest of the
    process's life. An integration's credentials belong in its run's :class:`Redactor`
    instead. Values shorter than 4 characters are ignored."""
    PROCESS_SECRETS.add(value)


def redact(text: str, secrets: Iterable[SecretLike] = ()) -> str:
    """``text`` through the standard redactor (:data:`STANDARD_PATTERNS`, the process's
    secrets, those of the redactors in use), also scrubbing the extra ``secrets`` given
    (e.g. a warehouse's credentials: the connection string and the password inside it).

    >>> redact("GET /v2/contacts?api_key=abc123xyz&limit=50")
    'GET /v2/contacts?api_key=***&limit=50'
    """
    extra = tuple(secrets)
    if not extra:
        return _STANDARD(text)
    return Redactor(extra, patterns=STANDARD_PATTERNS, in_use_too=True)(text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from a record's message (and drops its args)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or _STANDARD

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; rewrites its message when it held a secret."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = self._redactor(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message and traceback) has passed through a redactor."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The formatted, redacted record."""
        return self._redactor(super().format(record))


def install_redacting_filter(*logger_names: str) -> None:
    """Attach one :class:`RedactingFilter` to each named logger (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
