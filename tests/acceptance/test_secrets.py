"""No secret — the TENIOS access key, AWS keys, the custody signing key, the SFTP password
and key passphrase, the database password — reaches anything a person or another system
can read: console, logs (at --verbose), Prefect artifacts and parameters, the ledger and
its custody events, S3 metadata, custody manifests and the custody log, the audit
report, proof bundles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy.engine import make_url

from tenios_io.ledger import NewRecording, State
from tests.acceptance.conftest import ArchiveWorld, deliver
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.simulator import SIM_ACCESS_KEY
from tests.fixtures.sshd import SftpServer

WRONG_KEY = "wrong-key-7f3a9c1e5b"
ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    world: ArchiveWorld, *args: str, access_key: str = SIM_ACCESS_KEY
) -> subprocess.CompletedProcess[str]:
    """`tenios-archive ARGS` in a child process: everything it prints, logs included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(world.env, TENIOS_ACCESS_KEY=access_key, PYTHONPATH=str(ROOT))
    env.pop("PREFECT_LOGGING_LEVEL", None)  # let --verbose decide, as for an operator
    return subprocess.run(
        [sys.executable, "-m", "tenios_io.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


def test_no_secret_reaches_any_output(
    world: ArchiveWorld,
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "custody.key"
    keygen = cli("audit", "keygen", "--name", "archive.test", "--output", str(key_file))
    assert keygen.exit_code == 0, keygen.output
    world.env["TENIOS_CUSTODY_KEY_FILE"] = str(key_file)
    monkeypatch.setenv("TENIOS_CUSTODY_KEY_FILE", str(key_file))
    signing_key = key_file.read_text().strip()
    secrets = [
        SIM_ACCESS_KEY,
        WRONG_KEY,
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        signing_key.split("+", 4)[4],  # the Ed25519 seed; name and hash are public
    ]
    uuids = world.sim.seed(3)
    world.register(uuids)
    good = run_cli(world, "--verbose", "run", "nightly")
    assert good.returncode == 0, good.stdout

    (late,) = world.sim.seed(1)
    ledger = world.ledger()
    ledger.register([NewRecording(late)])
    denied = run_cli(world, "--verbose", "run", "nightly", access_key=WRONG_KEY)
    # A refused key stops the run (issue 11): exit 2, the recording is given back to
    # pending without spending an attempt; on main it was failed (terminal).
    assert denied.returncode == 2, denied.stdout
    assert "run stopped" in denied.stdout and "TENIOS_ACCESS_KEY" in denied.stdout
    rec = ledger.get(late)
    assert (rec.state, rec.attempts) == (State.PENDING, 0)

    # More run-wide failures whose outputs are searched too: an unknown bucket, a
    # TENIOS_API_URL that redirects.
    world.env["TENIOS_S3_BUCKET"] = "no-such-bucket-tenios-secrets"
    no_bucket = run_cli(world, "--verbose", "run", "nightly")
    world.env["TENIOS_S3_BUCKET"] = world.bucket
    assert no_bucket.returncode == 2 and "TENIOS_S3_BUCKET" in no_bucket.stdout
    world.sim.schedule_faults("redirect")
    redirected = run_cli(world, "--verbose", "run", "nightly")
    assert redirected.returncode == 2 and "TENIOS_API_URL" in redirected.stdout
    assert ledger.get(late).state is State.PENDING

    exported = cli("ledger", "export", "--format", "jsonl")
    events = cli("audit", "export-events")
    report_dir = tmp_path / "report"
    report = cli("audit", "report", "--output", str(report_dir))
    verifier = keygen.stdout.split()[0]
    proof = tmp_path / "proofs"
    custody = [
        cli("audit", "prove", uuids[0], "--output", str(proof)),
        cli("audit", "check-proof", str(proof), "--key", verifier),
        cli("audit", "verify-bucket", "--key", verifier),
    ]
    assert [c.exit_code for c in custody] == [0, 0, 0], [c.output for c in custody]
    assert exported.exit_code == events.exit_code == 0 and report.exit_code in (0, 1)

    s3 = world.s3
    bucket_text = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            head = s3.head_object(Bucket=world.bucket, Key=obj["Key"])  # type: ignore[attr-defined]
            bucket_text.append(json.dumps(head.get("Metadata", {})))
            if obj["Key"].endswith(".json") or "/_custody/log/checkpoint" in obj["Key"]:
                body = s3.get_object(Bucket=world.bucket, Key=obj["Key"])["Body"].read()  # type: ignore[attr-defined]
                bucket_text.append(body.decode())
    with get_client(sync_client=True) as client:
        artifacts = [json.dumps(a.data, default=str) for a in client.read_artifacts()]
        runs = [json.dumps(r.parameters, default=str) for r in client.read_flow_runs()]
    assert artifacts and runs

    outputs = {
        "console and logs (--verbose)": good.stdout
        + denied.stdout
        + no_bucket.stdout
        + redirected.stdout
        + report.output,
        "custody log commands": keygen.output + "".join(c.output for c in custody),
        "tlog-proofs": "".join(p.read_text() for p in sorted(proof.iterdir())),
        "ledger export": exported.stdout,
        "custody events": events.stdout,
        "report": "".join(p.read_text() for p in report_dir.iterdir() if p.is_file()),
        "bucket": "\n".join(bucket_text),
        "prefect artifacts": "\n".join(artifacts),
        "prefect parameters": "\n".join(runs),
    }
    assert "Beginning flow run" in good.stdout and "archive-batch" in good.stdout  # logs seen
    leaks = [(where, s) for where, text in outputs.items() for s in secrets if s in text]
    assert leaks == []
    ledger.engine.dispose()


DB_PASSWORD = "S3cr3t-db-pw-never-shown"


def test_the_database_password_never_appears(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: object
) -> None:
    """Issue 11 item 7 / issue 12 item 5: TENIOS_DATABASE_URL with a password, in every
    way a URL can be wrong or unreachable, in-process and in a child process."""
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    urls = [
        f"postgresql+asyncpg://tenios:{DB_PASSWORD}@127.0.0.1:5432/x",
        f"postgres://tenios:{DB_PASSWORD}@127.0.0.1:1/x",  # nothing listens on port 1
        f"postgresql://tenios:{DB_PASSWORD}@127.0.0.1:5432/no_such_db_tenios",
        f"mysql://tenios:{DB_PASSWORD}@127.0.0.1/x",
        f"postgresql+psycopg://tenios:{DB_PASSWORD}@[::1/x",
    ]
    for url in urls:
        monkeypatch.setenv("TENIOS_DATABASE_URL", url)
        for args in (("ledger", "list"), ("db", "upgrade"), ("audit", "verify-chain")):
            result = cli(*args)
            assert result.exit_code == 2, (url, args, result.output)
            assert DB_PASSWORD not in result.output, (url, args)
            assert "Traceback" not in result.output
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENIOS_")}
        env.update(TENIOS_DATABASE_URL=url, PYTHONPATH=str(ROOT))
        child = subprocess.run(
            [sys.executable, "-m", "tenios_io.cli", "--verbose", "ledger", "list"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == 2, child.stdout
        assert DB_PASSWORD not in child.stdout


SFTP_PASSWORD_WRONG = "wrong-sftp-Pw-3c9d1e"
KEY_PASSPHRASE = "key-Passphr4se-7b2e9a"
RUN_DB_PASSWORD = "run-db-Pw-5e1f0a9c"


def test_sftp_and_database_secrets_never_appear_in_runs_that_fail(
    pg_world: ArchiveWorld,
    asyncssh_sftp_server: SftpServer,
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11: TENIOS_SFTP_PASSWORD, an SFTP key passphrase and the password in
    TENIOS_DATABASE_URL, searched in every output of runs that fail in each way — SFTP
    password refused, wrong key passphrase, drop down, database unreachable — and of the
    runs that work with them, the exports, the report and the bucket."""
    import asyncssh

    world, server = pg_world, asyncssh_sftp_server
    assert server.password
    # PostgreSQL here trusts local connections: a password in the URL is carried, unused.
    db_url = make_url(world.database_url).set(password=RUN_DB_PASSWORD)
    with_password = db_url.render_as_string(hide_password=False)
    assert RUN_DB_PASSWORD in with_password
    encrypted = tmp_path / "id_ed25519_encrypted"
    asyncssh.read_private_key(str(server.key_file)).write_private_key(
        str(encrypted), passphrase=KEY_PASSPHRASE
    )
    settings = {
        "TENIOS_DATABASE_URL": with_password,
        "TENIOS_SFTP_URL": server.url(),
        "TENIOS_SFTP_KNOWN_HOSTS": str(server.known_hosts),
        "TENIOS_SFTP_SETTLE_SECONDS": "0",
        "TENIOS_SFTP_AFTER": "move:archived",
    }
    for key, value in settings.items():
        world.env[key] = value
        monkeypatch.setenv(key, value)
    uuids = world.sim.seed(2)
    for u in uuids:
        deliver(world, server.drop_dir, u, f"{u}.wav", age=0)
    secrets = [
        RUN_DB_PASSWORD,
        server.password,
        SFTP_PASSWORD_WRONG,
        KEY_PASSPHRASE,
        "wrong-" + KEY_PASSPHRASE,
    ]
    runs: dict[str, subprocess.CompletedProcess[str]] = {}

    world.env["TENIOS_SFTP_PASSWORD"] = SFTP_PASSWORD_WRONG
    runs["SFTP password refused"] = run_cli(world, "--verbose", "run", "nightly")
    assert runs["SFTP password refused"].returncode == 2
    assert "TENIOS_SFTP_PASSWORD" in runs["SFTP password refused"].stdout

    del world.env["TENIOS_SFTP_PASSWORD"]
    world.env["TENIOS_SFTP_KEY_FILE"] = str(encrypted)
    world.env["TENIOS_SFTP_KEY_PASSPHRASE"] = "wrong-" + KEY_PASSPHRASE
    runs["wrong key passphrase"] = run_cli(world, "--verbose", "run", "nightly")
    assert runs["wrong key passphrase"].returncode == 2
    assert "TENIOS_SFTP_KEY_PASSPHRASE" in runs["wrong key passphrase"].stdout

    world.env["TENIOS_SFTP_KEY_FILE"] = str(server.key_file)
    del world.env["TENIOS_SFTP_KEY_PASSPHRASE"]
    world.env["TENIOS_SFTP_PASSWORD"] = server.password
    server.stop()
    runs["drop down (password set)"] = run_cli(world, "--verbose", "run", "nightly")
    assert runs["drop down (password set)"].returncode == 0
    assert "down for this run" in runs["drop down (password set)"].stdout
    server.start()

    del world.env["TENIOS_SFTP_PASSWORD"]
    world.env["TENIOS_SFTP_KEY_FILE"] = str(encrypted)
    world.env["TENIOS_SFTP_KEY_PASSPHRASE"] = KEY_PASSPHRASE
    (late,) = world.sim.seed(1)
    deliver(world, server.drop_dir, late, f"{late}.wav", age=0)
    runs["drop with an encrypted key"] = run_cli(world, "--verbose", "run", "nightly")
    assert runs["drop with an encrypted key"].returncode == 0
    ledger = world.ledger()
    assert ledger.get(late).state is State.ARCHIVED
    assert str(ledger.get(late).source).startswith("sftp:")  # the key really logged in
    ledger.engine.dispose()

    world.env["TENIOS_DATABASE_URL"] = db_url.set(port=1).render_as_string(hide_password=False)
    runs["database unreachable"] = run_cli(world, "--verbose", "run", "nightly")
    assert runs["database unreachable"].returncode == 2
    world.env["TENIOS_DATABASE_URL"] = with_password

    report_dir = tmp_path / "report"
    commands = [
        cli("ledger", "export", "--format", "jsonl"),
        cli("audit", "export-events"),
        cli("audit", "report", "--output", str(report_dir)),
        cli("db", "current"),
    ]
    assert [c.exit_code for c in commands[:2]] == [0, 0], [c.output for c in commands]
    bucket_text = []
    for page in world.s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            head = world.s3.head_object(Bucket=world.bucket, Key=obj["Key"])  # type: ignore[attr-defined]
            bucket_text.append(json.dumps(head.get("Metadata", {})))
    outputs = {
        **{f"run: {name}": run.stdout for name, run in runs.items()},
        "exports, report, db current": "".join(c.output for c in commands),
        "report files": "".join(p.read_text() for p in report_dir.iterdir() if p.is_file()),
        "bucket metadata": "\n".join(bucket_text),
    }
    leaks = [(where, s) for where, text in outputs.items() for s in secrets if s in text]
    assert leaks == []
