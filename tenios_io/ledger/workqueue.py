"""The work queue: claims, leases and the outcome of each claimed recording.

A claim is index-backed and costs the same at any backlog size: the expired leases
(``ix_recordings_state_lease_expires_at``) and the due pending rows
(``ix_recordings_state_next_attempt_at``) are separate range reads in index order,
each ``FOR UPDATE SKIP LOCKED`` on PostgreSQL inside one ``UPDATE … RETURNING`` for
the batch, so concurrent workers claim disjoint rows without waiting on each other.
No table-wide or global lock is taken: custody events go to the queue (custody.py).

Work on a claimed recording is fenced by its lease token: every leased write is one
``UPDATE … WHERE lease_token = :token RETURNING``, so a worker whose lease expired
and was rescued by another cannot write over the new owner (StaleLease, nothing
changes).  Attempts are counted at claim time and capped there too: a recording
whose lease expired ``TENIOS_MAX_ATTEMPTS`` times (its worker died each time) ends
``failed`` instead of being rescued again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tenios_io import crashpoints
from tenios_io.exceptions import StaleLease
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.custody import NewEvent, format_time
from tenios_io.ledger.records import Claim, Recording, as_utc
from tenios_io.ledger.states import State, check_transition
from tenios_io.ledger.tables import recordings

_R = recordings.c
#: Without a cap from the caller, never fail a recording at claim time.
_NO_CAP = 2**31 - 1

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
RETURNING r.*, p.old_owner
"""


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
                claims.append(Claim(Recording.from_row(row), str(row["lease_token"])))
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
            sql = _PG_CLAIM.format(where=where, order=order, assign=assign)
            return list(conn.execute(sa.text(sql), {**params, "limit": n}).mappings())

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
        expired = (
            sa.select(recordings)
            .where(_R.state == State.IN_PROGRESS.value, _R.lease_expires_at < now)
            .order_by(_R.lease_expires_at)
            .limit(limit)
        )
        dead: list[Mapping[Any, Any]] = []
        rescued: list[Mapping[Any, Any]] = []
        for found in conn.execute(expired).mappings():
            (dead if found["attempts"] >= cap else rescued).append(found)
        fresh: list[Mapping[Any, Any]] = []
        if len(rescued) < limit:
            fresh = list(
                conn.execute(
                    sa.select(recordings)
                    .where(_R.state == State.PENDING.value, _R.next_attempt_at <= now)
                    .order_by(_R.next_attempt_at)
                    .limit(limit - len(rescued))
                ).mappings()
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
            conn.execute(
                recordings.update().where(_R.recording_uuid == row["recording_uuid"]).values(values)
            )
            claimed.append(({**row, **values, "old_owner": row["lease_owner"]}, was_rescued))
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

    # -- work under a lease ---------------------------------------------------------------

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
        return self._leased_write(recording_uuid, lease_token, None, events, updates or {})

    def complete(
        self,
        recording_uuid: str,
        lease_token: str,
        updates: Mapping[Any, Any],
        events: Sequence[tuple[str, Mapping[Any, Any]]] = (),
    ) -> list[str]:
        """Mark a leased recording ``archived`` with its archive columns."""
        values = dict(updates)
        values.setdefault("archived_at", self.now())
        return self._leased_write(
            recording_uuid,
            lease_token,
            State.ARCHIVED,
            [*events, ("archived", _jsonable(values))],
            {**values, "last_error": None},
        )

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
        if state not in (State.FAILED, State.MISSING, State.CONFLICT):
            raise ValueError(f"fail() cannot end in {state}")
        return self._leased_write(
            recording_uuid,
            lease_token,
            state,
            [(state.value, {"reason": reason, **(details or {})})],
            {"last_error": reason},
        )

    def retry_later(
        self, recording_uuid: str, lease_token: str, error: str, *, delay_seconds: float
    ) -> list[str]:
        """Back to ``pending``, due again after ``delay_seconds``; the error is kept."""
        due = self.now() + timedelta(seconds=delay_seconds)
        return self._leased_write(
            recording_uuid,
            lease_token,
            State.PENDING,
            [("retry_scheduled", {"error": error, "next_attempt_at": format_time(due)})],
            {"last_error": error, "next_attempt_at": self._lease_after(delay_seconds)},
        )

    def release(self, recording_uuid: str, lease_token: str, reason: str) -> list[str]:
        """Give a claim back unworked (e.g. the time budget ran out): pending, due now,
        without counting the attempt."""
        return self._leased_write(
            recording_uuid,
            lease_token,
            State.PENDING,
            [("released", {"reason": reason})],
            {"next_attempt_at": self._lease_now(), "attempts": _R.attempts - 1},
        )

    def _leased_write(
        self,
        recording_uuid: str,
        lease_token: str,
        target: State | None,
        events: Sequence[tuple[str, Mapping[Any, Any]]],
        updates: Mapping[Any, Any],
    ) -> list[str]:
        """One fenced ``UPDATE … RETURNING`` plus the events, in one transaction."""
        now = self.now()
        values: dict[str, Any] = {**updates, "updated_at": now}
        if target is not None:
            check_transition(recording_uuid, State.IN_PROGRESS.value, target)
            values.update(lease_token=None, lease_owner=None, lease_expires_at=None)
            values["state"] = target.value
        fence = (
            _R.recording_uuid == recording_uuid,
            _R.lease_token == lease_token,
            _R.state == State.IN_PROGRESS.value,
        )
        with self._write() as conn:
            owner: str | None
            if conn.dialect.name == "postgresql":
                # RETURNING shows the new row; a subquery in it still reads the row as the
                # statement found it, which names the owner the events are written by.
                prior = recordings.alias("prior")
                before = (
                    sa.select(prior.c.lease_owner)
                    .where(prior.c.recording_uuid == recording_uuid)
                    .scalar_subquery()
                )
                owner = conn.execute(
                    recordings.update()
                    .where(*fence)
                    .values(**values)
                    .returning(sa.func.coalesce(before, ""))
                ).scalar()
            else:
                # SQLite: the only writer right now, so read, then update.
                owner = conn.execute(
                    sa.select(sa.func.coalesce(_R.lease_owner, "")).where(*fence)
                ).scalar()
                if owner is not None:
                    conn.execute(recordings.update().where(*fence).values(**values))
            if owner is None:
                row = self._locked_row(conn, recording_uuid)  # UnknownRecording if absent
                raise StaleLease(
                    f"recording {recording_uuid}: lease token is stale (state {row['state']}); "
                    "another worker owns it now, nothing was changed",
                    recording_uuid=recording_uuid,
                )
            digests = self._enqueue(
                conn,
                [NewEvent(recording_uuid, name, details) for name, details in events],
                actor=owner or self.actor,
                now=now,
            )
            crashpoints.reached("leased_write_uncommitted")
            return digests


def _jsonable(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: format_time(v) if isinstance(v, datetime) else v for k, v in values.items()}
