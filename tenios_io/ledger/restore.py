"""Rebuild an empty ledger from custody events (the custody log's entry bundles).

The events are the history; a recording's row is what its events say, replayed in
chain order:

- ``registered`` creates it (call uuid, recording date, drop path), ``pending``;
- ``claimed`` counts an attempt; a claim still open when the log ended is given back
  (``pending``: its lease died with the database);
- ``archived`` sets the archive columns (key, version, SHA-256, retention ...);
- ``failed`` / ``missing`` / ``conflict`` end it with the reason; ``retry_scheduled``,
  ``released`` and ``requeued`` put it back to ``pending``;
- ``verified`` dates the last verification, ``legal_hold`` / ``legal_hold_released``
  set the hold, ``purged`` ends it ``purged``.

The chain columns (``prev_hash``, ``hash``) are recomputed, so the restored chain is
byte-for-byte the one that was logged, and ``audit verify-chain`` checks it against
the bucket's checkpoints as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tenios_io.custody.chain import GENESIS, canonical_json, event_hash
from tenios_io.exceptions import LedgerError
from tenios_io.ledger.engine import write_transaction
from tenios_io.ledger.identity import adopt_ledger_id
from tenios_io.ledger.states import State
from tenios_io.ledger.tables import custody_events, custody_queue, recordings

_CHUNK = 5000
_ARCHIVE_COLUMNS = (
    "source",
    "content_type",
    "size_bytes",
    "sha256",
    "s3_bucket",
    "s3_key",
    "s3_version_id",
    "retention_mode",
)
_ARCHIVE_TIMES = ("retain_until", "fetched_at", "archived_at", "last_verified_at")


class LedgerNotEmpty(LedgerError):
    """A restore was asked for a ledger that already holds recordings or events."""


@dataclass(frozen=True)
class RestoreCounts:
    """What :func:`restore_events` inserted."""

    events: int
    recordings: int
    head_hash: str


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def restore_events(
    engine: Engine, events: Iterable[Mapping[str, Any]], *, ledger_id: str | None = None
) -> RestoreCounts:
    """Insert ``events`` (seq order, ``details`` a dict) and the rows they imply.

    One transaction: a failed restore leaves the ledger empty.  LedgerNotEmpty when the
    ledger has any recording, event or queued event.  ``ledger_id`` (the id the bucket
    keeps) becomes the ledger's id, so the restored ledger archives on into its bucket.
    """
    rows: dict[str, dict[str, Any]] = {}
    with write_transaction(engine) as conn:
        for table in (recordings, custody_events, custody_queue):
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise LedgerNotEmpty(
                    f"the ledger's {table.name} table is not empty: restore only into a new, "
                    "empty database (`tenios-archive db upgrade` on a fresh TENIOS_DATABASE_URL)"
                )
        prev, count, batch = GENESIS, 0, []
        for event in events:
            row = {
                "seq": int(event["seq"]),
                "recording_uuid": event["recording_uuid"],
                "event": event["event"],
                "actor": event["actor"],
                "occurred_at": event["occurred_at"],
                "details": canonical_json(event["details"]),
                "prev_hash": prev,
            }
            row["hash"] = prev = event_hash(prev, row)
            batch.append(row)
            count += 1
            if event["recording_uuid"]:
                _replay(rows, event)
            if len(batch) >= _CHUNK:
                conn.execute(custody_events.insert(), batch)
                batch = []
        if batch:
            conn.execute(custody_events.insert(), batch)
        values = list(rows.values())
        for start in range(0, len(values), _CHUNK):
            conn.execute(recordings.insert(), values[start : start + _CHUNK])
        if ledger_id is not None:
            adopt_ledger_id(conn, ledger_id)
    return RestoreCounts(count, len(rows), prev)


def _replay(rows: dict[str, dict[str, Any]], event: Mapping[str, Any]) -> None:
    uuid, name, details = event["recording_uuid"], event["event"], event["details"]
    when = _time(event["occurred_at"])
    row = rows.get(uuid)
    if name == "registered" or row is None:
        if row is not None:
            return
        details = details if name == "registered" else {}
        row = rows[uuid] = {
            "recording_uuid": uuid,
            "call_uuid": details.get("call_uuid"),
            "source_hint": "sftp" if details.get("source_path") else "api",
            "source_path": details.get("source_path"),
            "state": State.PENDING.value,
            "attempts": 0,
            "next_attempt_at": when,
            "discovered_at": when,
            "recorded_at": _time(details.get("recorded_at")),
            "legal_hold": False,
            "lease_expiries": 0,
        }
        if name == "registered":
            row["updated_at"] = when
            return
    row["updated_at"] = when
    if name == "claimed":
        row["attempts"] = int(details.get("attempt", row["attempts"] + 1))
        row["state"] = State.PENDING.value  # the lease died with the database
        row["next_attempt_at"] = when
    elif name == "archived":
        row["state"] = State.ARCHIVED.value
        row["last_error"] = None
        for column in _ARCHIVE_COLUMNS:
            row[column] = details.get(column)
        for column in _ARCHIVE_TIMES:
            row[column] = _time(details.get(column))
    elif name in (State.FAILED.value, State.MISSING.value, State.CONFLICT.value):
        row["state"] = name
        row["last_error"] = details.get("reason")
    elif name == "retry_scheduled":
        row["state"] = State.PENDING.value
        row["last_error"] = details.get("error")
        row["next_attempt_at"] = _time(details.get("next_attempt_at")) or when
    elif name == "released":
        row["state"] = State.PENDING.value
        row["attempts"] = max(0, row["attempts"] - 1)
        row["next_attempt_at"] = when
    elif name == "requeued":
        row.update(state=State.PENDING.value, attempts=0, lease_expiries=0, next_attempt_at=when)
    elif name == "verified":
        row["last_verified_at"] = when
    elif name in ("legal_hold", "legal_hold_released"):
        row["legal_hold"] = name == "legal_hold"
    elif name == "purged":
        row["state"] = State.PURGED.value
