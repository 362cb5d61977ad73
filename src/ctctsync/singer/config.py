"""The tap's ``--config`` file: Singer's flat JSON object, checked, turned into our settings.

Keys (docs/integrations.md, "Singer / Meltano"):

=================  ==========================================================================
``api_version``    ``v3`` (default: every application registered since 2024) or ``v2``
``api_key``        v2: the API key; v3: the application's client id
``access_token``   the OAuth access token (v3: lives 24 h; used as it is unless a refresh
                   token or token store is given)
``refresh_token``  v3: a refresh token to get access tokens with; Constant Contact rotates
                   it on every refresh, so the rotated one is kept in ``token_store`` and,
                   once stored, wins over this value
``client_secret``  v3: the application's client secret, if it has one
``token_store``    v3: the SQLAlchemy URL of the ctctsync state store holding the token set
                   (default ``sqlite:///.ctctsync/state.db``, where ``ctctsync auth login``
                   stores it)
``integration``    the name the token set is stored under (default ``constant_contact``)
``base_url``       the API origin (default: Constant Contact's for the version; the sandbox's)
``start_date``     the history start: rows changed before it are not read (default 2000-01-01)
``lookback_minutes`` re-read this much before the bookmark (default 10, as ``ctctsync sync``)
``qps_limit``      requests per second for the key (default 4; ``null``: no pacing)
``daily_limit``    calls per day for the key (default 10,000)
``max_retries``    attempts of a failed call (default 6)
``timeout_seconds`` per request (default 60)
=================  ==========================================================================

Unknown keys are refused (a typo would otherwise silently read with defaults); error
messages name the key, never its value.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ctctsync.config import V2_BASE_URL, V3_BASE_URL, SourceConfig, SyncConfig
from ctctsync.tables import ApiVersion


class TapConfigError(ValueError):
    """A config file the tap cannot use; the message says what to change."""


class TapConfig(BaseModel):
    """The tap's settings (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    api_version: ApiVersion = "v3"
    api_key: SecretStr
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr | None = None
    client_secret: SecretStr | None = None
    token_store: str | None = None
    integration: str = "constant_contact"
    base_url: str | None = None
    start_date: date = date(2000, 1, 1)
    lookback_minutes: float = Field(default=10, ge=0, le=7 * 24 * 60)
    qps_limit: float | None = Field(default=4.0, gt=0)
    daily_limit: int | None = Field(default=10_000, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("start_date", mode="before")
    @classmethod
    def _date_of(cls, value: Any) -> Any:
        # Meltano and most taps write start_date as a date-time ("2024-01-01T00:00:00Z")
        if isinstance(value, str) and "T" in value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        return value

    @property
    def lookback(self) -> timedelta:
        """The look-back before each bookmark."""
        return timedelta(minutes=self.lookback_minutes)

    @property
    def uses_token_store(self) -> bool:
        """v3 with a refresh token or a token store: access tokens come from the store (and
        are renewed through it), not from ``access_token`` as it is."""
        return self.api_version == "v3" and (self.refresh_token is not None
                                             or self.token_store is not None)

    def sync_config(self) -> SyncConfig:
        """The settings as a ctctsync configuration (for the token store's vault)."""
        raw: dict[str, Any] = {"integration": self.integration, "source": self.source()}
        if self.token_store:
            raw["state_url"] = self.token_store
        return SyncConfig.model_validate(raw)

    def source(self) -> SourceConfig:
        """The connection settings the engine's client takes."""
        raw: dict[str, Any] = {
            "api_version": self.api_version,
            "api_key": self.api_key,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "client_secret": self.client_secret,
            "qps_limit": self.qps_limit,
            "daily_limit": self.daily_limit,
            "max_retries": self.max_retries,
            "timeout_seconds": self.timeout_seconds,
            "base_url": self.base_url or (V3_BASE_URL if self.api_version == "v3"
                                          else V2_BASE_URL),
        }
        return SourceConfig.model_validate(raw)


def _described(exc: ValidationError) -> str:
    # never the input: a secret mistyped into the wrong key would be echoed otherwise
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(config)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_tap_config(path: Path) -> TapConfig:
    """Read and check ``path``; raises :class:`TapConfigError` saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TapConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TapConfigError(f"config file {path} is not readable JSON ({type(exc).__name__})"
                             ) from None
    if not isinstance(data, dict):
        raise TapConfigError(f"config file {path} must hold a JSON object")
    try:
        cfg = TapConfig.model_validate(data)
        cfg.sync_config()
    except ValidationError as exc:
        raise TapConfigError(f"config file {path}: {_described(exc)}") from None
    if not cfg.api_key.get_secret_value().strip():
        raise TapConfigError(f"config file {path}: api_key must not be empty (v2: the API "
                             "key; v3: the application's client id)")
    if not cfg.uses_token_store and not cfg.access_token.get_secret_value().strip():
        raise TapConfigError(f"config file {path}: access_token must not be empty (v3: or "
                             "give a refresh_token, or the token_store of `ctctsync auth "
                             "login`)")
    return cfg
