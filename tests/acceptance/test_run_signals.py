"""Ctrl-C and SIGTERM stop a run cleanly (issue 12 item 2): real `tenios-archive run
nightly` processes without a Prefect API (the in-process loop) against the simulator
over HTTP (answering slowly), moto and both ledger backends.

The first signal stops claiming, lets the recordings in flight finish and gives the
rest back; a second gives everything back at once.  Either way: the summary is
printed, the exit code is 130 (SIGINT) or 143 (SIGTERM), nothing is left
``in_progress``, no attempt is spent on what was given back, the spool folder is
empty, and no traceback is printed.  Signals are sent on what the run shows (rows
``in_progress`` in the ledger, the line the run prints on the first signal), never
after a guessed delay.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenios_io.ledger import State
from tenios_io.ledger.importing import iter_import_file
from tenios_io.ledger.registration import MERGE_CHUNK
from tenios_io.simulator import FaultPlan, Simulator
from tests.acceptance.conftest import ArchiveWorld, _make_world, attach_drop, child_env, deliver
from tests.fixtures.sshd import SftpServer

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
RECORDINGS = 12
GAVE_BACK = re.compile(r"SIGINT again: giving [1-6] claim\(s\) back now")
# two recordings in the air (one per batch), the rest not started: what a signal gives back
COMMAND = ["run", "nightly", "--concurrency", "2", "--in-flight", "2", "--batch-size", "3"]


@pytest.fixture
def peers(
    database_url: str, moto_server: str, locked_bucket: str, s3_client: object
) -> tuple[str, str, str, object]:
    return database_url, moto_server, locked_bucket, s3_client


def slow_world(
    latency: float,
    peers: tuple[str, str, str, object],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """No Prefect API; every retrieve answers after up to ``latency`` seconds (exactly
    that for recordings seeded with the ``slow`` fault)."""
    for world in _make_world(
        prefect_api_url="",
        database_url=peers[0],
        moto_server=peers[1],
        bucket=peers[2],
        s3_client=peers[3],
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        sim=make_simulator(seed=16, faults=FaultPlan(latency=latency)),
    ):
        del world.env["PREFECT_API_URL"]
        monkeypatch.delenv("PREFECT_API_URL")
        world.env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
        yield world


@pytest.fixture
def slowish(
    peers: tuple[str, str, str, object],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """Fetches take up to 2 s: the recordings in flight finish within the grace."""
    yield from slow_world(2.0, peers, monkeypatch, tmp_path, make_simulator)


@pytest.fixture
def stuck(
    peers: tuple[str, str, str, object],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_simulator: Callable[..., Simulator],
) -> Iterator[ArchiveWorld]:
    """Fetches take 20 s: the recordings in flight do not finish before the 2nd signal."""
    yield from slow_world(20.0, peers, monkeypatch, tmp_path, make_simulator)


def seed(world: ArchiveWorld, *, slow: bool) -> list[str]:
    uuids = [
        world.sim.add_recording(seconds=2.0, faults=["slow"] if slow else [])
        for _ in range(RECORDINGS)
    ]
    world.register(uuids)
    return uuids


def wait_in_progress(world: ArchiveWorld, proc: subprocess.Popen[bytes]) -> None:
    """Poll the ledger until the run holds claims (its batches are fetching)."""
    ledger = world.ledger()
    try:
        deadline = time.monotonic() + 120
        while not ledger.counts().get(State.IN_PROGRESS):
            assert proc.poll() is None, "the run ended before it claimed anything"
            assert time.monotonic() < deadline, "the run claimed nothing within 2 minutes"
            time.sleep(0.05)  # polling the ledger, not waiting for a guessed moment
    finally:
        ledger.engine.dispose()


def wait_fetching(world: ArchiveWorld, proc: subprocess.Popen[bytes]) -> None:
    """Poll the spool folder until a fetch has begun (its spool file exists)."""
    deadline = time.monotonic() + 120
    while not spool_files(world):
        assert proc.poll() is None, "the run ended before it fetched anything"
        assert time.monotonic() < deadline, "the run fetched nothing within 2 minutes"
        time.sleep(0.05)  # polling the folder, not waiting for a guessed moment


class Terminal:
    """`tenios-archive` on a pseudo-terminal, as an operator runs it: its own session
    with the pty as controlling terminal, so ^C from the keyboard is SIGINT to it."""

    def __init__(self, world: ArchiveWorld) -> None:
        master, slave = os.openpty()
        self.master = master
        self.output = b""

        def take_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tenios_io.cli", *COMMAND],
            env={**child_env(world), "TERM": "xterm", "COLUMNS": "120"},
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(slave)

    def read(self, timeout: float = 0.2) -> bool:
        """Read what is there; False at the end of output."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += chunk
        return bool(chunk)

    def text(self) -> str:
        return ANSI.sub("", self.output.decode(errors="replace"))

    def wait_for(self, needle: str) -> None:
        deadline = time.monotonic() + 120
        while needle not in self.text():
            assert time.monotonic() < deadline, f"{needle!r} not shown:\n{self.text()}"
            if not self.read():
                pytest.fail(f"the run ended before showing {needle!r}:\n{self.text()}")

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> tuple[int, str]:
        deadline = time.monotonic() + 120
        while self.read():
            assert time.monotonic() < deadline, "the run did not end"
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code, self.text()


def piped(world: ArchiveWorld) -> subprocess.Popen[bytes]:
    """`tenios-archive` as a service manager runs it: its own process group, no tty."""
    return subprocess.Popen(
        [sys.executable, "-m", "tenios_io.cli", *COMMAND],
        env=child_env(world),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def check_ledger(world: ArchiveWorld, uuids: list[str]) -> dict[State, int]:
    """Nothing in progress; archived after one attempt; given back with none spent."""
    ledger = world.ledger()
    try:
        states: dict[State, int] = {}
        for u in uuids:
            rec = ledger.get(u)
            states[rec.state] = states.get(rec.state, 0) + 1
            assert rec.state in (State.ARCHIVED, State.PENDING), (u, rec.state)
            assert rec.attempts == (1 if rec.state is State.ARCHIVED else 0), (u, rec.attempts)
            assert rec.lease_token is None
        stops = ledger.events_named(["run_stopped"])
        assert len(stops) == 1
        assert ledger.verify_chain().ok
        return states
    finally:
        ledger.engine.dispose()


def check_output(text: str, signame: str, title: str = "nightly run") -> None:
    assert title in text and "total" in text, text  # the summary table
    assert f"interrupted by {signame}" in text, text
    assert "Traceback" not in text, text


def spool_files(world: ArchiveWorld) -> list[str]:
    return sorted(p.name for p in Path(world.env["TENIOS_SPOOL_DIR"]).iterdir())


def test_ctrl_c_in_a_terminal_finishes_what_is_in_flight_and_gives_back_the_rest(
    slowish: ArchiveWorld,
) -> None:
    uuids = seed(slowish, slow=False)
    term = Terminal(slowish)
    wait_in_progress(slowish, term.proc)
    term.press(b"\x03")
    code, text = term.finish()
    assert code == 130, text
    check_output(text, "SIGINT")
    assert "claiming nothing more" in text
    states = check_ledger(slowish, uuids)
    assert states.get(State.PENDING, 0) >= 1, states  # what was not started was given back
    assert spool_files(slowish) == []


def test_sigterm_to_the_process_group_finishes_what_is_in_flight(slowish: ArchiveWorld) -> None:
    uuids = seed(slowish, slow=False)
    proc = piped(slowish)
    wait_in_progress(slowish, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    text = ANSI.sub("", out.decode())
    assert proc.returncode == 143, text
    check_output(text, "SIGTERM")
    states = check_ledger(slowish, uuids)
    assert states.get(State.PENDING, 0) >= 1, states
    assert spool_files(slowish) == []


def test_a_second_ctrl_c_gives_everything_back_at_once(stuck: ArchiveWorld) -> None:
    uuids = seed(stuck, slow=True)
    term = Terminal(stuck)
    wait_fetching(stuck, term.proc)
    term.press(b"\x03")
    term.wait_for("again gives everything back now")
    term.press(b"\x03")
    code, text = term.finish()
    assert code == 130, text
    check_output(text, "SIGINT")
    assert GAVE_BACK.search(text), text  # the second Ctrl-C did it, not the grace running out
    states = check_ledger(stuck, uuids)
    assert states == {State.PENDING: RECORDINGS}, states  # 20 s fetches: none finished
    assert spool_files(stuck) == []


def test_a_second_sigint_to_the_process_group_gives_everything_back(stuck: ArchiveWorld) -> None:
    uuids = seed(stuck, slow=True)
    proc = piped(stuck)
    wait_fetching(stuck, proc)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.stdout is not None
    seen = b""
    while b"again gives everything back now" not in seen:
        line = proc.stdout.readline()
        assert line, seen.decode()
        seen += line
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    text = ANSI.sub("", (seen + out).decode())
    assert proc.returncode == 130, text
    check_output(text, "SIGINT")
    assert GAVE_BACK.search(text), text
    assert check_ledger(stuck, uuids) == {State.PENDING: RECORDINGS}
    assert spool_files(stuck) == []


PAUSE_RUNNER = Path(__file__).with_name("pause_runner.py")


def paused_at(
    world: ArchiveWorld, point: str, tmp_path: Path, *args: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """`tenios-archive ARGS` in its own process group, returned once it waits at
    ``point`` (its marker file exists); it carries on when the returned go file is
    written."""
    marker, go = tmp_path / "reached", tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, str(PAUSE_RUNNER), point, str(marker), str(go), "--", *args],
        env=child_env(world),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert time.monotonic() < deadline, f"the run did not reach {point}"
        time.sleep(0.05)  # polling for the marker, not waiting for a guessed moment
    return proc, go


def test_a_signal_during_a_backfill_import_stops_it_after_the_chunk_being_merged(
    no_prefect_world: ArchiveWorld, tmp_path: Path
) -> None:
    """The import of a long backfill file stops at the next chunk boundary (not when
    the whole file is imported): what was merged stays, whole chunks with their
    events; the run claims nothing, says how far the import got and exits 130; the
    next import adds the rest."""
    world = no_prefect_world
    ledger = world.ledger()
    known = world.sim.seed(3)
    world.register(known)
    chunk = MERGE_CHUNK[ledger.engine.dialect.name]
    fresh = [str(uuid.uuid4()) for _ in range(chunk + 100)]  # two merge chunks
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{key}\n" for key in known + fresh))

    proc, go = paused_at(world, "import_chunk_committed", tmp_path, "run", "backfill", str(path))
    # The first chunk is committed: the import is mid-way.
    assert sum(ledger.counts().values()) == chunk
    os.killpg(proc.pid, signal.SIGINT)
    go.write_text("go")
    out, _ = proc.communicate(timeout=300)
    text = ANSI.sub("", out.decode())
    assert proc.returncode == 130, text
    assert f"import stopped by SIGINT after {chunk:,} of {len(known) + len(fresh):,}" in text
    check_output(text, "SIGINT", "backfill")
    try:
        # Only the first chunk was imported, nothing was claimed, the chain verifies and
        # every row has its one `registered` event.
        counts = {state: n for state, n in ledger.counts().items() if n}
        assert counts == {State.PENDING: chunk}, counts
        assert ledger.verify_chain().ok
        registered = Counter(
            str(e["recording_uuid"])
            for e in ledger.iter_events(page=10_000)
            if e["event"] == "registered"
        )
        assert len(registered) == chunk and set(registered.values()) == {1}
        assert len(ledger.events_named(["run_stopped"])) == 1
        again = ledger.import_recordings(iter_import_file(path))
        assert (again.added, again.known) == (len(fresh) + len(known) - chunk, chunk)
    finally:
        ledger.engine.dispose()


@pytest.fixture
def drop_world(
    no_prefect_world: ArchiveWorld, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[ArchiveWorld, Path]:
    """No Prefect API, and a real SFTP drop (OpenSSH sshd)."""
    return no_prefect_world, attach_drop(no_prefect_world, sftp_server, monkeypatch)


def test_a_signal_during_the_sftp_sweep_stops_it_at_the_next_file(
    drop_world: tuple[ArchiveWorld, Path], tmp_path: Path
) -> None:
    """SIGTERM while the sweep goes through the drop: it stops at the next file (not
    when the whole drop is swept); what it had found settled is registered, nothing is
    claimed, the summary says the sweep stopped early, exit 143; the next run sweeps
    and archives the rest."""
    world, drop = drop_world
    uuids = world.sim.seed(5)
    for u in uuids:
        deliver(world, drop, u, f"{u}.wav")
    proc, go = paused_at(world, "sweep_file_looked_at", tmp_path, "run", "nightly")
    os.killpg(proc.pid, signal.SIGTERM)
    go.write_text("go")
    out, _ = proc.communicate(timeout=300)
    text = ANSI.sub("", out.decode())
    assert proc.returncode == 143, text
    check_output(text, "SIGTERM")
    assert "sweep stopped early" in text, text
    ledger = world.ledger()
    try:
        # The sweep looked at one file when the signal came: only its recording is known.
        first = sorted(uuids)[0]
        counts = {state: n for state, n in ledger.counts().items() if n}
        assert counts == {State.PENDING: 1}, counts
        assert ledger.get(first).attempts == 0
        assert len(ledger.events_named(["run_stopped"])) == 1
        assert ledger.verify_chain().ok
    finally:
        ledger.engine.dispose()
    assert sorted(p.name for p in drop.glob("*.wav")) == sorted(f"{u}.wav" for u in uuids)

    again = subprocess.run(
        [sys.executable, "-m", "tenios_io.cli", "run", "nightly"],
        env=child_env(world),
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
    ledger = world.ledger()
    try:
        assert {ledger.get(u).state for u in uuids} == {State.ARCHIVED}
    finally:
        ledger.engine.dispose()
    assert len(world.versions()) == len(uuids) and set(world.versions().values()) == {1}


def test_a_signal_during_ledger_import_stops_it_after_the_chunk_being_merged(
    no_prefect_world: ArchiveWorld, tmp_path: Path
) -> None:
    """`ledger import` of a long file: SIGTERM ends it at the next chunk boundary, it
    says how far it got and exits 143; the next import adds the rest."""
    world = no_prefect_world
    ledger = world.ledger()
    chunk = MERGE_CHUNK[ledger.engine.dialect.name]
    fresh = [str(uuid.uuid4()) for _ in range(chunk + 100)]  # two merge chunks
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{key}\n" for key in fresh))

    proc, go = paused_at(world, "import_chunk_committed", tmp_path, "ledger", "import", str(path))
    assert sum(ledger.counts().values()) == chunk  # the first chunk is committed
    os.killpg(proc.pid, signal.SIGTERM)
    go.write_text("go")
    out, _ = proc.communicate(timeout=300)
    text = ANSI.sub("", out.decode())
    assert proc.returncode == 143, text
    assert f"import stopped by SIGTERM after {chunk:,} of {len(fresh):,}" in text, text
    assert "Traceback" not in text, text
    try:
        assert sum(ledger.counts().values()) == chunk
        assert ledger.verify_chain().ok
        again = ledger.import_recordings(iter_import_file(path))
        assert (again.added, again.known) == (len(fresh) - chunk, chunk)
    finally:
        ledger.engine.dispose()
