"""Which object versions the custody record accounts for (custody/versions.py): the rules
on listings made up here; tests/integration/test_cli_custody_log.py and
test_audit_reconcile.py hold them to a real moto bucket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenios_io.custody.versions import (
    CURRENT_VERSION_NOT_ARCHIVED,
    DELETE_MARKER,
    UNLOGGED_VERSION,
    KeyKind,
    KeyVersions,
    VersionRules,
    group_by_key,
)
from tenios_io.store import ObjectVersion
from tenios_io.store.keys import PROBE_BODY

RULES = VersionRules("archive", "recordings")
KEY = "recordings/2026/12/07/8101fcb3-3843-4db3-9829-f7ab586625fe.wav"
WHEN = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


def entry(
    version_id: str, *, latest: bool = False, marker: bool = False, size: int = 2000, key: str = KEY
) -> ObjectVersion:
    return ObjectVersion(
        key, version_id, latest, marker, 0 if marker else size, "" if marker else "e", WHEN
    )


def checks(found: list[object]) -> list[tuple[str, str | None]]:
    return [(f.check, f.version_id) for f in found]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (KEY, KeyKind.RECORDING),
        (KEY + ".json", KeyKind.SIDECAR),
        ("recordings/_custody/log/checkpoint", KeyKind.LATEST_CHECKPOINT),
        ("recordings/_custody/log/checkpoints/00000000000000000004", KeyKind.CUSTODY),
        ("recordings/_custody/log/tile/0/000", KeyKind.CUSTODY),
        ("recordings/_custody/manifests/2026/12/07/run-1.jsonl", KeyKind.CUSTODY),
        ("recordings/_custody/checkpoints/00000000000000000004.json", KeyKind.CUSTODY),
        ("recordings/_custody/ledger-id", KeyKind.CUSTODY),
        ("recordings/_custody/notes.txt", KeyKind.OTHER),  # no custody object of ours
        ("recordings/.tenios-archive-probe", KeyKind.PROBE),
        ("recordings/notes.txt", KeyKind.OTHER),
        ("recordings/2026/12/07/x.wav.json", KeyKind.OTHER),
    ],
)
def test_keys_are_told_apart_by_name(key: str, kind: KeyKind) -> None:
    assert RULES.kind(key) is kind


def test_a_listing_is_grouped_one_key_at_a_time() -> None:
    listing = [entry("b", latest=True), entry("a"), entry("x", latest=True, key=KEY + ".json")]
    groups = list(group_by_key(listing))
    assert [(g.key, [e.version_id for e in g.entries]) for g in groups] == [
        (KEY, ["b", "a"]),
        (KEY + ".json", ["x"]),
    ]


def test_the_archived_version_alone_and_current_is_no_finding() -> None:
    assert RULES.archived(KeyVersions(KEY, (entry("v1", latest=True),)), "v1", "rec") == []


def test_a_forged_version_on_top_is_unlogged_and_current() -> None:
    group = KeyVersions(KEY, (entry("forged", latest=True, size=41), entry("v1")))
    found = RULES.archived(group, "v1", "rec", current_hash=("ab" * 32, 41))
    assert checks(found) == [(UNLOGGED_VERSION, "forged"), (CURRENT_VERSION_NOT_ARCHIVED, "forged")]
    unlogged, current = found
    assert "v1" in unlogged.detail and "41 bytes" in unlogged.detail
    assert f"--key {KEY} --version-id forged" in unlogged.detail  # what to do
    assert "ab" * 32 in current.detail and "not the archived version v1" in current.detail


def test_a_forged_version_below_the_archived_one_is_unlogged_only() -> None:
    group = KeyVersions(KEY, (entry("v1", latest=True), entry("older")))
    assert checks(RULES.archived(group, "v1", "rec")) == [(UNLOGGED_VERSION, "older")]


def test_delete_markers_over_an_archived_key() -> None:
    hiding = KeyVersions(KEY, (entry("m", latest=True, marker=True), entry("v1")))
    (found,) = RULES.archived(hiding, "v1", "rec")
    assert (found.check, found.version_id) == (DELETE_MARKER, "m") and "404" in found.detail
    assert "--version-id m" in found.detail
    earlier = KeyVersions(KEY, (entry("v1", latest=True), entry("m", marker=True)))
    (again,) = RULES.archived(earlier, "v1", "rec")
    assert again.check == DELETE_MARKER and "written again since" in again.detail


def test_written_once_objects_keep_their_first_version() -> None:
    key = "recordings/_custody/manifests/2026/12/07/run-1.jsonl"
    assert RULES.written_once(KeyVersions(key, (entry("first", latest=True, key=key),)), "m") == []
    group = KeyVersions(
        key,
        (
            entry("third", latest=True, key=key),
            entry("m", marker=True, key=key),
            entry("second", key=key),
            entry("first", key=key),
        ),
    )
    found = RULES.written_once(group, RULES.custody_object(key))
    assert checks(found) == [
        (UNLOGGED_VERSION, "third"),
        (UNLOGGED_VERSION, "second"),
        (DELETE_MARKER, "m"),
    ]
    assert all("a custody manifest" in f.detail for f in found)
    assert "first version first" in found[0].detail


def test_the_probe_may_be_written_again_but_only_as_the_probe() -> None:
    key = "recordings/.tenios-archive-probe"
    again = KeyVersions(
        key,
        (
            entry("p2", latest=True, size=len(PROBE_BODY), key=key),
            entry("m", marker=True, key=key),
            entry("p1", size=len(PROBE_BODY), key=key),
        ),
    )
    assert RULES.probe(again) == []
    other = KeyVersions(key, (entry("big", latest=True, size=10**6, key=key),))
    assert checks(RULES.probe(other)) == [(UNLOGGED_VERSION, "big")]


def test_versions_hidden_at_a_key_nothing_accounts_for() -> None:
    key = "recordings/notes.txt"
    group = KeyVersions(key, (entry("m", latest=True, marker=True, key=key), entry("x", key=key)))
    assert not group.live
    assert checks(RULES.hidden(group)) == [(UNLOGGED_VERSION, "x")]


def test_what_comes_from_the_bucket_is_escaped_when_printed() -> None:
    import io

    from rich.console import Console

    from tenios_io.cli._common import shown

    out = io.StringIO()
    printer = Console(file=out, width=200, color_system=None, highlight=False)
    assert shown("recordings/a.wav") == "recordings/a.wav"
    printer.print(shown("key a\x1b[2J\rb\u2028c [bold red]x[/] d"), soft_wrap=True)
    # no terminal escape sequence, no line break, no markup taken as markup
    assert out.getvalue() == "key a\\x1b[2J\\rb\\u2028c [bold red]x[/] d\n"
