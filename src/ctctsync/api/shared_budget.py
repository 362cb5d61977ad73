"""One rate budget per API key, shared by every process and machine through PostgreSQL.

Constant Contact limits each application (API key / client id), not each process:
4 calls/s and 10,000 calls/day -- constant-contact-api.md §1.7. :class:`RateLimiter` keeps
that budget inside one process; two workers would each spend all of it. A
:class:`SharedRateLimiter` keeps the same state -- the next free slot, the current (maybe
slowed-down) rate, the holds of the latest calls, today's count, a server-reported
exhaustion -- in one row per key of a PostgreSQL table (the fleet's store; no new service),
and changes it in short transactions that lock the row (``SELECT … FOR UPDATE``), so every
process of the fleet books its slots from one schedule. The rules are
:class:`RateLimiter`'s, so its proofs carry over: slots at least ``(1 / rate) * (1 +
margin)`` apart, booked as ``max(now, previous slot + spacing)``, high priority first, plus
the hold rule on every grant (a call holds the key's window from its grant until its answer
is in, at most ``send_delay_bound``; :func:`~ctctsync.api.ratelimit.arrival_wait`). All
times are the database's clock (``clock_timestamp()``), so machines whose clocks disagree
still agree on the schedule; a process sleeps the *relative* wait the database returned.

Fail safe: when the database cannot be reached, nothing is booked and nothing is sent: the
caller pauses and retries with backoff (0.5 s doubling to 8 s), logging one warning per
outage, and gives up with :data:`RATE_BUDGET_UNREACHABLE_RULE` once the outage lasts longer
than ``outage_limit`` (default :data:`DEFAULT_OUTAGE_LIMIT`). Slower, never over.

The table is created on first use (``CREATE TABLE IF NOT EXISTS`` under an advisory lock,
so processes starting together do not race); it is bookkeeping, not data, and holds one
small row per key. See docs/architecture.md, "A rate budget shared by the fleet".
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ctctsync.api.cancel import Cancelled, StopCheck, check_stop, pause
from ctctsync.api.ratelimit import (
    CLAIM_RECHECK,
    DEFAULT_SEND_DELAY_BOUND,
    LATENCY_DECAY,
    Grant,
    Priority,
    RateLimiter,
    arrival_wait,
    hold_window,
    install_limiter,
    limiter_for,
    low_priority_wait,
    slot_spacing,
)
from ctctsync.errors import DailyQuotaExhausted, RetriesExhausted, next_utc_midnight
from ctctsync.errors.rules import ErrorRule

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TABLE = "ctctsync_rate_budget"
"""The table holding one row per API key (fingerprint, never the key)."""
DEFAULT_OUTAGE_LIMIT = 60.0
"""Seconds a caller waits for an unreachable database before its run fails (transient).
Below the sweeper's default ``stale_after_seconds`` (120 s), so the run ends with this clear
message rather than as a stale run."""
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")

RATE_BUDGET_UNREACHABLE_RULE = ErrorRule(
    name="rate_budget_unreachable",
    action="fail",
    failure_type="transient",
    stops_run=True,
    message=(
        "The shared rate budget (PostgreSQL) could not be reached ({error_message}); no call "
        "was sent without it, so the API key's limit was kept. The run can be retried later."
    ),
)
"""What a call becomes when the shared budget's database stays unreachable past the outage
limit: every other table would wait the same way, so the run stops."""


@dataclass
class _Budget:
    """One key's row, read under its row lock; ``now`` is the database's clock (epoch s)."""

    now: float
    next_slot: float
    rate: float | None
    """The slowed-down rate; None = the key's full qps."""
    last_slowdown: float | None
    sent: list[float] = field(default_factory=list)
    """When each recent grant's hold ends (or will end at the latest): the hold rule."""
    day: date = date.min
    used: int = 0
    exhausted_until: datetime | None = None
    grants: list[float] = field(default_factory=list)
    """The grant times of ``sent``, pair by pair (an answer ends its own hold)."""
    latency: float = 0.0
    """Recent answer latency, decaying: widens the spacing."""
    low_last: float | None = None
    """When the low-priority class last booked (its floor)."""

    def holds(self) -> list[tuple[float, float]]:
        """(grant, hold end) pairs; a row written by an older version (no grant times)
        counts its send times as both."""
        if len(self.grants) != len(self.sent):
            return [(h, h) for h in self.sent]
        return list(zip(self.grants, self.sent, strict=True))

    def set_holds(self, pairs: list[tuple[float, float]]) -> None:
        self.grants = [g for g, _ in pairs]
        self.sent = [h for _, h in pairs]

    def roll_day(self) -> datetime:
        """A new UTC day starts a new count; a past exhaustion ends. Returns now."""
        now = datetime.fromtimestamp(self.now, UTC)
        if now.date() != self.day:
            self.day = now.date()
            self.used = 0
        if self.exhausted_until is not None and now >= self.exhausted_until:
            self.exhausted_until = None
        return now


class SharedRateLimiter(RateLimiter):
    """A :class:`RateLimiter` whose state lives in PostgreSQL, shared by every process.

    Same interface and rules (the client does not know the difference); ``dsn`` is a libpq
    connection string or URL (a SQLAlchemy ``postgresql+psycopg://`` URL is accepted), ``key``
    the API key's fingerprint. Thread-safe: one connection, one transaction at a time. No I/O
    until the first call.
    """

    def __init__(
        self,
        dsn: str,
        key: str,
        qps: float | None,
        daily: int | None,
        *,
        table: str = DEFAULT_TABLE,
        outage_limit: float = DEFAULT_OUTAGE_LIMIT,
        margin: float = 0.03,
        min_qps: float = 0.5,
        slow_down_pause: float = 1.0,
        recovery_period: float = 5.0,
        send_delay_bound: float = DEFAULT_SEND_DELAY_BOUND,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            qps,
            daily,
            margin=margin,
            min_qps=min_qps,
            slow_down_pause=slow_down_pause,
            recovery_period=recovery_period,
            send_delay_bound=send_delay_bound,
            sleep=sleep,
        )
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"not a plain table name: {table!r}")
        self.dsn = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
        self.key = key
        self.table_name = table
        self.table = sql.Identifier(*table.split("."))
        self.outage_limit = outage_limit
        self._db_lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        info = conninfo_to_dict(self.dsn)
        # where, for log lines: host and database only (never the password or full DSN)
        self.where = f"{info.get('host') or 'localhost'}/{info.get('dbname') or ''}"

    # ------------------------------------------------------------------ the store

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Create the table if needed and the key's row."""
        # A process that stops while holding the key's row lock (SIGSTOP, a frozen VM) must
        # not stop the fleet: its session is ended after 10 s idle in a transaction, and a
        # waiter gives up after 5 s (an OperationalError: retried like an outage).
        conn.execute("SET idle_in_transaction_session_timeout = '10s'")
        conn.execute("SET lock_timeout = '5s'")
        with conn.transaction():
            # one creator at a time: concurrent CREATE TABLE IF NOT EXISTS can still collide
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DEFAULT_TABLE,))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " key text PRIMARY KEY,"
                    " next_slot double precision NOT NULL DEFAULT 0,"
                    " rate double precision,"
                    " last_slowdown double precision,"
                    " sent double precision[] NOT NULL DEFAULT '{{}}',"
                    " day date NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')::date,"
                    " used integer NOT NULL DEFAULT 0,"
                    " exhausted_until timestamptz)"
                ).format(self.table)
            )
            # added with the hold rule and priorities: older tables get them here
            for column in (
                "grants double precision[] NOT NULL DEFAULT '{{}}'",
                "latency double precision NOT NULL DEFAULT 0",
                "low_last double precision",
            ):
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS " + column).format(
                        self.table
                    )
                )
            conn.execute(
                sql.SQL("INSERT INTO {} (key) VALUES (%s) ON CONFLICT (key) DO NOTHING").format(
                    self.table
                ),
                (self.key,),
            )

    def _transact(self, change: Callable[[_Budget], T]) -> T:
        """Read the key's row under its lock, let ``change`` edit it, write it back; one
        transaction, so no other process sees or books in between. ``change`` may raise
        (nothing is written then)."""
        with self._db_lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            conn = self._conn
            with conn.transaction():
                row = conn.execute(
                    sql.SQL(
                        "SELECT extract(epoch FROM clock_timestamp())::double precision,"
                        " next_slot, rate, last_slowdown, sent, day, used, exhausted_until,"
                        " grants, latency, low_last FROM {} WHERE key = %s FOR UPDATE"
                    ).format(self.table),
                    (self.key,),
                ).fetchone()
                assert row is not None  # inserted on connect; rows are never deleted
                budget = _Budget(*row)  # type: ignore[arg-type]
                result = change(budget)
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET next_slot = %s, rate = %s, last_slowdown = %s,"
                        " sent = %s, day = %s, used = %s, exhausted_until = %s, grants = %s,"
                        " latency = %s, low_last = %s WHERE key = %s"
                    ).format(self.table),
                    (
                        budget.next_slot,
                        budget.rate,
                        budget.last_slowdown,
                        budget.sent,
                        budget.day,
                        budget.used,
                        budget.exhausted_until,
                        budget.grants,
                        budget.latency,
                        budget.low_last,
                        self.key,
                    ),
                )
            return result

    def _with_store(self, change: Callable[[_Budget], T], should_stop: StopCheck | None) -> T:
        """:meth:`_transact`, waiting out an unreachable database (fail safe: nothing is
        booked, so nothing is sent) with backoff, up to ``outage_limit`` seconds."""
        started: float | None = None
        delay = BACKOFF_FIRST
        while True:
            try:
                result = self._transact(change)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                now = time.monotonic()
                reason = _reason(exc)
                if started is None:
                    started = now
                    log.warning(
                        "shared rate budget at %s unreachable (%s): calls of API key %s "
                        "wait, retrying for up to %.0f s",
                        self.where, reason, self.key, self.outage_limit,
                    )
                if now - started >= self.outage_limit:
                    raise RetriesExhausted(
                        RATE_BUDGET_UNREACHABLE_RULE.message.format(error_message=reason),
                        rule=RATE_BUDGET_UNREACHABLE_RULE,
                        detail=f"{self.where}: unreachable for {now - started:.0f} s",
                    ) from None
                pause(min(delay, self.outage_limit - (now - started)), self._sleep, should_stop)
                delay = min(BACKOFF_MAX, delay * 2)
                continue
            if started is not None:
                log.info(
                    "shared rate budget at %s reachable again after %.1f s",
                    self.where, time.monotonic() - started,
                )
            return result

    def _drop_connection(self) -> None:
        with self._db_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        """Close the connection to the store (the next call opens a new one)."""
        self._drop_connection()

    # ------------------------------------------------------------------ pacing

    def _recover_shared(self, b: _Budget) -> None:
        """Raise a slowed-down rate by qps/10 per quiet ``recovery_period``."""
        if self.qps is None or b.rate is None or b.last_slowdown is None:
            return
        steps = int((b.now - b.last_slowdown) // self.recovery_period)
        if steps <= 0:
            return
        b.rate = b.rate + steps * self.qps / 10
        b.last_slowdown += steps * self.recovery_period
        if b.rate >= self.qps:
            b.rate = b.last_slowdown = None

    def _rate_of(self, b: _Budget) -> float | None:
        if self.qps is None:
            return None
        return self.qps if b.rate is None else min(b.rate, self.qps)

    @property
    def current_qps(self) -> float | None:
        """The rate every process of the key paces at right now (None = unlimited)."""

        def read(b: _Budget) -> float | None:
            self._recover_shared(b)
            return self._rate_of(b)

        return self._with_store(read, None)

    def acquire(
        self, should_stop: StopCheck | None = None, priority: Priority = "high"
    ) -> Grant:
        """Book the key's next free slot (any process's; ``low`` priority waits while the
        schedule is full), count the call, wait for the slot, then take the grant under the
        hold rule against every process's calls. Hand the grant to :meth:`done` when the
        answer is in.

        Raises :class:`~ctctsync.errors.DailyQuotaExhausted` before anything is sent when
        the key's budget is spent, :class:`~ctctsync.api.cancel.Cancelled` (giving the call
        back) when ``should_stop`` says stop while waiting, and
        :class:`~ctctsync.errors.RetriesExhausted` when the database stays unreachable.
        """
        check_stop(should_stop)
        while True:
            wait, booked = self._with_store(lambda b: self._book(b, priority), should_stop)
            if booked:
                break
            # a low call's turn: up to half a second of jitter, so the low callers of the
            # fleet do not all ask again at the same instant
            pause(wait + random.uniform(0.0, min(0.5, wait)), self._sleep, should_stop)
        try:
            if wait > 0:
                pause(wait, self._sleep, should_stop)
            if self.qps is None:
                # no client-side limit: no holds to check (and no transaction to spend)
                return Grant(-1.0)
            while True:
                extra, grant = self._with_store(self._claim_shared, should_stop)
                if grant is not None:
                    return grant
                pause(min(extra, CLAIM_RECHECK), self._sleep, should_stop)
        except Cancelled:
            try:
                self._transact(_give_back)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._drop_connection()  # counted but not sent: over-counting is the safe side
            raise

    def _book(self, b: _Budget, priority: Priority) -> tuple[float, bool]:
        """Count the call and book its slot: (how long to wait for it, True); or, a low call
        whose turn has not come, (how long until it may ask again, False)."""
        now = b.roll_day()
        if b.exhausted_until is not None:
            raise self._exhausted_at(b, b.exhausted_until)
        if self.daily is not None and b.used >= self.daily:
            raise self._exhausted_at(b, next_utc_midnight(now))
        self._recover_shared(b)
        rate = self._rate_of(b)
        spacing = None if rate is None else slot_spacing(
            rate, self.qps or rate, self.margin, b.latency)
        if spacing is not None and priority == "low":
            turn = low_priority_wait(b.now, b.next_slot, b.low_last, spacing)
            if turn > 0.0:
                return turn, False
        b.used += 1
        slot = max(b.now, b.next_slot)
        if spacing is not None:
            b.next_slot = slot + spacing
            if priority == "low":
                b.low_last = b.now
        # else: no pacing, but a pause set by slow_down() still holds everyone back
        return slot - b.now, True

    def _claim_shared(self, b: _Budget) -> tuple[float, Grant | None]:
        """Grant the call now under the hold rule, against every process's holds
        (:func:`~ctctsync.api.ratelimit.arrival_wait`), or say how much longer to wait."""
        assert self.qps is not None
        window = hold_window(self.qps)
        pairs = [(g, h) for g, h in b.holds() if h + window - b.now > 1e-6]
        wait = arrival_wait([h for _, h in pairs], b.now, self.qps)
        if wait == 0.0:
            pairs.append((b.now, b.now + self.send_delay_bound))
        b.set_holds(pairs)
        return (0.0, Grant(b.now)) if wait == 0.0 else (wait, None)

    def done(self, grant: Grant) -> None:
        """The answer to a granted call is in: end its hold now (the database's clock, so a
        little later than the answer: the safe side) and note its latency. One short
        transaction; if the database is unreachable the hold simply ends
        ``send_delay_bound`` after the grant (slower, never over)."""
        if self.qps is None:
            return

        def finish(b: _Budget) -> None:
            pairs = b.holds()
            for i, (g, h) in enumerate(pairs):
                if g == grant.at:
                    pairs[i] = (g, min(h, b.now))
                    break
            b.set_holds(pairs)
            observed = min(max(0.0, b.now - grant.at), self.send_delay_bound)
            b.latency = max(observed, b.latency * LATENCY_DECAY)

        try:
            self._transact(finish)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._drop_connection()

    def slow_down(self) -> None:
        """The server said "over qps": halve the key's rate and pause every process of the
        key >= 1 s (constant-contact-api.md §1.7: back off at least a second)."""
        self.slowdowns += 1

        def halve(b: _Budget) -> None:
            if self.qps is not None:
                self._recover_shared(b)
                b.rate = max(self.min_qps, (self._rate_of(b) or self.qps) / 2)
                b.last_slowdown = b.now
            b.next_slot = max(b.next_slot, b.now + self.slow_down_pause)

        self._with_store(halve, None)

    # ------------------------------------------------------------------ daily budget

    def _exhausted_at(self, b: _Budget, resume_at: datetime) -> DailyQuotaExhausted:
        self._used = b.used  # for the message's detail
        self._day = b.day
        return self._exhausted(resume_at)

    def mark_exhausted(self, resume_at: datetime | None = None) -> datetime:
        """The server said the key's daily quota is spent: every process refuses calls until
        ``resume_at`` (default: the next 00:00 UTC). Returns the resume time."""

        def mark(b: _Budget) -> datetime:
            now = b.roll_day()
            resume = resume_at or next_utc_midnight(now)
            b.exhausted_until = max(resume, b.exhausted_until or resume)
            return b.exhausted_until

        return self._with_store(mark, None)

    @property
    def used_today(self) -> int:
        """Calls counted against the key's budget today (UTC), by every process."""

        def read(b: _Budget) -> int:
            b.roll_day()
            return b.used

        return self._with_store(read, None)

    @property
    def remaining_today(self) -> int | None:
        """Calls left today for the whole fleet, or None without a daily budget."""

        def read(b: _Budget) -> int | None:
            b.roll_day()
            if b.exhausted_until is not None:
                return 0
            return None if self.daily is None else max(0, self.daily - b.used)

        return self._with_store(read, None)

    def set_used_today(self, calls: int) -> None:
        """Raise today's shared count to ``calls`` (e.g. what the store's runs recorded).
        Never lowers it: other processes' calls not recorded yet must not be forgotten."""

        def raise_to(b: _Budget) -> None:
            b.roll_day()
            b.used = max(b.used, calls)

        self._with_store(raise_to, None)

    def reconfigure(self, qps: float | None, daily: int | None) -> None:
        """Change this process's limits (the key's settings changed). A slowdown shared with
        other processes stays (it recovers as usual); today's count is kept."""
        with self._lock:
            self.qps = qps
            self.daily = daily


def _give_back(b: _Budget) -> None:
    b.used = max(0, b.used - 1)  # booked but not sent


def _reason(exc: BaseException) -> str:
    """A one-line reason without secrets: psycopg's messages name host, port and user,
    never the password; the first line is enough."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def shared_limiter_for(
    api_key_fingerprint: str,
    dsn: str,
    qps: float | None,
    daily: int | None,
    *,
    table: str = DEFAULT_TABLE,
) -> SharedRateLimiter:
    """The process-wide limiter of one API key, backed by the fleet's budget in ``dsn``:
    installed in place of a local one (every client of the key then gets it from
    :func:`~ctctsync.api.ratelimit.limiter_for`), reused when already there."""

    def choose(current: RateLimiter | None) -> RateLimiter:
        if (
            isinstance(current, SharedRateLimiter)
            and current.dsn == dsn.replace("postgresql+psycopg://", "postgresql://", 1)
            and current.table_name == table
        ):
            if (current.qps, current.daily) != (qps, daily):
                current.reconfigure(qps, daily)
            return current
        return SharedRateLimiter(dsn, api_key_fingerprint, qps, daily, table=table)

    chosen = install_limiter(api_key_fingerprint, choose)
    assert isinstance(chosen, SharedRateLimiter)
    return chosen


def local_limiter_for(
    api_key_fingerprint: str, qps: float | None, daily: int | None
) -> RateLimiter:
    """The process-wide limiter of one API key kept in this process only (the embedded
    default): replaces a shared one installed before (the setting changed), else as
    :func:`~ctctsync.api.ratelimit.limiter_for`."""

    def choose(current: RateLimiter | None) -> RateLimiter:
        if current is None or isinstance(current, SharedRateLimiter):
            return RateLimiter(qps, daily)
        return current

    install_limiter(api_key_fingerprint, choose)
    return limiter_for(api_key_fingerprint, qps, daily)
