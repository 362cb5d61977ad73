"""How the API budget reads on a page: usage bars and the campaign polling tiers in words.

Pure helpers (no request, no store) shared by the quota page and the integration details
page; the numbers come from the control plane's quota service.
"""

from __future__ import annotations

from dataclasses import dataclass

BAR_WIDTH = 1000
"""Units of the usage bar's SVG viewBox: a permille of the daily limit per unit."""


@dataclass(frozen=True)
class UsageBar:
    """A daily budget as a bar: calls used today, calls reserved for the rest of today's
    scheduled runs, and what is left. Widths are in :data:`BAR_WIDTH` units.

    Drawn as an inline SVG (``width`` attributes), because the Content-Security-Policy
    forbids ``style`` attributes: an inline ``width: 42%`` would be blocked.
    """

    used: int
    reserved: int
    limit: int

    @property
    def left(self) -> int:
        """Calls neither used nor reserved (negative when the reservations overrun)."""
        return self.limit - self.used - self.reserved

    @property
    def over(self) -> bool:
        """More used and reserved than the limit holds."""
        return self.left < 0

    def _units(self, calls: int) -> int:
        if self.limit <= 0:
            return 0
        return round(max(0, min(calls, self.limit)) * BAR_WIDTH / self.limit)

    @property
    def used_width(self) -> int:
        """Width of the used part."""
        return self._units(self.used)

    @property
    def reserved_width(self) -> int:
        """Width of the reserved part, after the used part (cut at the bar's end)."""
        return min(self._units(self.used + self.reserved), BAR_WIDTH) - self.used_width

    @property
    def percent_used(self) -> int:
        """Used, in whole percent of the limit (may pass 100)."""
        return round(self.used * 100 / self.limit) if self.limit > 0 else 0


def every_words(hours: float) -> str:
    """A polling interval in plain words: ``daily``, ``weekly``, ``every 12 hours``."""
    named = {1: "hourly", 24: "daily", 168: "weekly"}
    if hours in named:
        return named[int(hours)]
    if hours % 24 == 0:
        return f"every {int(hours // 24)} days"
    whole = int(hours) if float(hours).is_integer() else hours
    return f"every {whole} hour{'s' if whole != 1 else ''}"


def days_words(days: int) -> str:
    """``30 days`` / ``1 day``."""
    return f"{days} day{'s' if days != 1 else ''}"


def polling_sentence(
    *,
    recent_days: int,
    older_days: int,
    older_every_hours: float,
    oldest_every_hours: float,
    recheck_days: int,
) -> str:
    """The campaign polling tiers as one sentence for the details page, e.g. "Campaign
    activity is checked every run for campaigns sent in the last 30 days, daily up to 90
    days, weekly after; every campaign is re-read in full every 30 days."."""
    return (
        "Campaign activity is checked every run for campaigns sent in the last "
        f"{days_words(recent_days)}, {every_words(older_every_hours)} up to "
        f"{days_words(older_days)}, {every_words(oldest_every_hours)} after; every campaign "
        f"is re-read in full every {days_words(recheck_days)}."
    )


def events_sentence(events_every_hours: float) -> str:
    """How a v3 integration's event registrations are polled, for the details page."""
    when = "on every run" if events_every_hours <= 0 else every_words(events_every_hours)
    return ("Event registrations are read when the event list shows an event changed, on "
            f"every run while an event is live (a day before it starts to a day after it "
            f"ends), and otherwise {when}.")
