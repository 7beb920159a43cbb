"""Any input file in bounded memory, every `ledger import` error one line (issue 25,
cases 8 and 13), through the real entry point on SQLite and PostgreSQL.

On main ``ledger import /dev/zero`` grew without bound (killed at 12.6 GB), a 300 MB file
with no newline took 965 MB before its error, ``TENIOS_CUSTODY_KEY_FILE=/dev/zero`` was
OOM-killed, and a directory, a missing or an empty file was a 6-8-line box.  The
memory tests run the command in a child process whose address space is capped at
1.5 GiB (``RLIMIT_AS``): reading a file whole there ends in a MemoryError traceback
(exit 1), a bounded read in its one-line error (exit 2).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]
ADDRESS_SPACE = 1536 * 1024 * 1024


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TENIOS_DATABASE_URL", database_url)
    return database_url


def capped(*argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run by this interpreter with its address space capped."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def recordings_in(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM recordings")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["/dev/zero", "300 MB, no newline"])
def test_an_endless_or_huge_line_ends_at_the_line_limit(
    migrated_sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    # The file is refused while it is read, before the ledger matters: SQLite suffices.
    monkeypatch.setenv("TENIOS_DATABASE_URL", migrated_sqlite_url)
    path = Path("/dev/zero")
    if kind != "/dev/zero":
        path = tmp_path / "one-line.csv"
        with path.open("wb") as handle:
            handle.truncate(300 * 1024 * 1024)  # sparse: 300 MB of NULs on no disk
    done = capped("-m", "tenios_io.cli", "ledger", "import", str(path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: line 1 is longer than 4,096 characters (the limit for a line of an "
        "import file: one id per line, or a CSV row); nothing was imported"
    ]
    assert recordings_in(migrated_sqlite_url) == 0


@pytest.mark.slow
def test_key_files_are_read_with_a_size_cap(tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "from tenios_io.exceptions import ConfigError\n"
        "from tenios_io.publish.log import load_signer\n"
        "from tenios_io.sftp.connect import _load_key\n"
        "for load in (lambda: load_signer(Path('/dev/zero')), "
        "lambda: _load_key(Path('/dev/zero'))):\n"
        "    try:\n"
        "        load()\n"
        "    except ConfigError as exc:\n"
        "        print(exc.variable, '|', exc)\n"
    )
    done = capped("-c", script)
    assert done.returncode == 0, done.stderr[-2000:]
    custody, sftp = done.stdout.strip().splitlines()
    assert custody.startswith("TENIOS_CUSTODY_KEY_FILE | TENIOS_CUSTODY_KEY_FILE: cannot use")
    assert "larger than 65,536 bytes" in custody
    assert sftp == (
        "TENIOS_SFTP_KEY_FILE | TENIOS_SFTP_KEY_FILE: /dev/zero is not a private key: larger "
        "than 65,536 bytes"
    )


def test_a_config_file_is_read_with_a_size_cap(cli: Cli) -> None:
    result = cli("--config", "/dev/zero", "ledger", "list")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "configuration error: config file /dev/zero is larger than 16,777,216 bytes (the "
        "limit for this file)"
    )


@pytest.mark.parametrize("kind", ["a directory", "missing", "empty", "comments only"])
def test_every_import_error_is_one_line(db: str, cli: Cli, tmp_path: Path, kind: str) -> None:
    assert cli("db", "upgrade").exit_code == 0
    path = {"a directory": tmp_path, "missing": tmp_path / "nope.csv"}.get(
        kind, tmp_path / "ids.txt"
    )
    if kind == "empty":
        path.write_text("")
    elif kind == "comments only":
        path.write_text("# nothing yet\n\n")
    result = cli("ledger", "import", str(path))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}")
    assert line.endswith("nothing was imported")
    expected = {
        "a directory": "is a directory, not a file",
        "missing": "does not exist",
        "empty": "names no recordings",
        "comments only": "names no recordings",
    }[kind]
    assert expected in line
    assert result.stdout.strip() == ""  # the progress display's blank line at most
    assert recordings_in(db) == 0
