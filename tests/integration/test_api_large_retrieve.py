"""A 200 MB recording is retrieved with bounded memory, byte-exact.

The simulator runs in this process; the retrieve runs in a child process, whose
peak RSS is compared with a child that only imports and builds the same client.
Peak RSS is the child's ``VmHWM``: ``ru_maxrss`` would also count the parent's
high-water mark, which Linux carries over into a child across fork and exec.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tenios_io.simulator import RunningSimulator, Simulator

SIZE_MB = 200
CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    from tenios_io.api import TeniosClient, make_http_client

    class HashingSink:
        # Keeps nothing: hashes what it is given; truncate() starts over.
        def __init__(self):
            self.truncate()
        def write(self, data):
            self.digest.update(data)
            self.size += len(data)
            return len(data)
        def seek(self, offset, whence=0):
            return 0
        def truncate(self, size=None):
            self.digest, self.size = hashlib.sha256(), 0
            return 0

    mode, url, key, recording_uuid = sys.argv[1:5]
    sink = HashingSink()
    with make_http_client(url) as http:
        client = TeniosClient(http, key)
        if mode == "retrieve":
            client.retrieve_recording(recording_uuid, sink)
        elif mode == "buffered":  # the control: what holding the body in memory costs
            body = http.post(
                "record-call/retrieve", json={"access_key": key, "recording_uuid": recording_uuid}
            ).content
            sink.write(body)
    with open("/proc/self/status") as status:
        peak_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    print(json.dumps({
        "peak_kb": peak_kb,
        "size": sink.size,
        "sha256": sink.digest.hexdigest(),
    }))
    """
)


def run_child(mode: str, running: RunningSimulator, recording_uuid: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, running.url, running.access_key, recording_uuid],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_200_mb_retrieve_keeps_memory_bounded(
    simulator: Simulator, simulator_server: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    seconds = SIZE_MB * 1024 * 1024 / (8000 * 2)  # mono 8 kHz 16-bit
    recording_uuid = simulator.add_recording(seconds=seconds, faults=["truncate", "ok", "ok"])
    size = simulator.expected_size(recording_uuid)
    assert size > SIZE_MB * 1024 * 1024

    baseline = run_child("baseline", simulator_server, recording_uuid)
    retrieved = run_child("retrieve", simulator_server, recording_uuid)
    buffered = run_child("buffered", simulator_server, recording_uuid)

    digest = simulator.expected_sha256(recording_uuid)
    assert (retrieved["size"], retrieved["sha256"]) == (size, digest)
    assert (buffered["size"], buffered["sha256"]) == (size, digest)
    # the client's first try was cut at half and retried: 300 MB went over the wire
    assert [r.fault for r in simulator.requests] == ["truncate", "ok", "ok"]

    def growth(child: dict[str, object]) -> float:
        return (int(str(child["peak_kb"])) - int(str(baseline["peak_kb"]))) / 1024

    with capsys.disabled():
        print(
            f"\n{size / 2**20:.0f} MiB retrieve: child peak RSS growth {growth(retrieved):.1f} MB "
            f"over a {int(str(baseline['peak_kb'])) / 1024:.1f} MB baseline "
            f"(holding the body in memory instead: {growth(buffered):.0f} MB)"
        )
    assert growth(retrieved) < 60
    assert growth(buffered) > SIZE_MB  # the measurement does see a buffered body
