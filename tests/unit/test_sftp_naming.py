"""Drop file names matched to ledger rows (issue 12, item 1): the rules, one by one."""

from __future__ import annotations

import re

import pytest

from tenios_io.config import DEFAULT_SFTP_PATTERN
from tenios_io.sftp.naming import (
    Ambiguous,
    KnownIds,
    NameReader,
    Resolved,
    resolve,
    uuids_in,
)
from tenios_io.simulator.demo import DEMO_SFTP_PATTERN

CALL = "0c0c0c0c-0000-4000-8000-000000000001"
REC = "1e1e1e1e-0000-4000-8000-000000000002"
OTHER = "2f2f2f2f-0000-4000-8000-000000000003"
BOTH = f"20261130_{CALL}_{REC}.wav"

default = NameReader(re.compile(DEFAULT_SFTP_PATTERN))
explicit = NameReader(re.compile(DEMO_SFTP_PATTERN))


def owner(reader: NameReader, name: str, known: KnownIds = KnownIds()) -> Resolved | Ambiguous:
    ids = reader.read(name)
    assert ids is not None
    return resolve(ids, known)


def test_uuids_are_found_in_order_canonical_and_once() -> None:
    assert uuids_in(f"{CALL.upper()}-{REC}-{CALL}.wav") == [CALL, REC]
    assert uuids_in("readme.txt") == []


def test_one_uuid_is_that_recording() -> None:
    assert owner(default, f"rec {REC.upper()}.WAV") == Resolved(REC)


def test_several_unknown_uuids_are_ambiguous_with_the_default_pattern() -> None:
    found = owner(default, BOTH)
    assert isinstance(found, Ambiguous) and "TENIOS_SFTP_PATTERN" in found.reason


def test_a_known_recording_wins_wherever_it_stands() -> None:
    known = KnownIds(recordings=frozenset({REC}))
    assert owner(default, BOTH, known) == Resolved(REC)
    # A row an old run registered under the call id keeps its file (no second row).
    assert owner(explicit, BOTH, KnownIds(recordings=frozenset({CALL}))) == Resolved(CALL)


def test_a_known_call_is_recorded_never_a_recording_id() -> None:
    known = KnownIds(calls=frozenset({CALL}))
    assert owner(default, BOTH, known) == Resolved(REC, CALL)
    assert isinstance(owner(default, f"{CALL}.wav", known), Ambiguous)
    known_both = KnownIds(recordings=frozenset({OTHER}), calls=frozenset({CALL}))
    assert owner(default, f"{CALL}_{OTHER}.wav", known_both) == Resolved(OTHER, CALL)


def test_two_known_recordings_in_one_name_are_ambiguous() -> None:
    known = KnownIds(recordings=frozenset({REC, OTHER}))
    assert isinstance(owner(default, f"{OTHER}_{REC}.wav", known), Ambiguous)


def test_an_explicit_pattern_decides_for_unknown_names_and_keeps_the_call() -> None:
    assert owner(explicit, BOTH) == Resolved(REC, CALL)
    assert explicit.read(f"{REC}.wav") is None  # the pattern does not match: not a recording
    picked_a_call = owner(explicit, BOTH, KnownIds(calls=frozenset({REC})))
    assert isinstance(picked_a_call, Ambiguous) and "call_uuid" in picked_a_call.reason


@pytest.mark.parametrize("name", ["readme.txt", ".DS_Store", "12345678.wav"])
def test_names_without_a_uuid_are_not_recordings(name: str) -> None:
    assert default.read(name) is None
