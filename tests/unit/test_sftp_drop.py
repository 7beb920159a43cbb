"""SftpDrop's sorting of drop files, on an in-memory listing (no network)."""

from __future__ import annotations

import posixpath
import stat
from datetime import UTC, datetime

import paramiko
import pytest

from tenios_io.exceptions import ConfigError
from tenios_io.sftp import DropFile, SftpDrop, is_temporary_name

U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
U2 = "0c5a3f8e-6b8e-4c53-9a43-1f2e3d4c5b6a"
NOW = 1_750_000_000.0
OLD = NOW - 3600


class ListingOnly:
    """Just enough of paramiko.SFTPClient for sweep(): listdir_attr over a dict of files."""

    def __init__(self, files: dict[str, tuple[int, float]]) -> None:
        self.files = files

    def listdir_attr(self, directory: str) -> list[paramiko.SFTPAttributes]:
        entries: dict[str, paramiko.SFTPAttributes] = {}
        prefix = directory.rstrip("/") + "/"
        for path, (size, mtime) in self.files.items():
            if not path.startswith(prefix):
                continue
            name, _, rest = path[len(prefix) :].partition("/")
            attrs = paramiko.SFTPAttributes()
            attrs.filename = name
            if rest:
                attrs.st_mode = stat.S_IFDIR | 0o755
            else:
                attrs.st_mode = stat.S_IFREG | 0o644
                attrs.st_size, attrs.st_mtime = size, int(mtime)
            entries[name] = attrs
        if not entries and directory != "/drop":
            raise FileNotFoundError(2, "No such file")
        return list(entries.values())


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drop_over(files: dict[str, tuple[int, float]], **options: object) -> SftpDrop:
    options.setdefault("settle_seconds", 60)
    options.setdefault("clock", Clock())
    return SftpDrop(ListingOnly(files), "/drop", **options)  # type: ignore[arg-type]


def test_ready_files_carry_the_canonical_uuid() -> None:
    name = f"/drop/Aufnahme {U1.upper()}.WAV"
    result = drop_over({name: (123, OLD)}).sweep()
    assert result.ready == [DropFile(path=name, recording_uuid=U1, size=123, mtime=OLD)]
    assert result.ready[0].modified_at == datetime.fromtimestamp(OLD, tz=UTC)
    assert result.unsettled == result.unmatched == [] and result.duplicates == []


def test_pattern_is_searched_in_the_base_name_only() -> None:
    files = {f"/drop/{U1}/notes.txt": (1, OLD), f"/drop/x/{U2}.mp3": (1, OLD)}
    result = drop_over(files).sweep()
    assert [f.recording_uuid for f in result.ready] == [U2]
    assert result.unmatched == [f"/drop/{U1}/notes.txt"]


@pytest.mark.parametrize(
    "name",
    [f".{U1}.wav", f"{U1}.wav.part", f"{U1}.WAV.TMP", f"{U1}.wav.filepart", f"{U1}.partial"],
)
def test_temporary_names_are_unsettled(name: str) -> None:
    assert is_temporary_name(name)
    result = drop_over({f"/drop/{name}": (5, OLD)}).sweep()
    assert result.unsettled == [f"/drop/{name}"] and not result.ready


def test_files_matching_nothing_are_unmatched_even_when_hidden() -> None:
    files = {"/drop/.DS_Store": (1, OLD), "/drop/readme.txt": (1, OLD)}
    assert drop_over(files).sweep().unmatched == ["/drop/.DS_Store", "/drop/readme.txt"]


def test_recent_mtime_is_unsettled_until_the_settle_time_passed() -> None:
    clock = Clock()
    path = f"/drop/{U1}.wav"
    drop = drop_over({path: (10, NOW - 59)}, clock=clock)
    assert drop.sweep().unsettled == [path]
    clock.now += 1
    assert [f.path for f in drop.sweep().ready] == [path]


def test_mtime_in_the_future_is_unsettled() -> None:
    path = f"/drop/{U1}.wav"
    assert drop_over({path: (10, NOW + 600)}).sweep().unsettled == [path]


def test_a_size_change_seen_between_sweeps_resets_the_settle_time() -> None:
    # The server's clock may lie (an old mtime on a file still growing): what this
    # instance saw change is evidence too.
    clock = Clock()
    path = f"/drop/{U1}.wav"
    files = {path: (10, OLD)}
    drop = drop_over(files, clock=clock)
    assert [f.path for f in drop.sweep().ready] == [path]
    files[path] = (20, OLD)  # grew, mtime unchanged
    clock.now += 5
    assert drop.sweep().unsettled == [path]
    clock.now += 59
    assert drop.sweep().unsettled == [path]
    clock.now += 1
    assert [f.size for f in drop.sweep().ready] == [20]


def test_settle_zero_takes_everything_at_once() -> None:
    path = f"/drop/{U1}.wav"
    assert drop_over({path: (1, NOW)}, settle_seconds=0).sweep().ready[0].path == path


def test_duplicates_keep_the_first_path() -> None:
    files = {
        f"/drop/b/{U1}.wav": (2, OLD),
        f"/drop/a/{U1}.wav": (1, OLD),
        f"/drop/c/copy of {U1}.wav": (3, OLD),
    }
    result = drop_over(files).sweep()
    assert [f.path for f in result.ready] == [f"/drop/a/{U1}.wav"]
    assert [f.path for f in result.duplicates] == [f"/drop/b/{U1}.wav", f"/drop/c/copy of {U1}.wav"]


def test_an_unsettled_first_file_still_claims_its_uuid() -> None:
    files = {f"/drop/a/{U1}.wav": (1, NOW), f"/drop/b/{U1}.wav": (1, OLD)}
    result = drop_over(files).sweep()
    assert result.unsettled == [f"/drop/a/{U1}.wav"]
    assert [f.path for f in result.duplicates] == [f"/drop/b/{U1}.wav"] and not result.ready


def test_custom_pattern() -> None:
    pattern = r"^rec_(?P<recording_uuid>[0-9a-f]{32})_\d+\.mp3$"
    hexed = U1.replace("-", "")
    files = {f"/drop/rec_{hexed}_1.mp3": (1, OLD), f"/drop/{U2}.wav": (1, OLD)}
    result = drop_over(files, pattern=pattern).sweep()
    assert [f.recording_uuid for f in result.ready] == [U1]
    assert result.unmatched == [f"/drop/{U2}.wav"]


def test_a_pattern_capture_that_is_no_uuid_is_unmatched() -> None:
    files = {"/drop/rec_12345.wav": (1, OLD)}
    result = drop_over(files, pattern=r"rec_(?P<recording_uuid>\d+)").sweep()
    assert result.unmatched == ["/drop/rec_12345.wav"]


def test_hidden_directories_and_the_move_target_are_not_swept() -> None:
    files = {
        f"/drop/.cache/{U1}.wav": (1, OLD),
        f"/drop/archived/2024/{U2}.wav": (1, OLD),
        f"/drop/in/{U2}.wav": (1, OLD),
    }
    result = drop_over(files, after="move:archived").sweep()
    assert [f.path for f in result.ready] == [f"/drop/in/{U2}.wav"]
    assert not result.duplicates and not result.unmatched


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"pattern": r"(?P<uuid>x)"}, "TENIOS_SFTP_PATTERN"),
        ({"pattern": r"(unclosed"}, "TENIOS_SFTP_PATTERN"),
        ({"after": "archive"}, "TENIOS_SFTP_AFTER"),
        ({"after": "move:"}, "TENIOS_SFTP_AFTER"),
    ],
)
def test_bad_options_name_the_variable(options: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        drop_over({}, **options)
    assert caught.value.variable == variable


@pytest.mark.parametrize(
    ("after", "path", "target"),
    [
        ("move:done", "/drop/a/b/x.wav", "/drop/done/a/b/x.wav"),
        ("move:/srv/archive", "/drop/x.wav", "/srv/archive/x.wav"),
        ("move:../done", "/drop/sub/x.wav", "/done/sub/x.wav"),
        ("move:done", "/elsewhere/x.wav", "/drop/done/x.wav"),
    ],
)
def test_move_target_keeps_the_sub_path(after: str, path: str, target: str) -> None:
    assert drop_over({}, after=after).move_target(path) == target


def test_move_target_with_a_login_relative_root() -> None:
    drop = SftpDrop(ListingOnly({}), ".", after="move:done")  # type: ignore[arg-type]
    assert drop.move_target("in/x.wav") == "done/in/x.wav"
    assert posixpath.isabs(SftpDrop(ListingOnly({}), "/d", after="move:o").move_target("/d/x"))  # type: ignore[arg-type]


def test_release_keep_does_not_touch_the_server() -> None:
    assert drop_over({}).release("/drop/x.wav") == "kept"
