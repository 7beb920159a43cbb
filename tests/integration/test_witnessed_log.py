"""Witnessed checkpoints end to end (issue 23, items 2, 3 and 6): `run nightly` submits
each custody log checkpoint to a witness running as its own process over HTTP, and the
auditor pins what it verified.

The attack: someone with the database, the custody signing key and the right to bypass
GOVERNANCE locks rewrites one past custody event, re-hashes the chain, deletes the log
and rebuilds and re-signs it.  Every signature verifies — but the witness refuses the
rebuilt history, the next run reports the fork (exit 1, a ``log_forked`` event), and
`audit verify-bucket --since` with the auditor's pinned checkpoint fails.  The same flow
without the rewrite passes, across a restart of the witness.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tenios_io.audit import write_checkpoint
from tenios_io.custody import signing
from tenios_io.custody.chain import GENESIS, canonical_json, event_hash
from tenios_io.custody.cosignature import verify_cosignatures
from tenios_io.ledger.tables import custody_events
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.witness import WitnessKey, WitnessProcess
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]
LOG = "recordings/_custody/log/"


@dataclass
class Archive:
    """An archive (ledger + locked bucket), its custody key, and a witness following it."""

    world: AuditWorld
    signer: signing.Signer
    witness: WitnessProcess
    witness_key: WitnessKey
    monkeypatch: pytest.MonkeyPatch

    @property
    def key(self) -> str:
        return str(self.signer.verifier)

    def point_at_witness(self) -> None:
        """TENIOS_CUSTODY_WITNESSES naming the witness where it listens now."""
        self.monkeypatch.setenv(
            "TENIOS_CUSTODY_WITNESSES", f"{self.witness_key.verifier}@{self.witness.url}"
        )

    def get(self, key: str) -> bytes:
        return self.world.s3.get_object(Bucket=self.world.bucket, Key=key)["Body"].read()

    def events(self, name: str) -> list[dict[str, object]]:
        with self.world.ledger.engine.connect() as conn:
            rows = conn.execute(
                sa.select(custody_events).where(custody_events.c.event == name)
            ).mappings()
            return [dict(row) for row in rows]


@pytest.fixture
def archive(
    database_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    simulator_url: str,
    tmp_path: Path,
    witness_key: WitnessKey,
    start_witness: Callable[..., WitnessProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Archive]:
    world = make_world(database_url, s3_client, locked_bucket)
    signer = signing.generate("archive.test")
    key_file = tmp_path / "custody.key"
    signing.write_signer(key_file, signer)
    witness = start_witness(tmp_path / "witness-state", str(signer.verifier))
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_ACCESS_KEY": "k-123",
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_API_URL": simulator_url,  # the preflight connects to it; nothing is due
        "TENIOS_CUSTODY_KEY_FILE": str(key_file),
        "COLUMNS": "400",  # findings tables unwrapped: one finding, one line
    }.items():
        monkeypatch.setenv(name, value)
    found = Archive(world, signer, witness, witness_key, monkeypatch)
    found.point_at_witness()
    yield found
    world.ledger.engine.dispose()


def _verify(cli: Cli, archive: Archive, *extra: str) -> CliResult:
    return cli(
        "audit", "verify-bucket", "--key", archive.key, "--witness",
        str(archive.witness_key.verifier), *extra,
    )  # fmt: skip


def _rewrite_event(archive: Archive, seq: int) -> None:
    """The attacker's database edit: event ``seq`` changed, every hash recomputed (on
    PostgreSQL as a superuser, the append-only triggers switched off for the session)."""
    engine = archive.world.ledger.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(
            custody_events.update()
            .where(custody_events.c.seq == seq)
            .values(details=canonical_json({"forged": True}))
        )
        rows = list(
            conn.execute(sa.select(custody_events).order_by(custody_events.c.seq)).mappings()
        )
        prev = GENESIS
        for row in rows:
            new = event_hash(prev, row)
            for value in (f"x{new[1:]}", new):  # the unique index must hold mid-update
                conn.execute(
                    custody_events.update()
                    .where(custody_events.c.seq == row["seq"])
                    .values(prev_hash=prev, hash=value)
                )
            prev = new


def _delete_with_bypass(archive: Archive, prefix: str) -> None:
    """Every version under ``prefix`` deleted, GOVERNANCE locks bypassed."""
    s3, bucket = archive.world.s3, archive.world.bucket
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
        s3.delete_object(
            Bucket=bucket,
            Key=entry["Key"],
            VersionId=entry["VersionId"],
            BypassGovernanceRetention=True,
        )


def test_a_rebuilt_and_re_signed_log_is_refused_by_the_witness_and_the_auditor(
    archive: Archive, cli: Cli, tmp_path: Path
) -> None:
    pinned = tmp_path / "pinned.checkpoint"
    archive.world.archive(2)
    first = cli("run", "nightly")
    assert first.exit_code == 0, first.output
    assert "1 of 1 cosigned" in first.words and "(witnessed)" in first.words
    latest = archive.get(LOG + "checkpoint")
    assert set(verify_cosignatures(latest, [archive.witness_key.verifier])) == {
        archive.witness_key.verifier.name
    }
    saved = _verify(cli, archive, "--save-checkpoint", str(pinned))
    assert saved.exit_code == 0, saved.output
    assert pinned.read_bytes() == latest

    # Untampered: the log grows, the witness (restarted: its state is on disk) cosigns
    # again, and the auditor's pinned checkpoint is extended.
    archive.witness.restart()
    archive.point_at_witness()
    archive.world.archive(2)
    second = cli("run", "nightly")
    assert second.exit_code == 0 and "(witnessed)" in second.words, second.output
    extended = _verify(cli, archive, "--since", str(pinned))
    assert extended.exit_code == 0, extended.output
    assert "extends the checkpoint pinned" in extended.words

    # The attack: rewrite event 2, rebuild and re-sign the log with the operator's key.
    _rewrite_event(archive, 2)
    _delete_with_bypass(archive, LOG)
    _delete_with_bypass(archive, "recordings/_custody/checkpoints/")
    _delete_with_bypass(archive, "recordings/_custody/manifests/")  # they name the old event
    write_checkpoint(archive.world.ledger, archive.world.store, signer=archive.signer)
    plain = cli("audit", "verify-bucket", "--key", archive.key)
    assert plain.exit_code == 0, plain.output  # without a witness, nothing tells

    forked = cli("run", "nightly")
    assert forked.exit_code == 1, forked.output
    assert "LOG FORKED" in forked.words
    (event,) = archive.events("log_forked")
    details = json.loads(str(event["details"]))
    assert list(details["witnesses"]) == [archive.witness_key.verifier.name]
    assert "422" in details["witnesses"][archive.witness_key.verifier.name]
    refused = list((tmp_path / "witness-state" / "refused").iterdir())
    assert len(refused) == 1  # the log's own signed request, kept as evidence

    caught = _verify(cli, archive, "--since", str(pinned))
    assert caught.exit_code == 1
    assert "does not extend the checkpoint you pinned" in caught.words
    assert "not witnessed" in caught.words


def test_a_witness_that_is_down_delays_witnessing_and_the_next_run_catches_up(
    archive: Archive, cli: Cli
) -> None:
    archive.witness.stop()
    archive.world.archive(1)
    alone = cli("run", "nightly")
    assert alone.exit_code == 0, alone.output
    assert "NOT witnessed yet" in alone.words and "the next run retries" in alone.words
    unwitnessed = _verify(cli, archive)
    assert unwitnessed.exit_code == 1 and "it is not witnessed" in unwitnessed.words

    archive.witness.start()
    archive.point_at_witness()
    caught_up = cli("run", "nightly")  # nothing new: the latest checkpoint is submitted again
    assert caught_up.exit_code == 0 and "(witnessed)" in caught_up.words, caught_up.output
    # The numbered checkpoint stays as written (locked); `checkpoint` got a new version,
    # the same signed note with the cosignature: every version is accounted for.
    numbered = [
        v
        for v in archive.world.s3.list_object_versions(
            Bucket=archive.world.bucket, Prefix=LOG + "checkpoints/"
        )["Versions"]
    ]
    assert len(numbered) == 1
    witnessed = _verify(cli, archive)
    assert witnessed.exit_code == 0, witnessed.output
    assert "1 of 1 needed witness cosignatures" in witnessed.words

    # A cosignature line that claims the witness's key but does not verify is no
    # witness: verify-bucket says so instead of counting it.
    lines = archive.get(LOG + "checkpoint").split(b"\n")
    prefix, _, encoded = lines[-2].rpartition(b" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    lines[-2] = prefix + b" " + base64.b64encode(bytes(raw))
    archive.world.s3.put_object(
        Bucket=archive.world.bucket, Key=LOG + "checkpoint", Body=b"\n".join(lines)
    )
    forged = _verify(cli, archive)
    assert forged.exit_code == 1 and "does not verify" in forged.words


def test_witness_settings_are_checked_at_start_up(
    archive: Archive, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_key = str(archive.witness_key.verifier).replace("+B", "+A", 1)
    for value, needle in (
        ("not-a-witness", "VERIFIER_KEY@BASE_URL"),
        (f"{bad_key}@{archive.witness.url}", "TENIOS_CUSTODY_WITNESSES"),
        (f"{archive.key}@{archive.witness.url}", "not a witness verifier key"),
    ):
        monkeypatch.setenv("TENIOS_CUSTODY_WITNESSES", value)
        refused = cli("run", "nightly")
        assert refused.exit_code == 2 and needle in refused.words, refused.output
    archive.point_at_witness()
    monkeypatch.setenv("TENIOS_CUSTODY_WITNESS_QUORUM", "2")
    refused = cli("run", "nightly")
    assert refused.exit_code == 2 and "names only 1" in refused.words


def test_audit_checkpoint_is_witnessed_too(archive: Archive, cli: Cli) -> None:
    archive.world.archive(1)
    written = cli("audit", "checkpoint")
    assert written.exit_code == 0, written.output
    assert "custody witnesses: 1 of 1 cosigned" in written.words and "(witnessed)" in written.words
    (event,) = archive.events("checkpoint")
    details = json.loads(str(event["details"]))
    assert details["log_witnessed"] is True
    assert details["log_cosigned_by"] == [archive.witness_key.verifier.name]
