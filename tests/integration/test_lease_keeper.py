"""LeaseKeeper's renewal at a batch's start, on a real SQLite file and PostgreSQL: skipped
at the first start of claims this process has just made, done on a re-run (Prefect
retrying a crashed batch) and for claims that are old or another process's."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tenios_io.ledger import Claim, Ledger, NewRecording, create_ledger_engine
from tenios_io.run.lease import FRESH_FRACTION, BatchStarts, LeaseKeeper

LEASE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database_url: str, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    # Leases on the test's clock: a renewal shows as a new lease_expires_at.
    yield Ledger(engine, actor="test", clock=clock, lease_clock="worker")
    engine.dispose()


def claim_two(ledger: Ledger) -> list[Claim]:
    ledger.register([NewRecording(str(uuid.uuid4())) for _ in range(2)])
    return ledger.claim_batch(2, lease_seconds=LEASE)


def expiries(ledger: Ledger, claims: list[Claim]) -> list[datetime | None]:
    return [ledger.get(c.recording_uuid).lease_expires_at for c in claims]


def test_a_first_start_with_fresh_claims_does_not_renew(ledger: Ledger, clock: Clock) -> None:
    claims = claim_two(ledger)
    claimed = expiries(ledger, claims)
    assert claimed == [clock.now + timedelta(seconds=LEASE)] * 2
    clock.now += timedelta(seconds=5)
    with LeaseKeeper(ledger, claims, LEASE, starts=BatchStarts()) as keeper:
        assert keeper.lost == set()
    assert expiries(ledger, claims) == claimed


def test_a_rerun_renews_and_finds_what_it_finished(ledger: Ledger, clock: Clock) -> None:
    claims = claim_two(ledger)
    starts = BatchStarts()
    with LeaseKeeper(ledger, claims, LEASE, starts=starts):
        done = claims[0]
        ledger.fail(done.recording_uuid, done.lease_token, "gone")
    clock.now += timedelta(seconds=5)
    # The same claims again, as when Prefect retries the batch after a crash.
    with LeaseKeeper(ledger, claims, LEASE, starts=starts) as keeper:
        assert keeper.lost == {done.recording_uuid}
    assert ledger.get(claims[1].recording_uuid).lease_expires_at == clock.now + timedelta(
        seconds=LEASE
    )


def test_one_claim_of_the_batch_seen_before_renews_all(ledger: Ledger, clock: Clock) -> None:
    claims = claim_two(ledger)
    starts = BatchStarts()
    with LeaseKeeper(ledger, claims[:1], LEASE, starts=starts):
        pass
    clock.now += timedelta(seconds=5)
    with LeaseKeeper(ledger, claims, LEASE, starts=starts):
        pass
    assert expiries(ledger, claims) == [clock.now + timedelta(seconds=LEASE)] * 2


def test_claims_too_old_to_be_fresh_are_renewed(ledger: Ledger, clock: Clock) -> None:
    claims = claim_two(ledger)
    later = [0.0]
    starts = BatchStarts(clock=lambda: time.monotonic() + later[0])
    later[0] = LEASE * FRESH_FRACTION  # the batch starts a third of a lease after the claim
    clock.now += timedelta(seconds=LEASE * FRESH_FRACTION)
    with LeaseKeeper(ledger, claims, LEASE, starts=starts):
        pass
    assert expiries(ledger, claims) == [clock.now + timedelta(seconds=LEASE)] * 2


@pytest.mark.parametrize(
    "change",
    [{"claimed_in": "another process"}, {"claimed_at": None}],
    ids=["claimed-elsewhere", "age-unknown"],
)
def test_claims_of_unknown_age_are_renewed(
    ledger: Ledger, clock: Clock, change: dict[str, object]
) -> None:
    claims = [dataclasses.replace(c, **change) for c in claim_two(ledger)]
    clock.now += timedelta(seconds=5)
    with LeaseKeeper(ledger, claims, LEASE, starts=BatchStarts()):
        pass
    assert expiries(ledger, claims) == [clock.now + timedelta(seconds=LEASE)] * 2


def test_without_starts_every_start_renews(ledger: Ledger, clock: Clock) -> None:
    claims = claim_two(ledger)
    clock.now += timedelta(seconds=5)
    with LeaseKeeper(ledger, claims, LEASE):
        pass
    assert expiries(ledger, claims) == [clock.now + timedelta(seconds=LEASE)] * 2


def test_batch_starts_forget_claims_too_old_to_be_fresh(ledger: Ledger) -> None:
    claims = claim_two(ledger)
    later = [0.0]
    starts = BatchStarts(clock=lambda: time.monotonic() + later[0])
    assert starts.first_and_fresh(claims[:1], LEASE)
    assert not starts.first_and_fresh(claims[:1], LEASE)  # a re-run
    later[0] = LEASE  # long after: the first claim is forgotten, the second too old
    assert not starts.first_and_fresh(claims[1:], LEASE)
    assert len(starts) == 1
