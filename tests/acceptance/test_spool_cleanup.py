"""Spool files: none is left after a run, and a killed run's are removed by the next
run's preflight (issue 12 item 2), with the real nightly flow and peers."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from flows.nightly import nightly_archive
from tests.acceptance.conftest import ArchiveWorld


def test_the_next_run_removes_a_killed_runs_spool_files(world: ArchiveWorld) -> None:
    spool = Path(world.env["TENIOS_SPOOL_DIR"])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-")[:40]
    stale = spool / f"tenios-{host}-{int(dead.stdout)}-x1y2z3.spool"
    stale.write_bytes(b"RIFF half a recording from a SIGKILLed run")
    world.register(world.sim.seed(2))
    result = nightly_archive(max_wait_seconds=30)
    assert result["exit_code"] == 0 and result["counts"] == {"archived": 2}
    assert list(spool.iterdir()) == []  # the stale one removed, the run's own deleted
