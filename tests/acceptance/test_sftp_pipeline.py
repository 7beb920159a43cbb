"""The nightly flow with the SFTP drop (a real OpenSSH sshd, or asyncssh where absent):
sweep → register → archive from SFTP first, the API for the rest → release only after
the S3 read-back."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.nightly import nightly_archive
from tenios_io.ledger import NewRecording, State
from tests.acceptance.conftest import ArchiveWorld, deliver


def test_drop_files_are_archived_from_sftp_then_moved(world: ArchiveWorld, drop: Path) -> None:
    from_drop = world.sim.seed(4)
    api_only = world.sim.seed(2)
    for n, u in enumerate(from_drop):
        deliver(world, drop, u, f"2026/11/Aufnahme Müller {n} {u}.wav")
    both = from_drop[0]
    world.register([*api_only, both])  # `both` is known via the API too: still one row
    (drop / "README.txt").write_text("not a recording")
    growing = world.sim.seed(1)[0]
    deliver(world, drop, growing, f"{growing}.wav", age=0)
    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["per_source"] == {"sftp": 4, "api": 2}
    assert result["sweep"]["ready"] == 4 and result["sweep"]["registered"] == 3
    assert result["sweep"]["unmatched"] == 1 and result["sweep"]["unsettled"] == 1
    ledger = world.ledger()
    for u in from_drop:
        rec = ledger.get(u)
        assert rec.state is State.ARCHIVED and rec.source and rec.source.startswith("sftp:")
        assert rec.sha256 == world.sim.expected_sha256(u)
        events = [e["event"] for e in ledger.events(u)]
        assert events[-1] == "released_from_source"
        assert events.index("archived") < events.index("released_from_source")
    assert "source_found" in [e["event"] for e in ledger.events(both)]
    moved = sorted(p.name for p in (drop / "archived").rglob("*.wav"))
    assert len(moved) == 4 and all(" " in name for name in moved)
    assert (drop / "README.txt").exists() and (drop / f"{growing}.wav").exists()
    assert growing not in [r.recording_uuid for r in ledger.find()]
    ledger.engine.dispose()


def test_a_pending_release_is_finished_by_the_next_sweep(
    world: ArchiveWorld, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uuids = world.sim.seed(2)
    for u in uuids:
        deliver(world, drop, u, f"{u}.wav")
    monkeypatch.setenv("TENIOS_SFTP_AFTER", "keep")
    first = nightly_archive(max_wait_seconds=30)
    assert first["per_source"] == {"sftp": 2}
    assert all((drop / f"{u}.wav").exists() for u in uuids)
    monkeypatch.setenv("TENIOS_SFTP_AFTER", "delete")
    second = nightly_archive(max_wait_seconds=30)
    assert second["counts"] == {} and second["sweep"]["released"] == 2
    assert not any((drop / f"{u}.wav").exists() for u in uuids)
    ledger = world.ledger()
    last = ledger.events(uuids[0])[-1]
    assert last["event"] == "released_from_source" and '"deleted"' in last["details"]
    ledger.engine.dispose()


def test_a_drop_file_gone_before_fetch_falls_back_to_the_api(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    ledger = world.ledger()
    ledger.register([NewRecording(u, source_path=str(drop / f"{u}.wav"))])  # never delivered
    result = nightly_archive(max_wait_seconds=30)
    assert result["per_source"] == {"api": 1}
    assert ledger.get(u).sha256 == world.sim.expected_sha256(u)
    ledger.engine.dispose()


def test_unknown_host_key_stops_the_run_before_any_work(
    world: ArchiveWorld, drop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: object
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    monkeypatch.setenv("TENIOS_SFTP_KNOWN_HOSTS", str(empty))
    result = cli("run", "nightly")  # type: ignore[operator]
    assert result.exit_code == 2
    assert "host key" in result.stderr and "ssh-keyscan" in result.stderr
