"""Reading the ledger: recordings, custody events, counts — for the CLI, the runs
and the audit.  Reads never lock: on SQLite they are deferred transactions under WAL
(a reader never blocks a writer), and large reads page through the table by key
(:func:`~tenios_io.ledger.paging.keyset_pages`), a short transaction per page.

Every datetime parameter is converted to UTC first: SQLite stores the ledger's
timestamps as UTC text, so comparisons are only right between UTC values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tenios_io.custody import chain
from tenios_io.custody.chain import ChainReport, format_time
from tenios_io.exceptions import UnknownRecording
from tenios_io.ledger import sequencer
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.paging import keyset_pages
from tenios_io.ledger.records import Recording, as_utc
from tenios_io.ledger.states import State
from tenios_io.ledger.tables import custody_events, custody_queue, recordings

_R = recordings.c
_E = custody_events.c
_IN_CHUNK = 900


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _archived(since: datetime | None) -> sa.ColumnElement[bool]:
    clause = _R.state == State.ARCHIVED.value
    if since is not None:
        clause = sa.and_(clause, _R.archived_at >= _utc(since))
    return clause


class Reads(LedgerCore):
    """Read-only questions to the ledger."""

    def _recordings(self, query: sa.Select[Any]) -> list[Recording]:
        with self.engine.connect() as conn:
            return [Recording.from_row(row) for row in conn.execute(query).mappings()]

    def _paged(self, where: sa.ColumnElement[bool] | None, page: int) -> Iterator[Recording]:
        query = sa.select(recordings)
        if where is not None:
            query = query.where(where)
        return keyset_pages(
            self.engine, query, _R.recording_uuid, Recording.from_row, after="", page=page
        )

    # -- recordings -----------------------------------------------------------------------

    def get(self, recording_uuid: str) -> Recording:
        """One recording; UnknownRecording if absent."""
        rows = self._recordings(
            sa.select(recordings).where(_R.recording_uuid == recording_uuid.lower())
        )
        if not rows:
            raise UnknownRecording(
                f"recording {recording_uuid} is not in the ledger", recording_uuid=recording_uuid
            )
        return rows[0]

    def find(
        self,
        *,
        state: State | None = None,
        limit: int | None = None,
        changed_since: datetime | None = None,
    ) -> list[Recording]:
        """Recordings, newest discovered first (only those changed since ``changed_since``)."""
        query = sa.select(recordings).order_by(_R.discovered_at.desc(), _R.recording_uuid)
        if state is not None:
            query = query.where(_R.state == state.value)
        if changed_since is not None:
            query = query.where(_R.updated_at >= _utc(changed_since))
        if limit is not None:
            query = query.limit(limit)
        return self._recordings(query)

    def iter_recordings(
        self, *, state: State | None = None, page: int = 5000
    ) -> Iterator[Recording]:
        """Every recording in uuid order, read in pages (bounded memory)."""
        return self._paged(_R.state == state.value if state is not None else None, page)

    def rows_for(self, recording_uuids: Iterable[str]) -> dict[str, Recording]:
        """The ledger rows of the given uuids that exist, by uuid."""
        keys = sorted({key.lower() for key in recording_uuids})
        found: dict[str, Recording] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            for rec in self._recordings(
                sa.select(recordings).where(_R.recording_uuid.in_(keys[start : start + _IN_CHUNK]))
            ):
                found[rec.recording_uuid] = rec
        return found

    def known_ids(self, uuids: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
        """Which of ``uuids`` are a row's recording_uuid, and which a row's call_uuid:
        what an SFTP sweep matches drop file names against (two index lookups per chunk)."""
        keys = sorted({key.lower() for key in uuids})
        as_recording: set[str] = set()
        as_call: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                as_recording.update(
                    conn.execute(
                        sa.select(_R.recording_uuid).where(_R.recording_uuid.in_(chunk))
                    ).scalars()
                )
                as_call.update(
                    conn.execute(
                        sa.select(_R.call_uuid).distinct().where(_R.call_uuid.in_(chunk))
                    ).scalars()
                )
        return frozenset(as_recording), frozenset(as_call)

    def counts(self) -> dict[State, int]:
        """How many recordings are in each state (every state listed)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_R.state, sa.func.count()).group_by(_R.state)).all()
        found = {State(state): int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in State}

    def next_due_at(self) -> datetime | None:
        """When the next recording becomes claimable: the earliest pending retry or
        expiring lease (None when nothing is pending or in progress).  Each is one
        index lookup."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                sa.select(sa.func.min(_R.next_attempt_at)).where(_R.state == State.PENDING.value)
            ).scalar()
            leased = conn.execute(
                sa.select(sa.func.min(_R.lease_expires_at)).where(
                    _R.state == State.IN_PROGRESS.value
                )
            ).scalar()
        moments = [as_utc(m) for m in (pending, leased) if m is not None]
        return min((m for m in moments if m is not None), default=None)

    def clock_now(self) -> datetime:
        """ "Now" by the clock that decides leases and due times (the database's on
        PostgreSQL): compare :meth:`next_due_at` with this."""
        if self.lease_clock == "worker":
            return self.now()
        with self.engine.connect() as conn:
            value = as_utc(conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one())
        assert value is not None
        return value

    def in_progress(self, *, limit: int = 50) -> tuple[int, list[Recording]]:
        """How many recordings are claimed right now, and up to ``limit`` of them, the
        lease ending first first: a worker that died leaves its claims here until the
        lease ends (then the next claim takes them over)."""
        where = _R.state == State.IN_PROGRESS.value
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).where(where)).scalar_one())
        rows = self._recordings(
            sa.select(recordings)
            .where(where)
            .order_by(_R.lease_expires_at, _R.recording_uuid)
            .limit(limit)
        )
        return total, rows

    def count_due(self) -> int:
        """How many recordings could be claimed right now (two index range counts)."""
        now = self._lease_now()
        with self.engine.connect() as conn:
            pending = conn.execute(
                sa.select(sa.func.count()).where(
                    _R.state == State.PENDING.value, _R.next_attempt_at <= now
                )
            ).scalar_one()
            expired = conn.execute(
                sa.select(sa.func.count()).where(
                    _R.state == State.IN_PROGRESS.value, _R.lease_expires_at < now
                )
            ).scalar_one()
        return int(pending) + int(expired)

    def newest_archived_from_api(self, *, scan: int = 1000) -> str | None:
        """A recording archived from the TENIOS API, the most recently changed of the
        last ``scan`` archived ones (None when there is none): known to exist at TENIOS,
        so a run can ask for it again when every other recording answers 404 (the
        canary, tenios_io/run/stop.py).  One bounded walk of the (state, updated_at)
        index, whatever the ledger's size."""
        newest = (
            sa.select(_R.recording_uuid, _R.source)
            .where(_R.state == State.ARCHIVED.value)
            .order_by(_R.updated_at.desc())
            .limit(scan)
            .subquery()
        )
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(newest.c.recording_uuid).where(newest.c.source == "api").limit(1)
            ).scalar()
        return None if found is None else str(found)

    # -- the audit's questions ------------------------------------------------------------

    def count_archived(self, *, since: datetime | None = None) -> int:
        """How many recordings are ``archived`` (archived on or after ``since``)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).where(_archived(since))).scalar_one()
            )

    def newest_archived(self) -> Recording | None:
        """The archived recording changed last (one probe of the state index), if any."""
        rows = self._recordings(
            sa.select(recordings).where(_archived(None)).order_by(_R.updated_at.desc()).limit(1)
        )
        return rows[0] if rows else None

    def iter_archived(
        self, *, since: datetime | None = None, page: int = 1000
    ) -> Iterator[Recording]:
        """Every archived recording in uuid order, read in pages (bounded memory)."""
        return self._paged(_archived(since), page)

    def least_recently_verified(
        self, limit: int, *, since: datetime | None = None
    ) -> list[Recording]:
        """Up to ``limit`` archived recordings, never-verified first, then oldest verification."""
        return self._recordings(
            sa.select(recordings)
            .where(_archived(since))
            .order_by(sa.nulls_first(_R.last_verified_at.asc()), _R.recording_uuid)
            .limit(limit)
        )

    def random_archived(self, limit: int, *, since: datetime | None = None) -> list[Recording]:
        """Up to ``limit`` archived recordings picked at random by the database."""
        return self._recordings(
            sa.select(recordings).where(_archived(since)).order_by(sa.func.random()).limit(limit)
        )

    def retention_ending(self, until: datetime) -> list[Recording]:
        """Archived recordings whose retain_until is at or before ``until``, soonest first."""
        return self._recordings(
            sa.select(recordings)
            .where(_archived(None), _R.retain_until.is_not(None), _R.retain_until <= _utc(until))
            .order_by(_R.retain_until, _R.recording_uuid)
        )

    def on_legal_hold(self) -> list[Recording]:
        """Recordings the ledger has on legal hold (any state)."""
        return self._recordings(
            sa.select(recordings).where(_R.legal_hold.is_(True)).order_by(_R.recording_uuid)
        )

    def iter_in_period(
        self, start: datetime | None, end: datetime | None, *, page: int = 1000
    ) -> Iterator[Recording]:
        """Recordings registered or archived in ``[start, end)`` (all when both are None)."""
        clauses: list[sa.ColumnElement[bool]] = []
        for column in (_R.discovered_at, _R.archived_at):
            parts: list[sa.ColumnElement[bool]] = [column.is_not(None)]
            if start is not None:
                parts.append(column >= _utc(start))
            if end is not None:
                parts.append(column < _utc(end))
            clauses.append(sa.and_(*parts))
        return self._paged(sa.or_(*clauses), page)

    def verification_coverage(self, since: datetime) -> tuple[int, int, datetime | None]:
        """``(verified since, never verified, oldest verification)`` over archived recordings."""
        with self.engine.connect() as conn:
            recent = conn.execute(
                sa.select(sa.func.count()).where(
                    _archived(None), _R.last_verified_at >= _utc(since)
                )
            ).scalar_one()
            never = conn.execute(
                sa.select(sa.func.count()).where(_archived(None), _R.last_verified_at.is_(None))
            ).scalar_one()
            oldest = conn.execute(
                sa.select(sa.func.min(_R.last_verified_at)).where(_archived(None))
            ).scalar()
        return int(recent), int(never), _utc(oldest) if oldest is not None else None

    def archived_with_sha256(self, sha256: str, *, excluding: str, limit: int = 10) -> list[str]:
        """Other recordings archived with exactly these bytes (one probe of the sha256
        index): at most ``limit`` ids, sorted."""
        query = (
            sa.select(_R.recording_uuid)
            .where(_R.sha256 == sha256, _archived(None), _R.recording_uuid != excluding)
            .order_by(_R.recording_uuid)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(key) for key in conn.execute(query).scalars()]

    def shared_content(self, *, limit: int = 1000) -> list[tuple[str, list[str]]]:
        """SHA-256 digests archived under more than one recording_uuid, with those ids
        (one recording archived twice under two ids, e.g. its call's id): at most
        ``limit`` digests, by digest."""
        shared = (
            sa.select(_R.sha256)
            .where(_archived(None), _R.sha256.is_not(None))
            .group_by(_R.sha256)
            .having(sa.func.count() > 1)
            .order_by(_R.sha256)
            .limit(limit)
            .subquery()
        )
        query = (
            sa.select(_R.sha256, _R.recording_uuid)
            .where(_archived(None), _R.sha256.in_(sa.select(shared.c.sha256)))
            .order_by(_R.sha256, _R.recording_uuid)
        )
        groups: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for digest, recording_uuid in conn.execute(query):
                groups.setdefault(str(digest), []).append(str(recording_uuid))
        return list(groups.items())

    # -- custody events -------------------------------------------------------------------

    def events(self, recording_uuid: str) -> list[dict[str, Any]]:
        """The custody events of one recording, in chain order (what is still queued is
        integrated first, so the answer is complete)."""
        self.integrate_all()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(custody_events)
                .where(_E.recording_uuid == recording_uuid.lower())
                .order_by(_E.seq)
            ).mappings()
            return [dict(row) for row in rows]

    def event_seqs(self, recording_uuids: Sequence[str], *, up_to: int) -> dict[str, list[int]]:
        """The sequence numbers (at most ``up_to``) of the integrated custody events of
        each recording, in chain order; one query for the whole batch."""
        found: dict[str, list[int]] = {u: [] for u in recording_uuids}
        if not recording_uuids or up_to <= 0:
            return found
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_E.recording_uuid, _E.seq)
                .where(_E.recording_uuid.in_(list(recording_uuids)), _E.seq <= up_to)
                .order_by(_E.seq)
            )
            for uuid, seq in rows:
                found[uuid].append(int(seq))
        return found

    def events_named(
        self,
        names: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Events with one of ``names`` that occurred in ``[start, end)``, in chain order."""
        query = sa.select(custody_events).where(_E.event.in_(list(names)))
        # occurred_at is fixed-width UTC text (chain.format_time): text order is time order.
        if start is not None:
            query = query.where(_E.occurred_at >= format_time(_utc(start)))
        if end is not None:
            query = query.where(_E.occurred_at < format_time(_utc(end)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query.order_by(_E.seq)).mappings()]

    def event_at(self, seq: int) -> Mapping[str, Any] | None:
        """The event with sequence number ``seq``, if the ledger holds it."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(custody_events).where(_E.seq == seq)).mappings().first()
        return dict(row) if row is not None else None

    def event_count(self) -> int:
        """How many custody events the chain holds (the queue is integrated first)."""
        self.integrate_all()
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(custody_events)).scalar_one()
            )

    def iter_events(
        self, after_seq: int = 0, upto_seq: int | None = None, *, page: int = 10_000
    ) -> Iterator[Mapping[str, Any]]:
        """Integrated events with ``after_seq < seq [<= upto_seq]``, in chain order, paged."""
        return sequencer.iter_events(self.engine, after_seq=after_seq, upto_seq=upto_seq, page=page)

    def recording_has_event(self, recording_uuid: str, event_hash: str) -> bool:
        """Whether the recording's custody events include one with this chain hash or
        entry digest (what a sidecar names), integrated or still queued."""
        with self.engine.connect() as conn:
            if conn.execute(
                sa.select(_E.seq).where(_E.hash == event_hash, _E.recording_uuid == recording_uuid)
            ).first():
                return True
            for table in (custody_events, custody_queue):
                rows = conn.execute(
                    sa.select(table).where(table.c.recording_uuid == recording_uuid)
                ).mappings()
                if any(chain.row_digest(row) == event_hash for row in rows):
                    return True
        return False

    def chain_head(self) -> chain.ChainHead:
        """The newest custody event's seq and hash (the queue is integrated first)."""
        self.integrate_all()
        with self.engine.connect() as conn:
            return sequencer.read_head(conn)

    def verify_chain(self, *, integrate: bool = True) -> ChainReport:
        """Recompute the whole custody chain (paged); the report names the first broken
        event and how many events still wait in the queue.  With ``integrate`` the
        queue is integrated first, so the check covers everything written so far."""
        if integrate:
            self.integrate_all()
        report = chain.verify(self.iter_events())
        return chain.with_queued(report, self.queued_events())
