"""Big files over a real SFTP server: dropped connections mid-file, bounded memory, speed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenios_io.exceptions import SourceUnavailable, is_transient
from tenios_io.recording.spool import HashingSpool
from tenios_io.sftp import SftpDrop, connect_sftp
from tests.fixtures.sshd import SftpServer

REPO = Path(__file__).resolve().parents[2]
U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
MiB = 2**20


def write_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes (settled: old mtime); return their SHA-256."""
    digest = hashlib.sha256()
    block = bytearray(os.urandom(MiB))
    with path.open("wb") as f:
        written, n = 0, 0
        while written < size:
            block[:8] = n.to_bytes(8, "big")  # every MiB differs
            piece = bytes(block[: min(MiB, size - written)])
            f.write(piece)
            digest.update(piece)
            written += len(piece)
            n += 1
    os.utime(path, (time.time() - 3600,) * 2)
    return digest.hexdigest()


class DroppingSink(HashingSpool):
    """A spool that kills the server side of every SSH connection at its first write."""

    def __init__(self, directory: Path, server: SftpServer) -> None:
        super().__init__(directory)
        self.server = server
        self.dropped = False
        self.restarts = 0

    def write(self, data: bytes, /) -> int:
        if not self.dropped:
            self.dropped = True
            self.server.drop_connections()
        return super().write(data)

    def truncate(self, size: int | None = None, /) -> int:
        if self.size:
            self.restarts += 1
        return super().truncate(size)


# paramiko sends the read-ahead requests from a thread of its own; when the connection
# dies while that thread is still sending, the thread ends with an uncaught EOFError
# (printed by threading.excepthook; the read in the calling thread fails properly).
# pytest would turn that into an error under filterwarnings=error.
paramiko_prefetch_thread_dies = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)


@paramiko_prefetch_thread_dies
def test_connection_dropped_mid_file_then_a_later_fetch_is_byte_exact(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    path = sftp_server.drop_dir / f"{U1}.wav"
    expected = write_file(path, 32 * MiB)
    with connect_sftp(sftp_server.settings(), attempts=1, retry_delay=0) as connection:
        drop = SftpDrop(connection, str(sftp_server.drop_dir), settle_seconds=0)
        with DroppingSink(tmp_path, sftp_server) as sink:
            with pytest.raises(SourceUnavailable, match=r"lost|connect") as caught:
                drop.fetch(str(path), sink)
            assert is_transient(caught.value)
            assert sink.dropped and sink.size == 0  # nothing half-written left behind
        with HashingSpool(tmp_path) as spool:  # the connection reconnects lazily
            assert drop.fetch(str(path), spool) == 32 * MiB
            assert spool.sha256 == expected


@paramiko_prefetch_thread_dies
def test_connection_dropped_mid_file_is_retried_within_the_fetch(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    path = sftp_server.drop_dir / f"{U1}.wav"
    expected = write_file(path, 32 * MiB)
    with connect_sftp(sftp_server.settings(), attempts=3, retry_delay=0) as connection:
        drop = SftpDrop(connection, str(sftp_server.drop_dir), settle_seconds=0)
        with DroppingSink(tmp_path, sftp_server) as sink:
            assert drop.fetch(str(path), sink) == 32 * MiB
            assert sink.dropped and sink.restarts == 1  # started over from byte 0
            assert sink.sha256 == expected


# Peak RSS is read from /proc/self/status (VmHWM, reset by exec): getrusage's ru_maxrss
# would report the pytest parent's peak, which a forked child inherits.
CHILD = r"""
import json, sys, time
from tenios_io.recording.spool import HashingSpool
from tenios_io.config import Settings
from tenios_io.sftp import SftpDrop, connect_sftp


def peak_rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

job = json.loads(sys.argv[1])
settings = Settings(**job["settings"])
with connect_sftp(settings) as connection:
    drop = SftpDrop.from_settings(connection, settings)
    with HashingSpool(job["spool_dir"]) as spool:
        started = time.perf_counter()
        size = drop.fetch(job["path"], spool)
        seconds = time.perf_counter() - started
        print(json.dumps({
            "size": size,
            "sha256": spool.sha256,
            "seconds": seconds,
            "peak_rss": peak_rss(),
        }))
"""


def fetch_in_child(server: SftpServer, path: Path, spool_dir: Path) -> dict[str, float | str]:
    settings = server.settings()
    job = {
        "settings": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in settings.model_dump().items()
            if k.startswith("sftp_") and k != "sftp_password"
        },
        "path": str(path),
        "spool_dir": str(spool_dir),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_500_mb_file_with_bounded_memory(
    sftp_server: SftpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 500 * MiB
    big = sftp_server.drop_dir / f"{U1}.wav"
    expected = write_file(big, size)
    small = sftp_server.drop_dir / "1mib-8101fcb3-3843-4db3-9829-f7ab586625ff.wav"
    write_file(small, MiB)

    baseline = fetch_in_child(sftp_server, small, tmp_path)
    result = fetch_in_child(sftp_server, big, tmp_path)

    assert (result["size"], result["sha256"]) == (size, expected)
    peak = float(result["peak_rss"])
    rate = size / MiB / float(result["seconds"])
    with capsys.disabled():
        print(
            f"\n[sftp {sftp_server.kind}] 500 MiB fetched in {float(result['seconds']):.1f} s = "
            f"{rate:.0f} MiB/s; child peak RSS {peak / MiB:.0f} MiB "
            f"(same child fetching 1 MiB: {float(baseline['peak_rss']) / MiB:.0f} MiB)"
        )
    assert peak < 100 * MiB
