"""The Simulator's Python API, as tests and the demo use it (no HTTP here)."""

from __future__ import annotations

import hashlib

import pytest

from tenios_io.simulator import FaultPlan, Simulator

REC = "8101fcb3-3843-4db3-9829-f7ab586625fe"
CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"


def test_seed_is_deterministic() -> None:
    first, second = Simulator(seed=4), Simulator(seed=4)

    uuids = first.seed(5)

    assert uuids == second.seed(5)
    assert uuids != Simulator(seed=5).seed(5)
    assert [first.expected_sha256(u) for u in uuids] == [second.expected_sha256(u) for u in uuids]
    lengths = {first.recording(u).audio.seconds for u in uuids}
    assert len(lengths) == 5 and all(5 <= s <= 90 for s in lengths)


def test_add_recording_with_given_ids() -> None:
    sim = Simulator()

    assert sim.add_recording(REC.upper(), CALL, seconds=2, channels=2) == REC

    recording = sim.recording(REC)
    assert recording.call_uuid == CALL
    assert recording.audio.channels == 2
    assert sim.expected_size(REC) == 44 + 2 * 8000 * 4
    assert hashlib.sha256(sim.expected_bytes(REC)).hexdigest() == sim.expected_sha256(REC)


def test_add_recording_validates() -> None:
    sim = Simulator()
    with pytest.raises(ValueError, match="not a UUID"):
        sim.add_recording("nope")
    with pytest.raises(ValueError, match="fault token"):
        sim.add_recording(faults=["explode"])
    sim.add_recording(REC)
    with pytest.raises(ValueError, match="already exists"):
        sim.add_recording(REC)
    with pytest.raises(KeyError):
        sim.recording(CALL)


def test_readiness_with_a_fake_clock() -> None:
    now = [1000.0]
    sim = Simulator(clock=lambda: now[0], faults=FaultPlan(not_ready=30))

    seeded = sim.add_recording(seconds=1)
    late = sim.add_recording(seconds=1, not_ready=10)
    running = sim.add_recording(seconds=1, ready=False)

    assert sim.recording(seeded).is_ready(now[0])
    assert not sim.recording(late).is_ready(now[0])
    assert not sim.recording(running).is_ready(now[0])
    sim.stop_recording(running)  # the plan's not-ready applies to stops
    assert sim.recording(running).ready_at == 1030.0
    sim.stop_recording(running)  # twice is fine, nothing changes
    assert sim.recording(running).ready_at == 1030.0


def test_expected_bytes_refuses_huge_recordings() -> None:
    sim = Simulator()
    big = sim.add_recording(seconds=3600 * 2.5)  # ≈ 144 MB, never generated here
    with pytest.raises(ValueError, match="expected_sha256"):
        sim.expected_bytes(big)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError):
        Simulator(access_key="")
    with pytest.raises(ValueError):
        Simulator(recording_seconds=(10, 5))


def test_repr_shows_no_key() -> None:
    sim = Simulator(access_key="very-secret", faults=FaultPlan(error_503=0.1))
    assert "very-secret" not in repr(sim)
    assert "503=0.1" in repr(sim)
