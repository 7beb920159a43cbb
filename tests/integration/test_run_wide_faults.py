"""Systemic faults stop the run instead of spending every recording's attempts (issue 25,
case 10).

On main a ``TENIOS_API_URL`` at a closed port was judged per recording: the run retried
for minutes and spent 5 of 10 attempts while its last line said "released without
spending an attempt"; a full or vanished spool directory and an S3 outage spent attempts
the same way.  Here each fault meets the real run loop: the simulator over HTTP (or a
closed port), moto behind the fault proxy, a real spool directory and a real ledger
(SQLite and PostgreSQL).
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tenios_io import crashpoints
from tenios_io.api import ApiSource, TeniosClient
from tenios_io.exceptions import SpoolUnusable
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.recording.spool import HashingSpool
from tenios_io.run.archiver import Archiver
from tenios_io.run.loop import RunSummary, archive_until_done
from tenios_io.run.retry import RetryPolicy
from tenios_io.run.session import thread_submitter
from tenios_io.run.stop import RunGuard
from tenios_io.simulator import Simulator, running_simulator
from tenios_io.store import ArchiveStore, make_s3_client
from tests.fixtures.cli import CliResult
from tests.fixtures.moto import FAKE_CREDENTIALS, S3RequestLog
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test")
    engine.dispose()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def run_loop(
    ledger: Ledger, client: TeniosClient, store: ArchiveStore, guard: RunGuard, **archiver: Any
) -> RunSummary:
    """One run through the real loop: batches on a thread pool, as `run nightly` does."""
    worker = Archiver(
        ledger=ledger,
        store=store,
        sources=[ApiSource(client)],
        policy=RetryPolicy(max_attempts=10),
        lease_seconds=60,
        guard=guard,
        **archiver,
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return archive_until_done(
                ledger,
                worker,
                thread_submitter(pool),
                owner="test-run",
                limit=None,
                concurrency=1,
                batch_size=10,
                lease_seconds=60,
                max_attempts=10,
                time_budget_minutes=None,
                max_wait_seconds=0,
            )
        finally:
            worker.close()


def register(ledger: Ledger, sim: Simulator, count: int) -> list[str]:
    uuids = [sim.add_recording(seconds=1.0) for _ in range(count)]
    ledger.register([NewRecording(u, call_uuid=sim.recording(u).call_uuid) for u in uuids])
    return uuids


def assert_nothing_spent(ledger: Ledger, uuids: list[str]) -> None:
    for uuid in uuids:
        rec = ledger.get(uuid)
        assert (rec.state, rec.attempts) == (State.PENDING, 0), (uuid, rec.state, rec.attempts)


def stopped_event(ledger: Ledger) -> dict[str, Any]:
    ledger.integrate_all()
    [event] = ledger.events_named(["run_stopped"])
    details: dict[str, Any] = json.loads(event["details"])
    return details


@pytest.fixture(params=["refused", "dns", "tls"])
def unreachable_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(TENIOS_API_URL, the origin the error names)``: a closed port, a name that
    cannot resolve (RFC 2606 ``.invalid``), or HTTPS to a server that speaks plain HTTP
    (the TLS handshake fails)."""
    if request.param == "refused":
        url = f"http://127.0.0.1:{request.getfixturevalue('closed_port')}"
        return url, url
    if request.param == "dns":
        return "https://api.tenios.invalid", "https://api.tenios.invalid"
    plain = str(request.getfixturevalue("simulator_url"))
    secure = plain.replace("http://", "https://")
    return secure, secure


def test_tenios_unreachable_at_preflight_exits_2_naming_the_setting(
    database_url: str,
    moto_server: str,
    plain_bucket: str,
    unreachable_url: tuple[str, str],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_url, origin = unreachable_url
    for key, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": database_url,
        "TENIOS_ACCESS_KEY": SIM_ACCESS_KEY,
        "TENIOS_S3_BUCKET": plain_bucket,
        "TENIOS_RETENTION_MODE": "none",
        "TENIOS_API_URL": api_url,
    }.items():
        monkeypatch.setenv(key, value)
    uuid = "8101fcb3-3843-4db3-9829-f7ab586625fe"
    assert cli("ledger", "add", uuid).exit_code == 0

    result = cli("run", "nightly")

    assert result.exit_code == 2, result.output
    [line] = [x for x in result.stderr.splitlines() if "TENIOS_API_URL" in x]
    assert f"TENIOS unreachable at {origin}" in line
    assert "nothing was fetched" in line
    assert SIM_ACCESS_KEY not in result.output
    engine = create_ledger_engine(database_url)
    try:
        assert_nothing_spent(Ledger(engine), [uuid])
    finally:
        engine.dispose()


def test_tenios_unreachable_mid_run_stops_it_without_spending_attempts(
    ledger: Ledger, make_store: Any, plain_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=25)
    uuids = register(ledger, sim, 4)
    with ExitStack() as serving:
        server = serving.enter_context(running_simulator(sim))
        gone: list[str] = []

        def reached(name: str) -> None:  # TENIOS goes away once the first one is up
            if name == "after_upload" and not gone:
                gone.append(name)
                serving.close()

        monkeypatch.setattr(crashpoints, "reached", reached)
        client, http = client_for(server.url)  # five tries per request, waits recorded
        with http:
            summary = run_loop(
                ledger, client, make_store(plain_bucket, retention_mode="none"), RunGuard()
            )

    assert summary.counts["archived"] == 1 and summary.exit_code == 1
    assert summary.stopped is not None
    assert summary.stopped.cause == f"TENIOS unreachable at {server.url}"
    assert "TENIOS_API_URL" in summary.stopped.advice
    message = summary.stop_message or ""
    assert "3 claim(s) released to pending, no attempts spent" in message, message
    assert len(client.sleeps) <= 4  # the client's own retries of one request, no more
    left = [u for u in uuids if ledger.get(u).state is not State.ARCHIVED]
    assert len(left) == 3
    assert_nothing_spent(ledger, left)
    details = stopped_event(ledger)
    assert details["released"] == 3 and details["cause"] == summary.stopped.cause


def test_a_spool_directory_gone_mid_run_stops_it_without_spending_attempts(
    ledger: Ledger,
    make_store: Any,
    plain_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=26)
    uuids = register(ledger, sim, 3)
    spool = tmp_path / "spool"
    spool.mkdir()

    def reached(name: str) -> None:  # the spool's directory vanishes after the first
        if name == "after_upload" and spool.exists():
            shutil.rmtree(spool)

    monkeypatch.setattr(crashpoints, "reached", reached)
    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http:
            summary = run_loop(
                ledger,
                client,
                make_store(plain_bucket, retention_mode="none"),
                RunGuard(),
                spool_dir=spool,
            )

    assert summary.counts["archived"] == 1 and summary.exit_code == 1
    assert summary.stopped is not None
    assert summary.stopped.cause == "the spool directory cannot be written"
    assert "TENIOS_SPOOL_DIR" in summary.stopped.advice
    assert "2 claim(s) released to pending, no attempts spent" in (summary.stop_message or "")
    left = [u for u in uuids if ledger.get(u).state is not State.ARCHIVED]
    assert len(left) == 2
    assert_nothing_spent(ledger, left)
    assert stopped_event(ledger)["released"] == 2


def test_a_full_disk_under_the_spool_is_the_spool_s_error(tmp_path: Path) -> None:
    """ENOSPC from a real device (/dev/full) is not the recording's error."""
    spool = HashingSpool(tmp_path)
    try:
        with open("/dev/full", "wb", buffering=0) as full:
            spool._file = full  # the disk under the spool is full
            with pytest.raises(SpoolUnusable, match="No space left on device") as caught:
                spool.write(b"RIFF" * 1024)
    finally:
        spool.close()  # closes and removes the spool's own file
    assert "TENIOS_SPOOL_DIR" in str(caught.value) and str(tmp_path) in str(caught.value)
    assert not spool.path.exists()


def test_s3_failing_every_request_stops_the_run_after_the_window(
    ledger: Ledger,
    plain_bucket: str,
    s3_request_log: S3RequestLog,
    _moto_session: Any,
) -> None:
    """Moto behind the fault proxy answers every request 503; the guard's clock moves 40 s
    per failure: the first two recordings are held back (no attempt), the third meets
    the 60 s window and stops the run."""
    s3 = make_s3_client(1, session=_moto_session, endpoint_url=s3_request_log.url)
    store = ArchiveStore(s3, plain_bucket, retention_mode="none")
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=27)
    uuids = register(ledger, sim, 3)
    ticks = itertools.count(40, 40)
    guard = RunGuard(store_outage_seconds=60, clock=lambda: float(next(ticks)))
    s3_request_log.failing = 503

    with running_simulator(sim) as server:
        client, http = client_for(server.url)
        with http:
            summary = run_loop(ledger, client, store, guard)

    assert summary.exit_code == 1 and summary.stopped is not None
    assert summary.stopped.cause == "S3 failed every request for 80 s"
    assert "AWS_ENDPOINT_URL_S3" in summary.stopped.advice
    assert_nothing_spent(ledger, uuids)
    assert s3_request_log.requests  # the requests reached the proxy, none reached moto
    ledger.integrate_all()
    held = [
        json.loads(e["details"])
        for e in ledger.events_named(["released"])
        if "delay_seconds" in json.loads(e["details"])
    ]
    assert [h["delay_seconds"] for h in held] == [60, 60]
    assert stopped_event(ledger)["released"] == 3
    s3.close()
