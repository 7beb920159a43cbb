"""The simulator's recordings: deterministic PCM WAV audio, generated as a stream.

A recording's bytes are a pure function of its :class:`AudioSpec` (seed, length,
channels): the size is known up front, every retrieve yields exactly the same
bytes, and nothing — not even a 200 MB recording — is ever held in memory whole.

The audio is "a conversation": one-second blocks in which each channel carries
a tone or silence, with low-level noise on top.  It is real 8 kHz 16-bit PCM
that any WAV reader accepts, at telephony sizes (≈0.96 MB per minute and channel).
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import sys
import threading
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
HEADER_SIZE = 44
CHUNK_SIZE = 256 * 1024

_TONES_HZ = (0, 0, 300, 440, 523, 660, 800, 1000, 1200)
"""Per block and channel, one of these (0 = silence, twice as likely)."""
_AMPLITUDE = 6000
_NOISE_MASK = b"\x0f\x00"
"""XORed onto the low nibble of every little-endian sample: noise of up to ±15."""


@dataclass(frozen=True)
class AudioSpec:
    """A deterministic mono or stereo 8 kHz 16-bit PCM WAV recording."""

    seed: int
    seconds: float
    channels: int = 1

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise ValueError("channels must be 1 (mono) or 2 (stereo)")
        if not self.seconds > 0:
            raise ValueError("seconds must be positive")

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * SAMPLE_RATE))

    @property
    def data_size(self) -> int:
        return self.frames * self.channels * SAMPLE_WIDTH

    @property
    def size(self) -> int:
        """Total size of the WAV file in bytes, known before generating it."""
        return HEADER_SIZE + self.data_size

    def header(self) -> bytes:
        """The 44-byte canonical RIFF/WAVE header."""
        block_align = self.channels * SAMPLE_WIDTH
        return struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF",
            36 + self.data_size,
            b"WAVE",
            b"fmt ",
            16,
            1,  # PCM
            self.channels,
            SAMPLE_RATE,
            SAMPLE_RATE * block_align,
            block_align,
            SAMPLE_WIDTH * 8,
            b"data",
            self.data_size,
        )

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The file's bytes, in chunks of about ``chunk_size`` (the content never depends on it)."""
        pending: list[bytes] = [self.header()]
        pending_size = HEADER_SIZE
        for block in self._blocks():
            pending.append(block)
            pending_size += len(block)
            if pending_size >= chunk_size:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)

    def read_all(self) -> bytes:
        """The whole file in memory: only for small recordings (tests)."""
        return b"".join(self.chunks())

    def sha256(self) -> str:
        """Hex SHA-256 of the file, computed from the stream."""
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()

    def _blocks(self) -> Iterator[bytes]:
        # One RNG drives everything in a fixed order, block by block: the bytes depend
        # only on the spec, never on how the caller groups them.
        rng = random.Random(f"wav:{self.seed}")
        frames_left = self.frames
        while frames_left > 0:
            frames = min(SAMPLE_RATE, frames_left)
            frames_left -= frames
            channels = [_tone(rng.choice(_TONES_HZ))[: frames * SAMPLE_WIDTH]]
            if self.channels == 2:
                channels.append(_tone(rng.choice(_TONES_HZ))[: frames * SAMPLE_WIDTH])
            pcm = channels[0] if self.channels == 1 else _interleave(channels[0], channels[1])
            noise = rng.randbytes(len(pcm))
            yield _add_noise(pcm, noise)


@cache
def _tone(hz: int) -> bytes:
    """One second of a sine tone (whole periods, so blocks join without clicks)."""
    if hz == 0:
        return bytes(SAMPLE_RATE * SAMPLE_WIDTH)
    samples = array(
        "h",
        (
            round(_AMPLITUDE * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))
            for i in range(SAMPLE_RATE)
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _interleave(left: bytes, right: bytes) -> bytes:
    out = bytearray(len(left) * 2)
    out[0::4] = left[0::2]
    out[1::4] = left[1::2]
    out[2::4] = right[0::2]
    out[3::4] = right[1::2]
    return bytes(out)


@cache
def _noise_mask(length: int) -> int:
    return int.from_bytes(_NOISE_MASK * (length // 2), "little")


def _add_noise(pcm: bytes, noise: bytes) -> bytes:
    # Whole-block integer arithmetic runs in C: ~1 GB/s of audio instead of a
    # per-sample Python loop, which keeps 200 MB recordings cheap to stream.
    mixed = int.from_bytes(pcm, "little") ^ (
        int.from_bytes(noise, "little") & _noise_mask(len(pcm))
    )
    return mixed.to_bytes(len(pcm), "little")


@dataclass
class Recording:
    """One recording the simulated TENIOS knows: its ids, audio and life cycle."""

    recording_uuid: str
    call_uuid: str
    audio: AudioSpec
    started_at: float
    """Clock time of ``start``."""
    stopped_at: float | None = None
    """Clock time of ``stop``; ``None`` while the call segment is still being recorded."""
    ready_at: float | None = None
    """From this clock time on, retrieve returns the audio (before: 404)."""
    faults: deque[str] = field(default_factory=deque)
    """Fault tokens consumed, in order, by requests naming this recording."""

    def is_ready(self, now: float) -> bool:
        return self.ready_at is not None and now >= self.ready_at


class Catalogue:
    """The recordings by ``recording_uuid`` (lower case), safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recordings: dict[str, Recording] = {}

    def add(self, recording: Recording) -> None:
        key = recording.recording_uuid.lower()
        with self._lock:
            if key in self._recordings:
                raise ValueError(f"recording {recording.recording_uuid} already exists")
            self._recordings[key] = recording

    def get(self, recording_uuid: str) -> Recording | None:
        with self._lock:
            return self._recordings.get(recording_uuid.lower())

    def __len__(self) -> int:
        with self._lock:
            return len(self._recordings)

    def uuids(self) -> list[str]:
        with self._lock:
            return [r.recording_uuid for r in self._recordings.values()]

    def next_fault(self, recording_uuid: str) -> str | None:
        """Pop the recording's next scheduled fault token, if it has one."""
        with self._lock:
            recording = self._recordings.get(recording_uuid.lower())
            if recording is None or not recording.faults:
                return None
            return recording.faults.popleft()
