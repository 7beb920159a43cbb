"""Hostile input through whole nightly runs (issue 25, cases 2 and 5): a real OpenSSH
drop, the simulator over HTTP, moto and a real ledger (SQLite and PostgreSQL).

On main, a ledger path outside the drop was fetched from there and, with
``TENIOS_SFTP_AFTER=delete``, that file was deleted; and one drop file whose name is
not UTF-8 made every run exit 1 with nothing archived.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.nightly import nightly_archive
from tenios_io.ledger import NewRecording, State
from tests.acceptance.conftest import ArchiveWorld, deliver


def events_of(world: ArchiveWorld, uuid: str) -> list[str]:
    ledger = world.ledger()
    try:
        return [e["event"] for e in ledger.events(uuid)]
    finally:
        ledger.engine.dispose()


@pytest.mark.slow
def test_a_path_outside_the_drop_is_neither_fetched_nor_deleted(
    world: ArchiveWorld, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENIOS_SFTP_AFTER", "delete")
    inside, outside = world.sim.seed(2)
    deliver(world, drop, inside, f"{inside}.wav")
    elsewhere = world.tmp / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / f"{outside}.wav"
    victim.write_bytes(world.sim.expected_bytes(outside))
    ledger = world.ledger()
    try:
        # As main's intake stored a producer's `sftp:/absolute/...` hint.
        ledger.register(
            [
                NewRecording(
                    outside,
                    call_uuid=world.sim.recording(outside).call_uuid,
                    source_path=str(victim),
                )
            ]
        )
    finally:
        ledger.engine.dispose()

    result = nightly_archive(max_wait_seconds=30)

    assert result["exit_code"] == 0
    assert result["per_source"] == {"api": 1, "sftp": 1}
    assert victim.read_bytes() == world.sim.expected_bytes(outside)  # untouched
    assert not (drop / f"{inside}.wav").exists()  # the drop's own file: deleted as asked
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in (inside, outside)} == {State.ARCHIVED}
    finally:
        ledger.engine.dispose()
    assert "release_intended" not in events_of(world, outside)


@pytest.mark.slow
def test_a_drop_name_that_is_not_utf8_stops_nothing(world: ArchiveWorld, drop: Path) -> None:
    from_drop, from_api = world.sim.seed(2)
    deliver(world, drop, from_drop, f"{from_drop}.wav")
    bad = os.fsencode(drop) + b"/aufnahme-\xe4\xf6-" + from_drop.encode() + b".wav"
    with open(bad, "wb") as handle:
        handle.write(world.sim.expected_bytes(from_drop))
    world.register([from_api])

    result = nightly_archive(max_wait_seconds=30)

    assert result["exit_code"] == 0, json.dumps(result, default=str)[:2000]
    assert result["per_source"] == {"api": 1, "sftp": 1}
    assert result["sweep"]["skipped"] == 1
    [[name, why]] = result["sweep"]["skipped_files"]
    assert name.endswith(f"/aufnahme-\\xe4\\xf6-{from_drop}.wav") and "not UTF-8" in why
    assert os.path.exists(bad)  # left alone
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in (from_drop, from_api)} == {State.ARCHIVED}
    finally:
        ledger.engine.dispose()
