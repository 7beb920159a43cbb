"""Releasing a drop file loses no evidence: SIGKILL a real run (OpenSSH sshd drop)
between ``release_intended`` and the move, and between the move and
``released_from_source``; the next run's sweep finishes or records the release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.nightly import nightly_archive
from tenios_io.ledger import State
from tenios_io.sftp.release import FINISHED_NOTE, GONE_NOTE
from tests.acceptance.conftest import ArchiveWorld, deliver
from tests.acceptance.test_crash import run_and_kill


def _events(world: ArchiveWorld, uuid: str) -> list[dict[str, object]]:
    ledger = world.ledger()
    try:
        return [{**e, "details": json.loads(e["details"])} for e in ledger.events(uuid)]
    finally:
        ledger.engine.dispose()


def _names(events: list[dict[str, object]]) -> list[object]:
    return [e["event"] for e in events]


@pytest.mark.slow
def test_killed_after_the_intent_the_next_sweep_finishes_the_release(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    path = deliver(world, drop, u, f"{u}.wav")
    run_and_kill(world, "after_release_intent", "--concurrency", "1")

    assert path.exists()  # the intent is written, the file not yet touched
    names = _names(_events(world, u))
    assert names[-1] == "release_intended" and "released_from_source" not in names
    intent = _events(world, u)[-1]["details"]
    assert intent == {
        "source": f"sftp:{path}",
        "path": str(path),
        "action": f"move:{drop / 'archived'}",
        "sha256": world.sim.expected_sha256(u),
        "size": len(world.sim.expected_bytes(u)),
        "source_mtime": float(int(path.stat().st_mtime)),
    }

    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["sweep"]["interrupted_releases"] == 1 and result["sweep"]["released"] == 1
    assert not path.exists() and (drop / "archived" / f"{u}.wav").exists()
    events = _events(world, u)
    assert _names(events).count("release_intended") == 1
    assert _names(events).count("released_from_source") == 1
    released = events[-1]
    assert released["event"] == "released_from_source"
    assert released["details"]["note"] == FINISHED_NOTE  # type: ignore[index]
    assert str(released["details"]["action"]).startswith("moved to ")  # type: ignore[index]
    ledger = world.ledger()
    assert ledger.get(u).state is State.ARCHIVED
    assert ledger.releases_in_flight() == [] and ledger.verify_chain().ok
    ledger.engine.dispose()


@pytest.mark.slow
def test_killed_after_the_move_the_next_sweep_records_the_release(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    path = deliver(world, drop, u, f"{u}.wav")
    run_and_kill(world, "after_release_action", "--concurrency", "1")

    moved = drop / "archived" / f"{u}.wav"
    assert not path.exists() and moved.exists()  # moved, and nothing says so yet
    assert "released_from_source" not in _names(_events(world, u))

    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["sweep"]["interrupted_releases"] == 1 and result["sweep"]["released"] == 1
    events = _events(world, u)
    assert _names(events).count("released_from_source") == 1
    released = events[-1]
    assert released["event"] == "released_from_source"
    assert released["details"] == {
        "source": f"sftp:{path}",
        "action": "already gone",
        "sha256": world.sim.expected_sha256(u),
        "size": len(world.sim.expected_bytes(u)),
        "by": "sweep",
        "note": GONE_NOTE,
        "move_target": str(moved),
        "found_at_move_target": True,
    }
    ledger = world.ledger()
    assert ledger.releases_in_flight() == [] and ledger.verify_chain().ok
    ledger.engine.dispose()
    # A third run has nothing left to settle.
    assert nightly_archive(max_wait_seconds=30)["sweep"]["interrupted_releases"] == 0
