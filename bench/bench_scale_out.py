"""Benchmark: the backfill deployment over 1, 2 and 3 Prefect worker processes.

    .venv/bin/python bench/bench_scale_out.py [--recordings N] [--workers 1,2,3]
        [--latency S] [--database-url ADMIN_URL]

For each worker count k: a fresh PostgreSQL ledger (a new database made from
--database-url, default TENIOS_TEST_DATABASE_URL) and a fresh Object-Lock bucket on
one moto server, the simulator serving N recordings, one Prefect server for all
cases (a temporary one, as the tests use), `prefect deploy --all`, k `prefect worker
start --work-queue archive-workers --limit 1` processes and one for the parent run;
then the backfill deployment with ``workers=k`` (k=1: the parent archives in its own
flow run, as `workers=1` does in production).

Printed per k: the parent run's wall time by the Prefect server (start to end: the
import, the workers' process start-up, archiving, the checkpoint), recordings/s over
that, recordings/s over the archiving alone (the fan-out's aggregate, or the single
run's summary), and both as a ratio to k=1.  Nothing is asserted: this machine has 2
cores shared with the Prefect server, PostgreSQL, moto and other work; the figures
are noisy and moto (one Python process keeping every object in memory) is a limit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures

import boto3
import psutil
from moto.server import ThreadedMotoServer

from tests.fixtures.databases import _create_database, _drop_database, _pg_admin_url
from tests.fixtures.moto import FAKE_CREDENTIALS, REGION
from tests.fixtures.simulator import SIM_ACCESS_KEY

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
QUEUE_ONE = ("--work-queue", "archive-workers", "--limit", "1")
PARENT_ONCE = ("--work-queue", "default", "--run-once")


@dataclass
class Case:
    workers: int
    wall_seconds: float
    archive_rate: float


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [PREFECT, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_case(
    k: int, *, recordings: int, latency: float, admin_url: str, moto: str, tmp: Path
) -> Case:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from tenios_io.ledger.schema import upgrade
    from tenios_io.simulator import Simulator, running_simulator
    from tenios_io.simulator.faults import FaultPlan

    database_url = _create_database(admin_url)
    upgrade(database_url)
    bucket = f"bench-scale-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=moto, region_name=REGION, **_keys())
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    sim = Simulator(
        access_key=SIM_ACCESS_KEY,
        seed=k,
        recording_seconds=(1.0, 3.0),
        faults=FaultPlan(latency=latency),
    )
    uuids = sim.seed(recordings)
    source = tmp / f"ids-{k}.csv"
    source.write_text(
        "recording_uuid,call_uuid\n" + "".join(f"{u},{sim.recording(u).call_uuid}\n" for u in uuids)
    )
    spool = tmp / f"spool-{k}"
    spool.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with running_simulator(sim) as server:
            env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("TENIOS_", "AWS_"))}
            env.update(
                FAKE_CREDENTIALS,
                AWS_ENDPOINT_URL_S3=moto,
                TENIOS_DATABASE_URL=database_url,
                TENIOS_API_URL=server.url,
                TENIOS_ACCESS_KEY=SIM_ACCESS_KEY,
                TENIOS_S3_BUCKET=bucket,
                TENIOS_SPOOL_DIR=str(spool),
                PYTHONPATH=str(ROOT),
                PREFECT_WORKER_QUERY_SECONDS="1",
                PREFECT_API_URL=str(PREFECT_API_URL.value()),
            )
            subprocess.run(
                [PREFECT, "--no-prompt", "deploy", "--all"],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            with get_client(sync_client=True) as client:
                deployment = client.read_deployment_by_name("backfill/backfill")
                parent = client.create_flow_run_from_deployment(
                    deployment.id,
                    parameters={
                        "source_file": str(source),
                        "workers": k,
                        "concurrency": 4,
                        "batch_size": 10,
                        "max_wait_seconds": 30.0,
                    },
                )
            if k > 1:
                procs += [
                    _spawn(
                        [*("worker", "start", "--pool", "tenios-archive"), *QUEUE_ONE],
                        env,
                        tmp / f"worker-{k}-{n}.log",
                    )
                    for n in range(k)
                ]
            runner = _spawn(
                [*("worker", "start", "--pool", "tenios-archive"), *PARENT_ONCE],
                env,
                tmp / f"parent-{k}.log",
            )
            procs.append(runner)
            if runner.wait(timeout=3600) != 0:
                raise SystemExit((tmp / f"parent-{k}.log").read_text())
            with get_client(sync_client=True) as client:
                run = client.read_flow_run(parent.id)
                result = _parent_result(client, parent.id, k)
            if run.state is None or not run.state.is_completed():
                raise SystemExit(f"k={k}: the backfill ended {run.state}")
            assert run.start_time is not None and run.end_time is not None
            wall = (run.end_time - run.start_time).total_seconds()
            return Case(k, wall, result)
    finally:
        for proc in procs:
            _stop(proc)
        _drop_database(admin_url, database_url)


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _parent_result(client: Any, run_id: Any, k: int) -> float:
    """Recordings/s over the archiving alone: the fan-out's aggregate (k > 1) or the
    single run's summary table (k = 1)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = "backfill-workers" if k > 1 else "backfill-summary"
    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    (artifact,) = [a for a in found if a.flow_run_id == run_id]
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    if k > 1:
        total = next(r for r in rows if r["worker"] == "total")
        return float(str(total["rate"]).removesuffix("/s"))
    row = next(r for r in rows if r["outcome"] == "throughput")
    return float(str(row["recordings"]).removesuffix("/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=300)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="simulator latency fault: 0..S s per answer"
    )
    parser.add_argument("--database-url", default=_pg_admin_url())
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("--database-url (or TENIOS_TEST_DATABASE_URL): a PostgreSQL admin URL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.testing.utilities import prefect_test_harness

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    cases: list[Case] = []
    try:
        with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory() as d:
            with get_client(sync_client=True) as client:
                client.create_work_pool(WorkPoolCreate(name="tenios-archive", type="process"))
            for k in (int(x) for x in args.workers.split(",")):
                case = run_case(
                    k,
                    recordings=args.recordings,
                    latency=args.latency,
                    admin_url=args.database_url,
                    moto=f"http://{host}:{port}",
                    tmp=Path(d),
                )
                cases.append(case)
                print(
                    f"workers={k}: {case.wall_seconds:.1f} s wall, "
                    f"{args.recordings / case.wall_seconds:.1f} rec/s overall, "
                    f"{case.archive_rate:.1f} rec/s archiving",
                    flush=True,
                )
    finally:
        moto.stop()
    base = cases[0]
    print(f"\n{args.recordings} recordings, simulator latency 0..{args.latency:g} s per answer")
    print("| workers | wall s | rec/s overall | ratio | rec/s archiving | ratio |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        overall = args.recordings / c.wall_seconds
        print(
            f"| {c.workers} | {c.wall_seconds:.1f} | {overall:.1f} | "
            f"{overall / (args.recordings / base.wall_seconds):.2f} | {c.archive_rate:.1f} | "
            f"{c.archive_rate / base.archive_rate:.2f} |"
        )


if __name__ == "__main__":
    main()
