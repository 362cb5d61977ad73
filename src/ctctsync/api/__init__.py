"""The API layer: everything that talks HTTP to Constant Contact.

``ApiClient`` (HTTP, auth, retries, call counts), ``RateLimiter`` (shared per API key),
paginators per envelope style, and per-version readers in ``api.v2`` and ``api.v3`` (picked
by ``api.readers``; v3's OAuth2 token lifecycle in ``api.v3.oauth`` and ``api.v3.tokens``).
"""

from __future__ import annotations

from ctctsync.api.client import ApiClient, CallCounter, RetryPolicy, endpoint_template
from ctctsync.api.paging import Envelope, Page
from ctctsync.api.ratelimit import RateLimiter, fingerprint, limiter_for

__all__ = [
    "ApiClient",
    "CallCounter",
    "Envelope",
    "Page",
    "RateLimiter",
    "RetryPolicy",
    "endpoint_template",
    "fingerprint",
    "limiter_for",
]
