"""The simulator's audio: real WAV, deterministic, streamed, sized up front."""

from __future__ import annotations

import hashlib
import io
import wave

import pytest

from tenios_io.simulator.catalogue import HEADER_SIZE, AudioSpec, Catalogue, Recording


@pytest.mark.parametrize("channels", [1, 2])
def test_audio_is_a_valid_8khz_16bit_pcm_wav(channels: int) -> None:
    spec = AudioSpec(seed=3, seconds=2.5, channels=channels)

    data = spec.read_all()

    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == channels
        assert wav.getframerate() == 8000
        assert wav.getsampwidth() == 2
        assert wav.getnframes() == 20_000
        frames = wav.readframes(wav.getnframes())
    assert len(frames) == 20_000 * 2 * channels
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def test_size_is_known_up_front_and_telephony_sized() -> None:
    minute = AudioSpec(seed=1, seconds=60)
    assert minute.size == HEADER_SIZE + 60 * 8000 * 2  # ≈ 0.96 MB per minute, mono
    assert AudioSpec(seed=1, seconds=60, channels=2).size == HEADER_SIZE + 60 * 8000 * 4
    assert sum(len(c) for c in minute.chunks()) == minute.size


def test_same_spec_gives_the_same_bytes_whatever_the_chunking() -> None:
    spec = AudioSpec(seed=42, seconds=7.3, channels=2)
    whole = spec.read_all()

    assert b"".join(spec.chunks(1000)) == whole
    assert b"".join(spec.chunks(10 * 1024 * 1024)) == whole
    assert AudioSpec(seed=42, seconds=7.3, channels=2).read_all() == whole
    assert spec.sha256() == hashlib.sha256(whole).hexdigest()


def test_different_seeds_give_different_audio() -> None:
    assert AudioSpec(seed=1, seconds=3).read_all() != AudioSpec(seed=2, seconds=3).read_all()


def test_audio_is_not_silence() -> None:
    data = AudioSpec(seed=5, seconds=20).read_all()[HEADER_SIZE:]
    samples = memoryview(data).cast("h")
    assert max(samples) > 3000  # tones
    assert len(set(samples[:8000])) > 20  # noise


def test_chunks_are_bounded_in_size() -> None:
    spec = AudioSpec(seed=9, seconds=600, channels=2)  # ≈ 9.6 MB
    sizes = [len(c) for c in spec.chunks(256 * 1024)]
    assert max(sizes) < 256 * 1024 + 2 * 8000 * 2


@pytest.mark.parametrize(("seconds", "channels"), [(0, 1), (-1, 1), (1, 3)])
def test_bad_specs_are_refused(seconds: float, channels: int) -> None:
    with pytest.raises(ValueError):
        AudioSpec(seed=0, seconds=seconds, channels=channels)


def test_catalogue_is_case_insensitive_and_refuses_duplicates() -> None:
    catalogue = Catalogue()
    recording = Recording(
        recording_uuid="8101fcb3-3843-4db3-9829-f7ab586625fe",
        call_uuid="e3163745-1fbe-4b28-bf58-6e6030ca8ace",
        audio=AudioSpec(seed=0, seconds=1),
        started_at=0.0,
    )
    catalogue.add(recording)

    assert catalogue.get("8101FCB3-3843-4DB3-9829-F7AB586625FE") is recording
    assert catalogue.get("00000000-0000-4000-8000-000000000000") is None
    with pytest.raises(ValueError, match="already exists"):
        catalogue.add(recording)


def test_recording_readiness_follows_ready_at() -> None:
    recording = Recording("r", "c", AudioSpec(seed=0, seconds=1), started_at=0.0)
    assert not recording.is_ready(100.0)
    recording.stopped_at, recording.ready_at = 10.0, 40.0
    assert not recording.is_ready(39.9)
    assert recording.is_ready(40.0)
