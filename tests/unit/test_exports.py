"""Packages re-export what they promise (as httpx tests its __all__)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "tenios_io.store",
        "tenios_io.sftp",
        "tenios_io.ledger",
        "tenios_io.simulator",
        "tenios_io.audit",
    ],
)
def test_all_names_exist_and_are_unique(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert len(names) == len(set(names))
    assert [n for n in names if not hasattr(mod, n)] == []


def test_store_exports_what_the_pipeline_uses() -> None:
    import tenios_io.store as store

    for name in (
        "ArchiveStore",
        "ArchivedObject",
        "BucketStatus",
        "make_s3_client",
        "object_key",
        "parse_object_key",
        "sidecar_key",
    ):
        assert name in store.__all__
