"""The custody chain: append-only events, each hashed over its predecessor.

``hash = sha256(prev_hash || canonical_json(event))`` where the event is
``{seq, recording_uuid, event, actor, occurred_at, details}`` and the genesis
``prev_hash`` is 64 zeros.  ``seq`` is gap-free and inside the hash, so an edited,
deleted, inserted or reordered event breaks the chain at that point; a cut-off
tail is caught by comparing with the checkpoints written into the bucket.

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

import dataclasses
import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tenios_io import crashpoints
from tenios_io.ledger.engine import write_transaction
from tenios_io.ledger.tables import custody_events, custody_queue

GENESIS = "0" * 64
#: Arbitrary constant naming the sequencer's advisory lock on PostgreSQL.
CHAIN_LOCK_KEY = 0x7E1105
#: Events integrated per sequencer transaction (bounds its time under the lock).
INTEGRATE_CHUNK = 5000
#: One encoder for canonical JSON: ``json.dumps`` with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: JSON string literal exactly as ``json.dumps(..., ensure_ascii=False)`` writes it.
_json_str = json.encoder.encode_basestring
#: What a writer puts into the queue, in this order.
_QUEUE_COLUMNS = ("recording_uuid", "event", "actor", "occurred_at", "details")
#: What the sequencer reads of a queued event, in this order.
_QUEUED = "id, recording_uuid, event, actor, occurred_at, details"
#: Column order of a chain entry, as COPY writes it.
_COLUMNS = tuple(column.name for column in custody_events.columns)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return _CANONICAL.encode(value)


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: The standard library's C scanner and encoder, called directly by :func:`recanonical`
#: (json.loads and JSONEncoder.encode wrap them in per-call Python: a whitespace regex,
#: a new C encoder per call), with the same settings as ``json.loads`` / ``_CANONICAL``.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_parsed = (
    None
    if _c_encoder is None
    else _c_encoder(None, _no_default, _json_str, None, ":", ",", True, False, True)
)


def recanonical(details: str) -> str:
    """``canonical_json(json.loads(details))``, the same string or the same error, at
    about half the cost: stored details are re-canonicalised for every event that is
    sequenced, verified, hashed into a manifest or logged (several per recording).

    The fast path takes only a string that is one JSON value with nothing around it;
    anything else (whitespace, extra data, invalid JSON) goes through ``json.loads``,
    which returns or raises exactly as before.  No circular-reference check is needed:
    what ``json.loads`` returns has no cycles.
    """
    if _encode_parsed is None or not isinstance(details, str):
        return canonical_json(json.loads(details))
    try:
        value, end = _scan_json(details, 0)
    except (StopIteration, ValueError):
        return canonical_json(json.loads(details))
    if end != len(details):
        return canonical_json(json.loads(details))
    return "".join(_encode_parsed(value, 0))


def format_time(moment: datetime) -> str:
    """UTC, microseconds, 'Z': the form hashed and stored (``%Y-%m-%dT%H:%M:%S.%fZ``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime's %Y does not pad them to 4 digits; isoformat does
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is C code: a third of strftime's cost, several times per recording.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_hash(prev_hash: str, row: Mapping[Any, Any]) -> str:
    """The chain hash of one stored event row."""
    return chain_hash(
        prev_hash,
        int(row["seq"]),
        row["recording_uuid"],
        row["event"],
        row["actor"],
        row["occurred_at"],
        recanonical(row["details"]),
    )


def chain_hash(
    prev_hash: str,
    seq: int,
    recording_uuid: str | None,
    event: str,
    actor: str,
    occurred_at: str,
    canonical_details: str,
) -> str:
    """``sha256(prev_hash || canonical_json(event))``, the event's canonical JSON built
    by :func:`event_body`.  ``canonical_details`` must already be canonical JSON."""
    body = event_body(seq, recording_uuid, event, actor, occurred_at, canonical_details)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def event_body(
    seq: int,
    recording_uuid: str | None,
    event: str,
    actor: str,
    occurred_at: str,
    canonical_details: str,
) -> str:
    """An event's canonical JSON (what the chain hashes and the custody log holds) built
    directly: the same string as ``canonical_json`` of the dict (keys in sorted order,
    the standard library's own string encoder), without building and sorting a dict
    per event — the sequencer hashes millions of them in an import.
    ``canonical_details`` must already be canonical JSON."""
    return (
        f'{{"actor":{_json_str(actor)},"details":{canonical_details},'
        f'"event":{_json_str(event)},"occurred_at":{_json_str(occurred_at)},'
        f'"recording_uuid":{"null" if recording_uuid is None else _json_str(recording_uuid)},'
        f'"seq":{seq}}}'
    )


@dataclass(frozen=True)
class NewEvent:
    """An event to append."""

    recording_uuid: str | None
    event: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class ChainHead:
    """The newest event of the chain (seq 0 and GENESIS when empty)."""

    seq: int
    hash: str


def read_head(conn: Connection) -> ChainHead:
    """The newest integrated event (seq 0 and GENESIS when the chain is empty)."""
    row = conn.execute(
        sa.select(custody_events.c.seq, custody_events.c.hash)
        .order_by(custody_events.c.seq.desc())
        .limit(1)
    ).first()
    return ChainHead(0, GENESIS) if row is None else ChainHead(int(row.seq), str(row.hash))


def entry_digest(
    recording_uuid: str | None, event: str, actor: str, occurred_at: str, details: str
) -> str:
    """The SHA-256 of an event's own content, without its place in the chain.

    Known when the event is written (before it is sequenced), so a document written
    beside the event (a sidecar) can name it; :func:`row_digest` recomputes it from a
    stored event.
    """
    return canonical_entry_digest(recording_uuid, event, actor, occurred_at, recanonical(details))


def canonical_entry_digest(
    recording_uuid: str | None, event: str, actor: str, occurred_at: str, canonical_details: str
) -> str:
    """:func:`entry_digest` of an event whose details are already canonical JSON, its
    body built directly in sorted-key order (as :func:`chain_hash` does)."""
    body = (
        f'{{"actor":{_json_str(actor)},"details":{canonical_details},'
        f'"event":{_json_str(event)},"occurred_at":{_json_str(occurred_at)},'
        f'"recording_uuid":{"null" if recording_uuid is None else _json_str(recording_uuid)}}}'
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def row_digest(row: Mapping[Any, Any]) -> str:
    """:func:`entry_digest` of a stored (queued or integrated) event row."""
    return entry_digest(
        row["recording_uuid"], row["event"], row["actor"], row["occurred_at"], row["details"]
    )


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
            "details": canonical_json(dict(ev.details)),
        }
        for ev in events
    ]
    insert_queue_rows(conn, rows)
    return [canonical_row_digest(row) for row in rows]


def canonical_row_digest(row: Mapping[str, Any]) -> str:
    """:func:`row_digest` of a row this process built (its details canonical already)."""
    return canonical_entry_digest(
        row["recording_uuid"], row["event"], row["actor"], row["occurred_at"], row["details"]
    )


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


#: An event ready to be sequenced: recording_uuid, event, actor, occurred_at and its
#: details as canonical JSON.
Entry = tuple[str | None, str, str, str, str]


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
        for recording_uuid, event, actor, occurred_at, details in entries:
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


@dataclass(frozen=True)
class ChainReport:
    """What verify_chain found."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    queued: int = 0
    """Events written but not yet integrated (not covered by this report)."""


def with_queued(report: ChainReport, queued: int) -> ChainReport:
    """``report`` that also says how many events wait in the queue."""
    return dataclasses.replace(report, queued=queued)


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


def verify(rows: Iterable[Mapping[Any, Any]]) -> ChainReport:
    """Recompute the chain over ``rows`` (in seq order); name the first broken event."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            return ChainReport(
                False,
                count,
                expected_seq - 1,
                prev,
                seq,
                f"event {seq}: expected sequence number {expected_seq} "
                "(an event was deleted or inserted before it)",
            )
        if row["prev_hash"] != prev:
            return ChainReport(
                False,
                count,
                seq - 1,
                prev,
                seq,
                f"event {seq}: prev_hash does not match the hash of event {seq - 1}",
            )
        try:
            recomputed = event_hash(prev, row)
        except (ValueError, TypeError) as exc:
            return ChainReport(False, count, seq - 1, prev, seq, f"event {seq}: unreadable ({exc})")
        if recomputed != row["hash"]:
            return ChainReport(
                False,
                count,
                seq - 1,
                prev,
                seq,
                f"event {seq} ({row['event']} of {row['recording_uuid']}): content does not "
                "match its hash (the event was altered)",
            )
        prev, expected_seq, count = recomputed, seq + 1, count + 1
    return ChainReport(True, count, expected_seq - 1, prev)
