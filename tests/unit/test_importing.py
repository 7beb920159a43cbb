from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenios_io.exceptions import ImportFileError
from tenios_io.ledger.importing import read_import_file

A = "8101fcb3-3843-4db3-9829-f7ab586625fe"
B = "f57135d7-2e5c-44dd-bd82-bc1693596260"
C = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"


def test_plain_lines_with_comments_and_blanks(tmp_path: Path) -> None:
    f = tmp_path / "ids.txt"
    f.write_text(f"# export\n{A.upper()}\n\n{B}\n")
    assert [r.recording_uuid for r in read_import_file(f)] == [A, B]


def test_csv_with_optional_columns(tmp_path: Path) -> None:
    f = tmp_path / "ids.csv"
    f.write_text(f"recording_uuid,call_uuid,recorded_at\n{A},{C},2016-04-11T09:00:00.000Z\n{B},,\n")
    rows = read_import_file(f)
    assert rows[0].call_uuid == C
    assert rows[0].recorded_at == datetime(2016, 4, 11, 9, tzinfo=UTC)
    assert rows[1].call_uuid is None and rows[1].recorded_at is None


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        (f"recording_uuid\n{A}\nnot-a-uuid\n", 3, "recording_uuid"),
        (f"recording_uuid,call_uuid\n{A},xyz\n", 2, "call_uuid"),
        (f"recording_uuid,recorded_at\n{A},2016-13-45\n", 2, "recorded_at"),
        (f"{A}\n{B}\n{A}0\n", 3, "recording_uuid"),
    ],
)
def test_bad_value_names_line_and_column(
    tmp_path: Path, content: str, line: int, column: str
) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ImportFileError) as info:
        read_import_file(f)
    assert info.value.line == line and info.value.column == column
    assert f"line {line}" in str(info.value) and column in str(info.value)


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(f"recording_uuid,colour\n{A},red\n")
    with pytest.raises(ImportFileError, match="colour"):
        read_import_file(f)
