"""The custody sequencer: events queued by writers, hashed onto the chain under one lock.

The chain's format and hashing are pure (:mod:`tenios_io.custody.chain`); this module
holds the SQL around them.

How events get there — the shape transparency logs use (Trillian, Tessera):

1. **Writers enqueue.**  Every state change inserts its events into
   ``custody_queue`` in the same transaction (:func:`enqueue`), so a crash loses
   neither or both.  No lock is shared between writers: workers never wait on each
   other to write custody events.
2. **A sequencer integrates** (:func:`integrate`): under one lock
   (``pg_try_advisory_xact_lock`` on PostgreSQL — whoever gets it integrates, the
   others carry on; SQLite's ``BEGIN IMMEDIATE`` already makes it the only writer)
   it reads the head once, takes up to a few thousand queued events in queue
   order, hashes them onto the chain, inserts them into ``custody_events`` and
   deletes them from the queue — one transaction, so a sequencer killed half-way
   integrates nothing and the next one starts from the same head.  Any process
   can be the sequencer: claims integrate opportunistically, and a run integrates
   everything it wrote before it writes its checkpoint (``integrate_all``).
3. **An import sequences its own events** (:func:`sequence`, registration.py): each
   chunk of an import inserts its new rows, then takes the same lock (waiting for
   it: a sequencer holds it for one batch), reads the head and appends the chunk's
   ``registered`` events to the chain directly, in the rows' transaction — a
   million events never make the queue's insert/read/delete round trip.  Workers
   only ever *try* that lock, so they are not held up; their queued events are
   integrated after the chunk commits.

What is guaranteed about order:

- **Per recording, events keep the order in which they were written.**  A
  recording's events are written by transactions that follow one another (each
  holds the recording's row lock, and a worker writes its next event only after
  the previous transaction committed), so a later event is queued — gets a larger
  queue id — only after the earlier one is committed and visible; the sequencer
  integrates what it sees in queue-id order.
- **Across recordings**, the chain's order is integration order: an event of one
  recording may be sequenced before an event of another that was committed
  slightly earlier.  ``occurred_at`` keeps the writer's time.
  A recording's ``registered`` event is on the chain before the recording can be
  claimed (its row commits with it), so it precedes the recording's other events.
- ``seq`` stays gap-free and every queued event is integrated exactly once (the
  queue row is deleted in the transaction that inserts its chain entry); every
  sequencing transaction holds the lock from its head read to its commit.
- ``verify-chain``, ``export-events``, checkpoints and the report cover integrated
  events; the number still queued is reported beside them.

Measured with ``bench/bench_ledger.py`` (PostgreSQL 15, this 2-core machine): see
the README's "Ledger at scale" figures; before this design every claim and write
took one global advisory lock and the chain path ran at 80 recordings/s with one
worker and 55/s with four.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tenios_io import crashpoints
from tenios_io.custody.chain import (
    GENESIS,
    ChainHead,
    Entry,
    NewEvent,
    bounded_text,
    canonical_row_digest,
    chain_hash,
    fit_details,
    format_time,
    logged_json,
    recanonical,
)
from tenios_io.ledger.engine import write_transaction
from tenios_io.ledger.tables import custody_events, custody_queue

#: Arbitrary constant naming the sequencer's advisory lock on PostgreSQL.
CHAIN_LOCK_KEY = 0x7E1105


#: Events integrated per sequencer transaction (bounds its time under the lock).
INTEGRATE_CHUNK = 5000


#: What a writer puts into the queue, in this order.
_QUEUE_COLUMNS = ("recording_uuid", "event", "actor", "occurred_at", "details")


#: What the sequencer reads of a queued event, in this order.
_QUEUED = "id, recording_uuid, event, actor, occurred_at, details"


#: Column order of a chain entry, as COPY writes it.
_COLUMNS = tuple(column.name for column in custody_events.columns)


def read_head(conn: Connection) -> ChainHead:
    """The newest integrated event (seq 0 and GENESIS when the chain is empty)."""
    row = conn.execute(
        sa.select(custody_events.c.seq, custody_events.c.hash)
        .order_by(custody_events.c.seq.desc())
        .limit(1)
    ).first()
    return ChainHead(0, GENESIS) if row is None else ChainHead(int(row.seq), str(row.hash))


def enqueue(
    conn: Connection, events: Sequence[NewEvent], *, actor: str, now: datetime
) -> list[str]:
    """Queue events for the sequencer, in this transaction; returns their entry digests.

    Takes no lock: concurrent writers queue side by side.
    """
    if not events:
        return []
    occurred = format_time(now)
    rows = [
        {
            "recording_uuid": ev.recording_uuid,
            "event": ev.event,
            "actor": actor,
            "occurred_at": occurred,
            "details": logged_json(ev.details),
        }
        for ev in events
    ]
    insert_queue_rows(conn, rows)
    return [canonical_row_digest(row) for row in rows]


def insert_queue_rows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ready-made queue rows (recording_uuid, event, actor, occurred_at, details)
    in this transaction, in order (queue ids follow it): PostgreSQL's COPY, SQLite's
    executemany — the driver's own, over tuples (every worker's hot path)."""
    if not rows:
        return
    values = [tuple(row[name] for name in _QUEUE_COLUMNS) for row in rows]
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        statement = f"COPY custody_queue ({', '.join(_QUEUE_COLUMNS)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for value in values:
                copy.write_row(value)
        return
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO custody_queue ({', '.join(_QUEUE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
            values,
        )
    finally:
        cursor.close()


def queued_count(conn: Connection) -> int:
    """How many events wait in the queue (written, not yet integrated)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(custody_queue)).scalar_one())


def lock_chain(conn: Connection, *, wait: bool) -> bool:
    """Take the sequencer's lock for this transaction; False if ``wait`` is off and
    another process holds it (PostgreSQL).  On SQLite the caller's ``BEGIN IMMEDIATE``
    already makes it the only writer."""
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        return True
    return bool(
        conn.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY}
        ).scalar_one()
    )


def sequence(conn: Connection, entries: Iterable[Entry]) -> int:
    """Hash ``entries`` onto the chain after its head, in this order, and insert them in
    this transaction; returns how many.  The caller holds the chain lock
    (:func:`lock_chain`) until it commits.  Streamed: the chain entries are made as
    the insert consumes them (an import's chunk holds no list of them)."""
    head = read_head(conn)
    last = head.seq

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal last
        prev, seq = head.hash, head.seq
        for recording_uuid, event, actor, occurred_at, canonical in entries:
            # Bounded here too, whoever wrote the event: an entry the custody log cannot
            # hold would stop every later checkpoint (one ``len`` each when they fit).
            details, actor = fit_details(canonical), bounded_text(actor)
            seq += 1
            digest = chain_hash(prev, seq, recording_uuid, event, actor, occurred_at, details)
            last = seq
            yield (seq, recording_uuid, event, actor, occurred_at, details, prev, digest)
            prev = digest

    _insert_events(conn, rows())
    return last - head.seq


def integrate(engine: Engine, *, wait: bool = False, limit: int = INTEGRATE_CHUNK) -> int:
    """Sequence up to ``limit`` queued events onto the chain; returns how many.

    ``wait=False``: if another process is integrating right now (PostgreSQL), return
    0 at once — it will integrate these too.  ``wait=True``: wait for the lock.
    """
    with write_transaction(engine) as conn:
        if not lock_chain(conn, wait=wait):
            return 0
        # The driver's cursor, in this transaction: plain tuples for thousands of rows,
        # without SQLAlchemy's per-row result processing (all columns are text and ints).
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(f"SELECT {_QUEUED} FROM custody_queue ORDER BY id LIMIT {int(limit)}")
            queued = cursor.fetchall()
        finally:
            cursor.close()
        if not queued:
            return 0
        # Re-canonicalised: the hash is defined over canonical JSON, whoever queued it.
        count = sequence(
            conn,
            (
                (recording_uuid, event, actor, occurred_at, recanonical(details))
                for _id, recording_uuid, event, actor, occurred_at, details in queued
            ),
        )
        ids = [int(item[0]) for item in queued]
        if conn.dialect.name == "postgresql":
            # Exactly the ids read: a row with a smaller id committed after the read is
            # still queued and must stay so.
            conn.execute(sa.text("DELETE FROM custody_queue WHERE id = ANY(:ids)"), {"ids": ids})
        else:
            # SQLite: this transaction is the only writer, so the ids read are exactly
            # every queued id up to the largest one.
            conn.execute(custody_queue.delete().where(custody_queue.c.id <= ids[-1]))
        crashpoints.reached("integrated_uncommitted")
        return count


#: COPY's text format: a backslash, tab, newline or carriage return inside a value is
#: written as a backslash escape; NULL is ``\N``.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


#: Chain entries per COPY write.
_COPY_BLOCK = 5000


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _insert_events(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert chain entries (tuples in ``_COLUMNS`` order): PostgreSQL's COPY in its text
    format, written by us in blocks (the sequencer's and the import's hot path: the
    driver's per-row ``write_row`` costs more than the server's work), SQLite's
    executemany — the driver's own, over tuples (SQLAlchemy's per-row parameter
    processing would cost more than the insert itself)."""
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        statement = f"COPY custody_events ({', '.join(_COLUMNS)}) FROM STDIN"
        block: list[str] = []
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                block.append("\t".join(map(_copy_value, row)) + "\n")
                if len(block) == _COPY_BLOCK:
                    copy.write("".join(block).encode("utf-8"))
                    block.clear()
            if block:
                copy.write("".join(block).encode("utf-8"))
        return
    placeholders = ", ".join("?" for _ in _COLUMNS)
    statement = f"INSERT INTO custody_events ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(statement, rows)
    finally:
        cursor.close()


def iter_events(
    engine: Engine, *, after_seq: int = 0, upto_seq: int | None = None, page: int = 10_000
) -> Iterator[Mapping[Any, Any]]:
    """Integrated events with ``after_seq < seq [<= upto_seq]`` in chain order.

    Read in pages, each in its own short transaction: a long export or verification
    holds no snapshot open (on SQLite it never stands in a writer's way).
    """
    last = after_seq
    while True:
        query = sa.select(custody_events).where(custody_events.c.seq > last)
        if upto_seq is not None:
            query = query.where(custody_events.c.seq <= upto_seq)
        with engine.connect() as conn:
            result = conn.execute(query.order_by(custody_events.c.seq).limit(page))
            names = tuple(result.keys())
            # dict(zip(...)) over plain tuples: a RowMapping per row costs more than the
            # hash each of these rows is read for (checkpoints, exports, the log).
            rows = [dict(zip(names, row, strict=True)) for row in result.tuples()]
        if not rows:
            return
        yield from rows
        last = int(rows[-1]["seq"])
