"""Scrubbing secrets from what the control plane stores for people to read (run logs, errors).

Builds on ``ctctsync.errors.redact`` (known secrets, ``api_key=``-style parameters, Bearer
tokens) and adds the patterns of things that look like credentials even when nobody told
us they were: UUID-shaped tokens (v2 access tokens are UUIDs) and long random-looking
strings mixing upper case, lower case and digits. Run ids (lower-case hex) stay readable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ctctsync.errors import REDACTED, redact

_UUID_RE = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_LONG_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{24,}(?![A-Za-z0-9_\-])")
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")


def _looks_random(word: str) -> bool:
    return (
        any(c.isupper() for c in word)
        and any(c.islower() for c in word)
        and any(c.isdigit() for c in word)
    )


class Redactor:
    """Scrubs the given secrets and token-like strings from text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        text = redact(text, self._secrets)
        text = _URL_CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
        text = _UUID_RE.sub(REDACTED, text)
        return _LONG_TOKEN_RE.sub(
            lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text
        )


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message and traceback) has passed through a Redactor."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The formatted, redacted record."""
        return self._redactor(super().format(record))
