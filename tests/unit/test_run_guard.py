"""The run's guard decides what is run-wide (tenios_io/run/stop.py): the S3 outage
window and its held-back recordings, the canary's answers, the stop line."""

from __future__ import annotations

from tenios_io.exceptions import (
    ApiUnavailable,
    ApiUnreachable,
    RecordingNotFound,
    SpoolUnusable,
    StoreUnavailable,
)
from tenios_io.run.stop import CanaryAnswer, RunGuard, run_wide


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_s3_failing_is_held_back_once_then_stops_after_the_window() -> None:
    clock = Clock()
    guard = RunGuard(store_outage_seconds=60, clock=clock)
    failure = StoreUnavailable("SlowDown")

    assert guard.judge(failure) is None
    assert guard.hold_back("a", failure) == 60
    assert guard.hold_back("a", failure) is None  # once per recording and run
    clock.now = 59
    assert guard.judge(failure) is None and guard.hold_back("b", failure) == 60
    clock.now = 60
    stop = guard.judge(failure)
    assert stop is not None and stop.exit_code == 1 and "60 s" in stop.cause


def test_a_success_ends_the_outage() -> None:
    clock = Clock()
    guard = RunGuard(store_outage_seconds=60, clock=clock)
    assert guard.judge(StoreUnavailable("x")) is None
    guard.succeeded("a", "api")
    assert guard.hold_back("b", StoreUnavailable("x")) is None  # no outage now
    clock.now = 100
    assert guard.judge(StoreUnavailable("x")) is None  # a new outage starts at 100
    assert guard.stopped is None


def test_only_a_store_failure_is_held_back() -> None:
    guard = RunGuard(store_outage_seconds=60, clock=Clock())
    guard.judge(StoreUnavailable("x"))
    assert guard.hold_back("a", ApiUnavailable("503")) is None


def test_unreachable_tenios_and_an_unusable_spool_are_run_wide_other_api_errors_not() -> None:
    unreachable = run_wide(ApiUnreachable("refused", url="https://api.example:8443"))
    assert unreachable is not None and unreachable.cause.endswith("https://api.example:8443")
    assert unreachable.exit_code == 1
    spool = run_wide(SpoolUnusable("disk full"))
    assert spool is not None and "TENIOS_SPOOL_DIR" in spool.advice
    assert run_wide(ApiUnavailable("503")) is None


def test_the_canary_is_asked_with_the_run_s_last_api_recording() -> None:
    asked: list[str | None] = []

    def canary(recent: str | None) -> CanaryAnswer:
        asked.append(recent)
        return CanaryAnswer(recent, True)

    guard = RunGuard(2, canary=canary)
    guard.succeeded("from-sftp", "sftp:/drop/x.wav")
    guard.succeeded("from-api", "api")
    guard.succeeded("later-sftp", "sftp:/drop/y.wav")
    for _ in range(4):
        assert guard.judge(RecordingNotFound("404")) is None
    assert asked == ["from-api", "from-api"] and guard.stopped is None
    assert len(guard.notes) == 2


def test_a_failed_canary_question_stops_the_run_naming_why() -> None:
    guard = RunGuard(1, canary=lambda recent: CanaryAnswer("c-1", False, "ApiUnavailable: 503"))
    stop = guard.judge(RecordingNotFound("404"))
    assert stop is not None and "asking TENIOS for c-1" in stop.cause and "503" in stop.cause


def test_the_stop_line_counts_the_released_claims() -> None:
    stop = run_wide(SpoolUnusable("disk full"))
    assert stop is not None
    line = stop.message_for([], None, 12)
    assert line.endswith("12 claim(s) released to pending, no attempts spent")
