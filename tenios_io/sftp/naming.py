"""Which ledger row a drop file belongs to: its name is matched to known rows, not guessed.

TENIOS does not document how it names drop files, and names often carry more than one
UUID (``{date}_{call_uuid}_{recording_uuid}.wav``).  Taking "the first UUID" registers
recordings under their call's id, so a name is read against what the ledger knows:

1. a UUID in the name that is a known row's ``recording_uuid`` decides, whatever else the
   name holds (two different known recordings in one name: ambiguous);
2. a UUID that is a known row's ``call_uuid`` is a call, never a recording id; it is
   kept as the file's call_uuid;
3. otherwise an explicit ``TENIOS_SFTP_PATTERN`` decides (its ``recording_uuid`` group,
   and its ``call_uuid`` group if it has one), unless it picked a known call;
4. with the default pattern, a name with exactly one UUID (not a known call) is that
   recording; several UUIDs none of which is known are ambiguous and left alone, since
   any pick would be a guess ("set TENIOS_SFTP_PATTERN").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass

from tenios_io.config import DEFAULT_SFTP_PATTERN, ENV_PREFIX, UUID_RE
from tenios_io.untrusted import MAX_DROP_NAME_BYTES, NamePattern, compile_name_pattern

__all__ = [
    "AMBIGUOUS_EVENT",
    "Ambiguous",
    "KnownIds",
    "Lookup",
    "NameIds",
    "NamePattern",
    "NameReader",
    "Resolved",
    "compile_name_pattern",
    "resolve",
    "uuids_in",
]

#: The custody event in which a sweep names the drop files it left alone (the report
#: lists the period's last one).
AMBIGUOUS_EVENT = "drop_files_ambiguous"

_UUID = re.compile(UUID_RE)
_PATTERN_VAR = f"{ENV_PREFIX}SFTP_PATTERN"


def uuids_in(name: str) -> list[str]:
    """Every UUID in ``name``, canonical lower case, in order, each once."""
    found: list[str] = []
    for match in _UUID.finditer(name):
        value = str(uuid.UUID(match.group(0)))
        if value not in found:
            found.append(value)
    return found


@dataclass(frozen=True)
class NameIds:
    """What a file's base name says: its UUIDs, and what an explicit pattern picked."""

    uuids: tuple[str, ...]
    pattern_recording: str | None = None
    """The explicit pattern's ``recording_uuid`` (None with the default pattern)."""
    pattern_call: str | None = None
    """The explicit pattern's ``call_uuid`` group, when it has one and it matched."""


@dataclass(frozen=True)
class KnownIds:
    """Which of some UUIDs the ledger knows, and as what."""

    recordings: frozenset[str] = frozenset()
    calls: frozenset[str] = frozenset()


Lookup = Callable[[Collection[str]], KnownIds]
"""Asks the ledger which of the given UUIDs are known recording / call ids."""


@dataclass(frozen=True)
class Resolved:
    """The name belongs to this recording (known or to be registered)."""

    recording_uuid: str
    call_uuid: str | None = None


@dataclass(frozen=True)
class Ambiguous:
    """The name cannot be given to one recording without guessing; why, for the operator."""

    reason: str


def _canonical(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class NameReader:
    """Reads base names with ``TENIOS_SFTP_PATTERN`` (compiled by
    :func:`compile_name_pattern`, with the group ``recording_uuid``); ``explicit`` is
    false for the built-in "any UUID" default."""

    def __init__(self, pattern: NamePattern, *, explicit: bool | None = None) -> None:
        self.pattern = pattern
        self.explicit = pattern.pattern != DEFAULT_SFTP_PATTERN if explicit is None else explicit

    def read(self, name: str) -> NameIds | None:
        """The ids in ``name``, or None when the pattern does not match it (or what it
        matched is not a UUID, or the name is longer than any file name may be): such a
        file is not a recording."""
        if len(name) > MAX_DROP_NAME_BYTES:
            return None
        match = self.pattern.search(name)
        if match is None:
            return None
        picked = _canonical(match.group("recording_uuid"))
        if picked is None:
            return None
        found = uuids_in(name)
        if picked not in found:  # a pattern may match a UUID spelt without dashes …
            found.insert(0, picked)
        if not self.explicit:
            return NameIds(tuple(found))
        call = None
        if "call_uuid" in self.pattern.groupindex:
            call = _canonical(match.group("call_uuid"))
        return NameIds(tuple(found), pattern_recording=picked, pattern_call=call)


def resolve(ids: NameIds, known: KnownIds) -> Resolved | Ambiguous:
    """The recording a name belongs to under the rules of the module docstring."""
    recordings = [u for u in ids.uuids if u in known.recordings]
    calls = [u for u in ids.uuids if u in known.calls and u not in known.recordings]
    if len(recordings) > 1:
        return Ambiguous(f"names {len(recordings)} known recordings ({', '.join(recordings)})")
    if recordings:
        (recording,) = recordings
        call = ids.pattern_call if ids.pattern_call != recording else None
        return Resolved(recording, call or (calls[0] if calls else None))
    if ids.pattern_recording is not None:
        if ids.pattern_recording in known.calls:
            return Ambiguous(
                f"{_PATTERN_VAR} picks {ids.pattern_recording}, which the ledger knows as a "
                "call_uuid: fix the pattern"
            )
        return Resolved(ids.pattern_recording, ids.pattern_call or (calls[0] if calls else None))
    candidates = [u for u in ids.uuids if u not in known.calls]
    if len(candidates) == 1:
        return Resolved(candidates[0], calls[0] if calls else None)
    if not candidates:
        return Ambiguous("names only the call_uuid of known recordings, not a recording")
    return Ambiguous(
        f"names {len(candidates)} UUIDs, none a known recording: set {_PATTERN_VAR} "
        "to say which one is the recording_uuid"
    )
