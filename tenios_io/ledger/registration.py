"""Registering recordings: one id or a stream of millions, all-or-nothing.

Both go through a staging table: the ids are streamed into it (PostgreSQL:
``COPY`` into a temporary table; SQLite: ``executemany`` into a temporary table, in
chunks), then one set-based statement inserts the new ids, one queues their
``registered`` custody events, and one gives known rows the SFTP path they learnt.
Memory stays bounded whatever the input's size, re-registering known ids costs no
per-row statement, and a bad line anywhere (the iterator raises) leaves nothing
behind: PostgreSQL runs it all in one transaction, SQLite stages before it takes the
write lock and merges in one transaction.

No lock that claims or outcome writes wait on is taken: the new rows are invisible
to claims until the import commits, and custody events go to the queue (custody.py),
not to the chain's head.  On SQLite the merge itself is one write transaction
(SQLite has one writer at a time); staging, the slow part, happens before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.custody import format_time
from tenios_io.ledger.importing import ProgressFn
from tenios_io.ledger.records import ImportResult, NewRecording, RegisterResult
from tenios_io.ledger.tables import TS

_STAGE = "ledger_staging"
# Which date the S3 key and the retention period start at (records.Recording.key_date),
# said in the ``registered`` event: a producer's or an import's recorded_at, else the
# discovery date.
_DATE_FROM = "CASE WHEN {col} IS NULL THEN 'discovered_at' ELSE 'recorded_at' END"
_CHUNK = 10_000

# PostgreSQL: canonical UTC text of a timestamptz, as custody.format_time writes it.
_PG_ISO = "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

_staging_sqlite = sa.Table(
    _STAGE,
    sa.MetaData(),
    sa.Column("line", sa.Integer),
    sa.Column("recording_uuid", sa.String(36), primary_key=True),
    sa.Column("call_uuid", sa.String(36)),
    sa.Column("recorded_at", TS),
    sa.Column("source_path", sa.Text),
    sa.Column("producer", sa.Text),
    prefixes=["TEMPORARY"],
)


class Registration(LedgerCore):
    """Add recordings to the ledger."""

    def register(
        self, items: Iterable[NewRecording], *, actor: str | None = None
    ) -> RegisterResult:
        """Add unknown recordings as ``pending``; a known uuid changes nothing and says so.

        All-or-nothing, for inputs of any size (see the module docstring); returns
        the ids by outcome — for imports of millions use :meth:`import_recordings`,
        which returns counts.  A known recording found on the SFTP drop for the first
        time gets its path (one row per recording, whichever way it was found).
        """
        out = self._merge(items, actor=actor or self.actor, progress=None, collect=True)
        assert isinstance(out, RegisterResult)
        if out.added or out.source_found:
            self.integrate()
        return out

    def import_recordings(
        self,
        items: Iterable[NewRecording],
        *,
        actor: str | None = None,
        progress: ProgressFn | None = None,
        integrate: bool = True,
    ) -> ImportResult:
        """Register a stream of recordings (bounded memory); counts, not ids.

        ``progress(n)`` is called as lines are staged.  With ``integrate`` the import's
        ``registered`` events are then integrated into the chain before returning.
        """
        out = self._merge(items, actor=actor or self.actor, progress=progress, collect=False)
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
    ) -> RegisterResult | ImportResult:
        now = self.now()
        if self.engine.dialect.name == "postgresql":
            with self._write() as conn:
                _create_stage_postgres(conn)
                read = _copy_postgres(conn, items, progress)
                listing = _listing(conn, f"{_STAGE}") if collect else None
                counts = _merge_postgres(
                    conn, read, actor=actor, now=now, db_clock=self.lease_clock == "database"
                )
                return _finish(counts, listing)
        with self._sqlite_stage() as conn:
            read = _stage_sqlite(conn, items, progress)
            conn.commit()
            conn.execution_options(ledger_write=True)
            with conn.begin():
                listing = _listing(conn, f"temp.{_STAGE}") if collect else None
                counts = _merge_sqlite(conn, read, actor=actor, now=now)
                return _finish(counts, listing)

    def _register_in(
        self, conn: Connection, items: Iterable[NewRecording], *, actor: str
    ) -> ImportResult:
        """The same staging merge inside the caller's write transaction ``conn``, so the
        caller commits the registration together with its own writes (the intake drain
        deletes its rows in it).  For bounded inputs: on SQLite the staging happens under
        the caller's write lock."""
        now = self.now()
        if conn.dialect.name == "postgresql":
            _create_stage_postgres(conn)
            read = _copy_postgres(conn, items, None)
            counts = _merge_postgres(
                conn, read, actor=actor, now=now, db_clock=self.lease_clock == "database"
            )
            conn.exec_driver_sql(f"DROP TABLE {_STAGE}")
            return counts
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGE}")
        _staging_sqlite.create(conn)
        read = _stage_sqlite(conn, items, None)
        counts = _merge_sqlite(conn, read, actor=actor, now=now)
        conn.exec_driver_sql(f"DROP TABLE temp.{_STAGE}")
        return counts

    @contextmanager
    def _sqlite_stage(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGE}")
            _staging_sqlite.create(conn)
            conn.commit()
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()
                conn.execution_options(ledger_write=False)
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGE}")
                conn.commit()


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _create_stage_postgres(conn: Connection) -> None:
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {_STAGE} (line bigint, recording_uuid text, call_uuid text, "
        "recorded_at timestamptz, source_path text, producer text) ON COMMIT DROP"
    )


def _copy_postgres(
    conn: Connection, items: Iterable[NewRecording], progress: ProgressFn | None
) -> int:
    driver = conn.connection.driver_connection
    count = 0
    statement = (
        f"COPY {_STAGE} (line, recording_uuid, call_uuid, recorded_at, source_path, producer) "
        "FROM STDIN"
    )
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


def _merge_postgres(
    conn: Connection, read: int, *, actor: str, now: datetime, db_clock: bool
) -> ImportResult:
    params = {"actor": actor, "occurred": format_time(now), "now": now}
    distinct = int(
        conn.exec_driver_sql(f"SELECT count(DISTINCT recording_uuid) FROM {_STAGE}").scalar_one()
    )
    found = conn.execute(
        sa.text(
            f"""
            WITH s AS (
              SELECT DISTINCT ON (recording_uuid) recording_uuid, source_path FROM {_STAGE}
              WHERE source_path IS NOT NULL ORDER BY recording_uuid, line
            ), upd AS (
              UPDATE recordings AS r SET source_path = s.source_path, updated_at = :now
              FROM s WHERE r.recording_uuid = s.recording_uuid AND r.source_path IS NULL
              RETURNING r.recording_uuid, r.source_path
            ), q AS (
              INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at, details)
              SELECT recording_uuid, 'source_found', :actor, :occurred,
                     json_build_object('source_path', source_path)::text
              FROM upd ORDER BY recording_uuid
            )
            SELECT count(*) FROM upd
            """
        ),
        params,
    ).scalar_one()
    due_sql = "clock_timestamp()" if db_clock else ":now"
    added = conn.execute(
        sa.text(
            f"""
            WITH s AS (
              SELECT DISTINCT ON (recording_uuid) * FROM {_STAGE} ORDER BY recording_uuid, line
            ), ins AS (
              INSERT INTO recordings (recording_uuid, call_uuid, source_hint, source_path, state,
                attempts, next_attempt_at, discovered_at, recorded_at, legal_hold, updated_at,
                lease_expiries)
              SELECT s.recording_uuid, s.call_uuid,
                     CASE WHEN s.source_path IS NULL THEN 'api' ELSE 'sftp' END, s.source_path,
                     'pending', 0, {due_sql}, :now, s.recorded_at, false, :now, 0
              FROM s
              WHERE NOT EXISTS (
                SELECT 1 FROM recordings r WHERE r.recording_uuid = s.recording_uuid)
              ORDER BY s.line
              ON CONFLICT (recording_uuid) DO NOTHING
              RETURNING recording_uuid, call_uuid, recorded_at, source_path
            ), q AS (
              INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at, details)
              SELECT ins.recording_uuid, 'registered', :actor, :occurred,
                     json_build_object('call_uuid', ins.call_uuid,
                                       'recorded_at', {_PG_ISO.format(col="ins.recorded_at")},
                                       'date_from', {_DATE_FROM.format(col="ins.recorded_at")},
                                       'source_path', ins.source_path,
                                       'producer', s.producer)::text
              FROM ins JOIN s ON s.recording_uuid = ins.recording_uuid
            )
            SELECT count(*) FROM ins
            """
        ),
        params,
    ).scalar_one()
    return ImportResult(read, added, distinct - added, read - distinct, found)


def _stage_sqlite(
    conn: Connection, items: Iterable[NewRecording], progress: ProgressFn | None
) -> int:
    # The driver's executemany over tuples: for a million lines SQLAlchemy's per-row
    # parameter processing would cost more than the inserts.  Datetimes go through the
    # column type's own bind processor, so they are stored exactly as SQLAlchemy would.
    bind = TS.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    statement = (
        f"INSERT OR IGNORE INTO temp.{_STAGE} "
        "(line, recording_uuid, call_uuid, recorded_at, source_path, producer) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    if not conn.in_transaction():
        conn.begin()  # one transaction for the staging, not one per row
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    count = 0
    chunk: list[tuple[Any, ...]] = []
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
            if len(chunk) >= _CHUNK:
                cursor.executemany(statement, chunk)
                chunk = []
                if progress:
                    progress(_CHUNK)
        if chunk:
            cursor.executemany(statement, chunk)
            if progress:
                progress(len(chunk))
    finally:
        cursor.close()
    return count


_SQLITE_NEW = (
    f"FROM temp.{_STAGE} s WHERE NOT EXISTS "
    "(SELECT 1 FROM recordings r WHERE r.recording_uuid = s.recording_uuid)"
)


def _merge_sqlite(conn: Connection, read: int, *, actor: str, now: datetime) -> ImportResult:
    # Raw SQL: store "now" exactly as SQLAlchemy's DateTime stores it on SQLite.
    bind = TS.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    params = {"actor": actor, "occurred": format_time(now), "now": bind(now) if bind else now}
    distinct = int(conn.exec_driver_sql(f"SELECT count(*) FROM temp.{_STAGE}").scalar_one())
    # Known rows learning their SFTP path (few; sweeps only).
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
            [{"path": path, "key": key, "now": params["now"]} for key, path in found],
        )
        conn.execute(
            sa.text(
                "INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at, details) "
                "VALUES (:key, 'source_found', :actor, :occurred, "
                "json_object('source_path', :path))"
            ),
            [{**params, "key": key, "path": path} for key, path in found],
        )
    # Events first, rows second: both select "not yet in recordings" in one transaction.
    conn.execute(
        sa.text(
            "INSERT INTO custody_queue (recording_uuid, event, actor, occurred_at, details) "
            "SELECT s.recording_uuid, 'registered', :actor, :occurred, "
            "json_object('call_uuid', s.call_uuid, 'recorded_at', "
            "CASE WHEN s.recorded_at IS NULL THEN NULL "
            "ELSE replace(s.recorded_at, ' ', 'T') || 'Z' END, "
            f"'date_from', {_DATE_FROM.format(col='s.recorded_at')}, 'source_path', s.source_path, "
            "'producer', s.producer) "
            f"{_SQLITE_NEW} ORDER BY s.line"
        ),
        params,
    )
    inserted = conn.execute(
        sa.text(
            "INSERT INTO recordings (recording_uuid, call_uuid, source_hint, source_path, state, "
            "attempts, next_attempt_at, discovered_at, recorded_at, legal_hold, updated_at, "
            "lease_expiries) "
            "SELECT s.recording_uuid, s.call_uuid, "
            "CASE WHEN s.source_path IS NULL THEN 'api' ELSE 'sftp' END, s.source_path, "
            "'pending', 0, :now, :now, s.recorded_at, 0, :now, 0 "
            f"{_SQLITE_NEW} ORDER BY s.line"
        ),
        params,
    ).rowcount
    return ImportResult(read, inserted, distinct - inserted, read - distinct, len(found))


def _listing(conn: Connection, stage: str) -> list[tuple[str, bool, bool]]:
    """Before the merge: each staged id in first-seen order, whether the ledger knows it,
    and whether it brings an SFTP path to a known row that has none (small inputs only)."""
    rows = conn.execute(
        sa.text(
            f"SELECT s.recording_uuid, min(s.line) AS first, "
            "max(CASE WHEN r.recording_uuid IS NULL THEN 0 ELSE 1 END) AS known, "
            "max(CASE WHEN r.recording_uuid IS NOT NULL AND r.source_path IS NULL "
            "AND s.source_path IS NOT NULL THEN 1 ELSE 0 END) AS finds "
            f"FROM {stage} s LEFT JOIN recordings r ON r.recording_uuid = s.recording_uuid "
            "GROUP BY s.recording_uuid ORDER BY first"
        )
    ).all()
    return [(str(key), bool(known), bool(finds)) for key, _first, known, finds in rows]


def _finish(
    counts: ImportResult, listing: list[tuple[str, bool, bool]] | None
) -> RegisterResult | ImportResult:
    if listing is None:
        return counts
    return RegisterResult(
        added=[key for key, known, _ in listing if not known],
        known=[key for key, known, _ in listing if known],
        source_found=[key for key, known, finds in listing if known and finds],
    )
