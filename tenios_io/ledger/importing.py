"""Reading recording ids from an import file, all-or-nothing.

Two formats: a CSV whose header contains ``recording_uuid`` (optional
``call_uuid``, ``recorded_at``), or plain text with one uuid per line (blank
lines and ``#`` comments skipped).  Any malformed value raises ImportFileError
naming its line and column, so nothing from a bad file is imported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tenios_io.config import UUID_RE, quote_value
from tenios_io.exceptions import ImportFileError
from tenios_io.ledger.records import NewRecording
from tenios_io.untrusted import EARLIEST_RECORDED_AT, recorded_at_problem

_UUID = re.compile(rf"^{UUID_RE}$")
#: The longest line an import file may have: a CSV row of a recording_uuid, a call_uuid
#: and a timestamp is about 110 characters; a longer line is not an import line.
MAX_LINE_CHARS = 4096
ProgressFn = Callable[[int], None]


def parse_uuid(value: str, *, line: int, column: str) -> str:
    """A canonical lower-case uuid, or ImportFileError naming line and column."""
    text = value.strip()
    if not _UUID.match(text):
        raise ImportFileError(
            f"line {line}, column {column}: {quote_value(text)} is not a UUID "
            f"(expected e.g. 8101fcb3-3843-4db3-9829-f7ab586625fe){_header_hint(text, line)}; "
            "nothing was imported",
            line=line,
            column=column,
        )
    return text.lower()


def _header_hint(text: str, line: int) -> str:
    """A first line such as ``uuid`` or ``id,call`` is a header with the wrong name."""
    if line == 1 and re.search(r"uuid|\bid\b|recording", text, re.IGNORECASE):
        return "; if line 1 is a CSV header, name the column recording_uuid"
    return ""


def parse_datetime(value: str, *, line: int, column: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (date, or date-time with Z / offset; naive means UTC), within the sane
    window of tenios_io.untrusted (not before 1990, not in the future: the retention
    period starts here)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ImportFileError(
            f"line {line}, column {column}: {quote_value(text)} is not a date "
            "(expected ISO 8601 such as 2016-04-11T09:00:00.000Z or 2016-04-11); "
            "nothing was imported",
            line=line,
            column=column,
        ) from None
    moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    problem = recorded_at_problem(moment, now or datetime.now(UTC))
    if problem is not None:
        raise ImportFileError(
            f"line {line}, column {column}: {quote_value(text)} {problem} (a recording's "
            f"date must lie between {EARLIEST_RECORDED_AT:%Y-%m-%d} and today); nothing was "
            "imported",
            line=line,
            column=column,
        )
    return moment


def read_import_file(path: Path, progress: ProgressFn | None = None) -> list[NewRecording]:
    """Every recording named in ``path`` as a list (small files; see iter_import_file)."""
    return list(iter_import_file(path, progress))


def iter_import_file(path: Path, progress: ProgressFn | None = None) -> Iterator[NewRecording]:
    """The recordings named in ``path``, read as a stream (bounded memory: lines of at
    most :data:`MAX_LINE_CHARS`, so ``/dev/zero`` or a file without a newline is refused
    after a few KiB, not read whole).

    The file is opened now: a missing file, a directory or one that cannot be read is
    ImportFileError here, before the caller opens the ledger.  Raises ImportFileError at
    the first bad line; the caller's transaction (the ledger's import) then rolls back,
    so nothing from the file lands.
    """
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise _file_error(path, "does not exist") from None
    except IsADirectoryError:
        raise _file_error(path, "is a directory, not a file: name the file to import") from None
    except OSError as exc:
        raise _file_error(path, f"cannot be read ({exc.strerror or exc})") from None
    return _records(path, handle, progress)


def _file_error(path: Path, problem: str) -> ImportFileError:
    return ImportFileError(f"{path}: {problem}; nothing was imported", line=0, column="-")


def _records(path: Path, handle: IO[str], progress: ProgressFn | None) -> Iterator[NewRecording]:
    with handle:
        try:
            first = ""
            for raw in _bounded_lines(path, handle):
                if raw.strip():
                    first = raw
                    break
            handle.seek(0)
            lines = _bounded_lines(path, handle)
            if "recording_uuid" in first:
                yield from _read_csv(lines, progress)
            else:
                yield from _read_lines(lines, progress)
        except UnicodeDecodeError as exc:
            raise _file_error(path, f"not UTF-8 text (byte {exc.start} of a block)") from None
        except csv.Error as exc:  # e.g. a quoted field over the csv module's size limit
            raise _file_error(path, f"not a readable CSV file ({quote_value(str(exc))})") from None
        except OSError as exc:
            raise _file_error(path, f"cannot be read ({exc.strerror or exc})") from None


def _bounded_lines(path: Path, handle: IO[str]) -> Iterator[str]:
    """The lines of ``handle``, each read with a limit: ImportFileError naming the line
    once one is longer than MAX_LINE_CHARS (memory stays bounded whatever the file)."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise ImportFileError(
                f"{path}: line {number} is longer than {MAX_LINE_CHARS:,} characters (the "
                "limit for a line of an import file: one id per line, or a CSV row); nothing "
                "was imported",
                line=number,
                column="-",
            )
        yield line


def _read_lines(lines: Iterator[str], progress: ProgressFn | None) -> Iterator[NewRecording]:
    number = 0
    for number, raw in enumerate(lines, start=1):
        value = raw.strip()
        if value and not value.startswith("#"):
            yield NewRecording(parse_uuid(value, line=number, column="recording_uuid"))
        if progress and number % 10_000 == 0:
            progress(10_000)
    if progress and number % 10_000:
        progress(number % 10_000)


def _read_csv(lines: Iterator[str], progress: ProgressFn | None) -> Iterator[NewRecording]:
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    unknown = set(header) - {"recording_uuid", "call_uuid", "recorded_at"}
    if unknown:
        raise ImportFileError(
            f"line 1: unknown column(s) {', '.join(quote_value(u) for u in sorted(unknown))} "
            "(allowed: recording_uuid, call_uuid, recorded_at)",
            line=1,
            column=sorted(unknown)[0],
        )
    count = 0
    now = datetime.now(UTC)
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
        yield NewRecording(
            recording_uuid=parse_uuid(rec, line=number, column="recording_uuid"),
            call_uuid=parse_uuid(call, line=number, column="call_uuid") if call else None,
            recorded_at=(
                parse_datetime(when, line=number, column="recorded_at", now=now) if when else None
            ),
        )
        count += 1
        if progress and count % 10_000 == 0:
            progress(10_000)
    if progress and count % 10_000:
        progress(count % 10_000)
