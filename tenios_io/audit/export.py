"""Flat records for exports: recording rows (CSV / JSONL) and custody events (JSONL).

Recording columns and their order are those of ``tenios-archive ledger export``;
times are ISO 8601 UTC with ``Z``, states their plain names.  A custody event is
exported exactly as stored (``details`` parsed into an object), so anyone can
recompute the hash chain from the export alone (README: "For compliance teams").
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

from tenios_io.ledger import Recording

EXPORT_COLUMNS: tuple[str, ...] = (
    "recording_uuid",
    "call_uuid",
    "state",
    "attempts",
    "last_error",
    "source",
    "content_type",
    "sha256",
    "size_bytes",
    "codec",
    "channels",
    "sample_rate",
    "duration_seconds",
    "s3_bucket",
    "s3_key",
    "s3_version_id",
    "retention_mode",
    "retain_until",
    "legal_hold",
    "recorded_at",
    "discovered_at",
    "fetched_at",
    "archived_at",
    "last_verified_at",
)


def export_row(rec: Recording) -> dict[str, Any]:
    """One recording as ``{column: JSON-ready value}`` in :data:`EXPORT_COLUMNS` order."""
    out: dict[str, Any] = {}
    for name in EXPORT_COLUMNS:
        value = getattr(rec, name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, StrEnum):
            value = value.value
        out[name] = value
    return out


class RowWriter:
    """Writes the same rows to a CSV and a JSONL file as they stream past.

    A list value (the report's ``custody_log_leaves``) is a JSON array in the JSONL
    and its items separated by spaces in the CSV.
    """

    def __init__(
        self, csv_file: IO[str], jsonl_file: IO[str], columns: Sequence[str] = EXPORT_COLUMNS
    ) -> None:
        self._csv = csv.DictWriter(csv_file, fieldnames=list(columns), lineterminator="\n")
        self._csv.writeheader()
        self._jsonl = jsonl_file
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._csv.writerow(
            {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()}
        )
        self._jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += 1

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.write(row)


#: The fields of an exported custody event, in the order they are written.
EVENT_FIELDS: tuple[str, ...] = (
    "seq",
    "recording_uuid",
    "event",
    "actor",
    "occurred_at",
    "details",
    "prev_hash",
    "hash",
)


def event_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored custody event as a JSON-ready dict (``details`` as an object)."""
    record = {name: row[name] for name in EVENT_FIELDS}
    record["seq"] = int(record["seq"])
    record["details"] = json.loads(row["details"])
    return record
