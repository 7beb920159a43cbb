from __future__ import annotations

import signal

import pytest

from tenios_io.run.interrupt import Interruption, RunInterrupted


def test_first_signal_stops_claiming_then_the_grace_or_a_second_signal_aborts() -> None:
    now = [100.0]
    told: list[str] = []
    it = Interruption(grace_seconds=10, notify=told.append, clock=lambda: now[0])
    assert not it.stop.is_set() and not it.abort
    it.looping = True
    it.received(signal.SIGTERM)
    assert it.stop.is_set() and not it.abort and it.exit_code == 143
    assert it.run_stop().exit_code == 143 and "SIGTERM" in it.run_stop().cause
    it.stopping(2)
    assert "2 batch(es) in flight" in told[0] and "SIGTERM again" in told[0]
    now[0] += 10
    assert it.abort  # the grace ran out
    it.giving_back(5)
    assert "longer than 10 s" in told[1]
    second = Interruption(clock=lambda: now[0])
    second.looping = True
    second.received(signal.SIGINT)
    second.received(signal.SIGINT)
    assert second.abort and second.exit_code == 130


def test_a_second_signal_outside_the_loop_ends_the_command() -> None:
    it = Interruption()
    it.received(signal.SIGINT)
    with pytest.raises(RunInterrupted) as info:
        it.received(signal.SIGINT)
    assert info.value.exit_code == 130
