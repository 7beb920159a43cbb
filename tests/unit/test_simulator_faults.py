"""FaultPlan: the --fault grammar, and how the injector picks each request's fault."""

from __future__ import annotations

from collections import Counter

import pytest

from tenios_io.simulator.faults import FaultInjector, FaultPlan, check_token

FULL = "500=0.05,503=0.05,429=0.05,retry-after=1,latency=0.2,truncate=0.02,reset=0.02,not-ready=30"


def test_the_documented_example_parses() -> None:
    plan = FaultPlan.parse(FULL)

    assert plan == FaultPlan(
        error_500=0.05,
        error_503=0.05,
        error_429=0.05,
        retry_after=1,
        latency=0.2,
        truncate=0.02,
        reset=0.02,
        not_ready=30,
    )


@pytest.mark.parametrize(
    "spec",
    [FULL, "", "schedule=503:429:truncate:ok", "retry-after=none,503=0.5", "reset=1", "delay=0.1"],
)
def test_specs_round_trip(spec: str) -> None:
    plan = FaultPlan.parse(spec)
    assert FaultPlan.parse(plan.to_spec()) == plan


def test_a_fixed_delay_is_added_to_every_answer() -> None:
    injector = FaultInjector(FaultPlan.parse("delay=0.1,latency=0.05,schedule=slow"), seed=1)
    assert injector.next().delay == pytest.approx(0.15)  # slow: all of latency, then delay
    delays = [injector.next().delay for _ in range(50)]
    assert all(0.1 <= d <= 0.15 for d in delays) and len(set(delays)) > 1


def test_spec_is_forgiving_about_spaces_and_case() -> None:
    plan = FaultPlan.parse(" 503 = 0.5 , Schedule = 503 : OK ,")
    assert plan.error_503 == 0.5
    assert plan.schedule == ("503", "ok")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("500", "expected KEY=VALUE"),
        ("500=", "expected KEY=VALUE"),
        ("404=0.1", "unknown fault '404'"),
        ("500=lots", "fault 500: bad value 'lots'"),
        ("500=1.5", "between 0 and 1"),
        ("500=0.6,503=0.6", "more than 1"),
        ("retry-after=-1", "retry-after"),
        ("retry-after=0.5", "bad value '0.5': it wants whole seconds"),
        ("latency=-1", "latency"),
        ("delay=-0.1", "delay"),
        ("schedule=503:boom", "unknown fault token 'boom'"),
        ("schedule=200", "unknown fault token"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan.parse(spec)


def test_tokens() -> None:
    assert check_token(" OK ") == "ok"
    assert check_token("599") == "599"
    with pytest.raises(ValueError):
        check_token("600")


def test_quiet_plan() -> None:
    assert FaultPlan().is_quiet()
    assert not FaultPlan(latency=0.1).is_quiet()


def test_schedule_comes_first_and_recording_schedule_before_it() -> None:
    injector = FaultInjector(FaultPlan(schedule=("503", "truncate")), seed=0)

    assert injector.next("reset").kind == "reset"
    first = injector.next()
    assert (first.kind, first.status, first.name) == ("status", 503, "503")
    assert injector.next().kind == "truncate"
    assert injector.next().kind == "ok"  # schedule used up, no probabilities
    injector.extend_schedule(["429"])
    assert injector.next().status == 429


def test_slow_waits_the_latency_or_one_second() -> None:
    assert FaultInjector(FaultPlan(schedule=("slow",)), 0).next().delay == 1.0
    fault = FaultInjector(FaultPlan(latency=0.3, schedule=("slow",)), 0).next()
    assert (fault.kind, fault.delay) == ("ok", 0.3)


def test_probabilities_are_seeded_and_roughly_right() -> None:
    plan = FaultPlan(error_500=0.1, error_503=0.2, truncate=0.1, latency=0.5)

    def run(seed: int) -> list[tuple[str, float]]:
        injector = FaultInjector(plan, seed)
        return [(f.name, f.delay) for f in (injector.next() for _ in range(5000))]

    draws = run(1)
    assert draws == run(1)
    assert draws != run(2)
    counts = Counter(name for name, _ in draws)
    assert 350 < counts["500"] < 650
    assert 850 < counts["503"] < 1150
    assert 350 < counts["truncate"] < 650
    assert all(0 <= delay <= 0.5 for _, delay in draws)


def test_body_fault_tokens_are_scheduled_as_body_faults() -> None:
    injector = FaultInjector(
        FaultPlan(schedule=("cut", "json200", "html200", "shortwav", "close")), 0
    )
    faults = [injector.next() for _ in range(5)]
    assert [(f.kind, f.name) for f in faults] == [
        ("body", "cut"),
        ("body", "json200"),
        ("body", "html200"),
        ("body", "shortwav"),
        ("body", "close"),
    ]
    assert FaultPlan.parse("schedule=cut:ok").schedule == ("cut", "ok")
