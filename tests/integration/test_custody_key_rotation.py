"""The custody key cannot be switched silently (issue 23 item 5): moto server, the ledger
on a SQLite file and on PostgreSQL, the simulator for the run.

A run (and `audit checkpoint`) whose TENIOS_CUSTODY_KEY_FILE is not the key that signed
the bucket's newest checkpoint stops at the preflight, exit 2, before it fetches
anything, saying what to do; `audit rotate-key --new-key FILE` logs a ``key_rotated``
event signed in by the old key, after which the new key is accepted and the old one
refused; `verify-bucket` with the original key follows the rotation; a checkpoint the
retired key signs after its rotation is a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tenios_io.custody import signing
from tenios_io.custody.layout import default_origin
from tenios_io.ledger import NewRecording
from tenios_io.simulator import RunningSimulator
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Cli = Callable[..., CliResult]


@dataclass
class Keys:
    world: AuditWorld
    old: signing.Signer
    new: signing.Signer
    old_file: Path
    new_file: Path

    def use(self, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
        path = self.old_file if which == "old" else self.new_file
        monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(path))


@pytest.fixture
def keys(
    database_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    api_env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Keys]:
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "365",
    }.items():
        monkeypatch.setenv(name, value)
    world = make_world(database_url, s3_client, locked_bucket)
    origin = default_origin(locked_bucket, "recordings")
    made = []
    for which in ("old", "new"):
        signer = signing.generate(origin)
        path = tmp_path / f"{which}.key"
        signing.write_signer(path, signer)
        made += [signer, path]
    yield Keys(world, made[0], made[2], made[1], made[3])
    world.ledger.engine.dispose()


def test_keygen_names_the_key_for_the_log_origin(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TENIOS_S3_BUCKET", "acme-archive")
    monkeypatch.setenv("TENIOS_S3_PREFIX", "calls/berlin")
    made = cli("audit", "keygen", "--output", str(tmp_path / "k1"))
    assert made.exit_code == 0, made.output
    assert signing.read_signer(tmp_path / "k1").name == "tenios-archive/acme-archive/calls/berlin"
    assert made.stdout.startswith("tenios-archive/acme-archive/calls/berlin+")
    named = cli("audit", "keygen", "--name", "archive.example", "--output", str(tmp_path / "k2"))
    assert named.exit_code == 0 and signing.read_signer(tmp_path / "k2").name == "archive.example"
    monkeypatch.delenv("TENIOS_S3_BUCKET")
    nameless = cli("audit", "keygen", "--output", str(tmp_path / "k3"))
    assert nameless.exit_code == 2 and "--name" in nameless.stderr
    assert "TENIOS_S3_BUCKET" in nameless.stderr and not (tmp_path / "k3").exists()


def test_a_switched_key_is_refused_and_a_rotation_is_followed_end_to_end(
    keys: Keys,
    cli: Cli,
    api_env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    world = keys.world
    world.archive(2)
    keys.use(monkeypatch, "old")
    assert cli("audit", "checkpoint").exit_code == 0

    # a silent switch: refused before anything is fetched, claimed or signed
    (due,) = api_env.sim.seed(1)
    world.ledger.register([NewRecording(due, call_uuid=api_env.sim.recording(due).call_uuid)])
    keys.use(monkeypatch, "new")
    refused = cli("run", "nightly")
    assert refused.exit_code == 2, refused.output
    said = refused.words
    assert "preflight" in said and "TENIOS_CUSTODY_KEY_FILE" in said
    assert f"{keys.new.verifier.hash.hex()}" in said and keys.old.verifier.hash.hex() in said
    assert "tenios-archive audit rotate-key --new-key FILE" in said
    assert "Traceback" not in refused.output
    assert world.get(due).state.value == "pending" and world.get(due).attempts == 0
    again = cli("audit", "checkpoint")
    assert again.exit_code == 2 and "rotate-key" in again.words

    # the rotation: logged, signed in by the old key
    keys.use(monkeypatch, "old")
    rotated = cli("audit", "rotate-key", "--new-key", str(keys.new_file))
    assert rotated.exit_code == 0, rotated.output
    assert str(keys.new.verifier) in rotated.words and str(keys.old.verifier) in rotated.words
    (event,) = world.ledger.events_named(["key_rotated"])
    assert f"key rotated at custody event {event['seq']}" in rotated.words
    assert event["recording_uuid"] is None
    assert str(keys.new.verifier) in event["details"]
    assert str(keys.old.verifier) in event["details"]
    secrets = [p.read_text().strip().split("+", 4)[4] for p in (keys.old_file, keys.new_file)]
    assert not any(s in rotated.output or s in event["details"] for s in secrets)
    retired = cli("audit", "checkpoint")  # the old key signs no more
    assert retired.exit_code == 2 and "was rotated to" in retired.words
    assert cli("audit", "rotate-key", "--new-key", str(keys.new_file)).exit_code == 2

    # the new key is accepted: a run, then checkpoints signed by it
    keys.use(monkeypatch, "new")
    ran = cli("run", "nightly")
    assert ran.exit_code == 0, ran.output
    assert world.get(due).state.value == "archived"

    auditor = cli("audit", "verify-bucket", "--key", str(keys.old.verifier))
    assert auditor.exit_code == 0, auditor.output
    assert f"then by {keys.new.name}+{keys.new.verifier.hash.hex()}" in auditor.words
    assert f"(key rotated at event {event['seq']})" in auditor.words
    only_new = cli("audit", "verify-bucket", "--key", str(keys.new.verifier))
    assert only_new.exit_code == 1 and "signature" in only_new.stdout  # the original is needed

    proofs = tmp_path / "proofs"
    assert cli("audit", "prove", due, "--output", str(proofs)).exit_code == 0
    old_only = cli("audit", "check-proof", str(proofs), "--key", str(keys.old.verifier))
    assert old_only.exit_code == 1 and "at step signature" in old_only.words
    both = cli(
        "audit",
        "check-proof",
        str(proofs),
        "--key",
        str(keys.old.verifier),
        "--key",
        str(keys.new.verifier),
    )
    assert both.exit_code == 0 and "proof OK" in both.words, both.output


def test_a_checkpoint_the_retired_key_signs_after_the_rotation_is_a_finding(
    keys: Keys, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who kept the old key and writes the log with their own tools (here: the
    writer with its key check turned off) cannot extend the log unnoticed."""
    import tenios_io.publish.log as publish_log
    from tenios_io.audit import write_checkpoint
    from tenios_io.publish.rotation import rotate_key

    world = keys.world
    world.archive(2)
    write_checkpoint(world.ledger, world.store, signer=keys.old)
    rotate_key(world.ledger, world.store, keys.old, keys.new)
    clean = cli("audit", "verify-bucket", "--key", str(keys.old.verifier))
    assert clean.exit_code == 0, clean.output

    monkeypatch.setattr(publish_log, "check_signing_key", lambda *_a, **_k: None)
    for signer in (keys.old, keys.new, keys.old):  # before and after the new key's first
        world.archive(1)
        write_checkpoint(world.ledger, world.store, signer=signer)
        found = cli("audit", "verify-bucket", "--key", str(keys.old.verifier))
        assert found.exit_code == 1, found.output
        assert "rotated away from" in found.words and "signature" in found.stdout
