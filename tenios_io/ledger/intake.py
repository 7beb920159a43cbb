"""The intake: other systems hand recording ids to the ledger with one plain SQL INSERT.

A producer (the telephony application that called ``record-call/start``) inserts a
row into ``recording_intake`` — ``recording_uuid`` and optionally ``call_uuid``,
``recorded_at``, ``source_hint``, ``producer`` — and needs nothing else: every
other column has a server default, a producer role needs only ``INSERT`` on that
one table, and inserting the same id twice is harmless (the README states the
contract).

Every run drains the intake before it claims (:meth:`Intake.drain_intake`), in
chunks of a bounded size, each chunk ONE write transaction that

1. takes the chunk's rows (PostgreSQL ``FOR UPDATE SKIP LOCKED``: two draining runs
   never take the same row and never wait for each other; no table lock, so
   producers keep inserting and workers keep claiming),
2. validates them — a malformed uuid or timestamp, a value longer than its bound, a
   date outside 1990 … tomorrow, an ``sftp:PATH`` that is absolute or climbs out with
   ``..`` (tenios_io.untrusted) marks the row ``rejected`` with its reason and keeps it
   (``tenios-archive ledger intake --rejected``),
3. registers the valid ones through the normal registration path (the staging merge of
   registration.py) with a ``registered`` custody event naming the producer, and
4. deletes them.

A crash at any point loses nothing and doubles nothing: a chunk's registration and
its deletion from the intake commit together or not at all, and registering an id
the ledger already knows changes nothing (duplicates within or across chunks too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from tenios_io import crashpoints
from tenios_io.config import UUID_RE, quote_value
from tenios_io.ledger.records import NewRecording, as_utc
from tenios_io.ledger.registration import Registration
from tenios_io.ledger.tables import recording_intake
from tenios_io.untrusted import (
    MAX_DROP_PATH_CHARS,
    MAX_ID_CHARS,
    MAX_PRODUCER_CHARS,
    MAX_TIMESTAMP_CHARS,
    drop_path_problem,
    recorded_at_problem,
)

#: Intake rows per drain transaction: bounds its time under SQLite's write lock.
INTAKE_CHUNK = 1000
_UUID = re.compile(rf"^{UUID_RE}$")
_I = recording_intake.c
log = logging.getLogger(__name__)

IntakeState = Literal["pending", "rejected"]


@dataclass(frozen=True)
class IntakeRow:
    """One row of ``recording_intake``, as the producer wrote it."""

    id: int
    recording_uuid: str
    call_uuid: str | None
    recorded_at: str | None
    source_hint: str | None
    producer: str | None
    received_at: datetime
    state: str
    reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> IntakeRow:
        values = dict(row)
        values["received_at"] = as_utc(values["received_at"])
        return cls(**values)


@dataclass(frozen=True)
class DrainResult:
    """What a drain did: rows taken from the intake and what became of them."""

    registered: int = 0
    """New recordings in the ledger."""
    known: int = 0
    """Valid rows naming a recording the ledger already had (or an earlier row named)."""
    rejected: int = 0
    """Rows kept as ``rejected`` with their reason."""

    @property
    def taken(self) -> int:
        return self.registered + self.known + self.rejected

    def __add__(self, other: DrainResult) -> DrainResult:
        return DrainResult(
            self.registered + other.registered,
            self.known + other.known,
            self.rejected + other.rejected,
        )

    def to_dict(self) -> dict[str, int]:
        return {"registered": self.registered, "known": self.known, "rejected": self.rejected}


def validate(row: IntakeRow, now: datetime) -> NewRecording | str:
    """The recording a row asks for, or why it is rejected (one line).

    A producer's values are hostile data (tenios_io.untrusted): each is bounded in
    length before it is looked at, a date must fall in the sane window, and an
    ``sftp:PATH`` must name a file relative to the drop (never absolute, never ``..``).
    """
    too_long = _too_long(row)
    if too_long is not None:
        return too_long
    key = (row.recording_uuid or "").strip()
    if not _UUID.match(key):
        return f"recording_uuid {quote_value(key)} is not a UUID"
    call = (row.call_uuid or "").strip() or None
    if call is not None and not _UUID.match(call):
        return f"call_uuid {quote_value(call)} is not a UUID"
    recorded_at = None
    text = (row.recorded_at or "").strip()
    if text:
        try:
            recorded_at = as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return f"recorded_at {quote_value(text)} is not an ISO 8601 timestamp"
        assert recorded_at is not None
        problem = recorded_at_problem(recorded_at, now)
        if problem is not None:
            return f"recorded_at {quote_value(text)} {problem}"
    hint = (row.source_hint or "").strip()
    source_path = None
    if hint.startswith("sftp:"):
        source_path = hint.removeprefix("sftp:") or None
        problem = None if source_path is None else drop_path_problem(source_path, relative=True)
        if problem is not None:
            return f"source_hint {quote_value(hint)}: the path {problem}"
    elif hint not in ("", "api", "sftp"):
        return f"source_hint {quote_value(hint)} is not api, sftp or sftp:PATH"
    producer = (row.producer or "").strip() or None
    return NewRecording(
        recording_uuid=key.lower(),
        call_uuid=call.lower() if call else None,
        recorded_at=recorded_at,
        source_path=source_path,
        producer=producer,
    )


#: The longest value each producer column may hold (tenios_io.untrusted).
_LIMITS = {
    "recording_uuid": MAX_ID_CHARS,
    "call_uuid": MAX_ID_CHARS,
    "recorded_at": MAX_TIMESTAMP_CHARS,
    "source_hint": MAX_DROP_PATH_CHARS + len("sftp:"),
    "producer": MAX_PRODUCER_CHARS,
}


def _too_long(row: IntakeRow) -> str | None:
    for column, limit in _LIMITS.items():
        value = getattr(row, column) or ""
        if len(value) > limit:
            return (
                f"{column} is {len(value):,} characters long (at most {limit:,}): "
                f"{quote_value(value, 60)}"
            )
    return None


class Intake(Registration):
    """Drain, submit to and read ``recording_intake``."""

    def drain_intake(self, *, actor: str | None = None, chunk: int | None = None) -> DrainResult:
        """Register every intake row that was pending when called, ``chunk`` rows per
        transaction (default INTAKE_CHUNK; see the module docstring); rows inserted
        meanwhile wait for the next drain, so a busy producer cannot keep a run from
        claiming."""
        chunk = chunk or INTAKE_CHUNK
        upto = self._newest_pending()
        total = DrainResult()
        if upto is None:
            return total
        while True:
            done, taken = self._drain_chunk(upto, actor or self.actor, chunk)
            total += done
            if taken < chunk:
                break
            crashpoints.reached("intake_chunk_committed")
        if total.registered:
            self.integrate()
        if total.rejected:
            log.warning(
                "%d intake row(s) rejected as malformed; see `tenios-archive ledger intake "
                "--rejected`",
                total.rejected,
            )
        return total

    def _newest_pending(self) -> int | None:
        with self.engine.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(_I.id)).where(_I.state == "pending")
            ).scalar_one()
        return None if newest is None else int(newest)

    def _drain_chunk(self, upto: int, actor: str, chunk: int) -> tuple[DrainResult, int]:
        query = (
            sa.select(recording_intake)
            .where(_I.state == "pending", _I.id <= upto)
            .order_by(_I.id)
            .limit(chunk)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        now = self.now()
        with self._write() as conn:
            rows = [IntakeRow.from_row(r) for r in conn.execute(query).mappings()]
            if not rows:
                return DrainResult(), 0
            valid: list[tuple[int, NewRecording]] = []
            rejected: list[dict[str, Any]] = []
            for row in rows:
                outcome = validate(row, now)
                if isinstance(outcome, str):
                    rejected.append({"row_id": row.id, "reason": outcome})
                else:
                    valid.append((row.id, outcome))
            if rejected:
                conn.execute(
                    recording_intake.update()
                    .where(_I.id == sa.bindparam("row_id"))
                    .values(state="rejected", reason=sa.bindparam("reason")),
                    rejected,
                )
            # In uuid order: two drains whose chunks name the same ids (a producer's
            # duplicates) then insert them in the same order, so on PostgreSQL one waits
            # for the other instead of both deadlocking.  Stable: the first row of an id
            # still wins.
            valid.sort(key=lambda pair: pair[1].recording_uuid)
            counts = self._register_in(conn, (item for _, item in valid), actor=actor)
            if valid:
                conn.execute(
                    recording_intake.delete().where(_I.id.in_([row_id for row_id, _ in valid]))
                )
            crashpoints.reached("intake_chunk_merged")
        return DrainResult(counts.added, len(valid) - counts.added, len(rejected)), len(rows)

    def submit_intake(
        self,
        recording_uuid: str,
        *,
        call_uuid: str | None = None,
        recorded_at: datetime | None = None,
        producer: str | None = None,
    ) -> None:
        """Hand one recording to the intake, as any producer does (one INSERT)."""
        with self._write() as conn:
            conn.execute(
                recording_intake.insert().values(
                    recording_uuid=recording_uuid,
                    call_uuid=call_uuid,
                    recorded_at=recorded_at.isoformat() if recorded_at else None,
                    producer=producer,
                )
            )

    def intake_rows(self, state: IntakeState, *, limit: int | None = None) -> list[IntakeRow]:
        """Intake rows in ``state``, oldest first."""
        query = sa.select(recording_intake).where(_I.state == state).order_by(_I.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [IntakeRow.from_row(r) for r in conn.execute(query).mappings()]

    def intake_counts(self) -> dict[str, int]:
        """How many intake rows are pending and rejected."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_I.state, sa.func.count()).group_by(_I.state)).all()
        counts = {"pending": 0, "rejected": 0}
        counts.update({str(state): int(n) for state, n in rows})
        return counts
