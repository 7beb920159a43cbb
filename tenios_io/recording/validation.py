"""Is this the whole recording?  The check every recording passes before it is uploaded.

Once an object is under Object Lock it can never be replaced, so a cut-short body,
or an error page TENIOS answered with a 200, must never get there: its SHA-256
would be the hash of the wrong bytes, every later audit would call it verified,
and the real recording could never be archived under its key.  So, from the
spooled file (bounded memory, whatever its size), :func:`inspect_recording`:

1. compares the byte count with the ``Content-Length`` the source declared, if any;
2. refuses a *document*: a body that starts (after a BOM / whitespace) with ``{``
   or ``[`` (JSON), ``<`` (HTML / XML), or whose first bytes are all printable
   text — an error answer, not audio;
3. parses the container, recognised by its magic bytes, and requires it complete:

   - **WAV** (``RIFF`` <size> ``WAVE``): the RIFF size covers exactly the bytes
     there are, the chunks tile it exactly (``fmt `` before ``data``, each chunk
     whole, word-aligned), and ``data`` holds whole sample frames.  A RIFF size
     of 0 or 0xFFFFFFFF (a writer that never went back to fill it in) cannot
     prove completeness and is refused too.
   - **MP3** (``ID3`` tag or an MPEG audio frame sync): every frame from the
     first to the end of the file is whole and in sync; only an ID3v1 tag
     (128 bytes, ``TAG``) may follow the last frame.
   - **anything else** is refused: TENIOS delivers WAV (and MP3), and a format
     this module cannot prove whole is not archived as a recording.

A body without ``Content-Length`` (close-delimited) is therefore accepted only
when its container says it is whole.  The result, :class:`AudioFacts` (codec,
channels, sample rate, duration), goes to the ledger, the object's metadata and
the custody events.  The size checks are hand-written because no library compares
a container's sizes with the bytes actually present (mutagen and ``wave`` trust the
header).  MP3 facts are read with mutagen.  A plain WAV's facts are read from the
``fmt `` and ``data`` chunks that size check already walks, computed as mutagen
computes them (``tests/unit/test_container.py`` compares the two); mutagen would
walk the file a second time and probe for an ID3 chunk, about three quarters of the
check's CPU.  A WAV with anything mutagen reads differently (an ``id3 `` chunk, a
nested ``LIST``, a chunk id mutagen stops at, a second ``fmt ``/``data``) is still
read by mutagen, so the facts and what is refused stay the same.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import mutagen
from mutagen.mp3 import MP3, HeaderNotFoundError, MPEGFrame, skip_id3
from mutagen.wave import WAVE

from tenios_io.exceptions import RecordingInvalid

__all__ = ["AudioFacts", "check_complete", "describe_duration", "inspect_recording"]

_SNIFF = 512
"""Bytes looked at to tell a document (JSON / HTML / text) from audio."""
_RIFF_UNKNOWN = (0, 0xFFFFFFFF)
_ID3V1_SIZE = 128
_FMT_SIZE = 16
"""The ``fmt `` chunk fields every WAV has (format, channels, rate, byte rate, align, bits)."""
_NOT_PLAIN = (b"LIST", b"RIFF", b"id3 ")
_WAV_CODECS = {1: "pcm", 3: "pcm_float", 6: "alaw", 7: "mulaw", 0xFFFE: "pcm_extensible"}


@dataclass(frozen=True)
class AudioFacts:
    """What the container says about the recording (all from its own headers)."""

    codec: str
    """``pcm``, ``alaw``, ``mulaw``, ``mp3`` ..."""
    channels: int
    sample_rate: int
    duration_seconds: float

    def as_metadata(self) -> dict[str, str]:
        """The facts as S3 user-metadata values (strings)."""
        return {
            "codec": self.codec,
            "channels": str(self.channels),
            "sample-rate": str(self.sample_rate),
            "duration-seconds": f"{self.duration_seconds:.3f}",
        }

    def as_columns(self) -> dict[str, object]:
        """The facts as ledger columns."""
        return {
            "codec": self.codec,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def describe_duration(seconds: float | None, channels: int | None = None) -> str:
    """``10 min 32 s, 2 channels`` — how compliance reads a recording's length."""
    if seconds is None:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours} h {minutes} min {secs} s"
    elif minutes:
        text = f"{minutes} min {secs} s"
    else:
        text = f"{seconds:.1f} s" if seconds < 10 else f"{secs} s"
    if channels:
        text += f", {channels} channel{'s' if channels != 1 else ''}"
    return text


def inspect_recording(path: Path, size: int, declared_size: int | None = None) -> AudioFacts:
    """The recording's :class:`AudioFacts`, or :class:`RecordingInvalid` saying why it
    is not a whole recording (see the module docstring for the rules)."""
    if declared_size is not None and size != declared_size:
        raise RecordingInvalid(f"{size} bytes arrived but Content-Length said {declared_size}")
    if size == 0:
        raise RecordingInvalid("the body is empty")
    with path.open("rb") as f:
        head = f.read(_SNIFF)
        document = _document_kind(head)
        if document:
            raise RecordingInvalid(
                f"the body is {document} ({size} bytes), not a recording: "
                "an error answer delivered as the recording"
            )
        if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _wav_facts(path, _check_wav(f, size))
        if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
            return _check_mp3(f, path, size)
    raise RecordingInvalid(
        f"not a recognised recording format (WAV or MP3); first bytes {head[:8].hex()}"
    )


def check_complete(f: BinaryIO, size: int) -> str:
    """The sweep's check of a drop file still on the server, reading only headers:
    returns ``"wav"`` or ``"mp3"``, or raises :class:`RecordingInvalid`.

    A document or an unknown format is refused, and a WAV must be whole (its RIFF size
    and chunk tree cover exactly ``size`` bytes, as in :func:`inspect_recording`).  An
    MP3 is only recognised here (walking its frames means reading it all): it is
    checked whole when it is fetched.
    """
    if size == 0:
        raise RecordingInvalid("the file is empty")
    f.seek(0)
    head = f.read(_SNIFF)
    document = _document_kind(head)
    if document:
        raise RecordingInvalid(f"the file is {document}, not a recording")
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        _check_wav(f, size)
        return "wav"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    raise RecordingInvalid(
        f"not a recognised recording format (WAV or MP3); first bytes {head[:8].hex()}"
    )


# -- documents -------------------------------------------------------------------------------


def _document_kind(head: bytes) -> str | None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if text[:1] in (b"{", b"["):
        return "a JSON document"
    if text[:1] == b"<":
        return "an HTML/XML document"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is still text.
        if exc.start < len(head) - 3:
            return None
        decoded = head[: exc.start].decode("utf-8")
    if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
        return "text"
    return None


# -- WAV --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WavChunks:
    """What the chunk walk of a whole WAV saw that its facts need."""

    fmt: bytes
    """The first 16 bytes of the ``fmt `` chunk (the last one, if there are several)."""
    data_size: int
    """The ``data`` chunk's size (the last one, if there are several)."""
    plain: bool
    """One ``fmt `` and one ``data`` chunk, and no chunk mutagen reads differently from
    this walk (see :func:`_plain_chunk`): the facts can be taken from ``fmt`` and
    ``data_size`` exactly as mutagen would compute them."""


def _check_wav(f: BinaryIO, size: int) -> _WavChunks:
    """The RIFF chunk tree covers exactly ``size`` bytes, with whole fmt and data chunks."""
    f.seek(4)
    (riff_size,) = struct.unpack("<I", f.read(4))
    if riff_size in _RIFF_UNKNOWN:
        raise RecordingInvalid(
            f"WAV header gives no length (RIFF size {riff_size:#x}): completeness cannot be proven"
        )
    if riff_size + 8 != size:
        raise RecordingInvalid(
            f"WAV header says {riff_size + 8} bytes, the file has {size}"
            + (": cut short" if size < riff_size + 8 else "")
        )
    offset, block_align, fmt, data_size = 12, 0, b"", None
    fmt_chunks = data_chunks = 0
    plain = True
    while offset < size:
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise RecordingInvalid(f"WAV chunk header at byte {offset} is cut short")
        chunk_id, chunk_size = struct.unpack("<4sI", header)
        end = offset + 8 + chunk_size
        if end > size:
            raise RecordingInvalid(
                f"WAV {chunk_id.decode('latin-1')!r} chunk promises {chunk_size} bytes, "
                f"the file holds {size - offset - 8}: cut short"
            )
        if chunk_id == b"fmt ":
            if chunk_size < _FMT_SIZE:
                raise RecordingInvalid("WAV fmt chunk is shorter than 16 bytes")
            fmt = f.read(_FMT_SIZE)
            block_align = struct.unpack("<H", fmt[12:14])[0]
            fmt_chunks += 1
        elif chunk_id == b"data":
            if not fmt_chunks:
                raise RecordingInvalid("WAV data chunk comes before its fmt chunk")
            data_size = chunk_size
            data_chunks += 1
        else:
            plain = plain and _plain_chunk(chunk_id)
        offset = end + (chunk_size & 1)  # chunks are word-aligned
    if offset != size and offset != size + 1:
        raise RecordingInvalid("WAV chunks do not tile the file")
    if data_size is None:
        raise RecordingInvalid("WAV file has no data chunk")
    if block_align and data_size % block_align:
        raise RecordingInvalid(
            f"WAV data chunk ({data_size} bytes) does not hold whole frames of {block_align} bytes"
        )
    return _WavChunks(fmt, data_size, plain and fmt_chunks == 1 and data_chunks == 1)


def _plain_chunk(chunk_id: bytes) -> bool:
    """Whether mutagen walks past this chunk as this module does, and finds no tag in it.

    mutagen stops its walk at an id that is not four printable ASCII characters (so it
    would not see a ``data`` chunk after it), parses ``LIST``/``RIFF`` as containers
    (refusing some), and reads an ``id3 `` chunk as a tag (refusing a broken one).
    """
    return (
        chunk_id not in _NOT_PLAIN
        and all(0x20 <= byte <= 0x7E for byte in chunk_id)
        and chunk_id != b"    "
    )


def _wav_facts(path: Path, chunks: _WavChunks) -> AudioFacts:
    if chunks.plain:
        # As mutagen.wave.WaveStreamInfo computes them, float for float.
        audio_format, channels, sample_rate, _, block_align, _ = struct.unpack(
            "<HHIIHH", chunks.fmt
        )
        samples = chunks.data_size / block_align if block_align > 0 else 0
        length = samples / sample_rate if sample_rate > 0 else 0.0
        return AudioFacts(_wav_codec(audio_format), channels, sample_rate, float(length))
    return _mutagen_wav_facts(path)


def _mutagen_wav_facts(path: Path) -> AudioFacts:
    try:
        info = WAVE(path).info
    except mutagen.MutagenError as exc:
        raise RecordingInvalid(f"WAV header unreadable: {exc}") from exc
    audio_format = getattr(info, "audio_format", 0)
    return AudioFacts(_wav_codec(audio_format), info.channels, info.sample_rate, float(info.length))


def _wav_codec(audio_format: int) -> str:
    return _WAV_CODECS.get(audio_format, f"wav-format-{audio_format:#06x}")


# -- MP3 --------------------------------------------------------------------------------------


def _check_mp3(f: BinaryIO, path: Path, size: int) -> AudioFacts:
    """Every MPEG frame from the first to the end is whole (an ID3v1 tag may follow)."""
    f.seek(0)
    skip_id3(f)
    end = size
    f.seek(max(0, size - _ID3V1_SIZE))
    if size >= _ID3V1_SIZE and f.read(3) == b"TAG":
        end = size - _ID3V1_SIZE
    f.seek(0)
    skip_id3(f)
    frames = 0
    while f.tell() < end:
        start = f.tell()
        try:
            MPEGFrame(f)  # parses the header, then seeks past the frame
        except HeaderNotFoundError as exc:
            raise RecordingInvalid(
                f"MP3 frame {frames + 1} at byte {start} is broken: {exc}"
            ) from None
        frames += 1
        if f.tell() > end:
            raise RecordingInvalid(
                f"MP3 frame {frames} at byte {start} ends at {f.tell()}, the audio ends at "
                f"{end}: cut short"
            )
    if frames == 0:
        raise RecordingInvalid("MP3 file holds no audio frame")
    try:
        info = MP3(path).info
    except mutagen.MutagenError as exc:
        raise RecordingInvalid(f"MP3 header unreadable: {exc}") from exc
    return AudioFacts("mp3", info.channels, info.sample_rate, float(info.length))
