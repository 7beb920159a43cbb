from __future__ import annotations

import pytest

from tenios_io.run.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_the_burst_then_paces_at_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(4, clock=t.clock, sleep=t.sleep)
    for _ in range(4):
        bucket.acquire()
    assert t.now == 0
    for _ in range(8):
        bucket()
    assert t.now == pytest.approx(2.0)  # 8 more requests at 4/s


def test_fractional_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(0.5, clock=t.clock, sleep=t.sleep)
    bucket.acquire()
    bucket.acquire()
    assert t.now == pytest.approx(2.0)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)
