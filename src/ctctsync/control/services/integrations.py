"""Integrations: create, edit, pause, reactivate, run, re-sync a table, delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ctctsync.control.context import context
from ctctsync.control.errors import Conflict, NotFound, QuotaWouldDefer, ValidationFailed
from ctctsync.control.models import (
    PAUSED_REASON,
    WAITING_RUN_STATUSES,
    Integration,
    OAuthState,
    Run,
    RunLog,
    RunTrigger,
    User,
)
from ctctsync.control.schemas import IntegrationCreate, IntegrationUpdate
from ctctsync.control.services.authorization import check_selection, set_api_version
from ctctsync.control.services.quota import admit, estimate_run, run_now_check
from ctctsync.control.services.warehouse import drop_tables_of
from ctctsync.state import DiscoveredField, StateStore
from ctctsync.tables import TABLES, tables_for

DEFAULT_HISTORY = timedelta(days=365)
"""How far back a new integration reads when no history start is given."""


# ----------------------------------------------------------------------------- lookups


def _visible(user: User) -> sa.ColumnElement[bool]:
    if user.is_admin:
        return sa.true()
    return Integration.created_by_id == user.id


def list_integrations(db: Session, user: User) -> list[Integration]:
    """Integrations the user may see (admins: all), by name."""
    return list(db.scalars(sa.select(Integration).where(_visible(user)).order_by(Integration.name)))


def get_integration(db: Session, user: User, integration_id: int) -> Integration:
    """One integration; ``NotFound`` if it does not exist or belongs to someone else."""
    integ = db.scalar(
        sa.select(Integration).where(Integration.id == integration_id, _visible(user))
    )
    if integ is None:
        raise NotFound(f"No integration with id {integration_id}.")
    return integ


def get_integration_by_name(db: Session, user: User, name: str) -> Integration:
    """One integration by name (the CLI addresses them so); ``NotFound`` otherwise."""
    integ = db.scalar(sa.select(Integration).where(Integration.name == name, _visible(user)))
    if integ is None:
        raise NotFound(f"No integration named {name!r}.")
    return integ


# ----------------------------------------------------------------------------- validation


def _name_clash(db: Session, name: str, *, renaming: int | None = None) -> str | None:
    """Why ``name`` (well-formed: the schema checked it) cannot be used beside the others
    (``renaming``: the id of the integration taking it, whose own name does not count)."""
    names = set(
        db.scalars(sa.select(Integration.name).where(Integration.id != (renaming or -1)))
    )
    if name in names:
        return f"An integration named {name!r} already exists; names must be unique."
    for other in names:
        # Tables are named <integration>_<table>; "acme" and "acme_eu" would share the
        # "acme_" prefix, and dropping one integration's tables could hit the other's.
        if name.startswith(other + "_") or other.startswith(name + "_"):
            return (
                f"{name!r} would share the table prefix of integration {other!r}; "
                "choose a name where neither is the other followed by an underscore."
            )
    return None


def _columns(tables: dict[str, Any], name: str) -> set[str]:
    chosen = tables[name]
    return set(TABLES[name].column_names) if chosen is None else set(chosen)


def tables_to_backfill(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Tables whose history must be re-read after a selection change.

    A newly selected table has no data yet; a key-based table that gains columns holds
    NULL in them for every row merged before, so both are read again from the history
    start. Full tables are re-read on every run anyway, and dropped columns need nothing.
    """
    out: list[str] = []
    for name in new:
        grew = name in old and bool(_columns(new, name) - _columns(old, name))
        if name not in old or (TABLES[name].replication == "incremental" and grew):
            out.append(name)
    return out


# ----------------------------------------------------------------------------- commands


def create_integration(
    db: Session, user: User, data: IntegrationCreate, *, draft: bool = False
) -> Integration:
    """Create an integration in state ``pending`` (it runs once credentials are set), on
    ``data.api_version``; with ``draft``, in state ``draft`` instead: the web UI's setup
    steps, which never run until :func:`finish_setup`.

    ``data`` has passed the input rules (its selection is one the version can read, every
    table of the version when none was given); what is left to check needs the store.
    """
    now = context(db).now()
    name = data.name
    if (msg := _name_clash(db, name)) is not None:
        raise ValidationFailed({"name": msg})
    integ = Integration(
        name=name,
        state="draft" if draft else "pending",
        frequency_hours=data.frequency_hours,
        history_start=data.history_start or now.date() - DEFAULT_HISTORY,
        api_version=data.api_version,
        # Validation fills ``tables``; only an unvalidated ``model_construct`` leaves None.
        tables=data.tables
        if data.tables is not None
        else dict.fromkeys(tables_for(data.api_version)),
        new_columns=data.new_columns,
        created_by_id=user.id,
        created_at=now,
        updated_at=now,
    )
    db.add(integ)
    try:
        db.commit()
    except IntegrityError:
        # Two requests raced for the same name; the unique constraint decided.
        db.rollback()
        raise ValidationFailed(
            {"name": f"An integration named {name!r} already exists; names must be unique."}
        ) from None
    return integ


def update_integration(db: Session, integ: Integration, data: IntegrationUpdate) -> Integration:
    """Change the frequency, the table and column selection and/or the new-field policy.

    Tables and columns added to the selection are backfilled from the history start: their
    bookmarks are reset and, when the integration can run, a ``backfill`` run is queued.
    A new-field policy applies from the next run on (rows loaded before hold NULL in a newly
    added column until they are read again: "re-sync table" fills them).

    A selection the integration's API version cannot read is refused (``ValidationFailed``)
    before anything changes; switch the version first (``set_api_version``) to read another.
    """
    check_selection(integ, data.tables)
    ctx = context(db)
    now = ctx.now()
    new_tables = data.tables
    backfill: list[str] = []
    if data.frequency_hours is not None and data.frequency_hours != integ.frequency_hours:
        integ.next_run_at = _rescheduled(db, integ, data.frequency_hours, now)
        integ.frequency_hours = data.frequency_hours
    if new_tables is not None and new_tables != integ.tables:
        backfill = tables_to_backfill(integ.tables, new_tables)
        integ.tables = new_tables
    if data.new_columns is not None:
        integ.new_columns = data.new_columns
    integ.updated_at = now
    if integ.state == "failed":
        # A configuration failure is what editing is for; let the next run try again.
        integ.transition("active" if integ.activated_at else "pending")
    db.commit()
    if backfill:
        store = StateStore(ctx.engine, create=False)
        deferred = _would_defer(db, integ, "backfill", backfill)
        db.commit()  # release SQLite's write lock for the bookmark store
        for table in backfill if not deferred else ():
            store.reset(integ.name, table)  # else the backfill resets them when it starts
        if integ.schedulable:
            enqueue_run(
                db, integ, "backfill", tables=backfill, full_refresh=backfill,
                fold_deferred=deferred,
            )
    return integ


def _rescheduled(db: Session, integ: Integration, hours: int, now: datetime) -> datetime | None:
    """The next run after the frequency changes to ``hours``: the last scheduled run plus the
    new interval (never before now), so a longer interval does not keep the old, sooner slot
    (issue 12: "the next one in 6 h" after 6 h became 24 h) and a shorter one does not wait
    out the old, longer one. A run already due stays due."""
    if integ.next_run_at is None or integ.next_run_at <= now:
        return integ.next_run_at
    last = db.scalar(
        sa.select(sa.func.max(Run.created_at)).where(
            Run.integration_id == integ.id, Run.trigger == "schedule"
        )
    )
    base = last if last is not None else integ.next_run_at - timedelta(
        hours=integ.frequency_hours
    )
    return max(now, base + timedelta(hours=hours))


def new_fields(db: Session, integ: Integration) -> dict[str, list[DiscoveredField]]:
    """Table -> the fields runs of ``integ`` met that the table registry does not know
    ("new field available"), from the state store."""
    found: dict[str, list[DiscoveredField]] = {}
    for f in StateStore(context(db).engine, create=False).discovered(integ.name):
        found.setdefault(f.table, []).append(f)
    return found


def update_draft(db: Session, integ: Integration, data: IntegrationCreate) -> Integration:
    """Change what the first setup step chose -- name, frequency, history start, API
    version -- while the setup is unfinished (step 2 again, from the step pills).

    The name may change only now: nothing has been written under it yet. A different API
    version forgets the credentials (they belong to one version) and takes that version's
    tables. Refused (``Conflict``) once the setup is finished.
    """
    _require_draft(integ, "Its name, history and API version are fixed once set up.")
    if data.name != integ.name and (msg := _name_clash(db, data.name, renaming=integ.id)):
        raise ValidationFailed({"name": msg})
    now = context(db).now()
    integ.name = data.name
    integ.frequency_hours = data.frequency_hours
    integ.history_start = data.history_start or now.date() - DEFAULT_HISTORY
    integ.updated_at = now
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise ValidationFailed(
            {"name": f"An integration named {data.name!r} already exists; names must be unique."}
        ) from None
    set_api_version(db, integ, data.api_version)
    db.commit()
    return integ


def finish_setup(db: Session, integ: Integration) -> Integration:
    """The setup's last step was submitted: the draft becomes ``pending``, and its first
    job is queued at the scheduler's next tick."""
    _require_draft(integ, "It is already set up.")
    _require_credentials(integ)
    now = context(db).now()
    integ.transition("pending")
    integ.updated_at = now
    integ.next_run_at = now
    db.commit()
    return integ


def _require_draft(integ: Integration, why: str) -> None:
    if not integ.is_draft:
        raise Conflict(f"The setup of {integ.name} is finished. {why}")


def _refuse_draft(integ: Integration, action: str) -> None:
    """Nothing runs, pauses or resumes a draft: its tables are not chosen yet."""
    if integ.state == "draft":
        raise Conflict(
            f"The setup of {integ.name} is not finished, so it cannot {action}. "
            "Continue the setup (choose tables and fields, then Submit) or delete it."
        )


def pause(db: Session, integ: Integration) -> Integration:
    """Stop scheduling the integration; a queued run is cancelled, a running one finishes."""
    _refuse_draft(integ, "be paused")
    if integ.state != "paused":  # pausing again keeps the reason shown (a refused token)
        integ.transition("paused", PAUSED_REASON)
    integ.updated_at = context(db).now()
    _cancel_queued(db, integ)
    db.commit()
    return integ


def reactivate(db: Session, integ: Integration) -> Integration:
    """Resume scheduling; the first run starts at the next scheduler tick."""
    if integ.state in ("active", "pending"):
        return integ
    _refuse_draft(integ, "be re-activated")
    now = context(db).now()
    integ.transition("active" if integ.activated_at else "pending")
    integ.updated_at = now
    integ.next_run_at = now
    db.commit()
    return integ


def run_now(
    db: Session, integ: Integration, user: User | None = None, *, when_quota_allows: bool = False
) -> Run:
    """Queue a manual run (merged into an already queued run if there is one).

    When the day's API quota will not cover it (``services.quota.run_now_check``), nothing is
    queued and ``QuotaWouldDefer`` says when it could run; ``when_quota_allows`` queues it
    anyway, to be deferred until the quota resets. A draft is refused (``Conflict``).
    """
    _refuse_draft(integ, "run")
    _require_credentials(integ)
    reason = run_now_check(db, integ)
    if reason is not None and not when_quota_allows:
        db.rollback()
        raise QuotaWouldDefer(f"Not started: {reason}.")
    return enqueue_run(db, integ, "manual", user=user, fold_deferred=reason is not None)


def resync_table(db: Session, integ: Integration, table: str, user: User | None = None) -> Run:
    """Forget one table's bookmark and queue a run that re-reads it from the history start."""
    if table not in integ.tables:
        raise ValidationFailed({"table": f"{table!r} is not a selected table of {integ.name}."})
    _refuse_draft(integ, "run")
    _require_credentials(integ)
    deferred = _would_defer(db, integ, "resync", [table])
    # End the session's transaction first: on SQLite it holds the write lock the bookmark
    # store (another connection) needs.
    db.commit()
    if not deferred:
        StateStore(context(db).engine, create=False).reset(integ.name, table)
    # full_refresh as well: a run already in progress might otherwise write the old
    # bookmark back after this reset. A run the quota guard will defer keeps the bookmark
    # until it starts (its full_refresh resets it then): otherwise every scheduled run
    # meanwhile would read the table whole, outside the day's plan.
    return enqueue_run(
        db, integ, "resync", tables=[table], full_refresh=[table], user=user,
        fold_deferred=deferred,
    )


def _would_defer(db: Session, integ: Integration, trigger: str, tables: list[str]) -> bool:
    """Whether the quota guard would defer a run re-reading ``tables`` if it started now."""
    if not integ.schedulable:
        return False
    return not admit(db, integ, trigger=trigger, tables=tables, full_refresh=tables).start


def delete_integration(db: Session, integ: Integration, *, drop_tables: bool = False) -> list[str]:
    """Delete the integration, its runs, logs and bookmarks; optionally its warehouse tables.

    Refused (``Conflict``) while a run is in progress: the run is asked to stop, and the
    delete can be repeated once it has. Returns the dropped warehouse tables.
    """
    running = db.scalar(
        sa.select(Run).where(Run.integration_id == integ.id, Run.status == "running")
    )
    if running is not None:
        running.cancel_requested = True
        db.commit()
        raise Conflict(
            f"Run {running.id[:8]} of {integ.name} is in progress; it has been asked to stop. "
            "Delete again once it has finished."
        )
    dropped: list[str] = []
    name = integ.name
    if drop_tables:
        # Release the store while the warehouse works (SQLite holds one write lock).
        db.rollback()
        dropped = drop_tables_of(db, name)
    run_ids = sa.select(Run.id).where(Run.integration_id == integ.id).scalar_subquery()
    db.execute(sa.delete(RunLog).where(RunLog.run_id.in_(run_ids)))
    db.execute(sa.delete(Run).where(Run.integration_id == integ.id))
    db.execute(sa.delete(OAuthState).where(OAuthState.integration_id == integ.id))
    db.delete(integ)
    db.commit()
    StateStore(context(db).engine, create=False).reset(name)
    return dropped


# ----------------------------------------------------------------------------- runs


def _require_credentials(integ: Integration) -> None:
    if not integ.has_credentials:
        raise ValidationFailed(
            {"credentials": f"Authorize {integ.name} with Constant Contact first."}
        )


def _cancel_queued(db: Session, integ: Integration) -> None:
    waiting = db.scalars(
        sa.select(Run).where(
            Run.integration_id == integ.id, Run.status.in_(WAITING_RUN_STATUSES)
        )
    )
    for run in waiting:
        run.transition("cancelled")
        run.finished_at = context(db).now()
        run.error = "Cancelled because the integration was paused."


def _merge(existing: Sequence[str] | None, new: Sequence[str] | None) -> list[str] | None:
    if existing is None or new is None:
        return None
    return sorted(set(existing) | set(new), key=list(TABLES).index)


def _estimate(db: Session, integ: Integration, run: Run) -> None:
    """Store the run's kind and estimated calls (shown while it waits; the claim refreshes
    them)."""
    estimate = estimate_run(
        db, integ, trigger=run.trigger, tables=run.tables_requested, full_refresh=run.full_refresh
    )
    run.kind, run.estimated_calls, run.estimate_basis = (
        estimate.kind,
        estimate.calls,
        estimate.basis,
    )


def enqueue_run(
    db: Session,
    integ: Integration,
    trigger: RunTrigger,
    *,
    tables: Iterable[str] | None = None,
    full_refresh: Iterable[str] = (),
    user: User | None = None,
    fold_deferred: bool = False,
) -> Run:
    """Queue a run, or fold the request into the integration's already queued run.

    A partial unique index allows one queued run per integration, so concurrent requests
    (two schedulers, a double click) end up in one run rather than a pile of them. With
    ``fold_deferred`` (the quota guard would defer this request too) and no queued run, the
    request folds into a run already deferred to the quota's reset instead.
    """
    ctx = context(db)
    tables_list = list(tables) if tables is not None else None
    refresh = list(full_refresh)
    for _attempt in range(3):
        queued = db.scalar(
            sa.select(Run).where(Run.integration_id == integ.id, Run.status == "queued")
        )
        if queued is None and fold_deferred:
            # Deferred just the same: wait in the run already waiting for the reset.
            queued = db.scalar(
                sa.select(Run)
                .where(Run.integration_id == integ.id, Run.status == "deferred")
                .order_by(Run.created_at)
                .limit(1)
            )
        if queued is not None:
            queued.tables_requested = _merge(queued.tables_requested, tables_list)
            queued.full_refresh = _merge(queued.full_refresh, refresh) or []
            _estimate(db, integ, queued)
            db.commit()
            return queued
        run = Run(
            integration_id=integ.id,
            trigger=trigger,
            status="queued",
            requested_by_id=user.id if user else None,
            tables_requested=tables_list,
            full_refresh=refresh,
            created_at=ctx.now(),
            rows={},
            table_status={},
        )
        _estimate(db, integ, run)
        db.add(run)
        try:
            db.flush()
        except IntegrityError:
            db.rollback()
            continue
        integ.last_run_id = run.id
        db.commit()
        ctx.wake()
        return run
    raise Conflict("Could not queue a run; try again.")  # pragma: no cover - needs 3 races
