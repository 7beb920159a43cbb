"""make_s3_client: the pool size asked for, and the service models read once per
process while credentials stay each client's own."""

from __future__ import annotations

import pytest

from tenios_io.store import make_s3_client
from tenios_io.store.client import DEFAULT_POOL


def test_the_pool_holds_a_connection_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert make_s3_client().meta.config.max_pool_connections == DEFAULT_POOL
    assert make_s3_client(max_pool_connections=34).meta.config.max_pool_connections == 34


def test_clients_share_the_models_not_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")
    first = make_s3_client()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "second-secret")
    second = make_s3_client()
    assert first._loader is second._loader  # type: ignore[attr-defined]
    keys = [c._request_signer._credentials.access_key for c in (first, second)]  # type: ignore[attr-defined]
    assert keys == ["first-key", "second-key"]
