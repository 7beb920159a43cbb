"""One S3 write per recording (issue 13), counted at the S3 server: a real `run nightly`
talks to moto through a counting proxy; each recording object is PUT exactly once,
carries its custody facts as metadata, and each archived batch gets one custody
manifest.  A crash before a manifest loses nothing: the next run writes it."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tenios_io.custody.chain import row_digest
from tenios_io.ledger import State
from tenios_io.ledger.tables import manifest_queue
from tenios_io.store import parse_object_key
from tenios_io.store.keys import manifest_prefix
from tests.acceptance.conftest import ArchiveWorld
from tests.acceptance.test_crash import run_and_kill
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import S3RequestLog

PREFIX = "recordings"
MANIFEST_KEY = re.compile(
    r"recordings/_custody/manifests/\d{4}/\d{2}/\d{2}/[A-Za-z0-9._-]+-[A-Za-z0-9]+\.jsonl"
)


def manifests(world: ArchiveWorld) -> dict[str, list[dict[str, object]]]:
    """Every custody manifest in the bucket, its lines parsed."""
    s3 = world.s3
    listed = s3.list_objects_v2(Bucket=world.bucket, Prefix=manifest_prefix(PREFIX))  # type: ignore[attr-defined]
    out = {}
    for item in listed.get("Contents", []):
        body = s3.get_object(Bucket=world.bucket, Key=item["Key"])["Body"].read()  # type: ignore[attr-defined]
        out[item["Key"]] = [json.loads(line) for line in body.decode("ascii").splitlines()]
    return out


def test_one_put_per_recording_and_one_manifest_per_batch(
    world: ArchiveWorld,
    s3_request_log: S3RequestLog,
    monkeypatch: pytest.MonkeyPatch,
    cli: object,
) -> None:
    uuids = world.sim.seed(10)
    world.register(uuids)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_request_log.url)
    result: CliResult = cli("run", "nightly", "--concurrency", "2", "--batch-size", "4")  # type: ignore[operator]
    assert result.exit_code == 0, result.output

    puts = s3_request_log.puts(world.bucket)
    recording_puts = Counter(r.key for r in puts if parse_object_key(PREFIX, r.key))
    manifest_puts = [r.key for r in puts if r.key.startswith(manifest_prefix(PREFIX))]
    ledger = world.ledger()
    keys = {ledger.get(u).s3_key for u in uuids}
    # Exactly one PUT per recording object, nothing beside it (no sidecar) ...
    assert recording_puts == Counter({key: 1 for key in keys})
    assert not [r for r in puts if r.key.endswith(".json") and parse_object_key(PREFIX, r.key[:-5])]
    # ... and one manifest per batch: 10 recordings in batches of 4.
    assert len(manifest_puts) == len(set(manifest_puts)) == math.ceil(10 / 4)
    assert all(MANIFEST_KEY.fullmatch(key) for key in manifest_puts)
    # Everything else the run wrote is the custody log / checkpoint / identity / probe.
    others = [r.key for r in puts if r.key not in keys and r.key not in manifest_puts]
    assert all("/_custody/" in key or key.endswith(".tenios-archive-probe") for key in others)

    found = manifests(world)
    assert sorted(found) == sorted(manifest_puts)
    lines = [line for body in found.values() for line in body]
    assert sorted(str(line["recording_uuid"]) for line in lines) == sorted(uuids)
    for line in lines:
        rec = ledger.get(str(line["recording_uuid"]))
        assert (line["key"], line["version_id"], line["sha256"], line["size"]) == (
            rec.s3_key,
            rec.s3_version_id,
            rec.sha256,
            rec.size_bytes,
        )
        assert line["retention_mode"] == rec.retention_mode and line["legal_hold"] is False
        events = ledger.events(rec.recording_uuid)
        assert line["events"] == [row_digest(e) for e in events][: len(line["events"])]
        assert events[len(line["events"]) - 1]["event"] == "archived"
        # head-object alone says what the object is.
        head = world.s3.head_object(Bucket=world.bucket, Key=rec.s3_key)  # type: ignore[attr-defined]
        meta = head["Metadata"]
        assert (meta["recording-uuid"], meta["sha256"], meta["size"], meta["source"]) == (
            rec.recording_uuid,
            rec.sha256,
            str(rec.size_bytes),
            "api",
        )
        assert meta["call-uuid"] == rec.call_uuid and meta["fetched-at"] and meta["codec"]
        assert head["ObjectLockMode"] == "GOVERNANCE"
    assert ledger.manifests_pending() == []
    ledger.engine.dispose()


@pytest.mark.slow
def test_a_crash_before_the_manifest_loses_nothing_and_the_next_run_writes_it(
    world: ArchiveWorld, cli: object
) -> None:
    uuids = world.sim.seed(4)
    world.register(uuids)
    run_and_kill(world, "before_manifest", "--concurrency", "1", "--batch-size", "10")
    ledger = world.ledger()
    # The batch is archived and verified; only its manifest is missing, and the ledger
    # knows it (reconcile says so).
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    assert manifests(world) == {}
    assert sorted(u for u, _ in ledger.manifests_pending()) == sorted(uuids)
    reconciled: CliResult = cli("audit", "reconcile")  # type: ignore[operator]
    assert reconciled.exit_code == 1 and "archived_without_manifest" in reconciled.output
    # As if the dead run's lease time had passed (its writer had that long to write it).
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.update(manifest_queue).values(queued_at=datetime.now(UTC) - timedelta(hours=1))
        )
    ledger.engine.dispose()

    again: CliResult = cli("run", "nightly")  # type: ignore[operator]
    assert again.exit_code == 0, again.output
    found = manifests(world)
    (lines,) = found.values()
    assert sorted(str(line["recording_uuid"]) for line in lines) == sorted(uuids)
    ledger = world.ledger()
    assert ledger.manifests_pending() == []
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    assert ledger.verify_chain().ok
    ledger.engine.dispose()
    assert cli("audit", "reconcile").exit_code == 0  # type: ignore[operator]
