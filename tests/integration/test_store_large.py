"""A 1 GiB recording spooled and archived with bounded memory, measured in a child process.

The child runs what a worker runs — spool_stream (SHA-256 while copying to disk),
then ArchiveStore.archive (16 MiB parts) — against the moto server of this test
process, configured the way production is: boto3's standard chain reading
AWS_ENDPOINT_URL_S3 and the credentials from the child's environment.

Peak RSS is measured twice: the child reports its kernel high-water mark
(``VmHWM`` in /proc/self/status, exact, for the image after exec), and the parent
samples the child's RSS with psutil every 10 ms.  Not ``ru_maxrss`` (RUSAGE_SELF or
RUSAGE_CHILDREN / wait4): Linux carries the forking process's high-water mark
across exec into it, so it would report this test process's size (~170 MB here),
not the archiver's.  moto keeps the object in *this* process's memory; that is
moto's cost, not the archiver's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tenios_io.recording.spool import HashingSpool
from tenios_io.store import ArchiveStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
SIZE = 1024 * MiB
RSS_LIMIT = 128 * MiB  # the interpreter with boto3 alone is ~50 MiB

CHILD = """
import json, sys, time
from datetime import date
from tenios_io.recording.spool import spool_stream
from tenios_io.store import ArchiveStore, make_s3_client

source, bucket, spool_dir, recording_uuid, out = sys.argv[1:6]
started = time.monotonic()
store = ArchiveStore(make_s3_client(), bucket, retention_mode="none", part_size=16 * 1024 * 1024)
with open(source, "rb") as stream, spool_stream(stream, spool_dir) as spool:
    spooled = spool.finish()
    spooled_at = time.monotonic()
    obj = store.archive(
        spooled, recording_uuid=recording_uuid, call_uuid=None, source="test",
        key_date=date(2024, 1, 2),
    )
done = time.monotonic()
with open(out, "w") as file:
    json.dump({
        "key": obj.key, "sha256": obj.sha256, "size": obj.size,
        "spool_seconds": spooled_at - started, "archive_seconds": done - spooled_at,
        "vm_hwm_kib": next(
            int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
        ),
    }, file)
"""


def write_pseudo_random_file(path: Path, size: int) -> str:
    """``size`` seeded pseudo-random bytes, 1 MiB at a time; returns their SHA-256."""
    rng = random.Random(1234)
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(size // MiB):
            chunk = rng.randbytes(MiB)
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_one_gib_upload_stays_within_bounded_memory(
    plain_bucket: str,
    moto_server: str,
    moto_credentials: dict[str, str],
    make_store: Callable[..., ArchiveStore],
    s3_client: S3Client,
    tmp_path: Path,
) -> None:
    source = tmp_path / "recording.bin"
    expected_sha = write_pseudo_random_file(source, SIZE)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    result_file = tmp_path / "result.json"
    recording_uuid = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(moto_credentials, AWS_ENDPOINT_URL_S3=moto_server)
    repo_root = Path(__file__).resolve().parents[2]

    started = time.monotonic()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(source),
            plain_bucket,
            str(spool_dir),
            recording_uuid,
            str(result_file),
        ],
        env=env,
        cwd=repo_root,
    )
    sampled_peak = 0
    watched = psutil.Process(child.pid)
    exited = threading.Event()

    def sample() -> None:
        nonlocal sampled_peak
        while not exited.is_set():
            try:
                sampled_peak = max(sampled_peak, watched.memory_info().rss)
            except psutil.Error:  # gone between the check and the read
                return
            exited.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        returncode = child.wait(timeout=600)
    finally:
        exited.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert returncode == 0

    result = json.loads(result_file.read_text())
    peak_rss = result["vm_hwm_kib"] * 1024
    print(
        f"\n1 GiB archive: child peak RSS {peak_rss / MiB:.1f} MiB (VmHWM; sampled "
        f"{sampled_peak / MiB:.1f} MiB; limit {RSS_LIMIT / MiB:.0f} MiB, "
        f"file {SIZE / MiB:.0f} MiB); "
        f"spool {result['spool_seconds']:.1f} s, archive {result['archive_seconds']:.1f} s, "
        f"child total {elapsed:.1f} s"
    )
    assert 0 < sampled_peak <= peak_rss + MiB  # the two measurements agree
    assert peak_rss < RSS_LIMIT
    assert (result["sha256"], result["size"]) == (expected_sha, SIZE)
    assert list(spool_dir.iterdir()) == []  # the spool file is gone

    head = s3_client.head_object(Bucket=plain_bucket, Key=result["key"])
    assert head["ContentLength"] == SIZE
    assert head["ETag"].strip('"').endswith("-64")  # 64 parts of 16 MiB
    assert head["Metadata"]["sha256"] == expected_sha

    # byte-exact: stream it back down and hash it
    with HashingSpool(tmp_path) as spool:
        make_store(plain_bucket).download(result["key"], spool)
        assert spool.finish().sha256 == expected_sha
