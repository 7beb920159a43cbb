"""The backlog at a glance for monitoring (`ledger stats`, its Prometheus metrics and
the flows' artifact): what is due, how long the most overdue recording has waited,
what is in progress, what failed and what was archived lately.

Every query is an index read, so the answer stays cheap at tens of millions of rows
(checked with EXPLAIN on PostgreSQL); each query names the index that serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.reads import Reads
from tenios_io.ledger.records import as_utc
from tenios_io.ledger.sequencer import queued_count
from tenios_io.ledger.states import State
from tenios_io.ledger.tables import recordings

_R = recordings.c
#: The window for "failed lately" and "archived per hour".
WINDOW = timedelta(hours=24)
#: The end states of a failed claim that an operator should look at.
TROUBLE = (State.FAILED, State.MISSING, State.CONFLICT)


@dataclass(frozen=True)
class LedgerStats:
    """One snapshot of the ledger's backlog, as of ``at`` (the lease clock's now)."""

    at: datetime
    due: int
    oldest_due_seconds: float
    in_progress: int
    expired_leases: int
    last_24h: dict[str, int]
    archived_per_hour: dict[datetime, int] = field(default_factory=dict)
    custody_queued: int = 0

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types (what `ledger stats --json` prints)."""
        return {
            "at": self.at.isoformat(),
            "due": self.due,
            "oldest_due_seconds": round(self.oldest_due_seconds, 3),
            "in_progress": self.in_progress,
            "expired_leases": self.expired_leases,
            "last_24h": dict(self.last_24h),
            "archived_per_hour": {
                hour.isoformat(): n for hour, n in sorted(self.archived_per_hour.items())
            },
            "custody_queued": self.custody_queued,
        }


def _count(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one())


def _hour(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The hour an instant falls in, as SQL (no portable SQL function does this)."""
    if dialect == "postgresql":
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    # SQLite keeps the ledger's timestamps as UTC text "YYYY-MM-DD HH:MM:SS.ffffff".
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


def _as_hour(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def collect(ledger: LedgerCore, now: datetime) -> LedgerStats:
    """The stats as of ``now`` (pass the ledger's lease clock: ``Reads.clock_now()``)."""
    now = now.astimezone(UTC)
    since = now - WINDOW
    with ledger.engine.connect() as conn:
        pending = _R.state == State.PENDING.value
        # ix_recordings_state_next_attempt_at: a range count on (pending, .. now].
        due = _count(conn, pending, _R.next_attempt_at <= now)
        # ix_recordings_state_next_attempt_at: min() is the first entry of the range.
        oldest = as_utc(
            conn.execute(
                sa.select(sa.func.min(_R.next_attempt_at)).where(pending, _R.next_attempt_at <= now)
            ).scalar()
        )
        in_progress = _R.state == State.IN_PROGRESS.value
        # ix_recordings_state_lease_expires_at: the in_progress prefix, then its range below now.
        leased = _count(conn, in_progress)
        expired = _count(conn, in_progress, _R.lease_expires_at < now)
        # ix_recordings_state_updated_at: one range count per end state; a failure
        # is the row's last change, so updated_at is when it failed.
        last_24h = {
            state.value: _count(conn, _R.state == state.value, _R.updated_at >= since)
            for state in TROUBLE
        }
        # ix_recordings_state_updated_at bounds the read to rows archived or touched in
        # the window (updated_at >= archived_at always); only those rows' archived_at is read.
        hour = _hour(_R.archived_at, ledger.engine.dialect.name).label("hour")
        rows = conn.execute(
            sa.select(hour, sa.func.count())
            .where(
                _R.state == State.ARCHIVED.value,
                _R.updated_at >= since,
                _R.archived_at >= since,
            )
            .group_by(hour)
        ).all()
        # custody_queue is drained by the sequencer: it stays small, a count is cheap.
        queued = queued_count(conn)
    archived_per_hour = {_as_hour(h): int(n) for h, n in rows}
    last_24h["archived"] = sum(archived_per_hour.values())
    return LedgerStats(
        at=now,
        due=due,
        oldest_due_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        in_progress=leased,
        expired_leases=expired,
        last_24h=last_24h,
        archived_per_hour=archived_per_hour,
        custody_queued=queued,
    )


@dataclass(frozen=True)
class WorkProbe:
    """Whether work is left, as cheaply as the ledger can say it: a fanned-out run's
    parent asks every few seconds, and counting a backlog of millions each time (as
    :func:`collect` does) would be a range scan per look."""

    due: bool
    """A pending recording is claimable now."""
    leased: bool
    """A recording is in progress (under a lease, live or expired)."""
    live_lease: bool
    """A recording is in progress under a lease that has not expired."""


def probe(ledger: LedgerCore, now: datetime) -> WorkProbe:
    """Three EXISTS reads, each the first entry of an index range
    (ix_recordings_state_next_attempt_at, ix_recordings_state_lease_expires_at)."""
    now = now.astimezone(UTC)
    in_progress = _R.state == State.IN_PROGRESS.value

    with ledger.engine.connect() as conn:
        row = conn.execute(
            sa.select(
                sa.exists().where(_R.state == State.PENDING.value, _R.next_attempt_at <= now),
                sa.exists().where(in_progress),
                sa.exists().where(in_progress, _R.lease_expires_at >= now),
            )
        ).one()
    return WorkProbe(due=bool(row[0]), leased=bool(row[1]), live_lease=bool(row[2]))


#: Final states of a run's claims, as the run's outcomes name them.
ENDED = (State.ARCHIVED, State.FAILED, State.MISSING, State.CONFLICT)


@dataclass(frozen=True)
class RunCounts:
    """What a progress poller reads each tick: recordings that reached an end state
    since the run started (per state), and the work still open, each counted up to
    ``cap`` (``exact`` is False when either reached it)."""

    ended: dict[str, int]
    in_progress: int
    due: int
    exact: bool


def _capped(
    conn: sa.Connection, cap: int, order: sa.ColumnElement[Any], *where: sa.ColumnElement[bool]
) -> int:
    """``count(*)`` of at most ``cap`` rows: the index range is read no further.  In
    the index's ``order``: otherwise PostgreSQL may take a sequential scan "until cap
    rows match", which reads the whole table when the matches lie at its end."""
    inner = (
        sa.select(sa.literal(1))
        .select_from(recordings)
        .where(*where)
        .order_by(order)
        .limit(cap)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


def run_counts(ledger: Reads, since: datetime, *, cap: int = 1000) -> RunCounts:
    """The cheap counts for a live progress bar, as of now (index reads whatever the
    backlog; checked with EXPLAIN on PostgreSQL).

    ``ended``: one range count per end state on ix_recordings_state_updated_at over
    ``updated_at >= since`` (a row's updated_at is its last change, written by the
    worker's clock): the cost grows with the run's own work, never with the backlog.
    ``due`` and ``in_progress`` read at most ``cap`` index entries each
    (ix_recordings_state_next_attempt_at, ix_recordings_state_lease_expires_at): a
    backlog of millions is "at least cap", not counted every tick.
    """
    since = since.astimezone(UTC)
    # A value, not clock_timestamp() in the query: a volatile function is no index bound.
    now = ledger.clock_now()
    with ledger.engine.connect() as conn:
        ended = {
            state.value: _count(conn, _R.state == state.value, _R.updated_at >= since)
            for state in ENDED
        }
        in_progress = _capped(conn, cap, _R.lease_expires_at, _R.state == State.IN_PROGRESS.value)
        pending = _R.state == State.PENDING.value
        due = _capped(conn, cap, _R.next_attempt_at, pending, _R.next_attempt_at <= now)
    return RunCounts(ended, in_progress, due, exact=in_progress < cap and due < cap)
