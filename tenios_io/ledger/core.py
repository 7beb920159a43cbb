"""What every part of the Ledger shares: the engine, who writes, the clocks, the
write transaction, queueing custody events and running the sequencer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tenios_io.custody.chain import NewEvent
from tenios_io.exceptions import UnknownRecording
from tenios_io.ledger import sequencer
from tenios_io.ledger.engine import write_transaction
from tenios_io.ledger.records import Clock, default_actor, utc_now
from tenios_io.ledger.tables import recordings

LeaseClock = Literal["database", "worker"]
#: Events a bulk integration (an import's, a run's before its checkpoint) takes per step.
BULK_INTEGRATE_CHUNK = 20_000


class LedgerCore:
    """The shared state of a Ledger.

    ``lease_clock`` says whose clock decides lease expiry and due times: on
    PostgreSQL the database's (``clock_timestamp()`` inside the statements, so a
    worker whose clock runs behind cannot rescue a live lease); SQLite has no server
    clock, so the workers' own.  ``"worker"`` forces the injected ``clock`` (tests
    that move time by hand).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        actor: str | None = None,
        clock: Clock = utc_now,
        lease_clock: LeaseClock | None = None,
    ):
        self.engine = engine
        self.actor = actor or default_actor()
        self._clock = clock
        if lease_clock is None:
            lease_clock = "database" if engine.dialect.name == "postgresql" else "worker"
        self.lease_clock: LeaseClock = lease_clock

    def now(self) -> datetime:
        """This process's clock (event times, archive times)."""
        return self._clock()

    # -- clocks in SQL --------------------------------------------------------------------

    def _lease_now(self) -> sa.ColumnElement[datetime]:
        """ "Now" for lease and due-time decisions, as SQL."""
        if self.lease_clock == "database":
            return sa.func.clock_timestamp()
        return sa.literal(self.now(), recordings.c.next_attempt_at.type)

    def _lease_after(self, seconds: float) -> sa.ColumnElement[datetime]:
        """``_lease_now() + seconds``, as SQL."""
        if self.lease_clock == "database":
            return sa.func.clock_timestamp() + sa.literal(timedelta(seconds=seconds), sa.Interval())
        return sa.literal(
            self.now() + timedelta(seconds=seconds), recordings.c.next_attempt_at.type
        )

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with write_transaction(self.engine) as conn:
            yield conn

    def _enqueue(
        self,
        conn: Connection,
        events: Sequence[NewEvent],
        *,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> list[str]:
        """Queue custody events in ``conn``'s transaction; returns their entry digests."""
        return sequencer.enqueue(
            conn, events, actor=actor or self.actor, now=now if now is not None else self.now()
        )

    @staticmethod
    def _locked_row(conn: Connection, recording_uuid: str) -> Mapping[Any, Any]:
        """The row, locked for this transaction (PostgreSQL ``FOR UPDATE``)."""
        query = sa.select(recordings).where(recordings.c.recording_uuid == recording_uuid)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise UnknownRecording(
                f"recording {recording_uuid} is not in the ledger", recording_uuid=recording_uuid
            )
        return row

    # -- the sequencer --------------------------------------------------------------------

    def integrate(self, *, wait: bool = False, limit: int = sequencer.INTEGRATE_CHUNK) -> int:
        """Integrate up to ``limit`` queued custody events into the chain; how many.

        Without ``wait`` this returns 0 at once when another process is integrating.
        """
        return sequencer.integrate(self.engine, wait=wait, limit=limit)

    def integrate_all(self) -> int:
        """Integrate every event queued when called (and whatever else is queued by
        then); waits for a running sequencer.  Returns how many this call integrated."""
        total = 0
        while True:
            done = sequencer.integrate(self.engine, wait=True, limit=BULK_INTEGRATE_CHUNK)
            total += done
            if done < BULK_INTEGRATE_CHUNK:
                return total

    def queued_events(self) -> int:
        """Custody events written but not yet integrated into the chain."""
        with self.engine.connect() as conn:
            return sequencer.queued_count(conn)
