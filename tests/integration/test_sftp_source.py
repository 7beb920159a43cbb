"""SftpSource (the RecordingSource of the drop) against a real SFTP server."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenios_io.exceptions import SourceFileMissing, SourceUnavailable
from tenios_io.recording.source import Fetched, FetchRequest, RecordingSource
from tenios_io.recording.spool import HashingSpool
from tenios_io.sftp import SftpSource
from tests.fixtures.sshd import SftpServer

U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
U2 = "0c5a3f8e-6b8e-4c53-9a43-1f2e3d4c5b6a"


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[HashingSpool]:
    with HashingSpool(tmp_path) as spool:
        yield spool


@pytest.mark.parametrize(
    ("after", "described"),
    [("keep", "kept"), ("delete", "deleted"), ("move:archived", "moved to {drop}/archived/in/")],
)
def test_sweep_fetch_release(
    sftp_server: SftpServer, spool: HashingSpool, after: str, described: str
) -> None:
    data = b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(4096)
    path = put(sftp_server.drop_dir / "in" / f"Aufnahme Müller {U1}.wav", data)
    settings = sftp_server.settings(sftp_after=after, sftp_settle_seconds=60)
    with SftpSource.from_settings(settings) as source:
        assert source.name == "sftp"
        recording_source: RecordingSource = source
        (found,) = source.drop.sweep().ready
        request = FetchRequest(recording_uuid=found.recording_uuid, source_path=found.path)

        assert recording_source.can_fetch(request)
        fetched = recording_source.fetch(request, spool)
        assert fetched == Fetched(
            source=f"sftp:{path}",
            size=len(data),
            content_type=None,
            source_mtime=float(int(path.stat().st_mtime)),  # what the release proves with
        )
        assert spool.sha256 == hashlib.sha256(data).hexdigest()

        outcome = recording_source.after_archived(request, fetched)
        assert outcome is not None
        assert outcome.startswith(described.format(drop=sftp_server.drop_dir))
        assert path.exists() == (after == "keep")
        if after != "keep":  # a second call (a crashed run's retry) is fine
            assert recording_source.after_archived(request, fetched) == "already gone"


def test_can_fetch_without_a_path_or_file(sftp_server: SftpServer) -> None:
    with SftpSource.from_settings(sftp_server.settings()) as source:
        assert not source.can_fetch(FetchRequest(recording_uuid=U1))
        missing = FetchRequest(U1, source_path=str(sftp_server.drop_dir / f"{U1}.wav"))
        assert not source.can_fetch(missing)
        assert source.after_archived(FetchRequest(U1), Fetched("api", 1)) is None


def test_fetch_errors_carry_the_recording_uuid(
    sftp_server: SftpServer, spool: HashingSpool
) -> None:
    other = put(sftp_server.drop_dir / f"{U2}.wav", b"RIFF someone else")
    with SftpSource.from_settings(sftp_server.settings()) as source:
        with pytest.raises(SourceFileMissing) as missing:
            source.fetch(FetchRequest(U1, source_path=str(sftp_server.drop_dir / "x.wav")), spool)
        assert missing.value.recording_uuid == U1

        with pytest.raises(SourceFileMissing, match="names recording") as mixed_up:
            source.fetch(FetchRequest(U1, source_path=str(other)), spool)
        assert mixed_up.value.recording_uuid == U1

        with pytest.raises(SourceFileMissing):
            source.fetch(FetchRequest(U1), spool)


def test_a_server_down_is_unavailable_not_absent(sftp_server: SftpServer) -> None:
    path = put(sftp_server.drop_dir / f"{U1}.wav", b"RIFF")
    with SftpSource.from_settings(sftp_server.settings(), attempts=1) as source:
        sftp_server.stop()
        with pytest.raises(SourceUnavailable) as caught:
            source.can_fetch(FetchRequest(U1, source_path=str(path)))
        assert caught.value.recording_uuid == U1
        sftp_server.start()
        assert source.can_fetch(FetchRequest(U1, source_path=str(path)))
