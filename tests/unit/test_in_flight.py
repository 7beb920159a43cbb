"""Recordings in flight (TENIOS_IN_FLIGHT / --in-flight): a batch's recordings are in the
air together on the run's recording threads, with the ledger semantics of one batch —
one writer per batch, outcomes in groups, claims given back unworked when the run
stops.  The fakes of tenios_io.testing for source and store, a real SQLite ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenios_io.config import load_settings
from tenios_io.exceptions import AccessDenied, ConfigError
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.recording.source import Fetched, FetchRequest, Sink
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.options import DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT, RunOptions
from tenios_io.run.retry import RetryPolicy
from tenios_io.testing import FakeSource, MemoryStore
from tests.fixtures.moto import sample_wav

WAV = sample_wav(144)
KEYS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(8)]


class TogetherSource(FakeSource):
    """Fetches wait at a barrier until ``parties`` of them are in the air at once: one
    after another they would never pass it (BrokenBarrierError after the timeout)."""

    def __init__(self, parties: int) -> None:
        super().__init__(dict.fromkeys(KEYS, WAV))
        self.barrier = threading.Barrier(parties, timeout=20)

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        self.barrier.wait()
        return super().fetch(request, sink)


class DeniedFirst(FakeSource):
    """The first fetch is refused run-wide (403); the others wait until it was."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(KEYS, WAV))
        self.refused = threading.Event()
        self._lock = threading.Lock()
        self._first = True

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.refused.set()
            raise AccessDenied("403 BAD_CREDENTIALS")
        self.refused.wait(20)
        return super().fetch(request, sink)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    upgrade(url)
    engine = create_ledger_engine(url)
    led = Ledger(engine, actor="unit")
    led.register([NewRecording(k) for k in KEYS])
    yield led
    engine.dispose()


def _archiver(ledger: Ledger, source: FakeSource, tmp: Path, in_flight: int) -> Archiver:
    return Archiver(
        ledger=ledger,
        store=MemoryStore(),
        sources=[source],
        policy=RetryPolicy(max_attempts=3),
        lease_seconds=60,
        spool_dir=tmp,
        in_flight=in_flight,
    )


def test_a_batchs_recordings_are_in_the_air_together(ledger: Ledger, tmp_path: Path) -> None:
    arch = _archiver(ledger, TogetherSource(parties=4), tmp_path, in_flight=4)
    try:
        claims = ledger.claim_batch(8, lease_seconds=60)
        results = arch.archive_batch(claims)
    finally:
        arch.close()
    assert sorted(r.recording_uuid for r in results) == KEYS
    assert {r.outcome for r in results} == {Outcome.ARCHIVED}
    assert {ledger.get(k).state for k in KEYS} == {State.ARCHIVED}
    ledger.integrate_all()
    events = [e["recording_uuid"] for e in ledger.events_named(["archived"])]
    assert sorted(events) == KEYS  # each recording archived once


def test_one_in_flight_works_a_batch_one_recording_after_another(
    ledger: Ledger, tmp_path: Path
) -> None:
    # the barrier shows the difference: two fetches never meet
    arch = _archiver(ledger, TogetherSource(parties=2), tmp_path, in_flight=1)
    arch.sources[0].barrier = threading.Barrier(2, timeout=0.5)  # type: ignore[attr-defined]
    claims = ledger.claim_batch(2, lease_seconds=60)
    results = arch.archive_batch(claims)
    assert {r.outcome for r in results} == {Outcome.RETRY}  # both timed out at the barrier


def test_a_run_wide_stop_gives_back_what_had_not_started(ledger: Ledger, tmp_path: Path) -> None:
    arch = _archiver(ledger, DeniedFirst(), tmp_path, in_flight=2)
    try:
        claims = ledger.claim_batch(8, lease_seconds=60)
        results = arch.archive_batch(claims)
    finally:
        arch.close()
    assert arch.guard.stopped is not None and arch.guard.stopped.exit_code == 2
    outcomes = {r.recording_uuid: r.outcome for r in results}
    assert sorted(outcomes) == KEYS
    # the refused one and every claim not started are pending again, no attempt spent;
    # only the one fetch already in the air when the key was refused may have archived
    released = [k for k, o in outcomes.items() if o is Outcome.RELEASED]
    assert len(released) >= len(KEYS) - 1
    assert set(outcomes.values()) <= {Outcome.RELEASED, Outcome.ARCHIVED}
    for key in released:
        rec = ledger.get(key)
        assert (rec.state, rec.attempts) == (State.PENDING, 0)


def test_options_keep_enough_batches_to_feed_the_recordings() -> None:
    options = RunOptions(concurrency=8, batch_size=50, in_flight=256)
    assert (options.recordings, options.batches) == (256, 12)
    # --concurrency alone: one recording per batch, as before the setting
    assert (RunOptions(concurrency=32).recordings, RunOptions(concurrency=32).batches) == (32, 32)
    # never fewer recordings in the air than batches
    assert RunOptions(concurrency=16, in_flight=4).recordings == 16
    assert RunOptions(concurrency=8).with_in_flight(64).in_flight == 64
    assert RunOptions(in_flight=5).with_in_flight(64).in_flight == 5


@pytest.mark.parametrize("bad", [0, MAX_IN_FLIGHT + 1])
def test_in_flight_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=r"in_flight must be 1\.\.1024"):
        RunOptions(in_flight=bad)
    with pytest.raises(ConfigError, match="TENIOS_IN_FLIGHT"):
        load_settings(in_flight=bad)


def test_the_setting_defaults_to_the_documented_value() -> None:
    assert load_settings().in_flight == DEFAULT_IN_FLIGHT == 64


def test_concurrency_alone_still_caps_the_recordings_in_the_air() -> None:
    """`run nightly --concurrency 2` (or a flow's concurrency=2) keeps 2 recordings in
    the air, as before there was an in-flight setting; --in-flight, or TENIOS_IN_FLIGHT
    given in the environment or the config file, say otherwise; with neither the
    setting's default applies."""
    gentle = RunOptions(concurrency=2, concurrency_given=True)
    assert gentle.with_in_flight(DEFAULT_IN_FLIGHT).recordings == 2
    assert gentle.with_in_flight(300, setting_given=True).recordings == 300
    assert (
        RunOptions(concurrency=2, concurrency_given=True, in_flight=128)
        .with_in_flight(300, setting_given=True)
        .recordings
        == 128
    )
    assert RunOptions().with_in_flight(DEFAULT_IN_FLIGHT).recordings == DEFAULT_IN_FLIGHT


def test_settings_remember_which_values_the_operator_gave(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TENIOS_IN_FLIGHT", raising=False)
    assert "in_flight" not in load_settings().model_fields_set
    config = tmp_path / "archive.toml"
    config.write_text("in_flight = 256\n")
    assert "in_flight" in load_settings(config).model_fields_set
    monkeypatch.setenv("TENIOS_IN_FLIGHT", "300")
    assert "in_flight" in load_settings().model_fields_set
