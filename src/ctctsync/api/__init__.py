"""The API layer: everything that talks HTTP to Constant Contact.

``ApiClient`` (HTTP, auth, retries, call counts), ``RateLimiter`` (shared per API key),
paginators per envelope style, and per-version declarations in ``api.v2`` (``api.v3``:
data only, for later).
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
