"""Everything specific to Constant Contact API v2: its facts, the readers of the table
sources the registry declares for v2, and the OAuth helpers."""

from __future__ import annotations

from ctctsync.api.v2.endpoints import (
    AUTH_BASE_URL,
    BASE_URL,
    V2_ENDPOINTS,
    first_params,
    format_since,
)
from ctctsync.api.v2.extract import READERS, extract, sent_campaigns
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
    "READERS",
    "V2_ENDPOINTS",
    "AccessToken",
    "AccountCheck",
    "TokenInfo",
    "authorize_url",
    "check",
    "exchange_code",
    "extract",
    "first_params",
    "format_since",
    "sent_campaigns",
    "token_info",
]
