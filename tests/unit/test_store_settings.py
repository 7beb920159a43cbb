"""ArchiveStore.from_settings and the S3 settings it reads (no network)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import boto3
import pytest

from tenios_io.config import load_settings
from tenios_io.exceptions import ConfigError
from tenios_io.store import ArchiveStore, make_s3_client


def test_from_settings() -> None:
    settings = load_settings(
        s3_bucket="archive",
        s3_prefix="/tenios/rec/",
        retention_mode="compliance",
        retention_days=10,
        s3_sse="aws:kms",
        s3_kms_key_id="alias/recordings",
        multipart_threshold_mb=8,
    )
    client = make_s3_client(
        session=boto3.session.Session(
            aws_access_key_id="a", aws_secret_access_key="b", region_name="eu-central-1"
        ),
        endpoint_url="http://127.0.0.1:9",
    )
    store = ArchiveStore.from_settings(settings, client)
    assert (store.bucket, store.prefix) == ("archive", "tenios/rec")
    assert store.key_for("0F8FAD5B-D9CB-469F-A165-70867728950E", date(2024, 1, 31), "wav") == (
        "tenios/rec/2024/01/31/0f8fad5b-d9cb-469f-a165-70867728950e.wav"
    )
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}


def test_from_settings_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="TENIOS_S3_BUCKET"):
        ArchiveStore.from_settings(
            load_settings(s3_bucket=None), boto3.client("s3", region_name="us-east-1")
        )


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"s3_sse": "rot13"}, "TENIOS_S3_SSE"),
        ({"s3_kms_key_id": "alias/x"}, "TENIOS_S3_KMS_KEY_ID"),
        ({"multipart_threshold_mb": 4}, "TENIOS_MULTIPART_THRESHOLD_MB"),
    ],
)
def test_bad_s3_settings_name_the_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(**overrides)


def test_spool_dir_setting(tmp_path: Path) -> None:
    assert load_settings(spool_dir=str(tmp_path)).spool_dir == tmp_path
    assert load_settings(spool_dir=None).spool_dir is None
