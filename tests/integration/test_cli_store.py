"""`tenios-archive store create-bucket` against moto server over HTTP (issue 27: a
local set-up needs no aws-cli and no guessing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS, REGION

Cli = Callable[..., CliResult]


@pytest.fixture
def moto_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL_S3": moto_server}.items():
        monkeypatch.setenv(key, value)


def test_create_bucket_makes_an_object_lock_bucket_once(
    moto_env: None, cli: Cli, s3_client: object, plain_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"tenios-created-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("TENIOS_S3_BUCKET", name)
    made = cli("store", "create-bucket")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == (
        f"bucket {name} created in {REGION}, with Object Lock and versioning"
    )
    lock = s3_client.get_object_lock_configuration(Bucket=name)  # type: ignore[attr-defined]
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    versioning = s3_client.get_bucket_versioning(Bucket=name)  # type: ignore[attr-defined]
    assert versioning["Status"] == "Enabled"

    again = cli("store", "create-bucket")  # safe to run twice
    assert again.exit_code == 0 and "already exists" in again.stdout

    unlocked = cli("store", "create-bucket", "--bucket", plain_bucket)
    assert unlocked.exit_code == 2
    assert "without Object Lock" in unlocked.stderr and len(unlocked.stderr.splitlines()) == 1
    s3_client.delete_bucket(Bucket=name)  # type: ignore[attr-defined]


def test_create_bucket_without_a_bucket_name_is_a_usage_error(
    moto_env: None, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENIOS_S3_BUCKET", raising=False)
    result = cli("store", "create-bucket")
    assert result.exit_code == 2 and "TENIOS_S3_BUCKET" in result.stderr
