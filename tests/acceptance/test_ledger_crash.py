"""SIGKILL inside the ledger's transactions: the sequencer mid-integration, a worker
mid-write, each stopped just before its commit, and an import mid-merge, before and
after a chunk's commit (a real `tenios-archive` child process, both ledger backends).

Afterwards the custody history verifies, every event written is integrated exactly
once (the multiset of entry digests of queued + integrated events is unchanged), and
the sequence numbers run 1..N without a gap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.nightly import nightly_archive
from tenios_io.custody.chain import row_digest
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.importing import iter_import_file
from tenios_io.ledger.registration import MERGE_CHUNK
from tenios_io.ledger.tables import custody_queue, recordings
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.test_crash import RUNNER, assert_consistent

ROOT = Path(__file__).resolve().parents[2]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_until(
    point: str, marker: Path, env: dict[str, str], *args: str
) -> subprocess.Popen[bytes]:
    """Start `tenios-archive ARGS` in its own process group; return once it blocks at
    ``point`` (it writes ``marker`` there: no sleeping guess)."""
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), point, str(marker), "--", *args],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"the child ended (rc={proc.returncode}) before {point}:\n{out}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the child did not reach {point} in time")
        time.sleep(0.05)  # polling for the marker, not waiting for a guessed moment
    return proc


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    if proc.stdout:
        proc.stdout.close()


@dataclass(frozen=True)
class Custody:
    """Every custody event the database holds: the chain and the queue."""

    chain: list[tuple[int, str]]
    queued: list[int]
    digests: Counter[str]

    @property
    def total(self) -> int:
        return len(self.chain) + len(self.queued)


def custody_of(ledger: Ledger) -> Custody:
    chain: list[tuple[int, str]] = []
    digests: Counter[str] = Counter()
    for row in ledger.iter_events(page=1000):
        chain.append((int(row["seq"]), str(row["hash"])))
        digests[row_digest(row)] += 1
    with ledger.engine.connect() as conn:
        queued = list(
            conn.execute(sa.select(custody_queue).order_by(custody_queue.c.id)).mappings()
        )
    for row in queued:
        digests[row_digest(row)] += 1
    return Custody(chain, [int(row["id"]) for row in queued], digests)


def assert_integrated_exactly_once(ledger: Ledger, before: Custody) -> None:
    """Integrate what is queued; nothing lost, nothing doubled, seq gap-free."""
    ledger.integrate_all()
    report = ledger.verify_chain()
    assert report.ok, report.problem
    after = custody_of(ledger)
    assert after.queued == [] and report.queued == 0
    assert [seq for seq, _ in after.chain] == list(range(1, before.total + 1))
    assert after.chain[: len(before.chain)] == before.chain  # the old history is untouched
    assert after.digests == before.digests


def test_sequencer_killed_mid_integration_integrates_nothing_then_everything_once(
    database_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(create_ledger_engine(database_url), actor="worker")
    ledger.register([NewRecording(str(uuid.uuid4())) for _ in range(600)])  # integrated
    claims = ledger.claim_batch(400, lease_seconds=600, integrate=False)
    for claim in claims[:100]:
        ledger.record(claim.recording_uuid, claim.lease_token, [("fetched", {"size": 1})])
    before = custody_of(ledger)
    assert len(before.chain) == 600 and len(before.queued) == 500

    # `audit verify-chain` integrates the queue first: it stops with the chain entries
    # inserted and the queue rows deleted, uncommitted, and is killed there.
    child = start_until(
        "integrated_uncommitted",
        tmp_path / "reached",
        child_env({"TENIOS_DATABASE_URL": database_url}),
        "audit",
        "verify-chain",
    )
    sigkill(child)

    assert custody_of(ledger) == before  # the killed integration left no trace
    # Its lock died with it: the next sequencer integrates at once, without waiting.
    assert ledger.integrate(wait=False) == 500
    assert_integrated_exactly_once(ledger, before)
    ledger.engine.dispose()


@pytest.mark.slow
def test_worker_killed_mid_write_loses_nothing_and_the_rerun_finishes(
    world: ArchiveWorld,
) -> None:
    uuids = world.sim.seed(3)
    world.register(uuids)
    # One worker thread: when it blocks inside its first outcome write (the recordings
    # uploaded so far: fetched, uploaded, verified, archived), nothing
    # else writes custody events.
    child = start_until(
        "leased_write_uncommitted",
        world.tmp / "reached",
        child_env(world.env),
        "run",
        "nightly",
        "--concurrency",
        "1",
        "--batch-size",
        "10",
    )
    ledger = world.ledger()
    before = custody_of(ledger)
    sigkill(child)
    uploaded = [k for k in world.versions() if k.endswith(".wav")]
    assert uploaded  # the write being killed was for recordings already in the bucket
    after_kill = custody_of(ledger)
    assert after_kill == before  # the uncommitted write did not land, nothing was lost
    assert ledger.counts()[State.IN_PROGRESS] == 3
    written = {e["event"] for u in uuids for e in ledger.events(u)}  # integrates the queue first
    assert "claimed" in written and "fetched" not in written  # all of the write, or none
    assert_integrated_exactly_once(ledger, after_kill)
    ledger.engine.dispose()

    result = nightly_archive(max_wait_seconds=60)  # rescues the dead run's claims
    assert result["exit_code"] == 0
    assert_consistent(world, uuids)
    ledger = world.ledger()
    events = [e["event"] for u in uuids for e in ledger.events(u)]
    # Uploaded before the kill, found there by the re-run, not uploaded again.
    assert events.count("found_archived") == len(uploaded)
    assert events.count("archived") == 3
    ledger.engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["import_chunk_uncommitted", "import_chunk_committed"])
def test_import_killed_mid_merge_keeps_whole_chunks_and_the_rerun_adds_the_rest(
    database_url: str, tmp_path: Path, point: str
) -> None:
    ledger = Ledger(create_ledger_engine(database_url), actor="worker")
    known = [str(uuid.uuid4()) for _ in range(3)]
    ledger.register([NewRecording(key) for key in known])
    chunk = MERGE_CHUNK[ledger.engine.dialect.name]
    fresh = [str(uuid.uuid4()) for _ in range(chunk + 100)]  # two merge chunks
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{key}\n" for key in known + fresh))

    # `ledger import` is killed in its first chunk: before its commit, or right after.
    child = start_until(
        point,
        tmp_path / "reached",
        child_env({"TENIOS_DATABASE_URL": database_url}),
        "ledger",
        "import",
        str(path),
    )
    sigkill(child)

    landed = chunk - len(known) if point == "import_chunk_committed" else 0
    assert sum(ledger.counts().values()) == len(known) + landed  # whole chunks or nothing
    assert_every_recording_registered_once(ledger, len(known) + landed)

    again = ledger.import_recordings(iter_import_file(path))
    assert (again.added, again.known) == (len(fresh) - landed, len(known) + landed)
    assert_every_recording_registered_once(ledger, len(known) + len(fresh))
    ledger.engine.dispose()


def assert_every_recording_registered_once(ledger: Ledger, count: int) -> None:
    """The chain verifies, its seq runs 1..N, nothing waits in the queue, and every
    recording in the ledger has exactly one `registered` event (none without, none
    twice)."""
    report = ledger.verify_chain(integrate=False)
    assert report.ok, report.problem
    assert report.queued == 0
    events = list(ledger.iter_events(page=10_000))
    assert [int(row["seq"]) for row in events] == list(range(1, len(events) + 1))
    registered = Counter(
        str(row["recording_uuid"]) for row in events if row["event"] == "registered"
    )
    assert len(registered) == count and set(registered.values()) == {1}
    with ledger.engine.connect() as conn:
        keys = {str(key) for key in conn.execute(sa.select(recordings.c.recording_uuid)).scalars()}
    assert keys == set(registered)
