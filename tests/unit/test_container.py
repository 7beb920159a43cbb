"""The whole-recording check (tenios_io/recording/validation.py) on files made here."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest
from mutagen.wave import WAVE

from tenios_io.exceptions import RecordingInvalid, is_transient
from tenios_io.recording import validation
from tenios_io.recording.validation import AudioFacts, describe_duration, inspect_recording
from tenios_io.simulator.catalogue import AudioSpec
from tests.fixtures.moto import sample_wav


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


# -- WAV facts: the same as mutagen's ---------------------------------------------------------
#
# A plain WAV's facts are computed from the chunks the size check walks (not by a second
# walk in mutagen); the facts written to the ledger and the object's metadata must stay
# those mutagen gives, and a WAV mutagen reads differently still goes to mutagen.

_CODECS = {1: "pcm", 3: "pcm_float", 6: "alaw", 7: "mulaw", 0xFFFE: "pcm_extensible"}


def chunk(chunk_id: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\x00" * (len(payload) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(
    audio_format: int = 1, channels: int = 1, rate: int = 8000, align: int = 2, extra: bytes = b""
) -> bytes:
    bits = 8 * align // max(channels, 1)
    return chunk(
        b"fmt ",
        struct.pack("<HHIIHH", audio_format, channels, rate, rate * align, align, bits) + extra,
    )


def mutagen_facts(path: Path) -> AudioFacts:
    """The facts as the previous version wrote them: everything from mutagen.WAVE."""
    info = WAVE(path).info
    codec = _CODECS.get(info.audio_format, f"wav-format-{info.audio_format:#06x}")
    return AudioFacts(codec, info.channels, info.sample_rate, float(info.length))


def _fixtures() -> list[tuple[str, bytes]]:
    cases = [
        ("sample_wav 144", sample_wav(144)),
        ("sample_wav 256k", sample_wav(256 * 1024)),
        ("simulator mono", AudioSpec(seed=1, seconds=3.3).read_all()),
        ("simulator stereo", AudioSpec(seed=2, seconds=7.01, channels=2).read_all()),
    ]
    for channels, width, rate, frames in [
        (1, 1, 8000, 8001),
        (2, 2, 16000, 12345),
        (2, 3, 44100, 999),
        (1, 4, 48000, 7),
        (2, 2, 22050, 0),
    ]:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(bytes(frames * channels * width))
        cases.append((f"wave {channels}x{width}@{rate}", buffer.getvalue()))
    data = chunk(b"data", bytes(16_000))
    cases += [
        (
            "fact chunk, odd JUNK",
            riff(fmt(), chunk(b"fact", bytes(4)), chunk(b"JUNK", bytes(7)), data),
        ),
        ("chunk after data", riff(fmt(), data, chunk(b"cue ", bytes(28)))),
        ("fmt of 18 bytes", riff(fmt(6, extra=bytes(2)), data)),
        (
            "extensible",
            riff(fmt(0xFFFE, 2, 8000, 4, extra=struct.pack("<H", 22) + bytes(22)), data),
        ),
        ("float", riff(fmt(3, 1, 8000, 4), data)),
        ("mu-law", riff(fmt(7, 1, 8000, 1), chunk(b"data", bytes(8001)))),
        ("unknown codec", riff(fmt(0x55, 1, 8000, 1), data)),
        ("block align 0", riff(fmt(align=0), data)),
        ("sample rate 0", riff(fmt(rate=0), data)),
        (
            "odd rate",
            riff(fmt(rate=11_025, align=4, channels=2), chunk(b"data", bytes(4 * 12_347))),
        ),
        # mutagen reads these differently from a plain walk: they still go to mutagen
        (
            "LIST INFO",
            riff(fmt(), chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 5) + b"Lavf\x00\x00"), data),
        ),
        ("id3 tag", riff(fmt(), data, chunk(b"id3 ", b"ID3\x04\x00\x00\x00\x00\x00\x00"))),
        ("id3 chunk without a tag", riff(fmt(), chunk(b"id3 ", b"not a tag!"), data)),
        ("id mutagen stops at", riff(fmt(), chunk(b"\x00\x01ab", bytes(4)), data)),
        ("blank id", riff(fmt(), chunk(b"    ", bytes(4)), data)),
        ("two data chunks", riff(fmt(), data, chunk(b"data", bytes(8)))),
        ("two fmt chunks", riff(fmt(), fmt(channels=2, align=4), data)),
    ]
    return cases


@pytest.mark.parametrize(("name", "data"), _fixtures(), ids=[n for n, _ in _fixtures()])
def test_wav_facts_are_the_ones_mutagen_gives(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / "rec"
    path.write_bytes(data)
    facts = inspect_recording(path, len(data), len(data))
    assert facts == mutagen_facts(path)
    assert facts.as_metadata() == mutagen_facts(path).as_metadata()
    assert facts.as_columns() == mutagen_facts(path).as_columns()


def test_the_facts_of_a_plain_wav_are_not_read_by_mutagen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_mutagen(path: Path) -> AudioFacts:
        raise AssertionError("mutagen read a plain WAV")

    monkeypatch.setattr(validation, "_mutagen_wav_facts", no_mutagen)
    assert check(tmp_path, wav_bytes(2.5, channels=2)) == AudioFacts("pcm", 2, 8000, 2.5)
    with pytest.raises(AssertionError, match="mutagen read"):
        check(tmp_path, riff(fmt(), chunk(b"LIST", b"INFO"), chunk(b"data", bytes(800))))


@pytest.mark.parametrize(
    "tag",
    [
        b"ID3\x09\x00\x00\x00\x00\x00\x10" + bytes(16),  # ID3v2.9
        b"ID3\x04\x00\xff\x00\x00\x00\x10" + bytes(16),  # invalid flags
    ],
    ids=["unsupported version", "invalid flags"],
)
def test_a_wav_with_a_broken_id3_chunk_is_still_refused(tmp_path: Path, tag: bytes) -> None:
    data = riff(fmt(), chunk(b"id3 ", tag), chunk(b"data", bytes(1600)))
    assert "WAV header unreadable" in refused(tmp_path, data)


def test_a_wav_fmt_chunk_shorter_than_its_fields_is_refused(tmp_path: Path) -> None:
    short = chunk(b"fmt ", struct.pack("<HHIIH", 1, 1, 8000, 16000, 2))  # 14 bytes, no bits field
    assert "shorter than 16 bytes" in refused(tmp_path, riff(short, chunk(b"data", bytes(1600))))
