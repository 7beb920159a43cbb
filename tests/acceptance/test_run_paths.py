"""`run nightly` without a Prefect API runs in-process and starts no Prefect server
(issue 13: seconds, not 18 s, of start-up); with one, it goes through the flow and the
run appears on that server with its summary artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenios_io.ledger import State
from tests.acceptance.conftest import ArchiveWorld, child_env
from tests.fixtures.cli import CliResult

ROOT = Path(__file__).resolve().parents[2]

#: Runs the CLI, then says what the process loaded and what it started: a Prefect
#: ephemeral server would be a child process listening on a port until exit.
PROBE = """
import json, sys
import psutil
from tenios_io.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
me = psutil.Process()
print("PROBE " + json.dumps({
    "exit": code,
    "prefect_modules": sorted(m for m in sys.modules if m.split(".")[0] == "prefect"),
    "children": [" ".join(p.cmdline()) for p in me.children(recursive=True)],
    "listening": [c.laddr.port for c in me.net_connections("inet") if c.status == "LISTEN"],
}))
"""


def test_without_a_prefect_api_the_run_starts_no_prefect_server(
    no_prefect_world: ArchiveWorld,
) -> None:
    world = no_prefect_world
    uuids = world.sim.seed(6)
    world.register(uuids)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "nightly", "--concurrency", "2", "--batch-size", "2"],
        env=child_env(world),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    probe = json.loads(done.stdout.split("PROBE ", 1)[1])
    assert probe["exit"] == 0, done.stdout + done.stderr
    assert probe["prefect_modules"] == []
    assert probe["children"] == [] and probe["listening"] == []
    assert "nightly run" in done.stdout and "archived" in done.stdout
    ledger = world.ledger()
    assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    owners = {e["actor"] for u in uuids for e in ledger.events(u) if e["event"] == "archived"}
    assert len(owners) == 1 and next(iter(owners)).startswith("cli:nightly-archive:")
    ledger.engine.dispose()


def summary_artifacts() -> dict[Any, Any]:
    """Flow run id → data of every `nightly-archive-summary` artifact on the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-archive-summary"]))
        )
    return {a.flow_run_id: a.data for a in found}


def test_with_a_prefect_api_the_cli_run_appears_there_with_its_summary(
    world: ArchiveWorld, cli: Callable[..., CliResult]
) -> None:
    uuids = world.sim.seed(3)
    world.register(uuids)
    before = summary_artifacts()
    result = cli("run", "nightly", "--concurrency", "2", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    new = {run: data for run, data in summary_artifacts().items() if run not in before}
    assert len(new) == 1, new
    (data,) = new.values()
    rows = {row["outcome"]: row["recordings"] for row in json.loads(data)}
    assert rows["archived"] == 3
    ledger = world.ledger()
    actors = {e["actor"] for u in uuids for e in ledger.events(u) if e["event"] == "archived"}
    assert len(actors) == 1 and next(iter(actors)).startswith("prefect:nightly-archive:")
    ledger.engine.dispose()
