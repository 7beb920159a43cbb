"""Registering recordings: one id or a stream of millions.

Everything goes through a staging table: the ids are streamed into it (PostgreSQL:
``COPY`` into a temporary table; SQLite: ``executemany`` into a temporary table, in
chunks), then merged in chunks of :data:`MERGE_CHUNK` staged lines (50,000 on
PostgreSQL, 100,000 on SQLite), each one short write transaction: one set-based
statement inserts the chunk's new ids, and their ``registered`` custody events are
sequenced straight onto the chain in the same transaction (sequencer.sequence, under the
sequencer's lock) — an import's million events never pass through the custody queue.
Within a chunk, rows and events go in uuid order (the random-keyed indexes are then
written page by page); across chunks, in the file's order.  Known rows that learn their SFTP path
(sweeps) get their ``source_found`` events through the queue as every other writer.

- **All-or-nothing for a bad file**: the whole input is staged (and validated) before
  anything is merged, so a bad line anywhere leaves nothing behind.
- **Crash-safe**: each chunk commits its rows together with their events, so a crash
  mid-import keeps whole chunks — every id in the ledger has its ``registered``
  event, none has two — and running the import again adds the rest.
- **Bounded memory** whatever the input's size, and re-registering known ids costs no
  per-row statement.
- **No lock that claims or outcome writes wait on**: new rows are invisible to claims
  until their chunk commits; the chain lock a chunk holds (from its head read to its
  commit) is the sequencer's, which workers only ever try.  On SQLite each chunk is
  one write transaction (SQLite has one writer at a time): workers wait at most one
  chunk, not the import.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tenios_io import crashpoints
from tenios_io.custody.chain import bounded_text, format_time
from tenios_io.ledger import sequencer
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.engine import WRITE_OPTION
from tenios_io.ledger.importing import ProgressFn
from tenios_io.ledger.records import ImportResult, NewRecording, RegisterResult
from tenios_io.ledger.tables import TS

_STAGE = "ledger_staging"
#: Lines staged per progress report (PostgreSQL's COPY).
_CHUNK = 10_000
#: Staged lines merged per write transaction (rows inserted, events sequenced), and on
#: SQLite staged per driver call: bounds memory and how long a chunk holds the chain lock
#: (on SQLite the write lock: larger chunks there rewrite the random-keyed index pages
#: fewer times, which is most of an import's I/O).
MERGE_CHUNK = {"postgresql": 50_000, "sqlite": 100_000}

# PostgreSQL: canonical UTC text of a timestamptz, as chain.format_time writes it.
_PG_ISO = "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
# SQLite: the same from the text SQLAlchemy's DateTime stores (UTC, no offset).
_SQLITE_ISO = "CASE WHEN {col} IS NULL THEN NULL ELSE replace({col}, ' ', 'T') || 'Z' END"
_COLUMNS = "line, recording_uuid, call_uuid, recorded_at, source_path, producer"
_NEW_ROW = (
    "recording_uuid, call_uuid, source_hint, source_path, state, attempts, next_attempt_at, "
    "discovered_at, recorded_at, legal_hold, updated_at, lease_expiries"
)


class Registration(LedgerCore):
    """Add recordings to the ledger."""

    def register(
        self, items: Iterable[NewRecording], *, actor: str | None = None
    ) -> RegisterResult:
        """Add unknown recordings as ``pending``; a known uuid changes nothing and says so.

        For inputs of any size (see the module docstring); returns the ids by outcome —
        for imports of millions use :meth:`import_recordings`, which returns counts.  A
        known recording found on the SFTP drop for the first time gets its path (one
        row per recording, whichever way it was found).
        """
        out = self._merge(items, actor=actor or self.actor, progress=None, collect=True)
        assert isinstance(out, RegisterResult)
        if out.source_found:
            self.integrate()
        return out

    def import_recordings(
        self,
        items: Iterable[NewRecording],
        *,
        actor: str | None = None,
        progress: ProgressFn | None = None,
        integrate: bool = True,
        stop: threading.Event | None = None,
    ) -> ImportResult:
        """Register a stream of recordings (bounded memory); counts, not ids.

        ``progress(n)`` is called as lines are staged.  The ``registered`` events are
        on the chain when this returns; with ``integrate`` whatever else is queued
        (``source_found`` events, other writers' events) is integrated too.

        ``stop`` (a signal, interrupt.py) set while the input is read ends the import
        with nothing imported (a file is checked whole before anything is merged);
        set during the merge, it ends the import after the chunk being merged commits:
        what was imported stays, in whole chunks with their events, and running the
        import again adds the rest (``ImportResult.stopped_after``).
        """
        out = self._merge(
            items, actor=actor or self.actor, progress=progress, collect=False, stop=stop
        )
        assert isinstance(out, ImportResult)
        if integrate:
            self.integrate_all()
        return out

    # -- the staging merge ----------------------------------------------------------------

    def _merge(
        self,
        items: Iterable[NewRecording],
        *,
        actor: str,
        progress: ProgressFn | None,
        collect: bool,
        stop: threading.Event | None = None,
    ) -> RegisterResult | ImportResult:
        now = self.now()
        stopped_after: int | None = None
        reading = _Until(items, stop)
        with self.engine.connect() as conn:
            _drop_stage(conn)
            _create_stage(conn)
            conn.commit()
            try:
                read = _stage(conn, reading, progress)
                conn.commit()
                if reading.cut:  # not read (nor checked) whole: nothing is merged
                    return ImportResult(read, 0, 0, 0, 0, stopped_after=0)
                listing = _listing(conn) if collect else None
                conn.rollback()  # the listing's read transaction, if any
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    distinct = _distinct(conn)
                    found = _found(conn, actor=actor, now=now)
                added, step = 0, MERGE_CHUNK[conn.dialect.name]
                for lo in range(0, read, step):
                    if stop is not None and stop.is_set():
                        stopped_after = lo
                        break
                    with conn.begin():
                        added += self._add_new(conn, lo, lo + step, actor=actor, now=now)
                    crashpoints.reached("import_chunk_committed")
            finally:
                if conn.in_transaction():
                    conn.rollback()
                conn.execution_options(**{WRITE_OPTION: False})
                _drop_stage(conn)
                conn.commit()
        if stopped_after is not None:
            return ImportResult(read, added, 0, 0, found, stopped_after=stopped_after)
        counts = ImportResult(read, added, distinct - added, read - distinct, found)
        return counts if listing is None else _finish(listing)

    def _register_in(
        self, conn: Connection, items: Iterable[NewRecording], *, actor: str
    ) -> ImportResult:
        """The same staging merge inside the caller's write transaction ``conn``, so the
        caller commits the registration together with its own writes (the intake drain
        deletes its rows in it), as one chunk.  For bounded inputs: on SQLite the staging
        happens under the caller's write lock."""
        now = self.now()
        _drop_stage(conn)
        _create_stage(conn)
        read = _stage(conn, items, None)
        distinct = _distinct(conn)
        found = _found(conn, actor=actor, now=now)
        added = self._add_new(conn, 0, read, actor=actor, now=now)
        _drop_stage(conn)
        return ImportResult(read, added, distinct - added, read - distinct, found)

    def _add_new(self, conn: Connection, lo: int, hi: int, *, actor: str, now: datetime) -> int:
        """Insert the new ids among staged lines ``lo < line <= hi`` (first line of an id
        wins) and sequence their ``registered`` events onto the chain, in line order, in
        ``conn``'s transaction; returns how many were added."""
        if conn.dialect.name == "postgresql":
            rows = _insert_postgres(conn, lo, hi, now=now, db_clock=self.lease_clock == "database")
        else:
            rows = _insert_sqlite(conn, lo, hi, now=now)
        if not rows:
            return 0
        occurred = format_time(now)
        # The chain lock from the head read to the commit: after the rows, so the rows'
        # index updates (the slow part) are not done under it.
        sequencer.lock_chain(conn, wait=True)
        added = sequencer.sequence(
            conn,
            (
                (key, "registered", actor, occurred, registered_details(call, at, path, producer))
                for key, call, at, path, producer in rows
            ),
        )
        crashpoints.reached("import_chunk_uncommitted")
        return added


def registered_details(
    call_uuid: str | None, recorded_at: str | None, source_path: str | None, producer: str | None
) -> str:
    """The canonical JSON details of a ``registered`` event, built directly (the same
    text as ``chain.canonical_json`` of the dict, keys in sorted order).

    ``recorded_at`` is canonical UTC text (chain.format_time); ``date_from`` says which
    date the S3 key and the retention period start at (records.Recording.key_date): a
    producer's or an import's recorded_at, else the discovery date.
    """
    return (
        f'{{"call_uuid":{_json(call_uuid)},'
        f'"date_from":"{"discovered_at" if recorded_at is None else "recorded_at"}",'
        f'"producer":{_json(producer)},"recorded_at":{_json(recorded_at)},'
        f'"source_path":{_json(source_path)}}}'
    )


def _json(value: str | None) -> str:
    # Bounded (custody.bounded_text): a producer's or a drop's long value is logged as
    # its head and digest, never whole.
    return "null" if value is None else encode_basestring(bounded_text(value))


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


class _Until:
    """``items`` until ``stop`` is set (then ``cut``)."""

    def __init__(self, items: Iterable[NewRecording], stop: threading.Event | None) -> None:
        self.items = items
        self.stop = stop
        self.cut = False

    def __iter__(self) -> Iterator[NewRecording]:
        for item in self.items:
            if self.stop is not None and self.stop.is_set():
                self.cut = True
                return
            yield item


def _stage_name(conn: Connection) -> str:
    return _STAGE if conn.dialect.name == "postgresql" else f"temp.{_STAGE}"


def _drop_stage(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_stage_name(conn)}")


def _create_stage(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {_STAGE} (line bigint, recording_uuid text, call_uuid text, "
            "recorded_at timestamptz, source_path text, producer text)"
        )
    else:
        # ``line`` is the rowid (chunks are rowid ranges); an id's first line wins
        # (INSERT OR IGNORE on the unique recording_uuid).
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {_STAGE} (line INTEGER PRIMARY KEY, "
            "recording_uuid TEXT NOT NULL UNIQUE, call_uuid TEXT, recorded_at TEXT, "
            "source_path TEXT, producer TEXT)"
        )


def _stage(conn: Connection, items: Iterable[NewRecording], progress: ProgressFn | None) -> int:
    """Stream ``items`` into the staging table; how many were read."""
    if not conn.in_transaction():
        conn.begin()  # one transaction for the staging (the caller's, inside a drain)
    if conn.dialect.name == "postgresql":
        read = _copy_postgres(conn, items, progress)
        # Chunks read line ranges; the planner needs the staged table's statistics
        # (autovacuum never analyses temporary tables).
        conn.exec_driver_sql(f"CREATE INDEX ON {_STAGE} (line)")
        conn.exec_driver_sql(f"ANALYZE {_STAGE}")
        return read
    return _stage_sqlite(conn, items, progress)


def _copy_postgres(
    conn: Connection, items: Iterable[NewRecording], progress: ProgressFn | None
) -> int:
    driver = conn.connection.driver_connection
    count = 0
    statement = f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for item in items:
            count += 1
            copy.write_row(
                (
                    count,
                    item.recording_uuid.lower(),
                    _lower(item.call_uuid),
                    item.recorded_at,
                    item.source_path,
                    item.producer,
                )
            )
            if progress and count % _CHUNK == 0:
                progress(_CHUNK)
    if progress and count % _CHUNK:
        progress(count % _CHUNK)
    return count


def _stage_sqlite(
    conn: Connection, items: Iterable[NewRecording], progress: ProgressFn | None
) -> int:
    # The driver's executemany over tuples: for a million lines SQLAlchemy's per-row
    # parameter processing would cost more than the inserts.  Datetimes go through the
    # column type's own bind processor, so they are stored exactly as SQLAlchemy would.
    bind = TS.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    statement = f"INSERT OR IGNORE INTO temp.{_STAGE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    count = 0
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:
        # In uuid order (a stable sort: an id's first line still comes first): the unique
        # index is then written page by page, not at random (random uuids over a B-tree
        # larger than the page cache cost several times more, mostly in I/O).
        chunk.sort(key=_uuid_of)
        cursor.executemany(statement, chunk)
        if progress:
            progress(len(chunk))
        chunk.clear()

    try:
        for item in items:
            count += 1
            recorded = item.recorded_at
            chunk.append(
                (
                    count,
                    item.recording_uuid.lower(),
                    _lower(item.call_uuid),
                    bind(recorded) if bind and recorded is not None else recorded,
                    item.source_path,
                    item.producer,
                )
            )
            if len(chunk) >= MERGE_CHUNK["sqlite"]:
                flush()
        if chunk:
            flush()
    finally:
        cursor.close()
    return count


def _uuid_of(row: tuple[Any, ...]) -> str:
    return str(row[1])


def _distinct(conn: Connection) -> int:
    """How many different ids are staged."""
    if conn.dialect.name == "postgresql":
        query = f"SELECT count(DISTINCT recording_uuid) FROM {_STAGE}"
    else:
        query = f"SELECT count(*) FROM temp.{_STAGE}"  # deduplicated as it was staged
    return int(conn.exec_driver_sql(query).scalar_one())


def _found(conn: Connection, *, actor: str, now: datetime) -> int:
    """Known rows without an SFTP path that the staged lines give one (sweeps): set it
    and queue their ``source_found`` events; how many."""
    if conn.dialect.name == "postgresql":
        return int(
            conn.execute(
                sa.text(
                    f"""
                    WITH s AS (
                      SELECT DISTINCT ON (recording_uuid) recording_uuid, source_path
                      FROM {_STAGE}
                      WHERE source_path IS NOT NULL ORDER BY recording_uuid, line
                    ), upd AS (
                      UPDATE recordings AS r SET source_path = s.source_path, updated_at = :now
                      FROM s WHERE r.recording_uuid = s.recording_uuid AND r.source_path IS NULL
                      RETURNING r.recording_uuid, r.source_path
                    ), q AS (
                      INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at,
                                                 details)
                      SELECT recording_uuid, 'source_found', :actor, :occurred,
                             json_build_object('source_path', source_path)::text
                      FROM upd ORDER BY recording_uuid
                    )
                    SELECT count(*) FROM upd
                    """
                ),
                {"actor": actor, "occurred": format_time(now), "now": now},
            ).scalar_one()
        )
    # Raw SQL: store "now" exactly as SQLAlchemy's DateTime stores it on SQLite.
    bind = TS.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    stored_now = bind(now) if bind else now
    found = conn.execute(
        sa.text(
            f"SELECT s.recording_uuid, s.source_path FROM temp.{_STAGE} s "
            "JOIN recordings r ON r.recording_uuid = s.recording_uuid "
            "WHERE r.source_path IS NULL AND s.source_path IS NOT NULL"
        )
    ).all()
    if found:
        conn.execute(
            sa.text(
                "UPDATE recordings SET source_path = :path, updated_at = :now "
                "WHERE recording_uuid = :key"
            ),
            [{"path": path, "key": key, "now": stored_now} for key, path in found],
        )
        conn.execute(
            sa.text(
                "INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at, details) "
                "VALUES (:key, 'source_found', :actor, :occurred, "
                "json_object('source_path', :path))"
            ),
            [
                {"actor": actor, "occurred": format_time(now), "key": key, "path": path}
                for key, path in found
            ],
        )
    return len(found)


#: The new rows' event fields: recording_uuid, call_uuid, recorded_at (canonical text),
#: source_path, producer.
_NewRows = Sequence[tuple[str, str | None, str | None, str | None, str | None]]


def _insert_postgres(
    conn: Connection, lo: int, hi: int, *, now: datetime, db_clock: bool
) -> _NewRows:
    due = "clock_timestamp()" if db_clock else "%(now)s"
    # Known ids are skipped by ON CONFLICT alone: one probe of the primary key per id.
    # (A NOT EXISTS here is planned as a hash anti-join reading the whole table, once per
    # chunk, while the statistics still describe the table before the import.)
    statement = f"""
        WITH s AS (
          SELECT DISTINCT ON (recording_uuid) * FROM {_STAGE}
          WHERE line > %(lo)s AND line <= %(hi)s ORDER BY recording_uuid, line
        ), ins AS (
          INSERT INTO recordings ({_NEW_ROW})
          SELECT s.recording_uuid, s.call_uuid,
                 CASE WHEN s.source_path IS NULL THEN 'api' ELSE 'sftp' END, s.source_path,
                 'pending', 0, {due}, %(now)s, s.recorded_at, false, %(now)s, 0
          FROM s ORDER BY s.recording_uuid
          ON CONFLICT (recording_uuid) DO NOTHING
          RETURNING recording_uuid
        )
        SELECT s.recording_uuid, s.call_uuid, {_PG_ISO.format(col="s.recorded_at")},
               s.source_path, s.producer
        FROM ins JOIN s ON s.recording_uuid = ins.recording_uuid ORDER BY s.recording_uuid
    """
    # The driver's cursor: plain tuples for tens of thousands of rows.
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        # A chunk's sorts fit in memory (the default 4 MB spills them to disk), and its
        # plan is too simple to be worth compiling.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(statement, {"lo": lo, "hi": hi, "now": now})
        return cursor.fetchall()  # type: ignore[no-any-return]


_SQLITE_NEW = (
    f"FROM temp.{_STAGE} s WHERE s.line > :lo AND s.line <= :hi AND NOT EXISTS "
    "(SELECT 1 FROM recordings r WHERE r.recording_uuid = s.recording_uuid) "
    "ORDER BY s.recording_uuid"
)


def _insert_sqlite(conn: Connection, lo: int, hi: int, *, now: datetime) -> _NewRows:
    # Raw SQL: store "now" exactly as SQLAlchemy's DateTime stores it on SQLite.
    bind = TS.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    params = {"lo": lo, "hi": hi, "now": bind(now) if bind else now}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        # Events' fields first, rows second: both select "not yet in recordings" in this
        # one write transaction (SQLite's only writer), so they name the same ids.
        cursor.execute(
            "SELECT s.recording_uuid, s.call_uuid, "
            f"{_SQLITE_ISO.format(col='s.recorded_at')}, s.source_path, s.producer "
            f"{_SQLITE_NEW}",
            params,
        )
        rows = cursor.fetchall()
        if rows:
            cursor.execute(
                f"INSERT INTO recordings ({_NEW_ROW}) "
                "SELECT s.recording_uuid, s.call_uuid, "
                "CASE WHEN s.source_path IS NULL THEN 'api' ELSE 'sftp' END, s.source_path, "
                f"'pending', 0, :now, :now, s.recorded_at, 0, :now, 0 {_SQLITE_NEW}",
                params,
            )
            if cursor.rowcount != len(rows):
                raise RuntimeError(
                    f"staging merge inserted {cursor.rowcount} rows for {len(rows)} new ids"
                )
    finally:
        cursor.close()
    return rows  # type: ignore[no-any-return]


def _listing(conn: Connection) -> list[tuple[str, bool, bool]]:
    """Before the merge: each staged id in first-seen order, whether the ledger knows it,
    and whether it brings an SFTP path to a known row that has none (small inputs only)."""
    rows = conn.execute(
        sa.text(
            f"SELECT s.recording_uuid, min(s.line) AS first, "
            "max(CASE WHEN r.recording_uuid IS NULL THEN 0 ELSE 1 END) AS known, "
            "max(CASE WHEN r.recording_uuid IS NOT NULL AND r.source_path IS NULL "
            "AND s.source_path IS NOT NULL THEN 1 ELSE 0 END) AS finds "
            f"FROM {_stage_name(conn)} s "
            "LEFT JOIN recordings r ON r.recording_uuid = s.recording_uuid "
            "GROUP BY s.recording_uuid ORDER BY first"
        )
    ).all()
    return [(str(key), bool(known), bool(finds)) for key, _first, known, finds in rows]


def _finish(listing: list[tuple[str, bool, bool]]) -> RegisterResult:
    return RegisterResult(
        added=[key for key, known, _ in listing if not known],
        known=[key for key, known, _ in listing if known],
        source_found=[key for key, known, finds in listing if known and finds],
    )
