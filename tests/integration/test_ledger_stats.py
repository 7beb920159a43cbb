"""`ledger stats` (issue 15): the monitoring numbers against a ledger with known
contents, on a real SQLite file and the machine's PostgreSQL, directly and through
the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.stats import LedgerStats, WorkProbe, collect, probe
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]
#: The real now, to the minute: the CLI reads the ledger with the real clock.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


class Expected:
    """What the seeded ledger holds, by construction."""

    due = 1
    oldest_due = timedelta(hours=30)
    in_progress = 2
    expired_leases = 1
    archived = 3
    failed = 1
    missing = 1


def seed(database_url: str) -> None:
    """History written with a hand-moved clock, so every row's times are known:
    30 h ago 11 registered, 1 archived and 1 failed (outside the 24 h window);
    3 h ago 2 archived and 1 missing; 1 h ago 1 archived and 1 failed; 10 min ago
    one claimed with a 60 s lease (expired), one with a day's lease, one put off
    for 2 h. One stays pending since 30 h ago (due, the oldest)."""
    moment = [NOW - timedelta(hours=30)]
    engine = create_ledger_engine(database_url)
    ledger = Ledger(engine, actor="seed", clock=lambda: moment[0], lease_clock="worker")
    ledger.register([NewRecording(str(uuid.uuid4())) for _ in range(11)])

    def claims(n: int, lease: float = 300) -> list[str]:
        got = ledger.claim_batch(n, lease_seconds=lease)
        assert len(got) == n
        return [c.recording_uuid + " " + c.lease_token for c in got]

    def archive(entry: str) -> None:
        key, token = entry.split()
        ledger.complete(key, token, {"sha256": "0" * 64, "size_bytes": 1})

    def fail(entry: str, state: State = State.FAILED) -> None:
        key, token = entry.split()
        ledger.fail(key, token, "test", state=state)

    old_ok, old_bad = claims(2)
    archive(old_ok)
    fail(old_bad)
    moment[0] = NOW - timedelta(hours=3)
    a, b, c = claims(3)
    archive(a)
    archive(b)
    fail(c, State.MISSING)
    moment[0] = NOW - timedelta(hours=1)
    d, e = claims(2)
    archive(d)
    fail(e)
    moment[0] = NOW - timedelta(minutes=10)
    claims(1, lease=60)
    claims(1, lease=86400)
    key, token = claims(1)[0].split()
    ledger.retry_later(key, token, "busy", delay_seconds=7200)
    engine.dispose()


@pytest.fixture
def seeded(database_url: str) -> str:
    seed(database_url)
    return database_url


@pytest.fixture
def snapshot(seeded: str) -> Iterator[tuple[LedgerStats, int]]:
    engine = create_ledger_engine(seeded)
    ledger = Ledger(engine)
    yield collect(ledger, ledger.clock_now()), ledger.queued_events()
    engine.dispose()


def hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ctrl_c_as_from_a_terminal() -> None:
    """In the child before it starts: SIGINT at its default disposition, as a terminal's
    ^C finds it. A test runner started in the background (``nohup … &``) ignores SIGINT,
    its children inherit that, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_stats_count_what_the_ledger_holds(snapshot: tuple[LedgerStats, int]) -> None:
    stats, queued = snapshot
    assert stats.due == Expected.due
    assert Expected.oldest_due.total_seconds() <= stats.oldest_due_seconds
    assert stats.oldest_due_seconds < (Expected.oldest_due + timedelta(hours=1)).total_seconds()
    assert (stats.in_progress, stats.expired_leases) == (2, 1)
    assert stats.last_24h == {"failed": 1, "missing": 1, "conflict": 0, "archived": 3}
    three, one = hour(NOW - timedelta(hours=3)), hour(NOW - timedelta(hours=1))
    assert stats.archived_per_hour == {three: 2, one: 1}
    assert queued > 0 and stats.custody_queued == queued


def test_an_empty_ledger_has_nothing_due_and_no_age(database_url: str) -> None:
    engine = create_ledger_engine(database_url)
    ledger = Ledger(engine)
    stats = collect(ledger, ledger.clock_now())
    engine.dispose()
    assert (stats.due, stats.oldest_due_seconds, stats.in_progress) == (0, 0.0, 0)
    assert stats.archived_per_hour == {} and sum(stats.last_24h.values()) == 0


def test_the_fan_out_probe_says_what_is_left_at_any_moment(seeded: str) -> None:
    """The parent's light probe (EXISTS, no counts) agrees with the seeded contents:
    one due since 30 h ago, one live lease (a day's), one expired (60 s)."""
    engine = create_ledger_engine(seeded)
    ledger = Ledger(engine)
    now = ledger.clock_now()
    assert probe(ledger, now) == WorkProbe(due=True, leased=True, live_lease=True)
    # Before anything was due; the leases are in_progress whatever the moment.
    before = NOW - timedelta(hours=31)
    assert probe(ledger, before) == WorkProbe(due=False, leased=True, live_lease=True)
    # Two days on: the day's lease has expired too, the put-off one is due as well.
    later = now + timedelta(days=2)
    assert probe(ledger, later) == WorkProbe(due=True, leased=True, live_lease=False)
    engine.dispose()


def test_the_probe_of_an_empty_ledger_finds_nothing(database_url: str) -> None:
    engine = create_ledger_engine(database_url)
    ledger = Ledger(engine)
    assert probe(ledger, ledger.clock_now()) == WorkProbe(False, False, False)
    engine.dispose()


def test_cli_json_and_text(seeded: str, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", seeded)
    out = cli("ledger", "stats", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["due"], data["in_progress"], data["expired_leases"]) == (1, 2, 1)
    assert data["last_24h"] == {"failed": 1, "missing": 1, "conflict": 0, "archived": 3}
    assert sorted(data["archived_per_hour"].values()) == [1, 2]
    assert data["oldest_due_seconds"] >= 30 * 3600
    text = cli("ledger", "stats")
    assert text.exit_code == 0, text.output
    assert "due now" in text.stdout and "1d 6h" in text.stdout
    assert "1 with expired leases" in text.stdout


def test_cli_on_an_unmigrated_ledger_says_what_to_do(
    empty_database_url: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", empty_database_url)
    out = cli("ledger", "stats")
    assert out.exit_code == 2 and "db upgrade" in out.output and "Traceback" not in out.output


# -- Prometheus ---------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def check_metrics(text: str) -> None:
    got = samples(text)
    p = "tenios_archive_"
    assert got[(p + "ledger_up", ())] == 1
    assert got[(p + "due_recordings", ())] == Expected.due
    assert got[(p + "oldest_due_age_seconds", ())] >= Expected.oldest_due.total_seconds()
    assert got[(p + "in_progress_recordings", ())] == Expected.in_progress
    assert got[(p + "expired_leases", ())] == Expected.expired_leases
    recent = {
        dict(labels)["state"]: v for (n, labels), v in got.items() if n == p + "recordings_last_24h"
    }
    assert recent == {"archived": 3, "failed": 1, "missing": 1, "conflict": 0}
    at = datetime.fromtimestamp(got[(p + "stats_timestamp_seconds", ())], UTC)
    hourly = {
        int(dict(labels)["hours_ago"]): v
        for (n, labels), v in got.items()
        if n == p + "archived_in_hour"
    }
    assert sorted(hourly) == list(range(24))
    ago = {
        int((hour(at) - hour(NOW - timedelta(hours=h))) / timedelta(hours=1)): n
        for h, n in ((3, 2), (1, 1))
    }
    assert {h: v for h, v in hourly.items() if v} == ago


def test_prometheus_textfile(
    seeded: str, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TENIOS_DATABASE_URL", seeded)
    target = tmp_path / "textfile" / "tenios.prom"
    target.parent.mkdir()
    target.write_text("stale\n")
    out = cli("ledger", "stats", "--prometheus-textfile", str(target))
    assert out.exit_code == 0, out.output
    assert out.stdout == ""  # cron-friendly
    check_metrics(target.read_text())
    assert [p.name for p in target.parent.iterdir()] == ["tenios.prom"]  # no temporary left
    missing = cli("ledger", "stats", "--prometheus-textfile", str(tmp_path / "no" / "x.prom"))
    assert missing.exit_code == 2 and "--prometheus-textfile" in missing.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serving(url: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "TENIOS_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "tenios_io.cli", "ledger", "stats", "--serve", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_from_a_terminal,
    )


def test_prometheus_serve_until_ctrl_c(seeded: str) -> None:
    port = free_port()
    proc = start_serving(seeded, port)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # printed once the server listens
        assert f"http://127.0.0.1:{port}/metrics" in ready, proc.stderr and proc.stderr.read()
        # Timeouts here are safety nets for a loaded machine, not performance bounds.
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=120)
        assert response.status_code == 200
        check_metrics(response.text)
        busy = start_serving(seeded, port)  # the port is taken: a usage error, not a traceback
        _, err = busy.communicate(timeout=120)
        assert busy.returncode == 2 and "--serve" in err and "Traceback" not in err
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
