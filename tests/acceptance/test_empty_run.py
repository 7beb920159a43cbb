"""A run that changed nothing writes no checkpoint (issue 12 item 9): before, every
empty run pinned the previous checkpoint's own event in a new one."""

from __future__ import annotations

from flows.nightly import nightly_archive
from tests.acceptance.conftest import ArchiveWorld


def checkpoints(world: ArchiveWorld) -> list[str]:
    listed = world.s3.list_objects_v2(
        Bucket=world.bucket, Prefix="recordings/_custody/checkpoints/"
    )  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_an_empty_run_writes_no_checkpoint(world: ArchiveWorld) -> None:
    world.register(world.sim.seed(1))
    first = nightly_archive(max_wait_seconds=0)
    assert first["counts"] == {"archived": 1} and len(checkpoints(world)) == 1
    empty = nightly_archive(max_wait_seconds=0)
    assert empty["counts"] == {} and empty["checkpoint"]["skipped"]
    assert empty["checkpoint"]["key"] == checkpoints(world)[0] and len(checkpoints(world)) == 1
    world.register(world.sim.seed(1))
    busy = nightly_archive(max_wait_seconds=0)
    assert busy["counts"] == {"archived": 1} and "skipped" not in busy["checkpoint"]
    assert len(checkpoints(world)) == 2
