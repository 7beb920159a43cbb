"""The whole-recording check (tenios_io/container.py) on files made here."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest

from tenios_io.container import AudioFacts, describe_duration, inspect_recording
from tenios_io.exceptions import RecordingInvalid, is_transient


def wav_bytes(seconds: float = 1.0, channels: int = 1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(seconds * rate) * channels * 2))
    return buffer.getvalue()


def mp3_bytes(frames: int = 20) -> bytes:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417 bytes per frame.
    header = bytes([0xFF, 0xFB, 0x90, 0xC4])  # mode 11: mono
    return (header + bytes(417 - 4)) * frames


def check(tmp_path: Path, data: bytes, declared: int | None = None) -> AudioFacts:
    path = tmp_path / "rec"
    path.write_bytes(data)
    return inspect_recording(path, len(data), declared)


def refused(tmp_path: Path, data: bytes, declared: int | None = None) -> str:
    with pytest.raises(RecordingInvalid) as info:
        check(tmp_path, data, declared)
    assert is_transient(info.value)
    return str(info.value)


def test_a_whole_wav_gives_its_facts(tmp_path: Path) -> None:
    facts = check(tmp_path, wav_bytes(2.5, channels=2))
    assert facts == AudioFacts("pcm", 2, 8000, 2.5)
    assert facts.as_metadata()["duration-seconds"] == "2.500"


def test_a_wav_cut_short_is_refused(tmp_path: Path) -> None:
    data = wav_bytes(2.0)
    assert "cut short" in refused(tmp_path, data[: len(data) // 2])


def test_a_wav_whose_header_promises_more_than_it_holds_is_refused(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(1.0))
    struct.pack_into("<I", data, 40, 99_999)  # the data chunk's size
    struct.pack_into("<I", data, 4, len(data) - 8 + 99_999 - 16_000)
    assert "WAV" in refused(tmp_path, bytes(data))


def test_a_wav_with_bytes_beyond_its_riff_size_is_refused(tmp_path: Path) -> None:
    assert "the file has" in refused(tmp_path, wav_bytes(1.0) + b"\x00" * 10)


@pytest.mark.parametrize("riff_size", [0, 0xFFFFFFFF])
def test_a_wav_that_never_filled_in_its_size_cannot_prove_completeness(
    tmp_path: Path, riff_size: int
) -> None:
    data = bytearray(wav_bytes(1.0))
    struct.pack_into("<I", data, 4, riff_size)
    assert "cannot be proven" in refused(tmp_path, bytes(data))


def test_a_wav_data_chunk_of_partial_frames_is_refused(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(1.0, channels=2)[:-2])
    struct.pack_into("<I", data, 4, len(data) - 8)
    struct.pack_into("<I", data, 40, len(data) - 44)
    assert "whole frames" in refused(tmp_path, bytes(data))


def test_a_whole_mp3_gives_its_facts(tmp_path: Path) -> None:
    facts = check(tmp_path, mp3_bytes(20) + b"TAG" + bytes(125))
    assert (facts.codec, facts.sample_rate, facts.channels) == ("mp3", 44100, 1)
    assert facts.duration_seconds == pytest.approx(20 * 1152 / 44100, rel=0.05)


def test_an_mp3_whose_last_frame_is_cut_is_refused(tmp_path: Path) -> None:
    assert "cut short" in refused(tmp_path, mp3_bytes(20)[:-100])


def test_an_mp3_with_garbage_between_frames_is_refused(tmp_path: Path) -> None:
    data = mp3_bytes(5) + b"garbage!" + mp3_bytes(5)
    assert "broken" in refused(tmp_path, data)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"error_code": "INTERNAL_ERROR", "error_message": "Recording unavailable"}', "JSON"),
        (b"  \n[1, 2]", "JSON"),
        (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "HTML"),
        (b"\xef\xbb\xbf<?xml version='1.0'?><Error/>", "HTML/XML"),
        ("Fehler: Aufnahme nicht verfügbar\n".encode(), "text"),
    ],
)
def test_a_document_on_a_200_is_not_a_recording(tmp_path: Path, body: bytes, kind: str) -> None:
    message = refused(tmp_path, body)
    assert kind in message and f"({len(body)} bytes)" in message


def test_unrecognised_binary_is_refused_naming_its_first_bytes(tmp_path: Path) -> None:
    assert "0001020304050607" in refused(tmp_path, bytes(range(256)) * 4)


def test_the_byte_count_must_match_content_length(tmp_path: Path) -> None:
    data = wav_bytes(1.0)
    assert "Content-Length said" in refused(tmp_path, data, declared=len(data) + 1)
    assert check(tmp_path, data, declared=len(data)).duration_seconds == 1.0


def test_an_empty_body_is_refused(tmp_path: Path) -> None:
    assert "empty" in refused(tmp_path, b"")


def test_durations_read_as_compliance_says_them() -> None:
    assert describe_duration(632.4, 2) == "10 min 32 s, 2 channels"
    assert describe_duration(3725, 1) == "1 h 2 min 5 s, 1 channel"
    assert describe_duration(3.25) == "3.2 s"
    assert describe_duration(None) == ""
