"""Acceptance tier: the flows end to end under ONE session-wide Prefect test harness,
against the simulator (HTTP), moto server (HTTP) and both ledger backends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.simulator import RunningSimulator, Simulator, running_simulator
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.fixtures.simulator import SIM_ACCESS_KEY


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """A Prefect server for the whole session (child processes get its URL too)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


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

    def register(self, uuids: list[str]) -> None:
        ledger = self.ledger()
        ledger.register([NewRecording(u, call_uuid=self.sim.recording(u).call_uuid) for u in uuids])
        ledger.engine.dispose()

    def versions(self) -> dict[str, int]:
        """Object versions per recording and sidecar key (not the probe or checkpoints)."""
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
    postgres_url: str,
    moto_server: str,
    locked_bucket: str,
    s3_client: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """The same on PostgreSQL only: for what needs many workers."""
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    yield from _make_world(
        prefect_api_url=prefect_api_url,
        database_url=postgres_url,
        moto_server=moto_server,
        bucket=locked_bucket,
        s3_client=s3_client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=12, recording_seconds=(2.0, 20.0)),
    )
