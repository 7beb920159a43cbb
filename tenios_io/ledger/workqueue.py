"""The work queue: claims, leases and the outcome of each claimed recording.

A claim is index-backed and costs the same at any backlog size: the expired leases
(``ix_recordings_state_lease_expires_at``) and the due pending rows
(``ix_recordings_state_next_attempt_at``) are separate range reads in index order,
each ``FOR UPDATE SKIP LOCKED`` on PostgreSQL inside one ``UPDATE … RETURNING`` for
the batch, so concurrent workers claim disjoint rows without waiting on each other.
No table-wide or global lock is taken: custody events go to the queue (sequencer.py).

Work on a claimed recording is fenced by its lease token: every leased write is one
``UPDATE … WHERE lease_token = :token RETURNING``, so a worker whose lease expired
and was rescued by another cannot write over the new owner (StaleLease, nothing
changes).  Attempts are counted at claim time and capped there too: a recording
whose lease expired ``TENIOS_MAX_ATTEMPTS`` times (its worker died each time) ends
``failed`` instead of being rescued again.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tenios_io import crashpoints
from tenios_io.custody.chain import NewEvent, canonical_row_digest, format_time, logged_json
from tenios_io.exceptions import StaleLease, UnknownRecording
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.manifests import queue_manifest_rows
from tenios_io.ledger.records import THIS_PROCESS, Claim, Recording, as_utc
from tenios_io.ledger.sequencer import insert_queue_rows
from tenios_io.ledger.states import State, check_transition
from tenios_io.ledger.tables import recordings

_R = recordings.c
#: Without a cap from the caller, never fail a recording at claim time.
_NO_CAP = 2**31 - 1
_IN_PROGRESS = State.IN_PROGRESS.value
#: ``OutcomesWritten.stale`` of a recording that is not in the ledger at all.
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class LeasedWrite:
    """One claimed recording's outcome: column updates, custody events and, with a
    ``target``, the state its claim ends in.

    Built by :meth:`WorkQueue.completed_write` (``failed_write``, ``retry_write``,
    ``released_write``, ``recorded_write``) and written, alone or with the rest of a
    batch's, by :meth:`WorkQueue.write_outcomes` in one transaction.  ``at`` is when
    it happened (the events' ``occurred_at``); fixed up front, so the events' entry
    digests are known before the write (:meth:`digests`).
    """

    recording_uuid: str
    lease_token: str
    target: State | None
    events: tuple[tuple[str, Mapping[str, Any]], ...]
    updates: Mapping[str, Any]
    at: datetime
    object_hold: bool | None = None
    """For a completion: whether the archived object carries a legal hold already."""

    def event_rows(self, actor: str) -> list[dict[str, Any]]:
        """The custody queue rows this write adds, written by ``actor``."""
        occurred = format_time(self.at)
        return [
            {
                "recording_uuid": self.recording_uuid,
                "event": name,
                "actor": actor,
                "occurred_at": occurred,
                "details": logged_json(details),
            }
            for name, details in self.events
        ]

    def digests(self, actor: str) -> list[str]:
        """The entry digests (custody.entry_digest) its events will have."""
        return [canonical_row_digest(row) for row in self.event_rows(actor)]


@dataclass(frozen=True)
class OutcomesWritten:
    """What :meth:`WorkQueue.write_outcomes` did: the entry digests of the events of
    each recording written, and the recordings whose lease was no longer ours (nothing
    of theirs was written)."""

    digests: Mapping[str, list[str]]
    stale: Mapping[str, str]
    """recording_uuid → the state the row was found in (or "unknown")."""


_PG_CLAIM = """
WITH picked AS (
  SELECT recording_uuid, lease_owner AS old_owner
  FROM recordings
  WHERE {where}
  ORDER BY {order}
  LIMIT :limit
  FOR UPDATE SKIP LOCKED
)
UPDATE recordings AS r
SET {assign}, updated_at = :updated
FROM picked AS p
WHERE r.recording_uuid = p.recording_uuid
RETURNING {returning}, p.old_owner
"""


@functools.lru_cache(maxsize=16)
def _pg_claim_statement(where: str, order: str, assign: str) -> sa.TextualSelect:
    """One of PostgreSQL's claim statements, built once: its columns named and typed, so
    SQLAlchemy caches how to read its rows instead of working it out from the cursor at
    every claim (35 columns, three statements per claim)."""
    returning = ", ".join(f"r.{column.name}" for column in recordings.c)
    sql = _PG_CLAIM.format(where=where, order=order, assign=assign, returning=returning)
    return sa.text(sql).columns(*recordings.c, sa.column("old_owner", sa.String))


_SQLITE_LEASE = (
    recordings.update()
    .where(recordings.c.recording_uuid == sa.bindparam("k_uuid"))
    .values(
        {
            name: sa.bindparam(f"v_{name}")
            for name in (
                "state",
                "lease_token",
                "lease_owner",
                "lease_expires_at",
                "attempts",
                "lease_expiries",
                "updated_at",
            )
        }
    )
)


#: The rows write_outcomes fences on (by key, in key order); built once.
_OURS = (
    sa.select(_R.recording_uuid, _R.lease_token, _R.state, _R.lease_owner, _R.legal_hold)
    .where(_R.recording_uuid.in_(sa.bindparam("keys", expanding=True)))
    .order_by(_R.recording_uuid)
)
_OURS_LOCKED = _OURS.with_for_update()


#: SQLite's claim reads (built once): expired leases, then due pending rows, each
#: through its index.
_SQLITE_EXPIRED = (
    sa.select(recordings)
    .where(
        _R.state == State.IN_PROGRESS.value,
        _R.lease_expires_at < sa.bindparam("now", type_=_R.lease_expires_at.type),
    )
    .order_by(_R.lease_expires_at)
    .limit(sa.bindparam("n", type_=sa.Integer))
)
_SQLITE_DUE = (
    sa.select(recordings)
    .where(
        _R.state == State.PENDING.value,
        _R.next_attempt_at <= sa.bindparam("now", type_=_R.next_attempt_at.type),
    )
    .order_by(_R.next_attempt_at)
    .limit(sa.bindparam("n", type_=sa.Integer))
)


def died_reason(times: int, cap: int) -> str:
    """The reason a recording ends failed when its workers kept dying."""
    return (
        f"worker died {times} times while archiving it "
        f"(attempt cap TENIOS_MAX_ATTEMPTS={cap} reached); `tenios-archive ledger requeue` "
        "retries it"
    )


class WorkQueue(LedgerCore):
    """Claim, renew, and end claims (the hot path of every worker)."""

    def claim_batch(
        self,
        limit: int,
        *,
        lease_seconds: float,
        owner: str | None = None,
        max_attempts: int | None = None,
        integrate: bool = True,
    ) -> list[Claim]:
        """Lease up to ``limit`` due recordings to ``owner``.

        Due: ``in_progress`` whose lease has expired (a dead worker's; rescued first)
        or ``pending`` with ``next_attempt_at <= now``.  Each claimed row gets a fresh
        lease token and one more attempt.  An expired lease on a recording that has
        used ``max_attempts`` ends ``failed`` ("worker died N times") instead.
        With ``integrate`` the claim then gives the sequencer a turn if it is free.
        """
        if limit <= 0:
            return []
        owner = owner or self.actor
        cap = max_attempts if max_attempts is not None else _NO_CAP
        now = self.now()
        claimed_at = time.monotonic()  # before the leases are taken: never younger than they
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                dead, claimed = self._claim_postgres(conn, limit, lease_seconds, owner, cap, now)
            else:
                dead, claimed = self._claim_sqlite(conn, limit, lease_seconds, owner, cap, now)
            events = [
                NewEvent(
                    row["recording_uuid"],
                    State.FAILED.value,
                    {
                        "reason": died_reason(row["lease_expiries"], cap),
                        "attempts": row["attempts"],
                        "last_owner": row["old_owner"],
                    },
                )
                for row in dead
            ]
            claims: list[Claim] = []
            for row, rescued in claimed:
                details: dict[str, Any] = {"owner": owner, "attempt": row["attempts"]}
                if rescued:
                    details["rescued_from"] = row["old_owner"]
                events.append(NewEvent(row["recording_uuid"], "claimed", details))
                claims.append(
                    Claim(
                        Recording.from_row(row),
                        str(row["lease_token"]),
                        claimed_at=claimed_at,
                        claimed_in=THIS_PROCESS,
                    )
                )
            self._enqueue(conn, events, actor=owner, now=now)
        if integrate and events:
            self.integrate()
        return claims

    def _claim_postgres(
        self,
        conn: Connection,
        limit: int,
        lease_seconds: float,
        owner: str,
        cap: int,
        now: datetime,
    ) -> tuple[list[Mapping[Any, Any]], list[tuple[Mapping[Any, Any], bool]]]:
        database = self.lease_clock == "database"
        clock = "clock_timestamp()" if database else "CAST(:now AS timestamptz)"
        expires = f"{clock} + make_interval(secs => :lease)"
        params: dict[str, Any] = {
            "owner": owner,
            "cap": cap,
            "lease": lease_seconds,
            "updated": now,
        }
        if not database:
            params["now"] = now
        expired = f"state = 'in_progress' AND lease_expires_at < {clock}"

        def run(where: str, order: str, assign: str, n: int) -> list[Mapping[Any, Any]]:
            statement = _pg_claim_statement(where, order, assign)
            return list(conn.execute(statement, {**params, "limit": n}).mappings())

        dead = run(
            f"{expired} AND attempts >= :cap",
            "lease_expires_at",
            "state = 'failed', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, "
            "lease_expiries = r.lease_expiries + 1, "
            "last_error = 'worker died ' || (r.lease_expiries + 1) || ' times while archiving it'",
            limit,
        )
        lease = (
            "state = 'in_progress', lease_token = gen_random_uuid()::text, lease_owner = :owner, "
            f"lease_expires_at = {expires}, attempts = r.attempts + 1"
        )
        rescued = run(
            f"{expired} AND attempts < :cap",
            "lease_expires_at",
            lease + ", lease_expiries = r.lease_expiries + 1",
            limit,
        )
        fresh: list[Mapping[Any, Any]] = []
        if len(rescued) < limit:
            fresh = run(
                f"state = 'pending' AND next_attempt_at <= {clock}",
                "next_attempt_at",
                lease,
                limit - len(rescued),
            )
        return dead, [(row, True) for row in rescued] + [(row, False) for row in fresh]

    def _claim_sqlite(
        self,
        conn: Connection,
        limit: int,
        lease_seconds: float,
        owner: str,
        cap: int,
        now: datetime,
    ) -> tuple[list[Mapping[Any, Any]], list[tuple[Mapping[Any, Any], bool]]]:
        # One writer at a time (BEGIN IMMEDIATE): read the candidates through the two
        # indexes, then update them by primary key.
        expires = now + timedelta(seconds=lease_seconds)
        dead: list[Mapping[Any, Any]] = []
        rescued: list[Mapping[Any, Any]] = []
        for found in conn.execute(_SQLITE_EXPIRED, {"now": now, "n": limit}).mappings():
            (dead if found["attempts"] >= cap else rescued).append(found)
        fresh: list[Mapping[Any, Any]] = []
        if len(rescued) < limit:
            fresh = list(
                conn.execute(_SQLITE_DUE, {"now": now, "n": limit - len(rescued)}).mappings()
            )
        out_dead: list[Mapping[Any, Any]] = []
        for dead_row in dead:
            row = dict(dead_row)
            times = row["lease_expiries"] + 1
            values = {
                "state": State.FAILED.value,
                "lease_token": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "lease_expiries": times,
                "last_error": f"worker died {times} times while archiving it",
                "updated_at": now,
            }
            conn.execute(
                recordings.update().where(_R.recording_uuid == row["recording_uuid"]).values(values)
            )
            out_dead.append({**row, **values, "old_owner": row["lease_owner"]})
        claimed: list[tuple[Mapping[Any, Any], bool]] = []
        params: list[dict[str, Any]] = []
        for candidate, was_rescued in [(r, True) for r in rescued] + [(r, False) for r in fresh]:
            row = dict(candidate)
            values = {
                "state": State.IN_PROGRESS.value,
                "lease_token": str(uuid.uuid4()),
                "lease_owner": owner,
                "lease_expires_at": expires,
                "attempts": row["attempts"] + 1,
                "lease_expiries": row["lease_expiries"] + (1 if was_rescued else 0),
                "updated_at": now,
            }
            params.append(
                {"k_uuid": row["recording_uuid"], **{f"v_{k}": v for k, v in values.items()}}
            )
            claimed.append(({**row, **values, "old_owner": row["lease_owner"]}, was_rescued))
        if params:
            # One statement for every claimed row (executemany), not one built per row.
            conn.execute(_SQLITE_LEASE, params)
        return out_dead, claimed

    def renew(self, recording_uuid: str, lease_token: str, lease_seconds: float) -> datetime:
        """Extend a held lease; StaleLease if the token is no longer current."""
        with self._write() as conn:
            expires = conn.execute(
                recordings.update()
                .where(
                    _R.recording_uuid == recording_uuid,
                    _R.lease_token == lease_token,
                    _R.state == State.IN_PROGRESS.value,
                )
                .values(lease_expires_at=self._lease_after(lease_seconds))
                .returning(_R.lease_expires_at)
            ).scalar()
            if expires is None:
                raise StaleLease(
                    f"recording {recording_uuid}: lease lost (another worker owns it now)",
                    recording_uuid=recording_uuid,
                )
        result = as_utc(expires)
        assert result is not None
        return result

    def renew_many(self, held: Iterable[tuple[str, str]], lease_seconds: float) -> set[str]:
        """Extend every held lease ``(recording_uuid, lease_token)`` in one statement;
        returns the recordings whose lease is no longer ours (nothing changed for them).

        Rows are locked in key order (as :meth:`write_outcomes` locks them).
        """
        pairs = list(held)
        if not pairs:
            return set()
        keys = {key for key, _ in pairs}
        # By primary key, then the token: lease tokens are random UUIDs, unique to one
        # claim of one row, so "its token is one of ours" means "its lease is ours".
        mine = (
            sa.select(_R.recording_uuid)
            .where(
                _R.recording_uuid.in_(keys),
                _R.lease_token.in_([token for _, token in pairs]),
                _R.state == _IN_PROGRESS,
            )
            .order_by(_R.recording_uuid)
        )
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                mine = mine.with_for_update()
            renewed = set(
                conn.execute(
                    recordings.update()
                    .where(_R.recording_uuid.in_(mine.scalar_subquery()))
                    .values(lease_expires_at=self._lease_after(lease_seconds))
                    .returning(_R.recording_uuid)
                ).scalars()
            )
        return keys - renewed

    # -- work under a lease ---------------------------------------------------------------

    def recorded_write(
        self,
        recording_uuid: str,
        lease_token: str,
        events: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        updates: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> LeasedWrite:
        """Custody events (and optional column updates) for a leased recording that
        stays claimed."""
        return LeasedWrite(
            recording_uuid, lease_token, None, tuple(events), dict(updates or {}), at or self.now()
        )

    def completed_write(
        self,
        recording_uuid: str,
        lease_token: str,
        updates: Mapping[str, Any],
        events: Sequence[tuple[str, Mapping[str, Any]]] = (),
        *,
        at: datetime | None = None,
        object_hold: bool | None = None,
    ) -> LeasedWrite:
        """The claim ends ``archived`` with its archive columns; ``events`` come before
        the ``archived`` event.  ``object_hold``: whether the object carries a legal
        hold (see ``write_outcomes``'s ``apply_hold``)."""
        at = at or self.now()
        values = dict(updates)
        values.setdefault("archived_at", at)
        return LeasedWrite(
            recording_uuid,
            lease_token,
            State.ARCHIVED,
            (*events, ("archived", _jsonable(values))),
            {**values, "last_error": None},
            at,
            object_hold,
        )

    def failed_write(
        self,
        recording_uuid: str,
        lease_token: str,
        reason: str,
        *,
        state: State = State.FAILED,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> LeasedWrite:
        """The claim ends ``failed``, ``missing`` or ``conflict`` with the reason."""
        if state not in (State.FAILED, State.MISSING, State.CONFLICT):
            raise ValueError(f"fail() cannot end in {state}")
        return LeasedWrite(
            recording_uuid,
            lease_token,
            state,
            ((state.value, {"reason": reason, **(details or {})}),),
            {"last_error": reason},
            at or self.now(),
        )

    def retry_write(
        self,
        recording_uuid: str,
        lease_token: str,
        error: str,
        *,
        delay_seconds: float,
        at: datetime | None = None,
    ) -> LeasedWrite:
        """Back to ``pending``, due again after ``delay_seconds``; the error is kept."""
        at = at or self.now()
        due = at + timedelta(seconds=delay_seconds)
        return LeasedWrite(
            recording_uuid,
            lease_token,
            State.PENDING,
            (("retry_scheduled", {"error": error, "next_attempt_at": format_time(due)}),),
            {"last_error": error, "next_attempt_at": self._lease_after(delay_seconds)},
            at,
        )

    def released_write(
        self,
        recording_uuid: str,
        lease_token: str,
        reason: str,
        *,
        at: datetime | None = None,
        delay_seconds: float = 0.0,
    ) -> LeasedWrite:
        """The claim is given back: pending, due now (or after ``delay_seconds``: held
        back while something run-wide may pass), the attempt not counted."""
        due = self._lease_after(delay_seconds) if delay_seconds > 0 else self._lease_now()
        details: dict[str, Any] = {"reason": reason}
        if delay_seconds > 0:
            details["delay_seconds"] = round(delay_seconds, 3)
        return LeasedWrite(
            recording_uuid,
            lease_token,
            State.PENDING,
            (("released", details),),
            {"next_attempt_at": due, "attempts": _R.attempts - 1},
            at or self.now(),
        )

    def record(
        self,
        recording_uuid: str,
        lease_token: str,
        events: Sequence[tuple[str, Mapping[Any, Any]]],
        *,
        updates: Mapping[Any, Any] | None = None,
    ) -> list[str]:
        """Append custody events (and optional column updates) for a leased recording.

        Returns the events' entry digests (custody.entry_digest).  StaleLease if the
        lease is no longer ours.
        """
        return self._write_one(
            self.recorded_write(recording_uuid, lease_token, events, updates=updates)
        )

    def complete(
        self,
        recording_uuid: str,
        lease_token: str,
        updates: Mapping[Any, Any],
        events: Sequence[tuple[str, Mapping[Any, Any]]] = (),
    ) -> list[str]:
        """Mark a leased recording ``archived`` with its archive columns."""
        return self._write_one(self.completed_write(recording_uuid, lease_token, updates, events))

    def fail(
        self,
        recording_uuid: str,
        lease_token: str,
        reason: str,
        *,
        state: State = State.FAILED,
        details: Mapping[Any, Any] | None = None,
    ) -> list[str]:
        """End a claim in ``failed``, ``missing`` or ``conflict`` with the reason."""
        return self._write_one(
            self.failed_write(recording_uuid, lease_token, reason, state=state, details=details)
        )

    def retry_later(
        self, recording_uuid: str, lease_token: str, error: str, *, delay_seconds: float
    ) -> list[str]:
        """Back to ``pending``, due again after ``delay_seconds``; the error is kept."""
        return self._write_one(
            self.retry_write(recording_uuid, lease_token, error, delay_seconds=delay_seconds)
        )

    def release(self, recording_uuid: str, lease_token: str, reason: str) -> list[str]:
        """Give a claim back unworked (e.g. the time budget ran out): pending, due now,
        without counting the attempt."""
        return self._write_one(self.released_write(recording_uuid, lease_token, reason))

    def _write_one(self, write: LeasedWrite) -> list[str]:
        """Write one outcome; StaleLease (UnknownRecording) when it is not ours."""
        done = self.write_outcomes([write])
        key = write.recording_uuid
        if key in done.stale:
            if done.stale[key] == _UNKNOWN:
                raise UnknownRecording(f"recording {key} is not in the ledger", recording_uuid=key)
            raise StaleLease(
                f"recording {key}: lease token is stale (state {done.stale[key]}); "
                "another worker owns it now, nothing was changed",
                recording_uuid=key,
            )
        return done.digests[key]

    def write_outcomes(
        self,
        writes: Sequence[LeasedWrite],
        *,
        apply_hold: Callable[[LeasedWrite], Mapping[str, Any]] | None = None,
    ) -> OutcomesWritten:
        """Write several claims' outcomes (a batch's, as the pipeline does) in ONE
        transaction: one locking read, one ``UPDATE`` per shape of update (executemany),
        one insert of all their custody events, and the archived ones queued for their
        batch's custody manifest (:mod:`~tenios_io.ledger.manifests`).

        Each row is fenced by its lease token: a write whose lease is no longer ours
        changes nothing and is reported in ``stale``; the others are written.  All or
        nothing for the rest: a crash before the commit leaves the recordings
        ``in_progress`` under leases that expire, and they are archived again (found
        already in the bucket) — nothing is lost.  The rows are locked in key order, as
        :meth:`renew_many` locks them, so the two never deadlock.

        Legal holds are settled under those row locks: a completion whose row is on
        hold but whose object is not (the hold was placed while the recording was in
        flight) calls ``apply_hold`` before anything is written, and records what it
        returns as a ``legal_hold_applied`` event.  If it raises, nothing of this
        transaction is written.
        """
        if not writes:
            return OutcomesWritten({}, {})
        keys = [w.recording_uuid for w in writes]
        if len(set(keys)) != len(keys):
            raise ValueError("write_outcomes: one outcome per recording")
        for write in writes:
            if write.target is not None:
                check_transition(write.recording_uuid, State.IN_PROGRESS.value, write.target)
        now = self.now()
        with self._write() as conn:
            query = _OURS_LOCKED if conn.dialect.name == "postgresql" else _OURS
            found = {row.recording_uuid: row for row in conn.execute(query, {"keys": keys})}
            ours: list[tuple[LeasedWrite, str]] = []
            stale: dict[str, str] = {}
            for write in writes:
                row = found.get(write.recording_uuid)
                if row is None:
                    stale[write.recording_uuid] = _UNKNOWN
                elif row.lease_token != write.lease_token or row.state != _IN_PROGRESS:
                    stale[write.recording_uuid] = str(row.state)
                else:
                    if write.object_hold is False and row.legal_hold and apply_hold:
                        held = ("legal_hold_applied", apply_hold(write))
                        *before, archived = write.events
                        write = dataclasses.replace(write, events=(*before, held, archived))
                    ours.append((write, row.lease_owner or self.actor))
            _apply_updates(conn, [write for write, _ in ours], now)
            queue_rows: list[dict[str, Any]] = []
            digests: dict[str, list[str]] = {}
            for write, actor in ours:
                rows = write.event_rows(actor)
                queue_rows.extend(rows)
                digests[write.recording_uuid] = [canonical_row_digest(row) for row in rows]
            insert_queue_rows(conn, queue_rows)
            queue_manifest_rows(
                conn,
                [write.recording_uuid for write, _ in ours if write.target is State.ARCHIVED],
                now,
            )
            crashpoints.reached("leased_write_uncommitted")
        return OutcomesWritten(digests, stale)


def _apply_updates(conn: Connection, writes: Sequence[LeasedWrite], now: datetime) -> None:
    """Each write's column updates: rows of the same shape in one executemany (psycopg
    pipelines it), a row whose values are SQL expressions on its own."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for write in writes:
        values: dict[str, Any] = {**write.updates, "updated_at": now}
        if write.target is not None:
            values.update(
                state=write.target.value,
                lease_token=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        if any(isinstance(value, sa.ClauseElement) for value in values.values()):
            conn.execute(
                recordings.update().where(_R.recording_uuid == write.recording_uuid).values(values)
            )
            continue
        shape = tuple(sorted(values))
        params = {f"v_{k}": v for k, v in values.items()}
        params["k_recording_uuid"] = write.recording_uuid
        shapes.setdefault(shape, []).append(params)
    for shape, rows in shapes.items():
        conn.execute(_update_statement(shape), rows)


@functools.lru_cache(maxsize=64)
def _update_statement(shape: tuple[str, ...]) -> sa.Update:
    """The UPDATE of one shape of outcome (these columns, by primary key), built once per
    shape: a run writes a handful of shapes thousands of times."""
    return (
        recordings.update()
        .where(_R.recording_uuid == sa.bindparam("k_recording_uuid"))
        .values({name: sa.bindparam(f"v_{name}") for name in shape})
    )


def _jsonable(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: format_time(v) if isinstance(v, datetime) else v for k, v in values.items()}
