"""Operator and audit actions: requeue, annotate, free-standing custody events.

Each is one short transaction on the rows it names; none takes a global lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tenios_io.custody import chain
from tenios_io.custody.chain import NewEvent
from tenios_io.exceptions import IllegalTransition
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.states import REQUEUEABLE, State, check_transition
from tenios_io.ledger.tables import custody_events, recordings

_CHUNK = 1000
_REQUEUE_HINT = "only failed, missing or conflict recordings can be requeued"


class OperatorActions(LedgerCore):
    """Changes made by people and by the audit, outside any lease."""

    def requeue(
        self,
        recording_uuids: Sequence[str] = (),
        *,
        state: State | None = None,
        actor: str | None = None,
    ) -> list[str]:
        """Put failed / missing / conflict recordings back to ``pending`` (attempts and
        the count of dead workers reset).

        Named uuids in another state raise IllegalTransition; nothing changes then.
        """
        if state is not None and state not in REQUEUEABLE:
            raise IllegalTransition("*", state.value, State.PENDING.value, hint=_REQUEUE_HINT)
        now = self.now()
        with self._write() as conn:
            rows: list[tuple[str, str]] = []
            if state is not None:
                query = sa.select(recordings.c.recording_uuid, recordings.c.state).where(
                    recordings.c.state == state.value
                )
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                rows = [(str(key), str(current)) for key, current in conn.execute(query)]
            else:
                for key in recording_uuids:
                    row = self._locked_row(conn, key.lower())
                    rows.append((row["recording_uuid"], row["state"]))
            for key, current in rows:
                if State(current) not in REQUEUEABLE:
                    raise IllegalTransition(key, current, State.PENDING.value, hint=_REQUEUE_HINT)
            keys = [key for key, _ in rows]
            for start in range(0, len(keys), _CHUNK):
                conn.execute(
                    recordings.update()
                    .where(recordings.c.recording_uuid.in_(keys[start : start + _CHUNK]))
                    .values(
                        state=State.PENDING.value,
                        attempts=0,
                        lease_expiries=0,
                        next_attempt_at=self._lease_now(),
                        updated_at=now,
                    )
                )
            self._enqueue(
                conn,
                [NewEvent(key, "requeued", {"from_state": current}) for key, current in rows],
                actor=actor,
                now=now,
            )
        if keys:
            self.integrate()
        return keys

    def annotate(
        self,
        recording_uuid: str,
        event: str,
        details: Mapping[str, Any],
        *,
        updates: Mapping[str, Any] | None = None,
        to_state: State | None = None,
        actor: str | None = None,
    ) -> str:
        """Record an event outside any lease (verification, legal hold, purge ...),
        with optional column updates and a checked state change.

        Returns the event's entry digest (chain.entry_digest).
        """
        now = self.now()
        values: dict[str, Any] = {**(updates or {}), "updated_at": now}
        with self._write() as conn:
            row = self._locked_row(conn, recording_uuid)
            if to_state is not None:
                check_transition(recording_uuid, row["state"], to_state)
                values["state"] = to_state.value
            conn.execute(
                recordings.update()
                .where(recordings.c.recording_uuid == recording_uuid)
                .values(**values)
            )
            digest = self._enqueue(
                conn, [NewEvent(recording_uuid, event, details)], actor=actor, now=now
            )[0]
        self.integrate()
        return digest

    def append_events(self, events: Sequence[NewEvent], *, actor: str | None = None) -> list[str]:
        """Append events not tied to a state change (checkpoints, run summaries), and
        integrate them at once.  Returns their chain hashes."""
        with self._write() as conn:
            digests = self._enqueue(conn, events, actor=actor)
        self.integrate_all()
        return self.chain_hashes(digests)

    def chain_hashes(self, digests: Sequence[str]) -> list[str]:
        """The chain hashes of integrated events named by their entry digests (recent
        events: looked up among the newest few thousand)."""
        wanted = list(digests)
        if not wanted:
            return []
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(custody_events)
                .order_by(custody_events.c.seq.desc())
                .limit(max(5000, 4 * len(wanted)))
            ).mappings()
            for row in rows:
                digest = chain.row_digest(row)
                if digest in wanted and digest not in found:
                    found[digest] = str(row["hash"])
        return [found[d] for d in wanted if d in found]
