"""Reading recording ids from an import file, all-or-nothing.

Two formats: a CSV whose header contains ``recording_uuid`` (optional
``call_uuid``, ``recorded_at``), or plain text with one uuid per line (blank
lines and ``#`` comments skipped).  Any malformed value raises ImportFileError
naming its line and column, so nothing from a bad file is imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tenios_io.config import UUID_RE
from tenios_io.exceptions import ImportFileError
from tenios_io.ledger.ledger import NewRecording

_UUID = re.compile(rf"^{UUID_RE}$")
ProgressFn = Callable[[int], None]


def parse_uuid(value: str, *, line: int, column: str) -> str:
    """A canonical lower-case uuid, or ImportFileError naming line and column."""
    text = value.strip()
    if not _UUID.match(text):
        raise ImportFileError(
            f"line {line}, column {column}: {text!r} is not a UUID "
            "(expected e.g. 8101fcb3-3843-4db3-9829-f7ab586625fe); nothing was imported",
            line=line,
            column=column,
        )
    return text.lower()


def parse_datetime(value: str, *, line: int, column: str) -> datetime:
    """ISO 8601 (date, or date-time with Z / offset; naive means UTC)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ImportFileError(
            f"line {line}, column {column}: {text!r} is not a date "
            "(expected ISO 8601 such as 2016-04-11T09:00:00.000Z or 2016-04-11); "
            "nothing was imported",
            line=line,
            column=column,
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def read_import_file(path: Path, progress: ProgressFn | None = None) -> list[NewRecording]:
    """Every recording named in ``path``; raises before returning anything on a bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file", line=0, column="-") from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path}: not UTF-8 text (byte {exc.start})", line=0, column="-"
        ) from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "recording_uuid" in first:
        return _read_csv(text, progress)
    return _read_lines(text, progress)


def _read_lines(text: str, progress: ProgressFn | None) -> list[NewRecording]:
    out: list[NewRecording] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip()
        if value and not value.startswith("#"):
            out.append(NewRecording(parse_uuid(value, line=number, column="recording_uuid")))
        if progress and number % 10_000 == 0:
            progress(10_000)
    return out


def _read_csv(text: str, progress: ProgressFn | None) -> list[NewRecording]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    unknown = set(header) - {"recording_uuid", "call_uuid", "recorded_at"}
    if unknown:
        raise ImportFileError(
            f"line 1: unknown column(s) {', '.join(sorted(unknown))} "
            "(allowed: recording_uuid, call_uuid, recorded_at)",
            line=1,
            column=sorted(unknown)[0],
        )
    out: list[NewRecording] = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise ImportFileError(
                f"line {number}: more fields than the header has", line=number, column="-"
            )
        rec = (row.get("recording_uuid") or "").strip()
        if not rec:
            raise ImportFileError(
                f"line {number}, column recording_uuid: empty; nothing was imported",
                line=number,
                column="recording_uuid",
            )
        call = (row.get("call_uuid") or "").strip()
        when = (row.get("recorded_at") or "").strip()
        out.append(
            NewRecording(
                recording_uuid=parse_uuid(rec, line=number, column="recording_uuid"),
                call_uuid=parse_uuid(call, line=number, column="call_uuid") if call else None,
                recorded_at=parse_datetime(when, line=number, column="recorded_at")
                if when
                else None,
            )
        )
        if progress and len(out) % 10_000 == 0:
            progress(10_000)
    return out
