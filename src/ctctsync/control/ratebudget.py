"""The rate budget of an API key as the control plane's processes use it: one place that
decides where a key's limiter lives (``CTCTSYNC_RATE_BUDGET``), for the worker's runs and
for the web process's credential checks alike, so every call of the key -- a run's or a
person's "save" -- spends the same budget (docs/architecture.md, "A rate budget shared by
the fleet")."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ctctsync.api.ratelimit import RateLimiter, fingerprint
from ctctsync.api.shared_budget import local_limiter_for, shared_limiter_for
from ctctsync.control.models import ApiKeyLimits
from ctctsync.control.settings import ControlSettings


def key_limiter(
    settings: ControlSettings, api_key: str, qps: float | None, daily: int | None
) -> RateLimiter:
    """The process-wide limiter of ``api_key`` (a v2 key or a v3 client id) with these
    limits: the fleet's, in the store's PostgreSQL, when ``CTCTSYNC_RATE_BUDGET`` resolves to
    ``postgres``; else this process's. Every client of the key in this process then gets it
    from :func:`~ctctsync.api.ratelimit.limiter_for`. No I/O (the shared one connects on its
    first call)."""
    key = fingerprint(api_key)
    limiter: RateLimiter
    if settings.resolved_rate_budget == "postgres":
        limiter = shared_limiter_for(key, settings.resolved_database_url, qps, daily)
    else:
        limiter = local_limiter_for(key, qps, daily)
    limiter.send_delay_bound = settings.rate_send_delay_bound
    return limiter


def limits_of_key(
    db: Session, settings: ControlSettings, api_key: str
) -> tuple[float | None, int | None]:
    """``(per_second, per_day)`` in effect for ``api_key``: its own (``api_key_limits``),
    else the installation's defaults."""
    row = db.get(ApiKeyLimits, fingerprint(api_key))
    per_second = row.per_second if row is not None else None
    per_day = row.per_day if row is not None else None
    return (
        per_second if per_second is not None else settings.cc_qps_limit,
        per_day if per_day is not None else settings.cc_daily_limit,
    )
