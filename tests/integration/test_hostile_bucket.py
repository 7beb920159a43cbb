"""A bucket that forgot us is an alarm (issue 25, cases 11 and 13): moto server, the
ledger on a SQLite file and on PostgreSQL, the simulator as the API, through the real
entry point.

On main a run whose bucket had been emptied under the ledger (S3 lost its data, or a
new bucket of the same name) exited 0 without a word, and a run with another
``TENIOS_S3_PREFIX`` archived under that prefix, after which ``audit reconcile``
reported every earlier recording as archived without an object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tenios_io.ledger import NewRecording
from tenios_io.simulator import RunningSimulator
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, keys_of, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]
LOST = "has lost what this ledger archived into it"


@pytest.fixture
def world(
    database_url: str,
    s3_client: S3Client,
    plain_bucket: str,
    moto_server: str,
    api_env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AuditWorld]:
    """A ledger archiving into a bucket without Object Lock (so the test can empty it)."""
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_S3_BUCKET": plain_bucket,
        "TENIOS_RETENTION_MODE": "none",
    }.items():
        monkeypatch.setenv(name, value)
    w = make_world(database_url, s3_client, plain_bucket, retention_mode="none")
    yield w
    w.ledger.engine.dispose()


def delete_versions(s3: S3Client, bucket: str, prefix: str = "") -> None:
    """Delete every version and delete marker under ``prefix`` (S3 losing them)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


def refused(world: AuditWorld, cli: Cli, api: RunningSimulator, *needles: str) -> str:
    """`run nightly`, with a recording the API has pending, stopped at the preflight:
    exit 2, one line, nothing fetched."""
    [pending] = api.sim.seed(1)
    world.ledger.register([NewRecording(pending, call_uuid=api.sim.recording(pending).call_uuid)])
    result = cli("run", "nightly")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: ")
    for needle in needles:
        assert needle in line, (needle, line)
    assert api.sim.requests == []
    assert world.get(pending).state == "pending" and world.get(pending).attempts == 0
    return line


def test_an_emptied_bucket_stops_the_run(
    world: AuditWorld, cli: Cli, api_env: RunningSimulator
) -> None:
    archived = world.archive(2)
    assert cli("audit", "checkpoint").exit_code == 0
    delete_versions(world.s3, world.bucket)

    line = refused(
        world, cli, api_env, LOST, "no checkpoint", "TENIOS_S3_BUCKET", "audit reconcile"
    )
    assert f"s3://{world.bucket}/recordings" in line
    assert {world.get(key).state for key in archived} == {"archived"}  # nothing changed
    assert keys_of(world.s3, world.bucket) == [] or all(
        key.endswith(".tenios-archive-probe") for key in keys_of(world.s3, world.bucket)
    )


def test_checkpoints_older_than_the_ledgers_stop_the_run(
    world: AuditWorld, cli: Cli, api_env: RunningSimulator
) -> None:
    world.archive(1)
    assert cli("audit", "checkpoint").exit_code == 0
    kept = [k for k in keys_of(world.s3, world.bucket) if "/_custody/checkpoints/" in k]
    world.archive(1)
    assert cli("audit", "checkpoint").exit_code == 0
    newer = [
        k
        for k in keys_of(world.s3, world.bucket)
        if "/_custody/checkpoints/" in k and k not in kept
    ]
    assert len(kept) == 1 and len(newer) == 1
    delete_versions(world.s3, world.bucket, newer[0])  # the bucket lost its newest checkpoint

    refused(world, cli, api_env, LOST, "checkpointed events up to", "checkpoints up to event")


def test_no_id_no_checkpoint_and_the_archive_gone_stops_the_run(
    world: AuditWorld, cli: Cli, api_env: RunningSimulator
) -> None:
    # Archived by a run that never reached its checkpoint (and never bound the bucket).
    world.archive(2)
    delete_versions(world.s3, world.bucket)

    refused(world, cli, api_env, LOST, "nor the ledger's newest archived recording")


def test_another_prefix_on_a_bound_ledger_is_refused(
    world: AuditWorld, cli: Cli, api_env: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.archive(1)
    assert cli("audit", "checkpoint").exit_code == 0
    before = keys_of(world.s3, world.bucket)
    monkeypatch.setenv("TENIOS_S3_PREFIX", "other")

    refused(
        world,
        cli,
        api_env,
        "keeps its custody history under another prefix",
        "recordings/_custody/checkpoints/",
        "TENIOS_S3_PREFIX=other",
    )
    assert [k for k in keys_of(world.s3, world.bucket) if k.startswith("other/")] in (
        [],
        ["other/.tenios-archive-probe"],
    )
    assert [k for k in keys_of(world.s3, world.bucket) if not k.startswith("other/")] == before

    monkeypatch.setenv("TENIOS_S3_PREFIX", "recordings")  # back where it belongs: runs
    ran = cli("run", "nightly")
    assert ran.exit_code == 0, ran.output
    assert {r.state for r in world.ledger.iter_recordings()} == {"archived"}
