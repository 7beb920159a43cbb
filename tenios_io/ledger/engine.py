"""Building the ledger's SQLAlchemy engine for SQLite or PostgreSQL."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from tenios_io.exceptions import ConfigError, LedgerUnavailable

#: Execution option marking a connection whose transactions write (see write_transaction).
WRITE_OPTION = "ledger_write"

#: SQLite engine → the lock its write transactions take in this process (see
#: write_transaction).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def create_ledger_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for the ledger.

    SQLite: WAL and a busy timeout.  A transaction that writes is opened with
    ``BEGIN IMMEDIATE`` (one writer at a time, taken up front so it never fails
    half-way on an upgrade); it says so with the execution option
    ``ledger_write=True`` (see :func:`write_transaction`).  Every other transaction is
    a plain deferred ``BEGIN``: under WAL a reader never blocks a writer, nor a writer
    a reader.  The driver's own transaction handling is switched off so SQLAlchemy's
    ``begin`` is ours (the recipe from SQLAlchemy's SQLite dialect documentation).
    PostgreSQL: psycopg 3, pre-ping, READ COMMITTED; claims use SKIP LOCKED.
    """
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        # SQLAlchemy's message quotes the whole URL, password included: not shown.
        raise ConfigError(
            "TENIOS_DATABASE_URL is not a valid SQLAlchemy URL "
            "(e.g. sqlite:///path.db or postgresql+psycopg://user@host/db)",
            variable="TENIOS_DATABASE_URL",
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})
        _WRITERS[engine] = threading.RLock()
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    elif parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            insertmanyvalues_page_size=5000,
        )
    else:
        raise ConfigError(
            f"TENIOS_DATABASE_URL: unsupported database {parsed.get_backend_name()!r} "
            "(use sqlite:///… or postgresql+psycopg://…)",
            variable="TENIOS_DATABASE_URL",
        )
    event.listen(engine, "handle_error", _translate_error)
    return engine


def _translate_error(context: sa.engine.ExceptionContext) -> None:
    """Lost connections and lock time-outs become LedgerUnavailable (transient): the one
    place database errors are translated.  Everything else stays as SQLAlchemy raised it."""
    if context.is_disconnect or isinstance(context.sqlalchemy_exception, sa.exc.OperationalError):
        first = str(context.original_exception).strip().splitlines()
        raise LedgerUnavailable(
            f"ledger database unavailable: {first[0] if first else 'connection lost'}"
        ) from context.original_exception


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    # A page cache of up to 32 MiB (main) and 32 MiB (temp: an import's staging table)
    # instead of SQLite's 2 MiB: an import of a million ids inserts into B-trees keyed by
    # random UUIDs, and with the default cache most of those inserts miss it.  Pages are
    # cached only as they are read, so a worker's connections stay small.
    cur.execute("PRAGMA cache_size=-32768")
    cur.execute("PRAGMA temp.cache_size=-32768")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, plain on PostgreSQL.

    On SQLite the threads of one process take turns on a lock first, so only one of
    them at a time waits in ``BEGIN IMMEDIATE`` (for other processes): SQLite's own
    busy handler polls with sleeps growing to 100 ms, and with a run's threads all
    writing, a waiter slept long after the writer before it had committed.
    """
    lock = _WRITERS.get(engine)
    with lock if lock is not None else nullcontext(), engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn
