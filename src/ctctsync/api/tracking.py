"""The contract between the engine's campaign planner and the version readers: what a run
reads of each sent campaign's tracking, and what a cheap scan of the campaigns tells.

Why: every tracking collection costs a call per campaign whether or not anything happened
(docs/performance.md, "API budget"). A run first *scans* the campaigns that are due (one call
per campaign in v2 -- its detail carries ``tracking_summary``; one call per 150 campaigns in
v3 -- ``/reports/stats/email_campaigns``), then reads only the kinds whose counts moved.

The readers stay simple: the planner (``ctctsync.sync.campaigns``) decides, and hands each
reader the campaigns to walk, each mapping optionally carrying

* :data:`TRACKING_KEY`: a :class:`TrackingRead` -- which activity kinds to read, each with its
  own ``created_since`` (None: the kind is read whole). A campaign without it is read as
  before (every kind, the table's ``since``). A campaign absent from the list is not read.
* :data:`SUMMARY_KEY`: the campaign's summary row already read by the scan (v2), or kept
  from an earlier run for a campaign not due this run: the summary reader yields it instead
  of calling.
* :data:`SCAN_KEY`: the campaign's :class:`CampaignScan` of this run, when it was scanned:
  a reader takes what it needs from it instead of calling again (v2: the link URLs of the
  clicks, ``extra["links"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

KINDS: Final = (
    "EMAIL_SEND", "EMAIL_OPEN", "EMAIL_CLICK", "EMAIL_FORWARD", "EMAIL_BOUNCE",
    "EMAIL_UNSUBSCRIBE",
)
"""The tracking kinds (contact_tracking's ``activity_type``), both versions."""

TRACKING_KEY: Final = "_tracking"
"""Key of a campaign mapping holding its :class:`TrackingRead` for this run."""
SUMMARY_KEY: Final = "_summary"
"""Key of a campaign mapping holding its ready summary row (``email_campaign_summary``)."""
SCAN_KEY: Final = "_scan"
"""Key of a campaign mapping holding its :class:`CampaignScan` of this run."""


@dataclass(frozen=True)
class TrackingRead:
    """How one campaign's tracking is read in this run."""

    kinds: Mapping[str, datetime | None]
    """Activity kind (:data:`KINDS`) -> ``created_since`` for it (None: read it whole).
    Kinds not named are not read."""


@dataclass(frozen=True)
class CampaignScan:
    """What one cheap look at a campaign tells, before any tracking is read."""

    campaign_id: str
    counts: Mapping[str, int]
    """Activity kind -> the number of its activities the API reports now (every activity,
    not unique contacts: a repeat open moves it)."""
    sent_at: datetime | None = None
    """When the campaign was (last) sent: its age decides how often it is checked."""
    summary: Mapping[str, Any] | None = None
    """The campaign's summary row, when the scan's call carried it (v2's detail)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Version-specific facts the reader wants kept (v3: the campaign activity ids)."""
