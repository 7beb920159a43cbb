"""Object keys: the layout, and that nothing from the input can inject path segments."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tenios_io.store import KeyParts, object_key, parse_object_key, sidecar_key, validate_prefix
from tenios_io.store.keys import manifest_key, manifest_prefix

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_layout() -> None:
    key = object_key("recordings", UUID, date(2024, 3, 7), "wav")
    assert key == f"recordings/2024/03/07/{UUID}.wav"
    assert sidecar_key(key) == key + ".json"


def test_uuid_is_lower_cased_and_prefix_slashes_dropped() -> None:
    assert (
        object_key("/archive/tenios/", UUID.upper(), date(2024, 12, 31), "mp3")
        == f"archive/tenios/2024/12/31/{UUID}.mp3"
    )


def test_empty_prefix_and_early_years() -> None:
    assert object_key("", UUID, date(999, 1, 2), "bin") == f"0999/01/02/{UUID}.bin"


def test_a_datetime_counts_by_its_date() -> None:
    assert object_key("r", UUID, datetime(2024, 3, 7, 23, 59), "wav") == f"r/2024/03/07/{UUID}.wav"


@pytest.mark.parametrize(
    "bad_uuid",
    [
        "../" + UUID,
        UUID + "/x",
        UUID + "\n",
        "\n" + UUID,
        UUID + "%2f",
        UUID.replace("-", ""),  # accepted by uuid.UUID, not canonical
        "{" + UUID + "}",
        "urn:uuid:" + UUID,
        " " + UUID,
        UUID[:-1] + "g",
        "..",
        "",
        UUID + "\x00",
        "\uff10f8fad5b-d9cb-469f-a165-70867728950e",  # full-width digit zero
    ],
)
def test_recording_uuid_must_be_canonical(bad_uuid: str) -> None:
    with pytest.raises(ValueError, match="canonical UUID"):
        object_key("recordings", bad_uuid, date(2024, 1, 1), "wav")


@pytest.mark.parametrize(
    "bad_prefix",
    [
        "../etc",
        "a/../b",
        "a/./b",
        "a//b",
        "..",
        "...",
        "a/%2f/b",
        "a%2F..",
        "rec\nordings",
        "rec\\ordings",
        "rec ordings",
        "recordings/\x00",
        "rec:ordings",
        "récordings",
        "a/b?x=1",
        "a#b",
    ],
)
def test_prefix_is_validated(bad_prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid S3 key prefix"):
        object_key(bad_prefix, UUID, date(2024, 1, 1), "wav")
    with pytest.raises(ValueError):
        validate_prefix(bad_prefix)


@pytest.mark.parametrize(
    "bad_ext", ["WAV", ".wav", "wav/", "../wav", "json", "wav\n", "", "mp3.exe", "wav%00"]
)
def test_extension_comes_from_the_allow_list(bad_ext: str) -> None:
    with pytest.raises(ValueError, match="extension"):
        object_key("recordings", UUID, date(2024, 1, 1), bad_ext)


def test_day_must_be_a_date() -> None:
    with pytest.raises(ValueError, match="date"):
        object_key("recordings", UUID, "2024-01-01", "wav")  # type: ignore[arg-type]


def test_parse_is_the_inverse_and_rejects_everything_else() -> None:
    key = object_key("recordings", UUID, date(2024, 2, 29), "mp3")
    assert parse_object_key("recordings", key) == KeyParts(UUID, date(2024, 2, 29), "mp3")
    assert parse_object_key("", object_key("", UUID, date(2024, 2, 29), "bin")) is not None
    for other in [
        sidecar_key(key),
        "recordings/.tenios-archive-probe",
        f"recordings/2024/02/30/{UUID}.wav",  # no such day
        f"recordings/2024/2/29/{UUID}.wav",
        f"recordings/2024/02/29/{UUID.upper()}.wav",
        f"other/2024/02/29/{UUID}.wav",
        f"recordings/x/2024/02/29/{UUID}.wav",
        f"recordings/2024/02/29/{UUID}.exe",
    ]:
        assert parse_object_key("recordings", other) is None, other


def test_manifest_keys() -> None:
    day = date(2026, 12, 3)
    assert manifest_key("recordings", day, "20261203T010203Z-ab12cd34", "000007") == (
        "recordings/_custody/manifests/2026/12/03/20261203T010203Z-ab12cd34-000007.jsonl"
    )
    assert manifest_key("", day, "run", "1") == "_custody/manifests/2026/12/03/run-1.jsonl"
    assert manifest_prefix("a/b/") == "a/b/_custody/manifests/"
    for run_id, batch in (("a/b", "1"), ("run", ".."), ("", "1"), ("run", "x y")):
        with pytest.raises(ValueError, match="plain key segment"):
            manifest_key("recordings", day, run_id, batch)
    # A manifest is never taken for a recording.
    key = manifest_key("recordings", day, "run", "000001")
    assert parse_object_key("recordings", key) is None
