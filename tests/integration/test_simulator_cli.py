"""`tenios-archive simulator serve|seed`: serve in a real subprocess, seed in-process."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenios_io.simulator import FaultPlan, RunningSimulator, Simulator, running_simulator
from tests.fixtures.cli import CliResult
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for

Cli = Callable[..., CliResult]
UUID = re.compile(r"^  ([0-9a-f-]{36})$")


class Served:
    """A `simulator serve` subprocess and what it printed before serving."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc, self.lines = proc, lines
        self.url = next(
            line.split(" at ")[1] for line in lines if line.startswith("TENIOS simulator")
        )
        self.key = next(line.split(": ")[1] for line in lines if line.startswith("access key"))
        self.uuids = [m.group(1) for line in lines if (m := UUID.match(line))]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TENIOS_")}
        environment.update(env or {})
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tenios_io.cli import main; main()",
                "simulator",
                "serve",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=environment,
        )
        procs.append(proc)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # blocks until the server printed its banner
            lines.append(line.rstrip("\n"))
            if line.startswith("use it:"):
                return Served(proc, lines)
        raise AssertionError(
            f"serve ended early: {lines} {proc.stderr.read() if proc.stderr else ''}"
        )

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_prints_what_to_use_serves_and_stops_on_ctrl_c(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    served = serve(
        "--port", "0", "--recordings", "3", "--access-key", "k-123",
        "--drop-dir", str(drop), "--fault", "schedule=503:truncate", "--seed", "7",
    )  # fmt: skip

    assert served.key == "k-123"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", served.url)
    assert len(served.uuids) == 3
    assert "faults: schedule=503:truncate" in served.lines
    assert f"use it: export TENIOS_API_URL={served.url} TENIOS_ACCESS_KEY=k-123" in served.lines[-1]
    assert sorted(p.name for p in drop.iterdir()) == sorted(f"{u}.wav" for u in served.uuids)

    client, http = client_for(served.url, "k-123")
    with http:
        sink = io.BytesIO()
        client.retrieve_recording(served.uuids[0], sink)
    assert len(client.sleeps) == 2  # the 503, then the truncated body
    assert sink.getvalue() == (drop / f"{served.uuids[0]}.wav").read_bytes()

    code, err = served.stop()
    assert code == 0
    assert "simulator stopped" in err
    assert "Traceback" not in err


def test_serve_takes_the_key_from_the_settings_or_makes_one(serve: Callable[..., Served]) -> None:
    from_env = serve("--port", "0", "-n", "0", env={"TENIOS_ACCESS_KEY": "from-env-key"})
    random_key = serve("--port", "0", "-n", "60")

    assert from_env.key == "from-env-key"
    assert random_key.key.startswith("sim-") and len(random_key.key) > 12
    assert "0 recording(s) ready" in from_env.lines
    assert "60 recording(s) ready" in random_key.lines
    assert random_key.uuids == []  # too many to list
    assert from_env.stop()[0] == 0
    assert random_key.stop()[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fault", "500=2"),  "between 0 and 1"),
        (("--fault", "boom=1"), "unknown fault"),
        (("--drop-pattern", "{nope}"), "unknown placeholder"),
        (("--drop-pattern", "../{recording_uuid}"), "relative"),
        (("--port", "70000"), "65535"),
    ],
)  # fmt: skip
def test_serve_refuses_bad_options(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    drop = tmp_path / "drop"
    result = cli("simulator", "serve", "--drop-dir", str(drop), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not drop.exists()


def test_serve_on_a_busy_port_exits_1(cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("simulator", "serve", "--port", str(port), "-n", "0", "--access-key", "k")
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_seed_creates_recordings_through_the_api(
    cli: Cli, simulator_server: RunningSimulator
) -> None:
    result = cli(
        "simulator", "seed", "--url", simulator_server.url,
        "--access-key", simulator_server.access_key, "--count", "3",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    uuids = result.stdout.split()
    assert len(uuids) == 3
    sim = simulator_server.sim
    for recording_uuid in uuids:
        assert sim.recording(recording_uuid).stopped_at is not None
    assert [(r.endpoint, r.status) for r in sim.requests] == [("start", 200), ("stop", 200)] * 3
    assert SIM_ACCESS_KEY not in result.output


def test_seed_uses_the_settings_by_default(cli: Cli, api_env: RunningSimulator) -> None:
    result = cli("simulator", "seed", "-n", "2")
    assert result.exit_code == 0, result.output
    assert len(api_env.sim.catalogue) == 2
    digest = hashlib.sha256(api_env.sim.expected_bytes(result.stdout.split()[0])).hexdigest()
    assert digest == api_env.sim.expected_sha256(result.stdout.split()[0])


def test_seed_with_a_wrong_key_exits_1(cli: Cli, simulator_server: RunningSimulator) -> None:
    result = cli("simulator", "seed", "--url", simulator_server.url, "--access-key", "nope")
    assert result.exit_code == 1
    assert "TENIOS_ACCESS_KEY" in result.stderr


def test_serve_writes_every_id_to_a_file_ledger_import_takes(
    serve: Callable[..., Served],
    tmp_path: Path,
    cli: Cli,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 27: `--recordings 300` printed no ids and nothing listed them."""
    ids = tmp_path / "ids.csv"
    served = serve("--port", "0", "--recordings", "60", "--ids-file", str(ids))
    assert f"their ids: {ids} (tenios-archive ledger import {ids})" in served.lines
    assert served.uuids == []  # 60 ids: not listed one by one
    rows = ids.read_text().splitlines()
    assert rows[0] == "recording_uuid,call_uuid" and len(rows) == 61
    monkeypatch.setenv("TENIOS_DATABASE_URL", sqlite_url)
    assert cli("db", "upgrade").exit_code == 0
    imported = cli("ledger", "import", str(ids))
    assert imported.exit_code == 0 and "60 added" in imported.stdout, imported.output
    assert served.stop()[0] == 0


def test_seed_survives_the_simulators_own_injected_faults(
    cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    """Issue 27: `simulator seed` stopped on the first injected fault."""
    sim = make_simulator(faults=FaultPlan.parse("schedule=500:ok:reset:ok:500"), seed=3)
    with running_simulator(sim) as server:
        result = cli(
            "simulator", "seed", "--url", server.url, "--access-key", server.access_key,
            "--count", "4",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    uuids = result.stdout.split()
    assert len(uuids) == 4 and all(sim.recording(u).stopped_at is not None for u in uuids)
    assert "transient failure(s) retried" in result.stderr
    assert any(r.status == 500 for r in sim.requests)


def test_serve_help_lists_every_fault_token_the_docs_list(cli: Cli) -> None:
    """Issue 27: `serve --help` lacked fault tokens docs/tenios-api.md lists."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tenios-api.md").read_text()
    helped = cli("simulator", "serve", "--help")
    assert helped.exit_code == 0
    tokens = ["500=", "503=", "429=", "truncate", "reset", "retry-after", "latency"]
    tokens += ["not-ready", "schedule", "redirect", "revoked-after"]
    tokens += ["close", "cut", "json200", "html200", "shortwav"]
    for token in tokens:
        assert token in docs, token
        assert token in helped.words, token
