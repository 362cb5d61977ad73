"""Everything specific to Constant Contact API v2: endpoints, extractors, OAuth helpers."""

from __future__ import annotations

from ctctsync.api.v2.endpoints import (
    AUTH_BASE_URL,
    BASE_URL,
    V2_ENDPOINTS,
    Endpoint,
    format_since,
)
from ctctsync.api.v2.extract import extract, sent_campaigns
from ctctsync.api.v2.oauth import (
    AccessToken,
    AccountCheck,
    TokenInfo,
    authorize_url,
    check,
    exchange_code,
    token_info,
)

__all__ = [
    "AUTH_BASE_URL",
    "BASE_URL",
    "V2_ENDPOINTS",
    "AccessToken",
    "AccountCheck",
    "Endpoint",
    "TokenInfo",
    "authorize_url",
    "check",
    "exchange_code",
    "extract",
    "format_since",
    "sent_campaigns",
    "token_info",
]
