"""The bounds on hostile data (tenios_io.untrusted) and the custody log's entry bound."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tenios_io.custody.chain import (
    MAX_ENTRY_BYTES,
    bounded_text,
    canonical_json,
    entry_size,
    fit_details,
)
from tenios_io.sftp.naming import NameReader
from tenios_io.untrusted import (
    compile_name_pattern,
    drop_path_problem,
    escape_name,
    inside_drop,
    printable,
    recorded_at_problem,
)

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("root", "path", "inside"),
    [
        ("/drop", "/drop/in/x.wav", "/drop/in/x.wav"),
        ("/drop", "in/x.wav", "/drop/in/x.wav"),
        ("/drop", "/drop", "/drop"),
        ("/drop", "/dropper/x.wav", None),
        ("/drop", "/etc/passwd", None),
        ("/drop", "/drop/../etc/x.wav", None),
        ("/drop", "../x.wav", None),
        ("/drop", "/drop//x.wav", None),
        ("/drop", "/drop/./x.wav", None),
        ("/drop", "/drop/x\x00.wav", None),
        ("/", "/any/x.wav", "/any/x.wav"),
        (".", "in/x.wav", "in/x.wav"),
        (".", "/home/u/x.wav", None),
        ("in", "in/x.wav", "in/x.wav"),
        ("in", "x.wav", "in/x.wav"),
        ("in", "/in/x.wav", None),
    ],
)
def test_inside_drop(root: str, path: str, inside: str | None) -> None:
    assert inside_drop(root, path) == inside


def test_drop_path_problem_for_a_producers_relative_path() -> None:
    assert drop_path_problem("in/x.wav", relative=True) is None
    assert "absolute" in (drop_path_problem("/drop/x.wav", relative=True) or "")
    assert drop_path_problem("/drop/x.wav") is None
    assert "longer than 1024" in (drop_path_problem("a/" * 600) or "")
    assert drop_path_problem("") == "is empty"


def test_recorded_at_window() -> None:
    assert recorded_at_problem(datetime(1990, 1, 1, tzinfo=UTC), NOW) is None
    assert recorded_at_problem(datetime(1, 1, 1, tzinfo=UTC), NOW) == "is before 1990-01-01"
    assert recorded_at_problem(datetime(2999, 1, 1, tzinfo=UTC), NOW) == "is in the future"


def test_printable_escapes_control_characters_only() -> None:
    assert printable("\x1b[31mrot\x1b[0m ä\x07\x9b") == "\\x1b[31mrot\\x1b[0m ä\\x07\\x9b"
    assert escape_name(b"caf\xe9\x1b.wav") == "caf\\xe9\\x1b.wav"


def test_name_patterns_are_re2_and_long_names_are_not_read() -> None:
    reader = NameReader(compile_name_pattern(r"^(?P<recording_uuid>(?:[0-9a-f]+-?)+)\.wav$"))
    assert reader.read("a" * 200 + ".wa!") is None  # linear time, no backtracking
    uuid = "8101fcb3-3843-4db3-9829-f7ab586625fe"
    assert reader.read(f"{uuid}.wav") is not None
    assert reader.read("0" * 300 + f"{uuid}.wav") is None  # longer than a file name can be
    with pytest.raises(ValueError, match="named group"):
        compile_name_pattern("[0-9a-f-]{36}")


def test_bounded_details_always_fit_the_log() -> None:
    small = canonical_json({"a": "b" * 1000})
    assert fit_details(small) == small
    long = canonical_json({"a": "é" * 20_000, "n": 1})
    bounded = json.loads(fit_details(long))
    assert bounded["n"] == 1 and bounded["a"] == bounded_text("é" * 20_000)
    many = canonical_json({"a": ["\x01" * 1000] * 100})  # each escaped to 6 bytes
    omitted = json.loads(fit_details(many))
    assert omitted["details_omitted"]["bytes"] == len(many.encode())
    worst = entry_size(2**62, "u" * 36, "registered", bounded_text("\x01" * 10**6), "t" * 27, "{}")
    assert worst + len(fit_details(many).encode()) < MAX_ENTRY_BYTES
