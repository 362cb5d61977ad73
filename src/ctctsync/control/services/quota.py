"""The API budget (issue 10): per-key limits, run estimates, the day's plan, the quota guard.

Constant Contact counts calls per API key -- a v2 key, or the v3 application's client id,
which every v3 integration of this installation shares -- against a per-second and a
per-UTC-day limit (4/s and 10,000/day; partner keys 10/s and 250,000/day). Keys are named
by ``ctctsync.api.fingerprint`` and a label; the key itself is never stored here or shown.

The planner, per key:

- **used today**: the API calls of the key's runs that finished since 00:00 UTC or are
  running (their progress, stored by the heartbeat). A run that began before midnight counts
  whole against the new day: it over-counts a little, never under-counts.
- **in flight**: what running runs are still expected to spend (estimate minus calls so far).
- **reserved**: every scheduled run left before the next 00:00 UTC of every integration on
  the key (plus scheduled runs already queued), times its estimate.

The guard (:func:`admit`, called by the scheduler before it starts a run): a scheduled
incremental run starts when the day's quota still covers its estimate; anything else (a
manual run, a first load, a backfill, a re-sync) starts only when its estimate fits in what
is left *after* the reservation. A run that does not fit is not started: it becomes
``deferred`` with the reason and goes back to the queue at the next 00:00 UTC. A run larger
than any day could hold (a first load of a huge account) starts when a fresh day gives it
all it can; it then stops ``partial`` at the quota and resumes after the reset, as before.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, cast

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ctctsync.api.ratelimit import fingerprint
from ctctsync.api.tracking import KINDS
from ctctsync.control.context import context
from ctctsync.control.errors import NotFound, PermissionDenied, ValidationFailed
from ctctsync.control.models import ApiKeyLimits, Integration, Run, RunKind, RunTrigger, User
from ctctsync.control.schemas import (
    DEFAULT_PER_DAY,
    DEFAULT_PER_SECOND,
    PARTNER_PER_DAY,
    PARTNER_PER_SECOND,
    PER_DAY_MAX,
    PER_DAY_MIN,
    PER_SECOND_MAX,
    PER_SECOND_MIN,
    IntegrationBudget,
    KeyBudget,
    KeyLimitsIn,
    KeyLimitsPublic,
    QuotaOverview,
    RunEstimate,
    TrackingTiersPublic,
)
from ctctsync.control.services.authorization import application
from ctctsync.control.settings import ControlSettings
from ctctsync.errors import next_utc_midnight, utc_text
from ctctsync.state import StateStore
from ctctsync.sync.tiers import count_due
from ctctsync.tables import TABLES
from ctctsync.validation import field_errors

HISTORY_RUNS: Final = 5
"""An estimate is the median of this many latest comparable runs (per table)."""
HISTORY_SCAN: Final = 30
"""How many latest finished runs of an integration are searched for comparable ones."""
DEFAULT_INCREMENTAL_TABLE_CALLS: Final = 2
"""Default model: a table read incrementally costs its first page plus one more."""
DEFAULT_FULL_TABLE_CALLS: Final = 20
"""Default model: a table read whole (first load, full refresh, re-sync) costs 20 pages."""
DEFAULT_MODEL: Final = (
    f"default model (no run yet): {DEFAULT_INCREMENTAL_TABLE_CALLS} calls per table read "
    f"incrementally, {DEFAULT_FULL_TABLE_CALLS} per table read whole"
)
"""The estimate's basis when an integration has no comparable run yet."""

LEDGER_TABLE: Final = "contact_tracking"
"""The table whose campaign ledger tells the campaign checks of a run."""
V3_SCAN_BATCH: Final = 150
"""v3 counts up to 150 campaigns in one stats call (``/reports/stats/email_campaigns``)."""
TRACKING_KINDS: Final = len(KINDS)
"""Tracking kinds a campaign's full re-check reads (sends, opens, clicks, ...)."""

Mode = Literal["incremental", "full"]

__all__ = [
    "DEFAULT_FULL_TABLE_CALLS",
    "DEFAULT_INCREMENTAL_TABLE_CALLS",
    "DEFAULT_MODEL",
    "DEFAULT_PER_DAY",
    "DEFAULT_PER_SECOND",
    "HISTORY_RUNS",
    "PARTNER_PER_DAY",
    "PARTNER_PER_SECOND",
    "PER_DAY_MAX",
    "PER_DAY_MIN",
    "PER_SECOND_MAX",
    "PER_SECOND_MIN",
    "Admission",
    "KeyRef",
    "admit",
    "estimate_run",
    "integration_budget",
    "key_limits",
    "key_of",
    "key_used_today",
    "limits_for",
    "list_key_limits",
    "quota_overview",
    "rate_priority",
    "run_kind",
    "run_now_check",
    "runs_left_today",
    "set_key_limits",
    "spent_until",
    "tracking_tiers",
    "used_today_by_key",
]


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyRef:
    """Which API key an integration spends: its fingerprint and a label, never the key."""

    fingerprint: str
    label: str
    api_version: Literal["v2", "v3"]


def _v2_label(api_key: str) -> str:
    # A hash of the key tells keys apart on screen; no character of the key itself is shown.
    return f"v2 key #{fingerprint(api_key)[:6]}"


def _v3_label(client_id: str) -> str:
    return f"v3 application #{fingerprint(client_id)[:6]}"


def key_of(db: Session, integ: Integration) -> KeyRef | None:
    """The key ``integ`` spends: v2 its stored API key, v3 the application's client id.

    None when it is not known yet (a v2 integration without credentials, no v3 application).
    """
    if integ.api_version == "v3":
        client_id = application(db).client_id
        if not client_id:
            return None
        return KeyRef(fingerprint(client_id), _v3_label(client_id), "v3")
    if not integ.credentials_encrypted:
        return None
    try:
        creds = context(db).box.decrypt_json(integ.credentials_encrypted)
    except ValueError:
        return None  # the worker reports unreadable credentials; no key to count against
    api_key = str(creds.get("api_key") or "")
    if not api_key:
        return None
    return KeyRef(fingerprint(api_key), _v2_label(api_key), "v2")


def _limits_public(settings: ControlSettings, ref: KeyRef, row: ApiKeyLimits | None) -> (
    KeyLimitsPublic
):
    per_second = row.per_second if row is not None else None
    per_day = row.per_day if row is not None else None
    return KeyLimitsPublic(
        key=ref.fingerprint,
        label=ref.label,
        api_version=ref.api_version,
        per_second=per_second if per_second is not None else settings.cc_qps_limit,
        per_day=per_day if per_day is not None else settings.cc_daily_limit,
        per_second_is_default=per_second is None,
        per_day_is_default=per_day is None,
        updated_at=row.updated_at if row is not None else None,
    )


def key_limits(db: Session, ref: KeyRef) -> KeyLimitsPublic:
    """The limits in effect for one key (its own, else the installation's defaults)."""
    return _limits_public(context(db).settings, ref, db.get(ApiKeyLimits, ref.fingerprint))


def _keys(db: Session, integrations: Iterable[Integration]) -> dict[int, KeyRef | None]:
    return {i.id: key_of(db, i) for i in integrations}


def _visible_integrations(db: Session, user: User) -> list[Integration]:
    query = sa.select(Integration).order_by(Integration.name)
    if not user.is_admin:
        query = query.where(Integration.created_by_id == user.id)
    return list(db.scalars(query))


def list_key_limits(db: Session, user: User) -> list[KeyLimitsPublic]:
    """The keys the user's integrations use (admins: also keys with stored limits that no
    integration uses any more), by label."""
    refs = {r.fingerprint: r for r in _keys(db, _visible_integrations(db, user)).values() if r}
    if user.is_admin:
        for row in db.scalars(sa.select(ApiKeyLimits)):
            refs.setdefault(
                row.fingerprint,
                KeyRef(row.fingerprint, row.label, cast(Literal["v2", "v3"], row.api_version)),
            )
    return sorted((key_limits(db, r) for r in refs.values()), key=lambda k: (k.label, k.key))


def set_key_limits(db: Session, user: User, key: str, data: KeyLimitsIn) -> KeyLimitsPublic:
    """Set (or, with None, reset to the default) one key's per-second and per-day limits.

    Administrators only (``PermissionDenied``); ``key`` is a fingerprint from
    :func:`list_key_limits` (``NotFound`` otherwise); limits outside
    ``PER_SECOND_MIN..PER_SECOND_MAX`` / ``PER_DAY_MIN..PER_DAY_MAX`` raise
    ``ValidationFailed`` keyed ``per_second`` / ``per_day``. The next run of every
    integration on the key paces and counts with the new limits.
    """
    if not user.is_admin:
        raise PermissionDenied("Only administrators can change API key limits.")
    try:
        checked = KeyLimitsIn.model_validate(data.model_dump())
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
    known = {k.key: k for k in list_key_limits(db, user)}
    if key not in known:
        raise NotFound(f"No API key {key!r} is in use; `ctctsync api-keys list` shows them.")
    shown = known[key]
    row = db.get(ApiKeyLimits, key)
    now = context(db).now()
    if row is None:
        row = ApiKeyLimits(
            fingerprint=key, label=shown.label, api_version=shown.api_version, created_at=now
        )
        db.add(row)
    row.label = shown.label
    row.per_second = checked.per_second
    row.per_day = checked.per_day
    row.updated_at = now
    row.updated_by_id = user.id
    db.commit()
    ref = KeyRef(key, shown.label, shown.api_version)
    return key_limits(db, ref)


def limits_for(db: Session, integ: Integration) -> tuple[float | None, int | None]:
    """``(per_second, per_day)`` the worker's API clients use for ``integ``'s key."""
    ref = key_of(db, integ)
    settings = context(db).settings
    if ref is None:
        return settings.cc_qps_limit, settings.cc_daily_limit
    limits = key_limits(db, ref)
    return limits.per_second, limits.per_day


# ----------------------------------------------------------------------------- the day


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day."""
    return next_utc_midnight(now) - timedelta(days=1)


def runs_left_today(integ: Integration, now: datetime) -> int:
    """Scheduled runs of ``integ`` before the next 00:00 UTC (0 when it is not scheduled).

    A slot already due counts once (the scheduler collapses missed slots into one run).
    """
    if not integ.schedulable or integ.next_run_at is None:
        return 0
    end = next_utc_midnight(now)
    every = timedelta(hours=integ.frequency_hours)
    slot, count = integ.next_run_at, 0
    if slot <= now:
        count = 1
        slot += (math.floor((now - slot) / every) + 1) * every
    if slot < end:
        count += math.ceil((end - slot) / every)
    return count


def runs_per_day(integ: Integration) -> int:
    """Scheduled runs a day (every frequency divides 24 h)."""
    return 24 // integ.frequency_hours if integ.schedulable else 0


# ----------------------------------------------------------------------------- estimates


def run_kind(
    integ: Integration, trigger: str, full_refresh: Sequence[str] | None = None
) -> RunKind:
    """What a run reads: a first load until a run of the integration succeeded; some
    tables whole when it has full-refresh tables; else changes since the bookmarks."""
    if integ.activated_at is None:
        return "first_load"
    if full_refresh:
        return "resync" if trigger == "resync" else "full_refresh"
    return "incremental"


def rate_priority(trigger: str, kind: str | None) -> Literal["high", "low"]:
    """A run's class at its key's rate budget (ctctsync.api.ratelimit, "Priority"): a
    scheduled incremental run is ``high``, so that one large backfill on the key cannot hold
    back the others' scheduled runs; first loads, full refreshes, re-syncs and every run a
    person started (manual, re-sync, backfill) are ``low``. A run of unknown kind (queued
    before migration 0007) counts as incremental."""
    return "high" if trigger == "schedule" and kind in ("incremental", None) else "low"


def _mode(table: str, kind: str | None, full_refresh: Sequence[str] | None) -> Mode:
    # A full-replication table is read whole on every run: one way of reading it.
    if table in TABLES and TABLES[table].replication == "full":
        return "incremental"
    if kind == "first_load" or table in (full_refresh or ()):
        return "full"
    return "incremental"


@dataclass(frozen=True)
class _Past:
    """What an estimate needs of a past run (not the whole row: runs carry logs' worth of
    JSON, and the planner reads the history of every integration on a key)."""

    kind: str | None
    full_refresh: list[str]
    table_calls: dict[str, int]


def _histories(db: Session, integration_ids: Sequence[int]) -> dict[int, list[_Past]]:
    """Per integration, its latest :data:`HISTORY_SCAN` succeeded runs that recorded calls
    per table, newest first: one query for every integration on a key."""
    if not integration_ids:
        return {}
    newest_first = (
        sa.func.row_number()
        .over(
            partition_by=Run.integration_id,
            order_by=(Run.finished_at.desc(), Run.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        sa.select(Run.integration_id, Run.kind, Run.full_refresh, Run.table_calls, newest_first)
        .where(
            Run.integration_id.in_(integration_ids),
            Run.status == "succeeded",
            Run.table_calls.is_not(None),
        )
        .subquery()
    )
    rows = db.execute(
        sa.select(ranked.c.integration_id, ranked.c.kind, ranked.c.full_refresh,
                  ranked.c.table_calls)
        .where(ranked.c.rank <= HISTORY_SCAN)
        .order_by(ranked.c.integration_id, ranked.c.rank)
    )
    out: dict[int, list[_Past]] = {i: [] for i in integration_ids}
    for integration_id, kind, refresh, calls in rows:
        out[integration_id].append(_Past(kind, list(refresh or []), dict(calls or {})))
    return out


def estimate_run(
    db: Session,
    integ: Integration,
    *,
    trigger: RunTrigger | str = "schedule",
    tables: Sequence[str] | None = None,
    full_refresh: Sequence[str] = (),
    kind: RunKind | None = None,
    history: Sequence[_Past] | None = None,
) -> RunEstimate:
    """The API calls a run of ``integ`` is expected to make.

    Per table read, the median of its calls in the latest :data:`HISTORY_RUNS` succeeded
    runs that read it the same way (incrementally, or whole); a table with no such run
    counts by :data:`DEFAULT_MODEL`. ``kind`` overrides the run's kind (the planner asks for
    the scheduled incremental run of an integration that has not finished its first load);
    ``history`` is the integration's, when the caller has read it already.
    """
    planned = kind is not None
    kind = kind or run_kind(integ, str(trigger), full_refresh)
    selected = [t for t in (tables if tables is not None else integ.tables) if t in integ.tables]
    # A table without a bookmark (re-sync requested, columns added) is read whole by any
    # run; the day's plan (``kind`` given) counts the steady state instead.
    whole = set(full_refresh) if planned else set(full_refresh) | _unbookmarked(db, integ, selected)
    if history is None:
        history = _histories(db, [integ.id])[integ.id]
    total, used_runs = 0, 0
    defaulted: list[str] = []
    extra = ""
    modes: set[Mode] = set()
    for table in selected:
        mode = _mode(table, kind, sorted(whole))
        modes.add(mode)
        samples = [
            int(run.table_calls[table])
            for run in history
            if table in run.table_calls and _mode(table, run.kind, run.full_refresh) == mode
        ][:HISTORY_RUNS]
        if samples:
            total += round(statistics.median(samples))
            used_runs = max(used_runs, len(samples))
        else:
            defaulted.append(table)
            total += (
                DEFAULT_FULL_TABLE_CALLS if mode == "full" else DEFAULT_INCREMENTAL_TABLE_CALLS
            )
            if table == LEDGER_TABLE and mode == "incremental":
                checks = _campaign_checks(db, integ)
                total += checks
                extra = f"{checks} campaign check call{'s' if checks != 1 else ''} from the ledger"
    how = "incremental" if modes == {"incremental"} else "whole-table" if modes else "comparable"
    if len(modes) > 1:
        how = "comparable"
    runs = f"run{'s' if used_runs != 1 else ''}"
    if not defaulted:
        basis = f"median of the last {used_runs} {how} {runs}"
    elif len(defaulted) == len(selected):
        basis = DEFAULT_MODEL
    else:
        basis = (
            f"median of the last {used_runs} {how} {runs}; default model for "
            f"{', '.join(defaulted)} (not read that way yet)"
        )
    if extra:
        basis = f"{basis}; {extra}"
    return RunEstimate(
        calls=total, kind=kind, basis=basis, from_history=len(defaulted) < len(selected)
    )


def _unbookmarked(db: Session, integ: Integration, selected: Sequence[str]) -> set[str]:
    """Key-based tables of ``selected`` the state store has no bookmark for (read whole)."""
    if integ.activated_at is None:
        return set()  # a first load reads everything whole anyway
    store = StateStore(context(db).engine, create=False)
    known = {b.table for b in store.all(integ.name)}
    return {
        t
        for t in selected
        if t in TABLES and TABLES[t].replication == "incremental" and t not in known
    }


def _campaign_checks(db: Session, integ: Integration) -> int:
    """The campaign change-detection calls of an incremental run, from the campaign ledger
    and the tiers (``ctctsync.sync.tiers.count_due``): v2 scans one campaign a call, v3
    :data:`V3_SCAN_BATCH` a call; a campaign due for its full re-check reads its
    :data:`TRACKING_KINDS` kinds whole (one call each at least)."""
    ctx = context(db)
    ledger = StateStore(ctx.engine, create=False).ledger(integ.name, LEDGER_TABLE)
    if not ledger:
        return 0
    counted = count_due(ledger, ctx.now(), ctx.settings.tracking_policy())
    scans = (
        math.ceil(counted.due / V3_SCAN_BATCH) if integ.api_version == "v3" else counted.due
    )
    return scans + TRACKING_KINDS * counted.rechecks


# ----------------------------------------------------------------------------- usage


@dataclass
class _KeyUsage:
    used: int = 0
    in_flight: int = 0
    by_integration: dict[int, int] | None = None


def _usage(db: Session, now: datetime, exclude_run: str | None = None) -> dict[str, _KeyUsage]:
    """Today's calls per key (and per integration), and what running runs still need."""
    rows = db.execute(
        sa.select(
            Run.id,
            Run.key_fingerprint,
            Run.integration_id,
            Run.status,
            Run.api_calls,
            Run.estimated_calls,
        ).where(
            Run.key_fingerprint.is_not(None),
            sa.or_(Run.status == "running", Run.finished_at >= day_start(now)),
        )
    )
    usage: dict[str, _KeyUsage] = defaultdict(lambda: _KeyUsage(by_integration={}))
    for run_id, key, integration_id, status, calls, estimate in rows:
        if run_id == exclude_run or key is None:
            continue
        u = usage[key]
        u.used += calls or 0
        assert u.by_integration is not None
        u.by_integration[integration_id] = u.by_integration.get(integration_id, 0) + (calls or 0)
        if status == "running" and estimate is not None:
            u.in_flight += max(0, estimate - (calls or 0))
    return usage


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Plan:
    ref: KeyRef
    limits: KeyLimitsPublic
    budgets: list[IntegrationBudget]
    used: int
    in_flight: int
    reserved: int
    reserved_runs: int
    day_reserved: int
    """A whole day's scheduled runs: what a fresh day reserves."""


def _budget(
    db: Session,
    integ: Integration,
    ref: KeyRef | None,
    now: datetime,
    used: int,
    history: Sequence[_Past] | None = None,
) -> IntegrationBudget:
    estimate = estimate_run(db, integ, kind="incremental", history=history)
    left = runs_left_today(integ, now)
    per_day = runs_per_day(integ)
    return IntegrationBudget(
        integration_id=integ.id,
        name=integ.name,
        key=ref.fingerprint if ref else None,
        key_label=ref.label if ref else None,
        frequency_hours=integ.frequency_hours,
        schedulable=integ.schedulable,
        runs_per_day=per_day,
        estimate=estimate,
        calls_per_day=estimate.calls * per_day,
        runs_left_today=left,
        reserved_today=estimate.calls * left,
        used_today=used,
    )


def _queued_scheduled(db: Session, integration_ids: Sequence[int], exclude: str | None) -> (
    list[Run]
):
    """Scheduled runs queued but not started: their slot is spent, their calls are not."""
    if not integration_ids:
        return []
    return [
        r
        for r in db.scalars(
            sa.select(Run).where(
                Run.integration_id.in_(integration_ids),
                Run.status == "queued",
                Run.trigger == "schedule",
            )
        )
        if r.id != exclude
    ]


def _plans(
    db: Session,
    integrations: Sequence[Integration],
    now: datetime,
    *,
    exclude_run: str | None = None,
) -> tuple[list[_Plan], list[IntegrationBudget]]:
    keys = _keys(db, integrations)
    usage = _usage(db, now, exclude_run)
    groups: dict[str, list[Integration]] = defaultdict(list)
    refs: dict[str, KeyRef] = {}
    without: list[IntegrationBudget] = []
    for integ in integrations:
        ref = keys[integ.id]
        if ref is None:
            without.append(_budget(db, integ, None, now, 0))
            continue
        groups[ref.fingerprint].append(integ)
        refs[ref.fingerprint] = ref
    plans = []
    histories = _histories(db, [i.id for members in groups.values() for i in members])
    for fp, members in groups.items():
        u = usage.get(fp) or _KeyUsage(by_integration={})
        by_integ = u.by_integration or {}
        budgets = [
            _budget(db, i, refs[fp], now, by_integ.get(i.id, 0), histories[i.id])
            for i in members
        ]
        reserved = sum(b.reserved_today for b in budgets)
        reserved_runs = sum(b.runs_left_today for b in budgets)
        estimates = {b.integration_id: b.estimate.calls for b in budgets}
        for run in _queued_scheduled(db, [i.id for i in members], exclude_run):
            if run_kind(run.integration, run.trigger, run.full_refresh) == "incremental":
                reserved += estimates[run.integration_id]
                reserved_runs += 1
        plans.append(
            _Plan(
                ref=refs[fp],
                limits=key_limits(db, refs[fp]),
                budgets=budgets,
                used=u.used,
                in_flight=u.in_flight,
                reserved=reserved,
                reserved_runs=reserved_runs,
                day_reserved=sum(b.calls_per_day for b in budgets),
            )
        )
    return plans, without


def _schedule_words(budgets: Sequence[IntegrationBudget]) -> str:
    freqs = {b.frequency_hours for b in budgets if b.schedulable}
    if len(freqs) != 1:
        return "the schedule"
    hours = freqs.pop()
    return (
        "the hourly schedule"
        if hours == 1
        else "the daily schedule"
        if hours == 24
        else f"the {hours}-hourly schedule"
    )


def _warning(plan: _Plan) -> str | None:
    per_day = plan.limits.per_day
    if per_day is None or plan.day_reserved <= per_day:
        return None
    heaviest = max(plan.budgets, key=lambda b: b.calls_per_day)
    return (
        f"{_schedule_words(plan.budgets)} needs ~{plan.day_reserved:,} calls a day of "
        f"{per_day:,}: runs will be deferred to the next day. Lower the frequency of "
        f"{heaviest.name} (~{heaviest.calls_per_day:,} calls a day), or raise the key's "
        "daily limit if CC granted more (ctctsync api-keys set-limits)."
    )


def _key_budget(plan: _Plan, now: datetime) -> KeyBudget:
    limits = plan.limits
    per_day = limits.per_day
    return KeyBudget(
        key=plan.ref.fingerprint,
        label=plan.ref.label,
        api_version=plan.ref.api_version,
        per_second=limits.per_second,
        per_day=per_day,
        per_second_is_default=limits.per_second_is_default,
        per_day_is_default=limits.per_day_is_default,
        used_today=plan.used,
        in_flight=plan.in_flight,
        reserved_today=plan.reserved,
        reserved_runs=plan.reserved_runs,
        headroom=None
        if per_day is None
        else per_day - plan.used - plan.in_flight - plan.reserved,
        planned_per_day=plan.day_reserved,
        fits=per_day is None or plan.day_reserved <= per_day,
        warning=_warning(plan),
        resets_at=next_utc_midnight(now),
        integrations=plan.budgets,
    )


def quota_overview(db: Session, user: User) -> QuotaOverview:
    """Per key the user's integrations use: limits, used today, reserved, headroom, and each
    integration's estimate and calls a day (the quota page, ``GET /api/v1/quota``, ``plan``).

    A key's figures count every integration on it, the user's or not (the quota is shared);
    only the integrations the user may see are listed.
    """
    now = context(db).now()
    visible = _visible_integrations(db, user)
    seen = {r.fingerprint for r in _keys(db, visible).values() if r}
    everyone = list(db.scalars(sa.select(Integration).order_by(Integration.name)))
    plans, without = _plans(db, everyone, now)
    ids = {i.id for i in visible}
    keys = []
    for plan in plans:
        if plan.ref.fingerprint not in seen:
            continue
        budget = _key_budget(plan, now)
        shown = [b for b in budget.integrations if b.integration_id in ids]
        keys.append(budget.model_copy(update={"integrations": shown}))
    keys.sort(key=lambda k: (k.label, k.key))
    return QuotaOverview(
        now=now,
        resets_at=next_utc_midnight(now),
        keys=keys,
        without_key=[b for b in without if b.integration_id in ids],
    )


def integration_budget(db: Session, integ: Integration) -> IntegrationBudget:
    """One integration's estimate, calls a day and use today (its details page)."""
    now = context(db).now()
    ref = key_of(db, integ)
    used = 0
    if ref is not None:
        u = _usage(db, now).get(ref.fingerprint)
        used = (u.by_integration or {}).get(integ.id, 0) if u else 0
    return _budget(db, integ, ref, now, used)


# ----------------------------------------------------------------------------- the guard


@dataclass(frozen=True)
class Admission:
    """The guard's answer for one run about to start."""

    start: bool
    estimate: RunEstimate
    key: KeyRef | None
    reason: str | None = None
    """Why not (shown on the deferred run); None when it starts."""
    resume_at: datetime | None = None
    """When a deferred run goes back to the queue (the next 00:00 UTC)."""
    warning: str | None = None
    """A run larger than a day's quota starts anyway on a fresh day: this says so."""


def admit(
    db: Session,
    integ: Integration,
    *,
    trigger: str,
    tables: Sequence[str] | None = None,
    full_refresh: Sequence[str] | None = None,
    run_id: str | None = None,
    claim: bool = False,
) -> Admission:
    """May a run of ``integ`` start now? (See the module's docstring for the rules.)

    ``claim``: the caller starts the run if allowed (the scheduler's claim), so decisions
    on one key are serialised until its transaction ends; checks pass False.
    """
    now = context(db).now()
    estimate = estimate_run(db, integ, trigger=trigger, tables=tables,
                            full_refresh=list(full_refresh or ()))
    everyone = list(db.scalars(sa.select(Integration)))
    ref = key_of(db, integ)
    if ref is None:
        return Admission(True, estimate, None)
    if claim:
        _serialise(db, ref)
    sharing = [i for i in everyone if i.id == integ.id or key_of(db, i) == ref]
    plans, _ = _plans(db, sharing, now, exclude_run=run_id)
    plan = next(p for p in plans if p.ref.fingerprint == ref.fingerprint)
    per_day = plan.limits.per_day
    refused = _refused_as_spent(db, ref, estimate, now)
    if refused is not None or per_day is None:
        return refused or Admission(True, estimate, ref)
    scheduled = trigger == "schedule" and estimate.kind == "incremental"
    left = per_day - plan.used - plan.in_flight
    spent = (
        f"next run at 00:00 UTC: today's quota is spent ({plan.used + plan.in_flight:,} "
        f"of {per_day:,} calls used or in flight; this run needs ~{estimate.calls:,})"
    )
    capacity = per_day - plan.day_reserved  # what a fresh day leaves after the schedule
    reason: str | None = None
    warning: str | None = None
    if scheduled:
        # Scheduled incremental runs come first: only the quota itself stops them.
        if min(estimate.calls, per_day) > left:
            reason = spent
    elif capacity <= 0:
        reason = (
            f"next run at 00:00 UTC: the scheduled runs alone need ~{plan.day_reserved:,} "
            f"of the key's {per_day:,} calls a day, so nothing else fits; lower a "
            "frequency or raise the key's daily limit (ctctsync plan)"
        )
    else:
        # A run no day could hold starts when a fresh day gives it all it can.
        need = min(estimate.calls, capacity)
        if need <= left - plan.reserved:
            if estimate.calls > capacity:
                warning = (
                    f"this run needs ~{estimate.calls:,} calls, more than the {capacity:,} a "
                    "day leaves after the scheduled runs: it stops at the quota and resumes "
                    "after 00:00 UTC"
                )
        elif plan.reserved_runs and need <= left:
            runs = "s" if plan.reserved_runs != 1 else ""
            reason = (
                f"next run at 00:00 UTC: today's quota is reserved for {plan.reserved_runs} "
                f"scheduled run{runs} (~{plan.reserved:,} calls; this run needs "
                f"~{estimate.calls:,} and {max(0, left - plan.reserved):,} are free)"
            )
        else:
            reason = spent
    if reason is not None:
        return Admission(False, estimate, ref, reason=reason, resume_at=next_utc_midnight(now))
    return Admission(True, estimate, ref, warning=warning)


def _refused_as_spent(
    db: Session, ref: KeyRef, estimate: RunEstimate, now: datetime
) -> Admission | None:
    """Refused until the reset when a run said today that the key's quota is spent: whatever
    our count says, a run now would make no call (issue 12: "Run now" with the quota spent
    made a job of 0 calls)."""
    stopped = spent_until(db, ref.fingerprint, now)
    if stopped is None:
        return None
    resume_at, said_at = stopped
    return Admission(
        False, estimate, ref, resume_at=resume_at,
        reason=(f"next run at {utc_text(resume_at)}: at {said_at:%H:%M} UTC a run on this "
                "key stopped because its daily quota is spent, so a job now would make no "
                "call"),
    )


def spent_until(db: Session, key: str, now: datetime) -> tuple[datetime, datetime] | None:
    """When the daily quota of ``key`` resets, and when a run said it was spent, if a run on
    the key stopped ``partial`` today with a reset still ahead: Constant Contact's answer
    (or the limiter's count) outranks the calls the store counted, which may be fewer (other
    applications on the key, a lower grant). None when no run said so."""
    row = db.execute(
        sa.select(Run.resume_at, Run.finished_at)
        .where(
            Run.key_fingerprint == key,
            Run.status == "partial",
            Run.finished_at >= day_start(now),
            Run.resume_at > now,
        )
        .order_by(Run.resume_at.desc(), Run.finished_at.desc())
        .limit(1)
    ).first()
    if row is None or row.resume_at is None or row.finished_at is None:
        return None
    return row.resume_at, row.finished_at


def _serialise(db: Session, ref: KeyRef) -> None:
    """On PostgreSQL, hold a lock on the key until the caller's transaction ends, so two
    processes claiming runs of one key decide one after the other (each sees the other's
    started run in flight). SQLite needs none: service sessions hold its write lock."""
    if db.get_bind().dialect.name == "postgresql":
        # 60 bits of the fingerprint: a bigint advisory-lock key
        db.execute(sa.select(sa.func.pg_advisory_xact_lock(int(ref.fingerprint[:15], 16))))


def run_now_check(db: Session, integ: Integration) -> str | None:
    """None when a manual run of ``integ`` would start now; else why it would be deferred
    (``Run now`` says so before creating a job). A request folded into an already queued
    run creates no job and is not refused."""
    queued = db.scalar(
        sa.select(Run.id).where(Run.integration_id == integ.id, Run.status == "queued")
    )
    if queued is not None:
        return None
    return admit(db, integ, trigger="manual").reason


# ----------------------------------------------------------------------------- tiers


def tracking_tiers(db: Session | None = None, settings: ControlSettings | None = None) -> (
    TrackingTiersPublic
):
    """The campaign polling tiers in effect (``ControlSettings.tracking_*``)."""
    if settings is None:
        assert db is not None, "give a session or the settings"
        settings = context(db).settings
    return TrackingTiersPublic(
        recent_days=settings.tracking_recent_days,
        older_days=settings.tracking_older_days,
        older_every_hours=settings.tracking_older_every_hours,
        oldest_every_hours=settings.tracking_oldest_every_hours,
        recheck_days=settings.tracking_recheck_days,
        events_every_hours=settings.tracking_events_every_hours,
    )


def used_today_by_key(db: Session) -> dict[str, int]:
    """Calls counted today (UTC) per key fingerprint, every key in one read of the runs."""
    return {key: u.used for key, u in _usage(db, context(db).now()).items()}


def key_used_today(db: Session, key: str, *, exclude_run: str | None = None) -> int:
    """Calls counted today (UTC) against ``key`` by the runs in the store."""
    usage = _usage(db, context(db).now(), exclude_run).get(key)
    return usage.used if usage else 0
