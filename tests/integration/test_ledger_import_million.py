"""`ledger import` of a million lines with one bad line near the end: nothing lands and
the line is named (the real entry point, both ledger backends).

The import streams the file into its staging in chunks; all-or-nothing must still hold
when the bad line comes after hundreds of chunks were staged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.tables import custody_events, custody_queue, recordings
from tests.fixtures.cli import CliResult

LINES = 1_000_000
BAD_LINE = 999_990


def write_ids(path: Path, lines: int, bad_line: int) -> None:
    """One uuid per line; ``bad_line`` is not a uuid.  uuid4 formatting, written in blocks."""
    with path.open("w", encoding="ascii") as out:
        block: list[str] = []
        for number in range(1, lines + 1):
            block.append("not-a-recording-uuid\n" if number == bad_line else f"{uuid.uuid4()}\n")
            if len(block) == 50_000:
                out.writelines(block)
                block.clear()
        out.writelines(block)


@pytest.mark.slow
def test_a_million_line_import_with_a_bad_line_near_the_end_imports_nothing(
    database_url: str,
    tmp_path: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", database_url)
    path = tmp_path / "ids.txt"
    write_ids(path, LINES, BAD_LINE)

    result = cli("ledger", "import", str(path))

    assert result.exit_code == 2, result.output  # a bad import file (README: exit codes)
    (message,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert f"line {BAD_LINE}, column recording_uuid" in message
    assert "not-a-recording-uuid" in message and "nothing was imported" in message
    engine = create_ledger_engine(database_url)
    with engine.connect() as conn:
        for table in (recordings, custody_queue, custody_events):
            count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            assert count == 0, table.name
    assert Ledger(engine).verify_chain().events == 0
    engine.dispose()
