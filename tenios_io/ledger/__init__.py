"""The SQL ledger: current state per recording, and the hash-chained custody log.

The names below are imported from their modules on first use (PEP 562): importing
``tenios_io.ledger`` for :class:`State` or :func:`open_ledger` (the CLI's option
types, `--help`) loads no SQLAlchemy; using :class:`Ledger` does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tenios_io.ledger.states import State

if TYPE_CHECKING:
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

_LAZY = {
    "ChainHead": "tenios_io.custody.chain",
    "ChainReport": "tenios_io.custody.chain",
    "NewEvent": "tenios_io.custody.chain",
    "create_ledger_engine": "tenios_io.ledger.engine",
    "DrainResult": "tenios_io.ledger.intake",
    "IntakeRow": "tenios_io.ledger.intake",
    **dict.fromkeys(
        (
            "Claim",
            "ImportResult",
            "LeasedWrite",
            "Ledger",
            "NewRecording",
            "OutcomesWritten",
            "Recording",
            "RegisterResult",
            "as_utc",
            "utc_now",
        ),
        "tenios_io.ledger.ledger",
    ),
}


def __getattr__(name: str) -> Any:
    """``from tenios_io.ledger import Ledger``: the name from its module, imported now."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


@contextmanager
def open_ledger(
    settings: Settings, *, actor: str | None = None, check_schema: bool = True
) -> Iterator[Ledger]:
    """A Ledger on ``TENIOS_DATABASE_URL``; the engine is disposed on exit.

    With ``check_schema`` (the default) a database that is not migrated to head is
    refused with SchemaNotCurrent (`tenios-archive db upgrade` fixes it).
    """
    from tenios_io.ledger.engine import create_ledger_engine
    from tenios_io.ledger.ledger import Ledger
    from tenios_io.ledger.schema import require_current

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
