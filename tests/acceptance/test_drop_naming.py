"""Drop file names are matched to ledger rows, not guessed (issue 12, item 1).

Against a real SFTP server (OpenSSH's sshd, or asyncssh where it is absent) and the
nightly flow, with both naming schemes: ``{date}_{call_uuid}_{recording_uuid}.wav``
(the call's UUID first) and ``{recording_uuid}.wav``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.nightly import nightly_archive
from tenios_io.audit import Category, build_report, drop_entries, reconcile
from tenios_io.config import load_settings
from tenios_io.ledger import State
from tenios_io.simulator.demo import DEMO_SFTP_PATTERN
from tenios_io.store import ArchiveStore, make_s3_client
from tests.acceptance.conftest import ArchiveWorld
from tests.fixtures.sshd import SftpServer


@pytest.fixture
def drop(world: ArchiveWorld, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = {
        "TENIOS_SFTP_URL": sftp_server.url(),
        "TENIOS_SFTP_KEY_FILE": str(sftp_server.key_file),
        "TENIOS_SFTP_KNOWN_HOSTS": str(sftp_server.known_hosts),
        "TENIOS_SFTP_SETTLE_SECONDS": "0",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
        world.env[key] = value
    return sftp_server.drop_dir


def call_first(world: ArchiveWorld, uuid: str) -> str:
    return f"20261130_{world.sim.recording(uuid).call_uuid}_{uuid}.wav"


def deliver(world: ArchiveWorld, drop: Path, uuid: str, name: str) -> Path:
    path = drop / name
    path.write_bytes(world.sim.expected_bytes(uuid))
    old = path.stat().st_mtime - 120
    os.utime(path, (old, old))
    return path


def ledger_ids(world: ArchiveWorld) -> list[str]:
    ledger = world.ledger()
    try:
        return sorted(r.recording_uuid for r in ledger.find())
    finally:
        ledger.engine.dispose()


def test_known_recordings_win_over_the_call_uuid_first_in_the_name(
    world: ArchiveWorld, drop: Path
) -> None:
    # The night: recordings registered by their real ids, then the drop (call
    # UUID first) is swept with the default pattern.  Before: 12 rows for 10 recordings.
    uuids = world.sim.seed(4)
    world.register(uuids)
    for u in uuids:
        deliver(world, drop, u, call_first(world, u))
    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["per_source"] == {"sftp": 4}
    assert result["sweep"]["registered"] == 0 and result["sweep"]["ambiguous"] == 0
    assert ledger_ids(world) == sorted(uuids)
    ledger = world.ledger()
    for u in uuids:
        rec = ledger.get(u)
        assert rec.state is State.ARCHIVED and rec.source == f"sftp:{drop / call_first(world, u)}"
        assert rec.sha256 == world.sim.expected_sha256(u)
    ledger.engine.dispose()
    assert len([k for k in world.versions() if k.endswith(".wav")]) == 4


def test_several_unknown_uuids_are_left_alone_and_reported(world: ArchiveWorld, drop: Path) -> None:
    uuids = world.sim.seed(2)
    paths = [deliver(world, drop, u, call_first(world, u)) for u in uuids]
    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0
    assert result["sweep"]["ambiguous"] == 2 and result["sweep"]["registered"] == 0
    assert sorted(p for p, _ in result["sweep"]["ambiguous_files"]) == sorted(map(str, paths))
    assert all("TENIOS_SFTP_PATTERN" in why for _, why in result["sweep"]["ambiguous_files"])
    assert ledger_ids(world) == []  # no call UUID became a recording id
    assert all(p.exists() for p in paths)

    settings = load_settings()
    ledger = world.ledger()
    s3 = make_s3_client()
    try:
        store = ArchiveStore.from_settings(settings, s3)
        listed = drop_entries(settings, ledger)
        assert listed is not None
        report = reconcile(ledger, store, listed[0])
        found = report.findings[Category.DROP_FILES_NOT_REGISTERED]
        assert sorted(f.location for f in found) == sorted(map(str, paths))
        assert all(f.recording_uuid is None and "matched no ledger row" in f.detail for f in found)
        audit = build_report(ledger, world.tmp / "report")
        assert sorted(f["path"] for f in audit.ambiguous_drop_files) == sorted(map(str, paths))
        assert any("matched no ledger row" in line for line in audit.findings)
        summary = json.loads((world.tmp / "report" / "summary.json").read_text())
        assert len(summary["drop_files_matching_no_row"]) == 2
    finally:
        s3.close()
        ledger.engine.dispose()


def test_an_explicit_pattern_registers_the_recording_and_its_call(
    world: ArchiveWorld, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENIOS_SFTP_PATTERN", DEMO_SFTP_PATTERN)
    uuids = world.sim.seed(3)
    for u in uuids:
        deliver(world, drop, u, call_first(world, u))
    result = nightly_archive(max_wait_seconds=30)
    assert result["per_source"] == {"sftp": 3} and result["sweep"]["registered"] == 3
    assert ledger_ids(world) == sorted(uuids)
    ledger = world.ledger()
    assert {ledger.get(u).call_uuid for u in uuids} == {
        world.sim.recording(u).call_uuid for u in uuids
    }
    ledger.engine.dispose()


def test_a_known_call_is_recognised_and_never_a_recording_id(
    world: ArchiveWorld, drop: Path
) -> None:
    (first,) = world.sim.seed(1)
    call = world.sim.recording(first).call_uuid
    second = world.sim.add_recording(call_uuid=call, seconds=3.0)  # the call's 2nd recording
    world.register([first])
    deliver(world, drop, second, f"20261130_{call}_{second}.wav")
    deliver(world, drop, first, f"{call}.wav")  # names the call only: which recording?
    result = nightly_archive(max_wait_seconds=30)
    assert result["sweep"]["registered"] == 1 and result["sweep"]["ambiguous"] == 1
    assert ledger_ids(world) == sorted([first, second])
    ledger = world.ledger()
    assert ledger.get(second).call_uuid == call
    assert ledger.get(second).state is State.ARCHIVED
    ledger.engine.dispose()


def test_one_uuid_per_name_keeps_working(world: ArchiveWorld, drop: Path) -> None:
    uuids = world.sim.seed(3)
    for u in uuids:
        deliver(world, drop, u, f"{u}.wav")
    result = nightly_archive(max_wait_seconds=30)
    assert result["per_source"] == {"sftp": 3} and result["sweep"]["registered"] == 3
    assert ledger_ids(world) == sorted(uuids)
