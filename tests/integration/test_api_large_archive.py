"""A 1 GiB recording archived through the API with peak RSS flat in recording size.

`tenios-archive run nightly` runs as a child process (in-process run, no Prefect API)
against the simulator over HTTP and the moto server, both in this test process; the
simulator streams the WAV (it never holds it whole), moto keeps the object in *this*
process's memory (moto's cost, not the archiver's).

The child's peak is measured two ways: its own kernel high-water mark (``VmHWM``,
written by an ``atexit`` hook the child installs before calling the CLI's ``main``),
and psutil sampling the RSS summed over the child's whole process tree every 10 ms.
Not ``ru_maxrss``: Linux carries the forking process's high-water mark across exec.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tenios_io.simulator import RunningSimulator, Simulator
from tenios_io.simulator.catalogue import SAMPLE_RATE, SAMPLE_WIDTH
from tests.fixtures.cli import CliResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MB = 1000 * 1000
GiB = 1024 * 1024 * 1024
RSS_LIMIT = 150 * MB  # the bound for the run's process tree

CHILD = """
import atexit, sys

def write_peak(path=sys.argv[1]):
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(str(peak * 1024))

atexit.register(write_peak)
from tenios_io.cli import main
main(["run", "nightly"])
"""


def tree_rss(process: psutil.Process) -> int:
    """RSS summed over ``process`` and all its descendants (gone ones count 0)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:  # exited
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


@pytest.mark.slow
def test_one_gib_recording_archived_through_the_api_within_150_mb(
    simulator: Simulator,
    simulator_server: RunningSimulator,
    moto_server: str,
    moto_credentials: dict[str, str],
    plain_bucket: str,
    s3_client: S3Client,
    sqlite_url: str,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recording_uuid = simulator.add_recording(seconds=GiB / (SAMPLE_RATE * SAMPLE_WIDTH))
    size = simulator.expected_size(recording_uuid)
    assert size > GiB

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_", "PREFECT_API"))
    }
    env.update(
        moto_credentials,
        AWS_ENDPOINT_URL_S3=moto_server,
        TENIOS_API_URL=simulator_server.url,
        TENIOS_ACCESS_KEY=simulator_server.access_key,
        TENIOS_DATABASE_URL=sqlite_url,
        TENIOS_S3_BUCKET=plain_bucket,
        TENIOS_RETENTION_MODE="none",
        TENIOS_SPOOL_DIR=str(spool_dir),
        TENIOS_CUSTODY_KEY_FILE=os.environ["TENIOS_CUSTODY_KEY_FILE"],  # the session's key
    )
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    assert cli("db", "upgrade").exit_code == 0
    ids = tmp_path / "ids.txt"
    ids.write_text(recording_uuid + "\n")
    assert cli("ledger", "import", str(ids)).exit_code == 0

    peak_file = tmp_path / "peak"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(peak_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(child.pid)
    sampled_peak = 0
    exited = threading.Event()

    def sample() -> None:
        nonlocal sampled_peak
        while not exited.is_set():
            sampled_peak = max(sampled_peak, tree_rss(watched))
            exited.wait(0.01)  # sampling interval, not synchronisation

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        output, _ = child.communicate(timeout=900)
    finally:
        exited.set()
        sampler.join()
    assert child.returncode == 0, output
    assert simulator_server.access_key not in output

    head = s3_client.head_object(
        Bucket=plain_bucket,
        Key=next(
            item["Key"]
            for item in s3_client.list_objects_v2(Bucket=plain_bucket)["Contents"]
            if item["Key"].endswith(f"{recording_uuid}.wav")
        ),
    )
    assert head["ContentLength"] == size
    assert head["Metadata"]["sha256"] == simulator.expected_sha256(recording_uuid)
    assert list(spool_dir.iterdir()) == []

    peak = int(peak_file.read_text())
    with capsys.disabled():
        print(
            f"\n{size / 2**20:.0f} MiB through the API: run's peak RSS {peak / MB:.1f} MB "
            f"(VmHWM), process tree sampled {sampled_peak / MB:.1f} MB, "
            f"limit {RSS_LIMIT / MB:.0f} MB"
        )
    assert 0 < peak <= RSS_LIMIT
    assert 0 < sampled_peak <= RSS_LIMIT
