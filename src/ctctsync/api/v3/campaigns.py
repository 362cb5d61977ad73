"""Which v3 campaigns have tracking, and what moved in them, for as few calls as v3 allows.

:func:`sent_campaigns` lists the sent campaigns with the campaign activity ids their tracking
reports are read by; :func:`scan_campaigns` tells, for many campaigns per call, how many
activities of each kind each one has now (:class:`~ctctsync.api.tracking.CampaignScan`), so
the campaign planner (``ctctsync.sync.campaigns``) reads only the kinds that moved.

Calls of an account with ``n`` sent campaigns (docs/architecture-api.md, "v3 change
detection"): the list, ``ceil(n / 500)``; details, one per campaign new or changed since the
ledger (``known``); the stats, ``ceil(due / 150)``; the bulk summaries (for the send date),
``ceil(n / 500)`` but only when a scanned campaign's send date is not known yet. Sections
cited are of ``constant-contact-v3-api.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ctctsync.api.client import ApiClient
from ctctsync.api.readnotes import ReadNotes
from ctctsync.api.tracking import CampaignScan
from ctctsync.api.v3.endpoints import (
    CAMPAIGN_PATH,
    CAMPAIGNS_PATH,
    EMAIL_ROLES,
    SENT_STATUSES,
    STAT_OF_KIND,
    STATS_ENDPOINT,
    STATS_MAX_IDS,
    STATS_PATH,
    V3_ENDPOINTS,
    first_params,
    paginator,
    parse_time,
)
from ctctsync.errors import NotFound

log = logging.getLogger("ctctsync.api.v3")

Known = Mapping[str, Mapping[str, Any]]
"""campaign id -> what an earlier scan kept of it (``CampaignScan.extra``)."""
Stats = Mapping[str, Any]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the campaign list and details ------------------------------------------------------------


def all_campaigns(client: ApiClient, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every campaign of ``GET /emails`` (changed since ``since``), once each: pages may
    repeat a record (§1.3)."""
    source = V3_ENDPOINTS["email_campaigns"]
    found: dict[str, dict[str, Any]] = {}
    for page in client.pages(CAMPAIGNS_PATH, first_params(source, since), paginator(source)):
        for campaign in page.records:
            found.setdefault(str(campaign.get("campaign_id")), campaign)
    return list(found.values())


def email_activity_ids(detail: Any) -> list[str]:
    """The ids of a campaign's email activities (``primary_email``, ``resend``), in order."""
    refs = detail.get("campaign_activities") if isinstance(detail, dict) else None
    return [
        str(ref["campaign_activity_id"])
        for ref in (refs if isinstance(refs, list) else [])
        if isinstance(ref, dict) and ref.get("role") in EMAIL_ROLES
        and ref.get("campaign_activity_id")
    ]


def campaign_detail(client: ApiClient, campaign_id: str) -> Any:
    """``GET /emails/{id}``, None when the campaign is gone (deleted during the run)."""
    try:
        return client.get_json(CAMPAIGN_PATH.format(campaign_id=campaign_id))
    except NotFound:
        log.warning("campaign %s answered 404: deleted during the run", campaign_id)
        return None


def _unchanged(campaign: Mapping[str, Any], entry: Mapping[str, Any] | None
               ) -> dict[str, Any] | None:
    """What an earlier scan kept of a campaign (its activity ids and send date), when the
    campaign's listed ``updated_at`` is the one it had then; else None (read its detail).

    A resend adds a ``resend`` campaign activity to the campaign, which changes the campaign
    (UNCONFIRMED that CC moves ``updated_at`` then: the contract says only that it is the
    time of the last update, §3.6)."""
    if not entry:
        return None
    listed, kept = campaign.get("updated_at"), entry.get("updated_at")
    ids = entry.get("activity_ids")
    if not listed or not isinstance(ids, list) or not _same_moment(listed, kept):
        return None
    return {"activity_ids": [str(i) for i in ids], "last_sent_date": entry.get("last_sent_date")}


def _same_moment(a: Any, b: Any) -> bool:
    """Two v3 timestamps name the same moment (``...Z`` and ``....000Z`` alike, §1.6)."""
    if a == b:
        return True
    moment_a, moment_b = parse_time(a), parse_time(b)
    return moment_a is not None and moment_a == moment_b


def sent_campaigns(client: ApiClient, known: Known | None = None) -> list[dict[str, Any]]:
    """Every campaign that was sent (status ``DONE``, or ``EXECUTING`` while it is being
    sent), each as listed (``campaign_id``, ``name``, ``current_status``, ``updated_at``...)
    plus ``activity_ids``: its ``primary_email``/``resend`` campaign activities, the ids its
    tracking reports are read by (§3.6, §3.8).

    Only the detail names the activities: one call per sent campaign, unless ``known``
    (campaign id -> the ``extra`` of its last :class:`~ctctsync.api.tracking.CampaignScan`,
    kept in the ledger) holds it with the ``updated_at`` the list shows now -- then its
    activity ids (and ``last_sent_date``) are reused and the campaign costs nothing. So an
    unchanged account costs the list pages only (one per 500 campaigns).

    Tracking exists only for sent campaigns; removed ones cannot be read (§1.7). A campaign
    whose detail answers 404 (deleted since it was listed) is returned with ``deleted: True``
    and no activities, so the reader that enumerates it notes the loss (this function has no
    notes of its own: v2's signature).
    """
    out: list[dict[str, Any]] = []
    for campaign in all_campaigns(client):
        status = str(campaign.get("current_status") or "").upper()
        if status not in SENT_STATUSES:
            continue
        campaign_id = str(campaign["campaign_id"])
        kept = _unchanged(campaign, known.get(campaign_id) if known else None)
        if kept is not None:
            out.append({**campaign, **kept})
            continue
        detail = campaign_detail(client, campaign_id)
        if detail is None:
            out.append({**campaign, "activity_ids": [], "deleted": True})
            continue
        out.append({**campaign, "activity_ids": email_activity_ids(detail)})
    return out


# --- the stats scan ---------------------------------------------------------------------------


def scan_campaigns(
    client: ApiClient,
    campaigns: Iterable[Mapping[str, Any]],
    *,
    now: Callable[[], datetime] | datetime = _utcnow,
    notes: ReadNotes | None = None,
) -> dict[str, CampaignScan]:
    """The activity counts of ``campaigns`` (as :func:`sent_campaigns` gives them), from
    ``GET /reports/stats/email_campaigns/{ids}``: up to 150 campaigns a call (§3.9).

    Counts are every activity, not unique contacts -- the opens and clicks reports list each
    open and click, so ``em_opens_all``/``em_clicks_all`` are what their rows add up to (the
    unique ``em_opens`` would not move on a repeat open). Sends, forwards, opt-outs and
    bounces have one count each. A stat missing from the answer leaves its kind out of
    ``counts`` (unknown: the caller reads it).

    ``sent_at`` is the campaign's ``last_sent_date``: kept from ``known`` by
    :func:`sent_campaigns` for an unchanged campaign, else read from the bulk summary report
    (500 campaigns a call, latest send first, §3.9) -- neither the list nor the detail
    carries a send date, and the report is only read when a scanned campaign lacks one. None
    when the report does not list the campaign (yet).

    A campaign absent from the result was deleted (noted ``campaign_deleted``, also for the
    ones :func:`sent_campaigns` marked ``deleted``) or has no stats at CC (logged): the caller
    reads its tracking as without a scan. ``now`` is accepted for the readers' common
    signature; v3's counts need no clock.
    """
    notes = notes if notes is not None else ReadNotes()
    listed: dict[str, Mapping[str, Any]] = {}
    for campaign in campaigns:
        campaign_id = str(campaign["campaign_id"])
        if campaign.get("deleted"):  # its detail 404ed in sent_campaigns
            notes.add("campaign_deleted", campaign_id)
            continue
        listed.setdefault(campaign_id, campaign)
    stats: dict[str, Stats] = {}
    ids = list(listed)
    for start in range(0, len(ids), STATS_MAX_IDS):
        stats.update(_batch_stats(client, ids[start:start + STATS_MAX_IDS], notes))
    sent = _sent_dates(client, {cid: listed[cid] for cid in stats})
    return {
        cid: CampaignScan(
            campaign_id=cid,
            counts=counts_of(stats[cid]),
            sent_at=parse_time(sent.get(cid)),
            extra={"updated_at": listed[cid].get("updated_at"),
                   "activity_ids": [str(i) for i in listed[cid].get("activity_ids") or ()],
                   "last_sent_date": sent.get(cid)},
        )
        for cid in ids if cid in stats
    }


def counts_of(stats: Stats) -> dict[str, int]:
    """A campaign's ``stats`` object as counts per tracking kind (:data:`STAT_OF_KIND`)."""
    out: dict[str, int] = {}
    for kind, name in STAT_OF_KIND.items():
        value = stats.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            out[kind] = value
    return out


def _ask(client: ApiClient, ids: Sequence[str]) -> Any | None:
    """One stats call for ``ids``; None when it answers 404 (one of them is unknown)."""
    try:
        return client.get_json(STATS_PATH.format(campaign_ids=",".join(ids)),
                               endpoint=STATS_ENDPOINT)
    except NotFound:
        return None


def _take(body: Any, ids: Sequence[str], out: dict[str, Stats]) -> list[str]:
    """Put the ``results`` of a 200 into ``out``; returns the asked ids it did not answer.

    A 200 may carry ``errors`` (``reportingsvc.not_found...``) beside the campaigns it found
    -- a partial failure (§3.9, contract ``StatsError``); its messages name no campaign, so
    the missing ones are told by their absence from ``results``."""
    results = body.get("results") if isinstance(body, dict) else None
    wanted = set(ids)
    for result in results if isinstance(results, list) else ():
        if not isinstance(result, dict):
            continue
        campaign_id = str(result.get("campaign_id"))
        stats = result.get("stats")
        if campaign_id in wanted and isinstance(stats, dict):
            out[campaign_id] = stats
    if isinstance(body, dict) and body.get("errors"):
        log.warning("campaign stats answered with errors: %s", body.get("errors"))
    return [cid for cid in ids if cid not in out]


def _batch_stats(client: ApiClient, batch: Sequence[str], notes: ReadNotes) -> dict[str, Stats]:
    """The stats of one batch (at most 150 campaigns).

    One unknown campaign id makes CC answer 404 for the whole batch (§3.9). Then the batch is
    bisected to find it: the first half is asked; when it 404s too the unknown id is in it
    and the second half waits, else the unknown id is in the second half. Halving until one
    id is left costs ``ceil(log2(n))`` calls; the halves set aside are asked together at the
    end (one call, bisected the same way if it holds another unknown id). So one deleted
    campaign among 150 costs 1 + 8 + 1 calls, plus one detail call to tell a deleted
    campaign from one CC has no stats for (:func:`_without_stats`).
    """
    out: dict[str, Stats] = {}
    queue: list[Sequence[str]] = [batch]
    while queue:
        ids = queue.pop(0)
        body = _ask(client, ids)
        if body is not None:
            for campaign_id in _take(body, ids, out):
                _without_stats(client, campaign_id, notes)
            continue
        suspects: list[str] = list(ids)
        waiting: list[str] = []
        while len(suspects) > 1:  # suspects hold an unknown id
            half = len(suspects) // 2
            first, second = suspects[:half], suspects[half:]
            body = _ask(client, first)
            if body is None:
                waiting += second
                suspects = first
            else:
                for campaign_id in _take(body, first, out):
                    _without_stats(client, campaign_id, notes)
                suspects = second
        _without_stats(client, suspects[0], notes)
        if waiting:
            queue.append(waiting)
    return out


def _without_stats(client: ApiClient, campaign_id: str, notes: ReadNotes) -> None:
    """A campaign the stats do not know: deleted (its detail answers 404 or says
    ``REMOVED``) -- noted, its tracking is gone with it (§1.7) -- or one CC has no stats for
    yet (e.g. still being sent, UNCONFIRMED): left out of the scan, so the caller reads it as
    without one."""
    detail = campaign_detail(client, campaign_id)
    status = str(detail.get("current_status") or "").upper() if isinstance(detail, dict) else ""
    if detail is None or status == "REMOVED":
        notes.add("campaign_deleted", campaign_id)
        return
    log.warning("campaign %s (%s) has no stats at CC: its tracking is read without a scan",
                campaign_id, status or "status unknown")


def _sent_dates(client: ApiClient, campaigns: Mapping[str, Mapping[str, Any]]
                ) -> dict[str, str | None]:
    """Each campaign's ``last_sent_date``: as kept by :func:`sent_campaigns`, else from the
    bulk summary report, read (latest send first) only until every missing one is found."""
    dates: dict[str, str | None] = {
        cid: c.get("last_sent_date") if isinstance(c.get("last_sent_date"), str) else None
        for cid, c in campaigns.items()
    }
    missing = {cid for cid, date in dates.items() if date is None}
    if missing:
        for summary in _summaries(client):
            campaign_id = str(summary.get("campaign_id"))
            if campaign_id in missing:
                date = summary.get("last_sent_date")
                dates[campaign_id] = date if isinstance(date, str) else None
                missing.discard(campaign_id)
                if not missing:
                    break
    return dates


def _summaries(client: ApiClient) -> Iterator[Mapping[str, Any]]:
    """The bulk summary report's rows, page by page (stop consuming to stop calling)."""
    source = V3_ENDPOINTS["email_campaign_summary"]
    for page in client.pages(source.path, first_params(source, None), paginator(source)):
        yield from (r for r in page.records if isinstance(r, dict))
