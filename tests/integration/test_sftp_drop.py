"""SftpDrop against a real SFTP server (OpenSSH sshd; asyncssh where sshd is absent)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenios_io.exceptions import SourceFileMissing, SourceUnavailable, is_transient
from tenios_io.recording.spool import HashingSpool
from tenios_io.sftp import SftpConnection, SftpDrop, connect_sftp
from tests.fixtures.sshd import SftpServer

U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
U2 = "0c5a3f8e-6b8e-4c53-9a43-1f2e3d4c5b6a"
U3 = "5f0e7d9c-1b2a-4c3d-8e4f-a5b6c7d8e9f0"
LONG_AGO = time.time() - 3600


def put(path: Path, data: bytes, *, mtime: float | None = LONG_AGO) -> Path:
    """Write a drop file; an old mtime (default) makes it settled without waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def connection(sftp_server: SftpServer) -> Iterator[SftpConnection]:
    with connect_sftp(sftp_server.settings(), retry_delay=0) as connection:
        yield connection


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[HashingSpool]:
    with HashingSpool(tmp_path) as spool:
        yield spool


def make_drop(server: SftpServer, connection: SftpConnection, **options: object) -> SftpDrop:
    options.setdefault("settle_seconds", 60)
    return SftpDrop(connection, str(server.drop_dir), **options)  # type: ignore[arg-type]


# -- sweep ----------------------------------------------------------------------------------


def test_sweep_sorts_stable_growing_temporary_and_unmatched(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    d = sftp_server.drop_dir
    stable = put(d / f"{U1}.wav", b"RIFF stable")
    growing = put(d / "in" / f"{U2}.wav", b"RIFF growing", mtime=time.time() - 5)
    put(d / f"{U3}.wav.part", b"RIFF partial")
    put(d / f".{U3}.wav", b"RIFF hidden temp")
    notes = put(d / "notes.txt", b"leave me")

    result = make_drop(sftp_server, connection).sweep()

    assert [(f.path, f.recording_uuid, f.size) for f in result.ready] == [
        (str(stable), U1, len(b"RIFF stable"))
    ]
    assert result.ready[0].mtime == int(LONG_AGO)
    assert sorted(result.unsettled) == sorted(
        [str(d / f".{U3}.wav"), str(d / f"{U3}.wav.part"), str(growing)]
    )
    assert result.unmatched == [str(notes)]
    assert notes.read_bytes() == b"leave me"  # counted, never touched


def test_sweep_sees_a_file_grow_between_sweeps(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    clock_now = [time.time()]
    drop = make_drop(sftp_server, connection, settle_seconds=30, clock=lambda: clock_now[0])
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"RIFF part one")
    assert [f.path for f in drop.sweep().ready] == [str(path)]
    with path.open("ab") as f:
        f.write(b" and part two")
    os.utime(path, (LONG_AGO, LONG_AGO))  # an uploader that keeps the old mtime
    assert drop.sweep().unsettled == [str(path)]
    clock_now[0] += 30
    assert [f.size for f in drop.sweep().ready] == [len(b"RIFF part one and part two")]


def test_sweep_custom_pattern_and_duplicates(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    d = sftp_server.drop_dir
    hexed = U1.replace("-", "")
    first = put(d / "a" / f"rec-{hexed}.mp3", b"ID3 one")
    second = put(d / "b" / f"rec-{hexed}.mp3", b"ID3 two")
    other = put(d / f"{U2}.wav", b"RIFF")
    drop = make_drop(
        sftp_server, connection, pattern=r"^rec-(?P<recording_uuid>[0-9a-fA-F]{32})\.mp3$"
    )
    result = drop.sweep()
    assert [(f.path, f.recording_uuid) for f in result.ready] == [(str(first), U1)]
    assert [f.path for f in result.duplicates] == [str(second)]
    assert result.unmatched == [str(other)]


def test_sweep_of_a_missing_drop_is_a_config_error(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    from tenios_io.exceptions import ConfigError

    drop = SftpDrop(connection, str(sftp_server.drop_dir / "nope"))
    with pytest.raises(ConfigError, match="TENIOS_SFTP_URL"):
        drop.sweep()


# -- fetch ----------------------------------------------------------------------------------


def test_fetch_names_with_spaces_and_umlauts_byte_exact(
    sftp_server: SftpServer, spool: HashingSpool
) -> None:
    folder = sftp_server.drop_dir / "Ablage Müller"
    data = b"RIFF\x00\x00\x00\x00WAVE" + os.urandom(3 * 2**20 + 17)
    path = put(folder / f"Aufnahme Müller {U1}.wav", data)
    # the drop path itself has a space and an umlaut: percent-encoded in the URL
    settings = sftp_server.settings(sftp_url=sftp_server.url(folder))
    with connect_sftp(settings) as connection:
        drop = SftpDrop.from_settings(connection, settings)
        assert drop.root == str(folder)
        (found,) = drop.sweep().ready
        assert found.path == str(path) and found.recording_uuid == U1
        assert drop.fetch(found.path, spool) == len(data)
    assert (spool.size, spool.sha256) == (len(data), sha256(data))


def test_fetch_of_an_empty_file(
    sftp_server: SftpServer, connection: SftpConnection, spool: HashingSpool
) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"")
    assert make_drop(sftp_server, connection).fetch(str(path), spool) == 0
    assert spool.sha256 == sha256(b"")


def test_fetch_restarts_a_used_sink(
    sftp_server: SftpServer, connection: SftpConnection, spool: HashingSpool
) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"RIFF the real bytes")
    spool.write(b"left over from an earlier attempt")
    make_drop(sftp_server, connection).fetch(str(path), spool)
    assert spool.sha256 == sha256(b"RIFF the real bytes")


def test_fetch_of_a_missing_file(
    sftp_server: SftpServer, connection: SftpConnection, spool: HashingSpool
) -> None:
    with pytest.raises(SourceFileMissing) as caught:
        make_drop(sftp_server, connection).fetch(str(sftp_server.drop_dir / "gone.wav"), spool)
    assert not is_transient(caught.value)


def test_fetch_of_a_directory_is_missing_file(
    sftp_server: SftpServer, connection: SftpConnection, spool: HashingSpool
) -> None:
    with pytest.raises(SourceFileMissing, match="not a regular file"):
        make_drop(sftp_server, connection).fetch(str(sftp_server.drop_dir), spool)


class MeddlingSink(HashingSpool):
    """A spool that does something to the source file when the first chunk arrives."""

    def __init__(self, directory: Path, meddle: object) -> None:
        super().__init__(directory)
        self._meddle = meddle
        self.writes = 0

    def write(self, data: bytes, /) -> int:
        self.writes += 1
        if self.writes == 1:
            self._meddle()  # type: ignore[operator]
        return super().write(data)


def _appender(path: Path) -> object:
    def append() -> None:
        with path.open("ab") as f:
            f.write(b"more audio arrives")

    return append


def _truncater(path: Path) -> object:
    def truncate() -> None:
        os.truncate(path, path.stat().st_size // 4)

    return truncate


def _toucher(path: Path) -> object:
    def touch() -> None:
        data = path.read_bytes()
        path.write_bytes(bytes(reversed(data)))  # same size, new content and mtime
        os.utime(path, (LONG_AGO + 60, LONG_AGO + 60))

    return touch


@pytest.mark.parametrize(
    "meddler", [_appender, _truncater, _toucher], ids=["grew", "shrank", "rewritten"]
)
def test_a_file_changed_while_being_read_is_refused(
    sftp_server: SftpServer, connection: SftpConnection, tmp_path: Path, meddler: object
) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", os.urandom(8 * 2**20))
    with MeddlingSink(tmp_path, meddler(path)) as sink:  # type: ignore[operator]
        with pytest.raises(SourceUnavailable, match="changed while being read") as caught:
            make_drop(sftp_server, connection, chunk_size=2**16).fetch(str(path), sink)
        assert is_transient(caught.value)
        assert sink.size == 0  # never a half-written result
    # the next attempt, once the file is stable, is byte-exact
    with HashingSpool(tmp_path) as spool:
        make_drop(sftp_server, connection).fetch(str(path), spool)
        assert spool.sha256 == sha256(path.read_bytes())


# -- release --------------------------------------------------------------------------------


def test_release_keep(sftp_server: SftpServer, connection: SftpConnection) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"x")
    assert make_drop(sftp_server, connection, after="keep").release(str(path)) == "kept"
    assert path.exists()


def test_release_delete_is_idempotent(sftp_server: SftpServer, connection: SftpConnection) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"x")
    drop = make_drop(sftp_server, connection, after="delete")
    assert drop.release(str(path)) == "deleted"
    assert not path.exists()
    assert drop.release(str(path)) == "already gone"


def test_release_move_keeps_the_sub_path_and_is_idempotent(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    d = sftp_server.drop_dir
    path = put(d / "2024" / "06" / f"Aufnahme Müller {U1}.wav", b"RIFF")
    drop = make_drop(sftp_server, connection, after="move:archived")
    target = d / "archived" / "2024" / "06" / f"Aufnahme Müller {U1}.wav"
    assert drop.release(str(path)) == f"moved to {target}"
    assert target.read_bytes() == b"RIFF" and not path.exists()
    assert drop.release(str(path)) == "already gone"
    assert drop.sweep().ready == []  # the move target is not swept again


def test_release_move_to_an_absolute_dir_never_overwrites(
    sftp_server: SftpServer, connection: SftpConnection, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    put(archive / f"{U1}.wav", b"an earlier file of the same name")
    put(archive / f"{U1}.1.wav", b"and another")
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"the new one")
    drop = make_drop(sftp_server, connection, after=f"move:{archive}")
    assert drop.release(str(path)) == f"moved to {archive / f'{U1}.2.wav'}"
    assert (archive / f"{U1}.wav").read_bytes() == b"an earlier file of the same name"
    assert (archive / f"{U1}.2.wav").read_bytes() == b"the new one"


def test_release_failure_is_transient_and_leaves_the_file(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    d = sftp_server.drop_dir
    put(d / "blocker", b"a file where the archive directory should be")
    path = put(d / f"{U1}.wav", b"x")
    drop = make_drop(sftp_server, connection, after="move:blocker/archive")
    with pytest.raises(SourceUnavailable, match="the file stays in the drop") as caught:
        drop.release(str(path))
    assert is_transient(caught.value)
    assert path.read_bytes() == b"x"


def test_release_leaves_a_file_that_changed_since_archiving(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"a corrected upload")
    drop = make_drop(sftp_server, connection, after="delete")
    assert drop.release(str(path), expected_size=3).startswith("kept: the file changed")
    assert path.exists()
    assert drop.release(str(path), expected_size=len(b"a corrected upload")) == "deleted"


def test_release_proves_the_bytes_by_mtime_or_by_hashing_again(
    sftp_server: SftpServer, connection: SftpConnection
) -> None:
    archived = b"RIFF the archived recording"
    path = put(sftp_server.drop_dir / f"{U1}.wav", archived)
    drop = make_drop(sftp_server, connection, after="delete")
    hashed_at = float(int(path.stat().st_mtime))
    proof = {"expected_size": len(archived), "expected_sha256": sha256(archived)}

    # Same size, other bytes, a new mtime: hashed again, refused.
    put(path, b"RIFF a different recordingX", mtime=hashed_at + 10)
    kept = drop.release(str(path), **proof, expected_mtime=hashed_at)
    assert kept.startswith("kept: the file's bytes are not the archived ones")
    # Same size and mtime but no hash to compare: the mtime alone must match.
    assert drop.release(str(path), expected_size=len(archived), expected_mtime=hashed_at) == (
        f"kept: the file was modified since it was archived (mtime {hashed_at + 10} now, "
        f"{hashed_at} when it was read)"
    )
    assert path.exists()

    # The archived bytes again under a new mtime (touched, copied back): hashed, released.
    put(path, archived, mtime=hashed_at + 20)
    assert drop.release(str(path), **proof, expected_mtime=hashed_at) == "deleted"
    assert not path.exists()

    # The very file that was hashed (same size and mtime): released without reading it.
    put(path, archived, mtime=hashed_at)
    assert drop.release(str(path), **proof, expected_mtime=hashed_at) == "deleted"
