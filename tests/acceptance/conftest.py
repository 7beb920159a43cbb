"""Acceptance tier: the flows end to end under ONE session-wide Prefect test harness
(``prefect_api_url``, tests/fixtures/prefect.py), against the simulator (HTTP), moto
server (HTTP) and both ledger backends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.ledger.tables import drop_sightings
from tenios_io.simulator import RunningSimulator, Simulator, running_simulator
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.simulator import SIM_ACCESS_KEY
from tests.fixtures.sshd import SftpServer


@dataclass
class ArchiveWorld:
    """Everything a run needs, and ways to look at the result."""

    sim: Simulator
    server: RunningSimulator
    database_url: str
    bucket: str
    s3: object
    env: dict[str, str]
    tmp: Path

    def ledger(self) -> Ledger:
        return Ledger(create_ledger_engine(self.database_url), actor="test")

    def sighted(self, path: Path, *, age: float) -> None:
        """The ledger saw the drop file ``path``, as it is now, ``age`` seconds ago (an
        earlier run's sweep): the next sweep finds it settled once ``age`` reaches
        TENIOS_SFTP_SETTLE_SECONDS."""
        st = path.stat()
        ledger = self.ledger()
        with ledger.engine.begin() as conn:
            conn.execute(drop_sightings.delete().where(drop_sightings.c.path == str(path)))
            conn.execute(
                drop_sightings.insert().values(
                    path=str(path),
                    size_bytes=st.st_size,
                    mtime=float(int(st.st_mtime)),  # SFTP gives whole seconds
                    first_seen_at=datetime.now(UTC) - timedelta(seconds=age),
                )
            )
        ledger.engine.dispose()

    def register(self, uuids: list[str]) -> None:
        ledger = self.ledger()
        ledger.register([NewRecording(u, call_uuid=self.sim.recording(u).call_uuid) for u in uuids])
        ledger.engine.dispose()

    def versions(self) -> dict[str, int]:
        """Object versions per key (not the probe, checkpoints or anything under _custody/)."""
        out: dict[str, int] = {}
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket)  # type: ignore[attr-defined]
        for page in pages:
            for v in page.get("Versions", []):
                if "/_custody/" in v["Key"] or v["Key"].endswith(".tenios-archive-probe"):
                    continue
                out[v["Key"]] = out.get(v["Key"], 0) + 1
        return out


def _make_world(
    *,
    prefect_api_url: str,
    database_url: str,
    moto_server: str,
    bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
) -> Iterator[ArchiveWorld]:
    with running_simulator(sim) as server:
        spool = tmp_path / "spool"
        spool.mkdir()
        env = {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL_S3": moto_server,
            "TENIOS_DATABASE_URL": database_url,
            "TENIOS_API_URL": server.url,
            "TENIOS_ACCESS_KEY": SIM_ACCESS_KEY,
            "TENIOS_S3_BUCKET": bucket,
            "TENIOS_LEASE_SECONDS": "10",
            "TENIOS_SPOOL_DIR": str(spool),
            "TENIOS_MULTIPART_THRESHOLD_MB": "5",
            "PREFECT_API_URL": prefect_api_url,
            # The session's signing key (tests/fixtures/custody.py), for child processes too.
            "TENIOS_CUSTODY_KEY_FILE": os.environ["TENIOS_CUSTODY_KEY_FILE"],
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield ArchiveWorld(sim, server, database_url, bucket, s3_client, env, tmp_path)


@pytest.fixture
def world(
    prefect_api_url: str,
    database_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """The whole pipeline's peers, on each ledger backend."""
    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=database_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=11, recording_seconds=(2.0, 20.0)),
    )


@pytest.fixture
def pg_world(
    prefect_api_url: str,
    migrated_postgres_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """The same on PostgreSQL only: for what needs many workers."""
    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=migrated_postgres_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=12, recording_seconds=(2.0, 20.0)),
    )


@pytest.fixture
def slow_pg_world(
    prefect_api_url: str,
    migrated_postgres_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """A PostgreSQL ledger and short recordings whose every API answer is delayed
    up to 0.3 s (the simulator's latency fault): runs that stay running a while."""
    from tenios_io.simulator.faults import FaultPlan

    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=migrated_postgres_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=15, recording_seconds=(0.5, 1.5), faults=FaultPlan(latency=0.3)),
    )


def attach_drop(
    world: ArchiveWorld, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A real SFTP drop (OpenSSH sshd) for ``world``: settings in this process and in
    ``world.env`` (for child processes); files released by ``move:archived``."""
    settings = {
        "TENIOS_SFTP_URL": sftp_server.url(),
        "TENIOS_SFTP_KEY_FILE": str(sftp_server.key_file),
        "TENIOS_SFTP_KNOWN_HOSTS": str(sftp_server.known_hosts),
        "TENIOS_SFTP_SETTLE_SECONDS": "30",
        "TENIOS_SFTP_AFTER": "move:archived",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
        world.env[key] = value
    return sftp_server.drop_dir


@pytest.fixture
def drop(world: ArchiveWorld, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The world with a real SFTP drop (attach_drop)."""
    return attach_drop(world, sftp_server, monkeypatch)


def deliver(world: ArchiveWorld, drop: Path, uuid: str, name: str, *, age: float = 120) -> Path:
    """Put the simulator's recording ``uuid`` into the drop as ``name``, delivered
    ``age`` s ago and sighted then by an earlier sweep (so settled when ``age`` is at
    least the settle time); ``age=0``: just delivered, never sighted."""
    path = drop / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(world.sim.expected_bytes(uuid))
    old = path.stat().st_mtime - age
    os.utime(path, (old, old))
    if age > 0:
        world.sighted(path, age=age)
    return path


@pytest.fixture
def no_prefect_world(
    database_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """The pipeline's peers with no Prefect API configured (nor a Prefect profile that
    names one): `run nightly` runs its loop in-process."""
    for world in _make_world(
        prefect_api_url="",
        database_url=database_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=15, recording_seconds=(1.0, 3.0)),
    ):
        del world.env["PREFECT_API_URL"]
        monkeypatch.delenv("PREFECT_API_URL")
        world.env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
        yield world


def child_env(world: ArchiveWorld) -> dict[str, str]:
    """The environment of a `tenios-archive` child process: this one's, minus any
    TENIOS_ / AWS_ / Prefect API setting, plus the world's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TENIOS_", "AWS_", "PREFECT_API_URL", "PREFECT_HOME"))
    }
    env.update(world.env, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return env
