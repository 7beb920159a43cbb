"""The demo's local stand-ins, all on 127.0.0.1: the TENIOS simulator, its drop folder
served over SFTP, a moto S3 server with an Object Lock bucket, and a SQLite ledger
under one folder.

``make demo`` / ``tenios-archive demo`` run the real pipeline against these; the
tests use the same peers through their fixtures.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from tenios_io.config import UUID_RE
from tenios_io.custody import signing
from tenios_io.simulator import Simulator, running_simulator
from tenios_io.simulator.sftpd import serving_drop

DEMO_ACCESS_KEY = "demo-access-key-not-a-secret"
DEMO_BUCKET = "tenios-demo-archive"
#: The demo's S3 credentials are moto's fakes: nothing real is ever used.
DEMO_AWS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo-not-a-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}

#: Recordings with their own fault schedules (plus a few not ready at first).
FAULTY = (("503",), ("500", "503"), ("429",), ("truncate",), ("reset",))

#: How the demo's simulator names drop files: the call's UUID comes first, so the
#: default "first UUID in the name" would take the call for the recording.
DEMO_DROP_NAMING = "{date:%Y%m%d}_{call_uuid}_{recording_uuid}.wav"
#: The TENIOS_SFTP_PATTERN that reads DEMO_DROP_NAMING back (the two must agree).
DEMO_SFTP_PATTERN = rf"^\d{{8}}_(?P<call_uuid>{UUID_RE})_(?P<recording_uuid>{UUID_RE})\.wav$"


@dataclass(frozen=True)
class DemoEnvironment:
    """What the demo set up."""

    root: Path
    config_file: Path
    ledger_file: Path
    api_url: str
    s3_endpoint: str
    simulator: Simulator
    recordings: list[tuple[str, str]]
    """(recording_uuid, call_uuid) of every recording the simulator holds."""
    api_recordings: list[tuple[str, str]]
    """The ones only the API has (their drop delivery is still outstanding): the demo's
    "telephony application" hands these over through the intake; the SFTP sweep
    discovers the rest."""
    sftp_url: str


@contextmanager
def demo_environment(root: Path, *, recordings: int = 50) -> Iterator[DemoEnvironment]:
    """Start the stand-ins (fresh state under ``root``) and stop them on exit.

    Sets the fake AWS variables and the S3 endpoint in this process's environment for
    the duration (boto3 reads them itself) and restores the previous values after.
    """
    root = root.resolve()
    for stale in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "drop", "spool"):
        path = root / stale
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (root / "spool").mkdir(parents=True, exist_ok=True)
    sim = Simulator(
        access_key=DEMO_ACCESS_KEY,
        seed=2026,
        drop_dir=root / "drop",
        drop_name_pattern=DEMO_DROP_NAMING,
        recording_seconds=(5.0, 120.0),
    )
    plain = max(0, recordings - len(FAULTY) - 3)
    sim.seed(plain)
    api_only = [sim.add_recording(seconds=20.0, faults=schedule) for schedule in FAULTY]
    api_only += [sim.add_recording(seconds=15.0, not_ready=3.0) for _ in range(min(3, recordings))]
    for uuid in api_only:  # not delivered to the drop yet: only the API has them
        delivered = sim.delivered_path(uuid)
        if delivered is not None:
            delivered.unlink()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with ExitStack() as stack:
        running = stack.enter_context(running_simulator(sim))
        sftp = stack.enter_context(serving_drop(root / "drop", root / "sftp-keys"))
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        stack.enter_context(_environment({**DEMO_AWS, "AWS_ENDPOINT_URL_S3": endpoint}))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=DEMO_BUCKET, ObjectLockEnabledForBucket=True)
        s3.close()
        ledger_file = root / "ledger.db"
        custody_key = root / "custody.key"  # signed from the first run, as in production
        custody_key.unlink(missing_ok=True)
        signing.write_signer(custody_key, signing.generate(DEMO_BUCKET))
        config = root / "tenios-archive.toml"
        config.write_text(
            "# Written by `tenios-archive demo`: settings of the local demo.\n"
            f'database_url = "sqlite:///{ledger_file}"\n'
            f'api_url = "{running.url}"\n'
            f'access_key = "{DEMO_ACCESS_KEY}"\n'
            f's3_bucket = "{DEMO_BUCKET}"\n'
            'retention_mode = "governance"\n'
            f'spool_dir = "{root / "spool"}"\n'
            "lease_seconds = 60\n"
            f'sftp_url = "{sftp.url}"\n'
            f'sftp_key_file = "{sftp.key_file}"\n'
            f'sftp_known_hosts = "{sftp.known_hosts}"\n'
            f"sftp_pattern = '{DEMO_SFTP_PATTERN}'\n"
            "sftp_settle_seconds = 0\n"
            'sftp_after = "move:archived"\n'
            f'custody_key_file = "{custody_key}"\n',
            encoding="utf-8",
        )
        pairs = [(u, sim.recording(u).call_uuid) for u in sim.catalogue.uuids()]
        yield DemoEnvironment(
            root=root,
            config_file=config,
            ledger_file=ledger_file,
            api_url=running.url,
            s3_endpoint=endpoint,
            simulator=sim,
            recordings=pairs,
            api_recordings=[(u, sim.recording(u).call_uuid) for u in api_only],
            sftp_url=sftp.url,
        )


#: What a producer runs: the README's contract, one plain INSERT per recording.
PRODUCER_INSERT = (
    "INSERT INTO recording_intake (recording_uuid, call_uuid, producer) "
    "VALUES (?, ?, 'demo-telephony-app')"
)


def hand_over_by_sql(ledger_file: Path, recordings: list[tuple[str, str]]) -> None:
    """Insert ``recordings`` into the intake as the customer's telephony application
    would: Python's own sqlite3 module and plain SQL, no tenios_io code — so the demo
    shows the producer contract working, and the next run registers them."""
    with sqlite3.connect(ledger_file, timeout=60) as conn:
        conn.executemany(PRODUCER_INSERT, recordings)
    conn.close()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
