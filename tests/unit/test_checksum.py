"""HashingSpool, spool_stream and magic-byte detection (no network)."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tenios_io.recording.source import Sink
from tenios_io.recording.spool import (
    HashingSpool,
    Spooled,
    SpoolFiles,
    detect_content_type,
    remove_own_spools,
    remove_stale_spools,
    spool_stream,
)

WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(100)
ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(100)
MPEG_FRAME = b"\xff\xfb\x90\x64" + bytes(100)  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_spool_hashes_and_counts_what_was_written(tmp_path: Path) -> None:
    with HashingSpool(tmp_path) as spool:
        for part in (b"hello ", b"", b"world"):
            assert spool.write(part) == len(part)
        spooled = spool.finish()
        assert spooled == Spooled(
            path=spool.path,
            sha256=sha(b"hello world"),
            size=11,
            content_type="application/octet-stream",
            extension="bin",
        )
        assert spooled.path.read_bytes() == b"hello world"
        assert spooled.path.parent == tmp_path
        assert spool.finish() is spooled  # idempotent
    assert not spooled.path.exists()


def test_spool_is_a_sink(tmp_path: Path) -> None:
    def fill(sink: Sink) -> None:
        sink.write(b"x")

    with HashingSpool(tmp_path) as spool:
        fill(spool)
        assert spool.size == 1


@pytest.mark.parametrize("order", ["seek-then-truncate", "truncate-then-seek"])
def test_restart_resets_digest_and_size(tmp_path: Path, order: str) -> None:
    with HashingSpool(tmp_path) as spool:
        spool.write(WAV)  # a first, abandoned download of something else entirely
        if order == "seek-then-truncate":
            assert spool.seek(0) == 0
            assert spool.truncate() == 0
        else:
            assert spool.truncate(0) == 0
            assert spool.seek(0) == 0
        assert (spool.size, spool.sha256) == (0, sha(b""))
        spool.write(b"second ")
        spool.write(b"try")
        spooled = spool.finish()
        assert spooled.path.read_bytes() == b"second try"  # the file is cut at finish
    assert spooled.sha256 == sha(b"second try")
    assert spooled.size == len(b"second try")
    # the magic bytes are those of the restarted download, not of the abandoned one
    assert spooled.content_type == "application/octet-stream"


def test_seek_to_the_end_and_truncate_at_the_end_are_harmless(tmp_path: Path) -> None:
    with HashingSpool(tmp_path) as spool:
        spool.write(b"abc")
        assert spool.seek(0, io.SEEK_END) == 3
        assert spool.seek(0, io.SEEK_CUR) == 3
        assert spool.truncate() == 3
        spool.write(b"d")
        assert spool.finish().sha256 == sha(b"abcd")


def test_anything_that_would_desynchronise_the_hash_is_refused(tmp_path: Path) -> None:
    with HashingSpool(tmp_path) as spool:
        spool.write(b"abcdef")
        with pytest.raises(io.UnsupportedOperation):
            spool.seek(2)
        with pytest.raises(io.UnsupportedOperation):
            spool.truncate(3)
        with pytest.raises(ValueError):
            spool.seek(-1)
        spool.seek(0)
        with pytest.raises(io.UnsupportedOperation, match="seek\\(0\\) and truncate"):
            spool.write(b"X")  # overwriting without truncating first
        spool.seek(0, io.SEEK_END)
        spool.write(b"g")
        assert spool.finish().sha256 == sha(b"abcdefg")


def test_finished_or_closed_spool_refuses_writes(tmp_path: Path) -> None:
    spool = HashingSpool(tmp_path)
    spool.write(b"a")
    spool.finish()
    with pytest.raises(ValueError, match="finished"):
        spool.write(b"b")
    spool.close()
    spool.close()  # idempotent
    assert spool.closed
    with pytest.raises(ValueError, match="closed"):
        spool.write(b"b")


def test_file_is_deleted_on_error_exit_and_when_forgotten(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), HashingSpool(tmp_path) as spool:
        spool.write(b"partial")
        raise RuntimeError("download broke")
    assert list(tmp_path.iterdir()) == []

    forgotten = HashingSpool(tmp_path)
    forgotten.write(b"never closed")
    del forgotten
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_spool_stream_copies_in_chunks_and_keeps_memory_flat(tmp_path: Path) -> None:
    reads: list[int] = []

    class Source(io.RawIOBase):
        def __init__(self, total: int) -> None:
            self.left = total

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            n = min(size, self.left)
            self.left -= n
            return b"\x5a" * n

    total = 3 * 1024 * 1024 + 17
    with spool_stream(Source(total), tmp_path) as spool:  # type: ignore[arg-type]
        spooled = spool.finish()
    assert spooled.size == total
    assert spooled.sha256 == sha(b"\x5a" * total)
    assert set(reads) == {1024 * 1024}  # never "read everything"


def test_spool_stream_deletes_the_file_when_the_source_fails(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        spool_stream(Broken(), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (WAV, ("audio/wav", "wav")),
        (ID3, ("audio/mpeg", "mp3")),
        (MPEG_FRAME, ("audio/mpeg", "mp3")),
        (b"\xff\xf3\x60\xc4", ("audio/mpeg", "mp3")),  # MPEG-2 Layer III
        (b"\xff\xe3\x18\xc4", ("audio/mpeg", "mp3")),  # MPEG-2.5 Layer III (0xFFE sync)
        (b"\xff\xf1\x50\x80", ("application/octet-stream", "bin")),  # AAC ADTS: layer 00
        (b"\xff\xfb\xf0\x64", ("application/octet-stream", "bin")),  # bitrate index 1111
        (b"\xff\xfb\x9c\x64", ("application/octet-stream", "bin")),  # sample rate 11
        (b"\xff\xeb\x90\x64", ("application/octet-stream", "bin")),  # version 01 reserved
        (b"\xff\xd8\xff\xe0", ("application/octet-stream", "bin")),  # JPEG
        (b"RIFF\x00\x00\x00\x00AVI ", ("application/octet-stream", "bin")),
        (b"RIFF", ("application/octet-stream", "bin")),
        (b"", ("application/octet-stream", "bin")),
    ],
)
def test_detect_content_type(head: bytes, expected: tuple[str, str]) -> None:
    assert detect_content_type(head) == expected


@pytest.mark.parametrize(
    ("data", "expected"), [(WAV, "wav"), (ID3, "mp3"), (MPEG_FRAME, "mp3"), (b"\x00" * 64, "bin")]
)
def test_spool_detects_type_from_first_bytes_even_one_byte_at_a_time(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    with HashingSpool(tmp_path) as spool:
        for i in range(len(data)):
            spool.write(data[i : i + 1])
        assert spool.finish().extension == expected


def test_stale_spools_of_dead_processes_are_removed_live_ones_kept(tmp_path: Path) -> None:
    """Issue 12 item 2: a SIGKILLed run's spool files are removed at the next start."""
    import socket
    import subprocess
    import sys

    from tenios_io.recording.spool import HashingSpool, remove_stale_spools

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)  # that process has exited
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-")[:40]
    stale = tmp_path / f"tenios-{host}-{dead_pid}-abc123.spool"
    stale.write_bytes(b"half a recording")
    other_host = tmp_path / f"tenios-elsewhere-{dead_pid}-abc123.spool"
    other_host.write_bytes(b"x")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep")
    with HashingSpool(tmp_path) as live:
        live.write(b"in use")
        assert remove_stale_spools(tmp_path) == [stale]
        assert not stale.exists() and other_host.exists() and unrelated.exists()
        assert len(list(tmp_path.glob("*.spool"))) == 2  # ours (alive) and the other host's


# -- SpoolFiles: spool files kept for the next recording to overwrite --------------------------


def spool_bytes(files: SpoolFiles, data: bytes) -> tuple[Spooled, int]:
    """Spool ``data`` from ``files``; the Spooled and the file's inode while it was in use."""
    with files.spool() as spool:
        spool.write(data)
        spooled = spool.finish()
        assert spooled.path.read_bytes() == data
        inode = spooled.path.stat().st_ino
    return spooled, inode


def test_kept_files_are_overwritten_by_the_next_spool(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    first, first_inode = spool_bytes(files, WAV + b"a longer first recording")
    assert first.sha256 == sha(WAV + b"a longer first recording")
    assert files.kept == 1
    second, second_inode = spool_bytes(files, b"short")
    assert (second.path, second_inode) == (first.path, first_inode)
    assert (second.size, second.sha256, second.extension) == (5, sha(b"short"), "bin")
    assert files.kept == 1 and len(list(tmp_path.iterdir())) == 1
    files.close()
    assert list(tmp_path.iterdir()) == [] and files.kept == 0


def test_a_restart_on_a_kept_file_hashes_and_keeps_only_the_second_try(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    spool_bytes(files, bytes(1000))
    with files.spool() as spool:
        spool.write(b"abandoned download")
        spool.seek(0)
        spool.truncate()
        spool.write(b"second try")
        spooled = spool.finish()
        assert spooled.path.read_bytes() == b"second try"
        assert spooled.sha256 == sha(b"second try")
    files.close()


def test_files_larger_than_the_limit_are_not_kept(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path, keep_bytes=100)
    spool_bytes(files, bytes(101))
    assert files.kept == 0 and list(tmp_path.iterdir()) == []
    spool_bytes(files, bytes(100))
    assert files.kept == 1


def test_closing_deletes_kept_files_and_spools_given_back_later(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    spool_bytes(files, b"kept")
    in_use = files.spool()
    in_use.write(b"still being written")
    files.close()
    files.close()  # idempotent
    assert list(tmp_path.iterdir()) == [in_use.path]
    in_use.close()
    assert list(tmp_path.iterdir()) == []
    spool_bytes(files, b"after close")  # still works, keeps nothing
    assert list(tmp_path.iterdir()) == [] and files.kept == 0


def test_kept_files_go_when_the_pool_is_forgotten(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    spool_bytes(files, b"kept")
    assert len(list(tmp_path.iterdir())) == 1
    del files
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_kept_files_are_spools_for_the_cleanup_functions(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    spool_bytes(files, b"one")
    (kept,) = tmp_path.iterdir()
    assert remove_stale_spools(tmp_path) == []  # this process is alive
    assert remove_own_spools(tmp_path) == [kept]
    # A kept file removed behind the pool's back: the next spool makes a new one.
    spooled, _ = spool_bytes(files, b"two")
    assert spooled.sha256 == sha(b"two") and files.kept == 1
    files.close()


def test_threads_never_share_a_spool_file(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    ready = threading.Barrier(4)

    def work(n: int) -> list[tuple[str, bytes]]:
        seen = []
        for i in range(50):
            data = f"thread {n} recording {i} ".encode() * (1 + (i * 7 + n) % 13)
            with files.spool() as spool:
                if i == 0:
                    ready.wait()  # four spools open at once
                spool.write(data)
                spooled = spool.finish()
                seen.append((spooled.sha256, spooled.path.read_bytes()))
        return seen

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for seen in results:
        assert all(digest == sha(body) for digest, body in seen)
    assert files.kept == 4
    files.close()
    assert list(tmp_path.iterdir()) == []


def test_a_forked_child_never_uses_or_deletes_its_parents_kept_files(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path)
    spool_bytes(files, b"parent's")
    (kept,) = tmp_path.iterdir()
    pid = os.fork()
    if pid == 0:  # the child: exit codes say what went wrong
        code = 9
        try:
            with files.spool() as spool:
                spool.write(b"child's")
                code = 1 if spool.finish().path == kept else 0
            files.close()
            if len(list(tmp_path.iterdir())) != 1:
                code = 2  # the child's file was kept, or the parent's deleted
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert list(tmp_path.iterdir()) == [kept] and kept.read_bytes() == b"parent's"
    assert files.kept == 1
    files.close()
