"""A ledger and its bucket prefix know each other (issue 12 item 4): moto server, the
ledger on a SQLite file and on PostgreSQL, the simulator for the second ledger's API.

A second ledger pointed at a bucket prefix that holds another ledger's custody history
is refused at the preflight, exit 2, before it fetches anything (it used to archive a
whole night and then fail at the checkpoint with "events were deleted or the table
truncated"); the `audit` commands say the same; a bucket from before ledger ids gets
the id at the first run; `ledger restore --from-bucket` adopts the bucket's id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tenios_io.audit import write_checkpoint
from tenios_io.config import load_settings
from tenios_io.exceptions import BucketOfAnotherLedger
from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.ledger.tables import ledger_identity
from tenios_io.publish.identity import bind_bucket, check_bucket, ledger_id_document, ledger_id_key
from tenios_io.run.pipeline import open_pipeline
from tenios_io.simulator import RunningSimulator
from tenios_io.store import PROBE_NAME
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, keys_of, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]
ID_KEY = "recordings/_custody/ledger-id"
ANOTHER = "belongs to another ledger"


@pytest.fixture
def first(
    database_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    api_env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AuditWorld]:
    """The first ledger (SQLite file or PostgreSQL) with the CLI's settings pointing at it."""
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "365",
    }.items():
        monkeypatch.setenv(name, value)
    world = make_world(database_url, s3_client, locked_bucket)
    yield world
    world.ledger.engine.dispose()


@pytest.fixture(
    params=["second-sqlite", pytest.param("second-postgresql", marks=pytest.mark.postgres)]
)
def second(
    request: pytest.FixtureRequest, tmp_path: Path, api_env: RunningSimulator
) -> Iterator[Ledger]:
    """Another ledger (a new SQLite file, or a new PostgreSQL database) with three
    recordings the simulator has."""
    if request.param == "second-sqlite":
        url = f"sqlite:///{tmp_path / 'second.sqlite'}"
    else:
        url = str(request.getfixturevalue("another_postgres_url"))
    upgrade(url)
    ledger = Ledger(create_ledger_engine(url), actor="test")
    ids = api_env.sim.seed(3)
    ledger.register([NewRecording(u, call_uuid=api_env.sim.recording(u).call_uuid) for u in ids])
    yield ledger
    ledger.engine.dispose()


def _bucket_id(s3: S3Client, bucket: str, key: str = ID_KEY) -> str:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(json.loads(body)["ledger_id"])


def _recordings_and_custody(world: AuditWorld) -> list[str]:
    """The bucket's keys but the preflight's probe object (written once, before the id
    is compared)."""
    return [k for k in keys_of(world.s3, world.bucket) if not k.endswith(PROBE_NAME)]


def _use(monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> None:
    monkeypatch.setenv(
        "TENIOS_DATABASE_URL", ledger.engine.url.render_as_string(hide_password=False)
    )


def test_a_second_ledger_on_the_bucket_is_refused_before_it_fetches(
    first: AuditWorld,
    second: Ledger,
    cli: Cli,
    api_env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first.archive(2)
    bound = cli("audit", "checkpoint")
    assert bound.exit_code == 0, bound.output
    ours, theirs = first.ledger.ledger_id(), second.ledger_id()
    assert ours != theirs
    assert _bucket_id(first.s3, first.bucket) == ours
    head = first.s3.head_object(Bucket=first.bucket, Key=ID_KEY)
    assert head["ObjectLockMode"] == "GOVERNANCE"  # under Object Lock, like a checkpoint
    keys = _recordings_and_custody(first)

    _use(monkeypatch, second)
    refused = cli("run", "nightly")
    assert refused.exit_code == 2, refused.output
    assert "preflight" in refused.stderr and ANOTHER in refused.stderr
    assert ours in refused.stderr and theirs in refused.stderr
    assert "TENIOS_S3_PREFIX" in refused.stderr and "ledger restore --from-bucket" in refused.stderr
    assert "truncated" not in refused.output and "Traceback" not in refused.output
    assert api_env.sim.requests == []  # nothing fetched ...
    assert {r.state for r in second.iter_recordings()} == {"pending"}  # ... or claimed
    assert {r.attempts for r in second.iter_recordings()} == {0}
    assert _recordings_and_custody(first) == keys  # ... or written (but the probe)

    report_dir = tmp_path / "report"
    for command in (
        ("audit", "verify-chain"),
        ("audit", "checkpoint"),
        ("audit", "reconcile"),
        ("audit", "verify", "--all"),
        ("audit", "report", "--output", str(report_dir)),
    ):
        said = cli(*command)
        assert said.exit_code == 2 and ANOTHER in said.stderr, (command, said.output)
        assert ours in said.stderr and "TENIOS_S3_PREFIX" in said.stderr
    assert _recordings_and_custody(first) == keys

    # The way out the message names: a prefix of its own.
    monkeypatch.setenv("TENIOS_S3_PREFIX", "second")
    with open_pipeline(load_settings(None), actor="test") as pipeline:
        pipeline.preflight()
    assert _bucket_id(first.s3, first.bucket, "second/_custody/ledger-id") == theirs
    assert _bucket_id(first.s3, first.bucket) == ours

    # The first ledger itself is not bothered, and nothing new is written for it.
    _use(monkeypatch, first.ledger)
    monkeypatch.delenv("TENIOS_S3_PREFIX")
    versions = first.s3.list_object_versions(Bucket=first.bucket, Prefix=ID_KEY)["Versions"]
    with open_pipeline(load_settings(None), actor="test") as pipeline:
        pipeline.preflight()
    assert first.s3.list_object_versions(Bucket=first.bucket, Prefix=ID_KEY)["Versions"] == (
        versions
    )
    chain = cli("audit", "verify-chain")
    assert chain.exit_code == 0, chain.output
    clean = cli("audit", "reconcile")  # the ledger id is no unrecognised key
    assert clean.exit_code == 0, clean.output


def test_a_bucket_from_before_ledger_ids_gets_one_at_the_first_run(
    first: AuditWorld, second: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier version checkpointed without an id: this ledger's first run writes it;
    another ledger's first run finds checkpoints it did not write and writes nothing."""
    first.archive(2)
    write_checkpoint(first.ledger, first.store)  # as an earlier version did: no id
    assert ID_KEY not in keys_of(first.s3, first.bucket)

    _use(monkeypatch, second)
    with (
        open_pipeline(load_settings(None), actor="test") as pipeline,
        pytest.raises(BucketOfAnotherLedger) as refused,
    ):
        pipeline.preflight()
    message = str(refused.value)
    assert message.startswith("preflight: ") and "did not write" in message
    assert "_custody/checkpoints/" in message and "TENIOS_S3_PREFIX" in message
    assert ID_KEY not in keys_of(first.s3, first.bucket)

    _use(monkeypatch, first.ledger)
    with open_pipeline(load_settings(None), actor="test") as pipeline:
        pipeline.preflight()
    assert _bucket_id(first.s3, first.bucket) == first.ledger.ledger_id()
    assert first.s3.head_object(Bucket=first.bucket, Key=ID_KEY)["ObjectLockMode"] == ("GOVERNANCE")
    again = bind_bucket(first.ledger, first.store)
    assert not again.written and again.ledger_id == first.ledger.ledger_id()


def test_two_ledgers_binding_a_new_bucket_at_once(first: AuditWorld, second: Ledger) -> None:
    """The write is conditional: the ledger that loses the race is refused, not ignored.
    (The race is staged: the other ledger's id lands between the check and the write.)"""
    store = first.store
    real_check = check_bucket
    calls: list[str | None] = []

    def racing_check(ledger: Ledger, s: object) -> str | None:
        if not calls:  # the first look finds the bucket empty; then the other one wins
            calls.append(None)
            store.put_document(ID_KEY, ledger_id_document(first.ledger.ledger_id()))
            return None
        found = real_check(ledger, store)
        calls.append(found)
        return found

    import tenios_io.publish.identity as identity

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(identity, "check_bucket", racing_check)
        with pytest.raises(BucketOfAnotherLedger, match=ANOTHER):
            bind_bucket(second, store)
    assert _bucket_id(first.s3, first.bucket) == first.ledger.ledger_id()


def test_an_unreadable_ledger_id_is_said(first: AuditWorld) -> None:
    first.s3.put_object(Bucket=first.bucket, Key=ID_KEY, Body=b"not json")
    with pytest.raises(BucketOfAnotherLedger, match="unreadable"):
        check_bucket(first.ledger, first.store)
    assert ledger_id_key("") == "_custody/ledger-id"


def test_every_migrated_ledger_has_its_own_id(database_url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    upgrade(other)
    ids = []
    for url in (database_url, other):
        engine = create_ledger_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(ledger_identity)).all()
        engine.dispose()
        assert len(rows) == 1
        ids.append(rows[0].ledger_id)
    assert ids[0] != ids[1]
