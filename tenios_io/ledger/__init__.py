"""The SQL ledger: current state per recording, and the hash-chained custody log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tenios_io.config import Settings
from tenios_io.custody.chain import ChainHead, ChainReport, NewEvent
from tenios_io.ledger.engine import create_ledger_engine
from tenios_io.ledger.intake import DrainResult, IntakeRow
from tenios_io.ledger.ledger import (
    Claim,
    ImportResult,
    LeasedWrite,
    Ledger,
    NewRecording,
    OutcomesWritten,
    Recording,
    RegisterResult,
    as_utc,
    utc_now,
)
from tenios_io.ledger.schema import require_current
from tenios_io.ledger.states import State


@contextmanager
def open_ledger(
    settings: Settings, *, actor: str | None = None, check_schema: bool = True
) -> Iterator[Ledger]:
    """A Ledger on ``TENIOS_DATABASE_URL``; the engine is disposed on exit.

    With ``check_schema`` (the default) a database that is not migrated to head is
    refused with SchemaNotCurrent (`tenios-archive db upgrade` fixes it).
    """
    if check_schema:
        require_current(settings.database_url)
    engine = create_ledger_engine(settings.database_url)
    try:
        yield Ledger(engine, actor=actor)
    finally:
        engine.dispose()


__all__ = [
    "ChainHead",
    "ChainReport",
    "Claim",
    "DrainResult",
    "ImportResult",
    "IntakeRow",
    "LeasedWrite",
    "Ledger",
    "NewEvent",
    "NewRecording",
    "OutcomesWritten",
    "Recording",
    "RegisterResult",
    "State",
    "as_utc",
    "create_ledger_engine",
    "open_ledger",
    "utc_now",
]
