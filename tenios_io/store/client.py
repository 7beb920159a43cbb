"""The S3 client factory: boto3's standard credential chain, standard-mode retries.

The store never builds a client itself; callers build one here and inject it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["make_s3_client"]


def make_s3_client(
    max_attempts: int = 10,
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
) -> S3Client:
    """An S3 client from boto3's standard credential chain with standard-mode retries.

    ``max_attempts`` counts every attempt, the first included (botocore's
    ``total_max_attempts``); standard mode backs off exponentially with jitter
    and retries throttling (503 SlowDown), 5xx and connection errors.

    Credentials, region and endpoint come from boto3 itself (environment,
    ``AWS_PROFILE``, instance/task roles, ``AWS_ENDPOINT_URL_S3``); ``endpoint_url``
    and ``session`` exist for tests and tools that must pin them.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=120,
        tcp_keepalive=True,
    )
    return (session or boto3.session.Session()).client(
        "s3", endpoint_url=endpoint_url, config=config
    )
