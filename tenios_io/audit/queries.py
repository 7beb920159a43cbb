"""The audit's read-only questions to the ledger.

:class:`~tenios_io.ledger.Ledger` owns every query that changes the ledger; the
audit only reads, and asks things the work queue never needs (least recently
verified first, retention ending by a date, events of one kind in a period).
Those SELECTs live here, on the ledger's engine and tables, so the audit's
writes still go through ``Ledger.annotate`` / ``Ledger.append_events`` only.

Every datetime parameter is converted to UTC first: SQLite stores the ledger's
timestamps as UTC text, so comparisons are only right between UTC values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tenios_io.ledger import Ledger, Recording, State
from tenios_io.ledger.custody import format_time
from tenios_io.ledger.tables import custody_events, recordings

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


def _fetch(ledger: Ledger, query: sa.Select[Any]) -> list[Recording]:
    with ledger.engine.connect() as conn:
        return [Recording.from_row(row) for row in conn.execute(query).mappings()]


# -- recordings ------------------------------------------------------------------------------


def count_archived(ledger: Ledger, *, since: datetime | None = None) -> int:
    """How many recordings are ``archived`` (archived on or after ``since``)."""
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(_archived(since))).scalar_one())


def iter_archived(
    ledger: Ledger, *, since: datetime | None = None, page: int = 1000
) -> Iterator[Recording]:
    """Every archived recording in uuid order, read in pages (bounded memory)."""
    last = ""
    while True:
        rows = _fetch(
            ledger,
            sa.select(recordings)
            .where(_archived(since), _R.recording_uuid > last)
            .order_by(_R.recording_uuid)
            .limit(page),
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].recording_uuid


def least_recently_verified(
    ledger: Ledger, limit: int, *, since: datetime | None = None
) -> list[Recording]:
    """Up to ``limit`` archived recordings, never-verified first, then oldest verification."""
    return _fetch(
        ledger,
        sa.select(recordings)
        .where(_archived(since))
        .order_by(sa.nulls_first(_R.last_verified_at.asc()), _R.recording_uuid)
        .limit(limit),
    )


def random_archived(
    ledger: Ledger, limit: int, *, since: datetime | None = None
) -> list[Recording]:
    """Up to ``limit`` archived recordings picked at random by the database."""
    return _fetch(
        ledger,
        sa.select(recordings).where(_archived(since)).order_by(sa.func.random()).limit(limit),
    )


def rows_for(ledger: Ledger, recording_uuids: Iterable[str]) -> dict[str, Recording]:
    """The ledger rows of the given uuids that exist, by uuid."""
    keys = sorted({key.lower() for key in recording_uuids})
    found: dict[str, Recording] = {}
    with ledger.engine.connect() as conn:
        for start in range(0, len(keys), _IN_CHUNK):
            query = sa.select(recordings).where(
                _R.recording_uuid.in_(keys[start : start + _IN_CHUNK])
            )
            for row in conn.execute(query).mappings():
                rec = Recording.from_row(row)
                found[rec.recording_uuid] = rec
    return found


def retention_ending(ledger: Ledger, until: datetime) -> list[Recording]:
    """Archived recordings whose retain_until is at or before ``until``, soonest first."""
    return _fetch(
        ledger,
        sa.select(recordings)
        .where(_archived(None), _R.retain_until.is_not(None), _R.retain_until <= _utc(until))
        .order_by(_R.retain_until, _R.recording_uuid),
    )


def on_legal_hold(ledger: Ledger) -> list[Recording]:
    """Recordings the ledger has on legal hold (any state)."""
    return _fetch(
        ledger,
        sa.select(recordings).where(_R.legal_hold.is_(True)).order_by(_R.recording_uuid),
    )


def iter_in_period(
    ledger: Ledger, start: datetime | None, end: datetime | None, *, page: int = 1000
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
    scope = sa.or_(*clauses)
    last = ""
    while True:
        rows = _fetch(
            ledger,
            sa.select(recordings)
            .where(scope, _R.recording_uuid > last)
            .order_by(_R.recording_uuid)
            .limit(page),
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].recording_uuid


def verification_coverage(ledger: Ledger, since: datetime) -> tuple[int, int, datetime | None]:
    """``(verified since, never verified, oldest verification)`` over archived recordings."""
    with ledger.engine.connect() as conn:
        recent = conn.execute(
            sa.select(sa.func.count()).where(_archived(None), _R.last_verified_at >= _utc(since))
        ).scalar_one()
        never = conn.execute(
            sa.select(sa.func.count()).where(_archived(None), _R.last_verified_at.is_(None))
        ).scalar_one()
        oldest = conn.execute(
            sa.select(sa.func.min(_R.last_verified_at)).where(_archived(None))
        ).scalar()
    return int(recent), int(never), _utc(oldest) if oldest is not None else None


# -- custody events --------------------------------------------------------------------------


def events_named(
    ledger: Ledger,
    names: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Events with one of ``names`` that occurred in ``[start, end)``, in chain order."""
    query = sa.select(custody_events).where(_E.event.in_(list(names)))
    # occurred_at is fixed-width UTC text (custody.format_time), so text order is time order.
    if start is not None:
        query = query.where(_E.occurred_at >= format_time(_utc(start)))
    if end is not None:
        query = query.where(_E.occurred_at < format_time(_utc(end)))
    with ledger.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query.order_by(_E.seq)).mappings()]


def event_at(ledger: Ledger, seq: int) -> Mapping[str, Any] | None:
    """The event with sequence number ``seq``, if the ledger holds it."""
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(custody_events).where(_E.seq == seq)).mappings().first()
    return dict(row) if row is not None else None


def event_count(ledger: Ledger) -> int:
    """How many custody events the ledger holds."""
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(custody_events)).scalar_one()
        )


def iter_events_between(
    ledger: Ledger, after_seq: int, upto_seq: int, *, page: int = 10_000
) -> Iterator[Mapping[str, Any]]:
    """Events with ``after_seq < seq <= upto_seq`` in chain order, read in pages."""
    last = after_seq
    while True:
        with ledger.engine.connect() as conn:
            rows = [
                dict(row)
                for row in conn.execute(
                    sa.select(custody_events)
                    .where(_E.seq > last, _E.seq <= upto_seq)
                    .order_by(_E.seq)
                    .limit(page)
                ).mappings()
            ]
        if not rows:
            return
        yield from rows
        last = int(rows[-1]["seq"])


def recording_has_event(ledger: Ledger, recording_uuid: str, event_hash: str) -> bool:
    """Whether the recording's custody events include one with this hash."""
    with ledger.engine.connect() as conn:
        found = conn.execute(
            sa.select(_E.seq).where(_E.hash == event_hash, _E.recording_uuid == recording_uuid)
        ).first()
    return found is not None
