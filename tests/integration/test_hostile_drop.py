"""Trust boundaries at the drop (issue 25, cases 2, 5, 6) against OpenSSH's sshd: anyone
who writes into the drop chooses its names, and a path the ledger holds may come from a
producer.  Each test failed on main: a path outside the drop was fetched and deleted, one
non-UTF-8 name failed every sweep, and a backtracking pattern stalled the sweep forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenios_io.exceptions import SourceFileMissing
from tenios_io.recording.source import FetchRequest
from tenios_io.recording.spool import HashingSpool
from tenios_io.sftp import SftpConnection, SftpDrop, SftpSource, connect_sftp
from tests.fixtures.moto import sample_wav
from tests.fixtures.sshd import SftpServer

U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
U2 = "0c5a3f8e-6b8e-4c53-9a43-1f2e3d4c5b6a"
LONG_AGO = time.time() - 3600


def put(path: Path | bytes, data: bytes) -> None:
    """A settled drop file (old mtime); ``path`` may be bytes (a name that is not UTF-8)."""
    with open(path, "wb") as handle:
        handle.write(data)
    os.utime(path, (LONG_AGO, LONG_AGO))


@pytest.fixture
def connection(sftp_server: SftpServer) -> Iterator[SftpConnection]:
    with connect_sftp(sftp_server.settings(), retry_delay=0) as connection:
        yield connection


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[HashingSpool]:
    with HashingSpool(tmp_path) as spool:
        yield spool


# -- case 2: never follow a path outside the drop ---------------------------------------------


def test_a_path_outside_the_drop_is_never_opened_moved_or_deleted(
    sftp_server: SftpServer, connection: SftpConnection, spool: HashingSpool
) -> None:
    outside_dir = sftp_server.workdir / "elsewhere"
    outside_dir.mkdir()
    outside = outside_dir / f"{U1}.wav"
    data = sample_wav(4000)
    put(outside, data)
    inside = sftp_server.drop_dir / f"{U2}.wav"
    put(inside, data)
    link = sftp_server.drop_dir / f"link-{U1}.wav"
    link.symlink_to(outside)
    (sftp_server.drop_dir / "linked-dir").symlink_to(outside_dir)
    drop = SftpDrop(connection, str(sftp_server.drop_dir), settle_seconds=0, after="delete")
    source = SftpSource(drop)
    escapes = [
        str(outside),  # absolute, elsewhere
        f"{sftp_server.drop_dir}/../elsewhere/{U1}.wav",  # climbs out
        f"../elsewhere/{U1}.wav",  # relative, climbs out
        f"{sftp_server.drop_dir}-sibling/{U1}.wav",  # a prefix of the root is not inside it
    ]

    for path in escapes:
        request = FetchRequest(U1, source_path=path)
        assert not source.can_fetch(request), path
        with pytest.raises(SourceFileMissing, match="outside the drop"):
            source.fetch(request, spool)
        released = drop.release(path, expected_size=len(data), expected_sha256=None)
        assert released.startswith("kept: the path lies outside the drop"), path
    # A symbolic link to a directory elsewhere does not lead out of the drop either.
    through = f"{sftp_server.drop_dir}/linked-dir/{U1}.wav"
    assert not source.can_fetch(FetchRequest(U1, source_path=through))
    with pytest.raises(SourceFileMissing, match="outside the drop"):
        source.fetch(FetchRequest(U1, source_path=through), spool)
    assert drop.release(through, expected_size=len(data)).startswith("kept: the path lies")
    # A symbolic link in the drop is not followed either.
    with pytest.raises(SourceFileMissing, match="outside the drop"):
        source.fetch(FetchRequest(U1, source_path=str(link)), spool)
    assert drop.release(str(link), expected_size=len(data)).startswith("kept: not a regular")
    assert outside.read_bytes() == data and link.is_symlink()

    # The drop's own files are still fetched and released as before (a relative path is
    # taken below the drop).
    fetched = source.fetch(FetchRequest(U2, source_path=f"{U2}.wav"), spool)
    assert fetched.size == len(data) and fetched.source == f"sftp:{U2}.wav"
    assert drop.release(str(inside), expected_size=len(data)) == "deleted"
    assert not inside.exists()


# -- case 5: a name that is not UTF-8 is skipped, the rest is swept ---------------------------


def test_a_name_that_is_not_utf8_is_skipped_and_reported(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    drop_dir = sftp_server.drop_dir
    put(drop_dir / f"{U1}.wav", sample_wav(2000))
    put(os.fsencode(drop_dir) + b"/caf\xe9-\x1b[31m-" + U2.encode() + b".wav", sample_wav(2000))
    (drop_dir / "sub").mkdir()
    put(drop_dir / "sub" / f"{U2}.wav", sample_wav(2000))
    drop = SftpDrop(connection, str(drop_dir), settle_seconds=0)

    found = drop.sweep()

    assert sorted(f.recording_uuid for f in found.ready) == sorted([U1, U2])
    [(name, why)] = found.skipped
    assert name == f"{drop_dir}/caf\\xe9-\\x1b[31m-{U2}.wav"
    assert why == "its name is not UTF-8"


# -- case 6: a backtracking pattern and a crafted name cannot stall the sweep -----------------

_SWEEP = """
import sys, time
from tenios_io.config import load_settings
from tenios_io.sftp import SftpSource
started = time.monotonic()
with SftpSource.from_settings(load_settings()) as source:
    found = source.drop.sweep()
print(len(found.ready), len(found.unmatched), round(time.monotonic() - started, 2))
"""


def test_a_backtracking_pattern_and_a_crafted_name_do_not_stall_the_sweep(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    # With Python's backtracking `re`, this name took longer than the age of the universe
    # (each further "a" doubles it; 22 of them take 0.2 s).
    pattern = r"^(?P<recording_uuid>(?:[0-9a-f]+-?)+)\.wav$"
    put(sftp_server.drop_dir / f"{U1}.wav", sample_wav(2000))
    put(sftp_server.drop_dir / ("a" * 60 + ".wa!"), b"x")
    env = {
        **os.environ,
        "TENIOS_SFTP_URL": sftp_server.url(),
        "TENIOS_SFTP_KEY_FILE": str(sftp_server.key_file),
        "TENIOS_SFTP_KNOWN_HOSTS": str(sftp_server.known_hosts),
        "TENIOS_SFTP_SETTLE_SECONDS": "0",
        "TENIOS_SFTP_PATTERN": pattern,
        "TENIOS_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SWEEP],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the sweep did not finish within 60 s")
    assert done.returncode == 0, done.stderr
    ready, unmatched, seconds = done.stdout.split()
    assert (ready, unmatched) == ("1", "1") and float(seconds) < 30


def test_a_pattern_re2_cannot_run_is_a_settings_error(sftp_server: SftpServer) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lookaround are not supported"):
        sftp_server.settings(sftp_pattern=r"(?<=x)(?P<recording_uuid>[0-9a-f-]{36})")


def test_a_drop_files_mtime_outside_the_window_is_not_its_recording_date(
    sftp_server: SftpServer, connection: SftpConnection, sqlite_url: str
) -> None:
    # Anyone who writes into the drop sets the mtime: year 1980 would start (and end)
    # the retention period before the archive existed.
    from tenios_io.ledger import Ledger, create_ledger_engine
    from tenios_io.ledger.schema import upgrade
    from tenios_io.sftp.sweep import sweep_drop

    upgrade(sqlite_url)
    old, fine = sftp_server.drop_dir / f"{U1}.wav", sftp_server.drop_dir / f"{U2}.wav"
    put(old, sample_wav(2000))
    put(fine, sample_wav(2000))
    ancient = 315_532_800.0  # 1980-01-01
    os.utime(old, (ancient, ancient))
    engine = create_ledger_engine(sqlite_url)
    try:
        ledger = Ledger(engine, actor="test")
        drop = SftpDrop(connection, str(sftp_server.drop_dir), settle_seconds=0)
        assert sweep_drop(drop, ledger, release=False, actor="test").registered == 2
        assert ledger.get(U1).recorded_at is None
        assert ledger.get(U1).key_date.year >= 2026
        fine_date = ledger.get(U2).recorded_at
        assert fine_date is not None and abs(fine_date.timestamp() - LONG_AGO) < 2
    finally:
        engine.dispose()
