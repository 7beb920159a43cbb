"""A drop file is archived only when the ledger saw it unchanged across two sweeps at
least TENIOS_SFTP_SETTLE_SECONDS apart (database clock) and its container is whole —
never because its server mtime looks old to this host (issue 11, item 5).  Real sshd."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from flows.nightly import nightly_archive
from tenios_io.ledger import State
from tenios_io.ledger.tables import drop_sightings
from tests.acceptance.conftest import ArchiveWorld, deliver


def _time_passes(world: ArchiveWorld, seconds: float) -> None:
    """As if ``seconds`` went by on the database clock since every recorded sighting."""
    ledger = world.ledger()
    with ledger.engine.begin() as conn:
        rows = conn.execute(sa.select(drop_sightings.c.path, drop_sightings.c.first_seen_at))
        for path, first in list(rows):
            conn.execute(
                drop_sightings.update()
                .where(drop_sightings.c.path == path)
                .values(first_seen_at=first - timedelta(seconds=seconds))
            )
    ledger.engine.dispose()


def _known(world: ArchiveWorld) -> list[str]:
    ledger = world.ledger()
    try:
        return [r.recording_uuid for r in ledger.find()]
    finally:
        ledger.engine.dispose()


def test_an_old_mtime_alone_is_not_stable_two_sightings_are(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    path = deliver(world, drop, u, f"{u}.wav", age=0)
    # The server's clock is a day behind (or the writer set the mtime): "old" by mtime.
    day_ago = path.stat().st_mtime - 86_400

    os.utime(path, (day_ago, day_ago))
    first = nightly_archive(max_wait_seconds=30)
    assert first["sweep"]["ready"] == 0 and first["sweep"]["unsettled"] == 1
    assert _known(world) == [] and path.exists()

    _time_passes(world, 31)  # TENIOS_SFTP_SETTLE_SECONDS is 30
    second = nightly_archive(max_wait_seconds=30)
    assert second["sweep"]["ready"] == 1 and second["per_source"] == {"sftp": 1}
    ledger = world.ledger()
    assert ledger.get(u).state is State.ARCHIVED
    assert ledger.get(u).sha256 == world.sim.expected_sha256(u)
    ledger.engine.dispose()


def test_a_file_that_grew_since_the_last_sighting_starts_again(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    whole = world.sim.expected_bytes(u)
    path = deliver(world, drop, u, f"{u}.wav", age=120)  # sighted 2 min ago ...
    path.write_bytes(whole[: len(whole) // 2])  # ... but then it was half as long: a
    world.sighted(path, age=120)  # writer that paused, sighted at half length
    path.write_bytes(whole)  # and resumed: now whole, mtime old by anyone's clock
    old = path.stat().st_mtime - 3600

    os.utime(path, (old, old))
    result = nightly_archive(max_wait_seconds=30)
    assert result["sweep"]["unsettled"] == 1 and result["sweep"]["ready"] == 0
    assert _known(world) == []


def test_a_wav_whose_header_promises_more_than_it_holds_is_left_alone(
    world: ArchiveWorld, drop: Path
) -> None:
    (u,) = world.sim.seed(1)
    whole = world.sim.expected_bytes(u)
    path = deliver(world, drop, u, f"{u}.wav", age=120)
    path.write_bytes(whole[: len(whole) - 1000])  # cut short, header unchanged
    world.sighted(path, age=120)  # and unchanged for two minutes
    result = nightly_archive(max_wait_seconds=30)
    sweep = result["sweep"]
    assert sweep["ready"] == 0 and sweep["unsettled"] == 1 and sweep["incomplete"] == 1
    [[where, why]] = sweep["incomplete_files"]
    assert where == str(path) and "cut short" in why
    assert _known(world) == [] and path.read_bytes() == whole[: len(whole) - 1000]
    assert result["exit_code"] == 0
