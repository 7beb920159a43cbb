"""Delivery into the SFTP drop folder: naming, atomic rename, exact bytes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenios_io.simulator import Simulator
from tenios_io.simulator.catalogue import AudioSpec, Recording
from tenios_io.simulator.delivery import DropFolder

REC = "8101fcb3-3843-4db3-9829-f7ab586625fe"
CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"
STOPPED = datetime(2024, 3, 9, 23, 30, tzinfo=UTC).timestamp()


def recording() -> Recording:
    return Recording(REC, CALL, AudioSpec(seed=1, seconds=2, channels=2), 0.0, stopped_at=STOPPED)


def test_name_pattern_placeholders(tmp_path: Path) -> None:
    drop = DropFolder(tmp_path, "{date:%Y/%m/%d}/{call_uuid}_{recording_uuid}_{channels}ch.wav")
    assert drop.name_for(recording()) == f"2024/03/09/{CALL}_{REC}_2ch.wav"


def test_deliver_writes_the_exact_bytes_and_leaves_no_part_file(tmp_path: Path) -> None:
    drop = DropFolder(tmp_path, "rec-{recording_uuid}-{date:%Y%m%d}.wav")

    path = drop.deliver(recording())

    assert path == tmp_path / f"rec-{REC}-20240309.wav"
    assert path.read_bytes() == recording().audio.read_all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_deliver_writes_a_dot_part_file_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((Path(src).name, Path(dst).name))
        assert Path(src).exists() and not Path(dst).exists()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    DropFolder(tmp_path).deliver(recording())

    assert seen == [(f".{REC}.wav.part", f"{REC}.wav")]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{nope}.wav", "unknown placeholder"),
        ("/abs/{recording_uuid}.wav", "relative"),
        ("../{recording_uuid}.wav", "relative"),
        ("{recording_uuid}/", "relative"),
        ("{date:%Y", "drop name pattern"),
    ],
)
def test_bad_patterns_fail_early(tmp_path: Path, pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DropFolder(tmp_path, pattern)


def test_simulator_delivers_seeded_recordings_and_stopped_ones(tmp_path: Path) -> None:
    sim = Simulator(drop_dir=tmp_path, drop_name_pattern="{call_uuid}/{recording_uuid}.wav")

    ready = sim.add_recording(REC, CALL, seconds=1.5)
    running = sim.add_recording(seconds=1, ready=False)

    assert sim.delivered_path(ready) == tmp_path / CALL / f"{REC}.wav"
    assert (tmp_path / CALL / f"{REC}.wav").read_bytes() == sim.expected_bytes(ready)
    assert sim.delivered_path(running) is None

    sim.stop_recording(running)
    path = sim.delivered_path(running)
    assert path is not None and path.read_bytes() == sim.expected_bytes(running)
