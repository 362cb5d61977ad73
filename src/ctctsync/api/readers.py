"""Which package reads a table in each API version.

Both versions' readers have the same entry points (``extract``, ``sent_campaigns`` and
``scan_campaigns``, see ``ctctsync.api.v2.extract``), so the engine picks a version's module
from this table and never branches on the version itself. Modules are imported on first
use: a v2 run never loads the v3 readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, cast

from ctctsync.api.client import ApiClient
from ctctsync.api.tracking import CampaignScan
from ctctsync.tables import ApiVersion, Table


class VersionReader(Protocol):
    """What the engine needs of a version's readers."""

    def extract(
        self,
        table: Table,
        client: ApiClient,
        since: datetime | None,
        *,
        campaigns: Iterable[Mapping[str, Any]] | None = ...,
        now: Callable[[], datetime] = ...,
        notes: Any = ...,
        columns: Sequence[str] | None = ...,
    ) -> Iterator[list[dict[str, Any]]]:
        """The table's raw records, one list per page or item call; ``columns`` are the
        ones the run loads (a reader may pick a cheaper way when fewer are needed)."""
        ...

    def sent_campaigns(
        self, client: ApiClient, known: Mapping[str, Mapping[str, Any]] | None = ...
    ) -> list[dict[str, Any]]:
        """The campaigns that were sent (what the per-campaign tables enumerate). ``known``:
        ``{campaign_id: the extra of its last saved scan}`` from the campaign ledger, so a
        version whose list lacks what the readers need (v3: the activity ids) can skip the
        detail of an unchanged campaign (v2 ignores it)."""
        ...

    def scan_campaigns(
        self,
        client: ApiClient,
        campaigns: Sequence[Mapping[str, Any]],
        *,
        now: Callable[[], datetime] = ...,
        notes: Any = ...,
    ) -> dict[str, CampaignScan]:
        """The counts of ``campaigns`` (as :meth:`sent_campaigns` listed them), as cheaply as
        the version allows, read before any of their rows (``ctctsync.api.tracking``). A
        campaign absent from the answer could not be scanned: it is read as without a scan."""
        ...


MODULES: Mapping[ApiVersion, str] = MappingProxyType(
    {"v2": "ctctsync.api.v2.extract", "v3": "ctctsync.api.v3.extract"}
)


def can_scan(reader: VersionReader) -> bool:
    """Whether the version's readers have ``scan_campaigns`` (the campaign planner's
    change detection); without it the engine reads every campaign as before."""
    return callable(getattr(reader, "scan_campaigns", None))


class _Lazy(Mapping[ApiVersion, VersionReader]):
    def __getitem__(self, version: ApiVersion) -> VersionReader:
        return cast(VersionReader, importlib.import_module(MODULES[version]))

    def __iter__(self) -> Iterator[ApiVersion]:
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


READERS_BY_VERSION: Mapping[ApiVersion, VersionReader] = _Lazy()
"""The readers of each API version (imported on first use)."""
