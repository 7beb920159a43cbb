"""Shared by the acceptance tests that drive Prefect from outside, as an operator
does: a real `prefect server start`, the `prefect` CLI (deploy, worker start) in child
processes with a world's settings, the process work pool, killing a worker with the
flow run it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from tenios_io.ledger import Ledger
from tenios_io.ledger.tables import custody_events, custody_queue
from tests.acceptance.conftest import ArchiveWorld

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "tenios-archive"


def child_env(world: ArchiveWorld, **extra: str) -> dict[str, str]:
    """This process's environment with the world's settings instead of any TENIOS_ /
    AWS_ ones; workers poll every second (the default 10 s only slows tests down)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENIOS_", "AWS_"))}
    env.update(world.env, PYTHONPATH=str(ROOT), PREFECT_WORKER_QUERY_SECONDS="1", **extra)
    return env


def prefect(world: ArchiveWorld, *args: str, timeout: float = 300) -> str:
    """Run `prefect ARGS` to the end; its output (it must exit 0)."""
    done = subprocess.run(
        [PREFECT, *args],
        env=child_env(world),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def start(world: ArchiveWorld, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `prefect ARGS` (a worker) in its own session, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [PREFECT, *args],
            env=child_env(world),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(
    world: ArchiveWorld, queue: str, log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """`prefect worker start` on the project's pool, serving ``queue``."""
    return start(world, "worker", "start", "--pool", POOL, "--work-queue", queue, *options, log=log)


def deploy_all(world: ArchiveWorld) -> None:
    """The process work pool (once per server) and `prefect deploy --all` from
    prefect.yaml, as the README's set-up does."""
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        except ObjectAlreadyExists:
            pass
    prefect(world, "--no-prompt", "deploy", "--all")


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and every process it started (a worker and its flow run)."""
    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for each in procs:
        try:
            each.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)


def flow_run_of(worker: subprocess.Popen[bytes]) -> str | None:
    """The flow run a worker process is running (its child's PREFECT__FLOW_RUN_ID)."""
    for child in psutil.Process(worker.pid).children(recursive=True):
        try:
            run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if run_id:
            return run_id
    return None


def archived_by_actor(ledger: Ledger) -> Counter[str]:
    """`archived` custody events per actor, queued or integrated."""
    out: Counter[str] = Counter()
    with ledger.engine.connect() as conn:
        for table in (custody_queue, custody_events):
            rows = conn.execute(
                sa.select(table.c.actor, sa.func.count())
                .where(table.c.event == "archived")
                .group_by(table.c.actor)
            )
            for actor, n in rows:
                out[actor] += n
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def prefect_server(database_url: str, home: Path, log: Path) -> Iterator[str]:
    """`prefect server start` on 127.0.0.1 and a free port, its database at
    ``database_url`` (``postgresql+asyncpg://…`` as the runbook has it, or a SQLite
    file), services on; yields its API URL once /api/health answers; stopped after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TENIOS_", "AWS_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)  # polling the server's health endpoint until it is up
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
