"""The ledger against a real SQLite file and the machine's PostgreSQL (each test runs on both)."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tenios_io.custody.chain import NewEvent
from tenios_io.exceptions import IllegalTransition, StaleLease, UnknownRecording
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.tables import custody_events, recordings


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(database_url: str, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    # These tests move time by hand, leases included.
    yield Ledger(engine, actor="test", clock=clock, lease_clock="worker")
    engine.dispose()


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def event_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(custody_events)).scalar())


def test_register_is_idempotent_and_says_so(ledger: Ledger) -> None:
    a, b = ids(2)
    first = ledger.register([NewRecording(a, call_uuid=b.upper()), NewRecording(b)])
    assert first.added == [a, b] and first.known == []
    before = event_count(ledger)
    again = ledger.register([NewRecording(a), NewRecording(b)])
    assert again.added == [] and again.known == [a, b]
    assert event_count(ledger) == before
    rec = ledger.get(a)
    assert rec.state is State.PENDING and rec.call_uuid == b and rec.attempts == 0


def test_known_recording_found_on_sftp_learns_its_path_once(ledger: Ledger) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    result = ledger.register([NewRecording(a, source_path="/drop/a.wav")])
    assert result.source_found == [a] and ledger.get(a).source_path == "/drop/a.wav"
    assert ledger.register([NewRecording(a, source_path="/drop/a.wav")]).source_found == []
    assert [e["event"] for e in ledger.events(a)] == ["registered", "source_found"]


def test_claim_gives_fresh_tokens_and_counts_attempts(ledger: Ledger) -> None:
    ledger.register([NewRecording(i) for i in ids(5)])
    claims = ledger.claim_batch(3, lease_seconds=60, owner="w1")
    assert len(claims) == 3 and len({c.lease_token for c in claims}) == 3
    assert all(c.recording.state is State.IN_PROGRESS and c.recording.attempts == 1 for c in claims)
    rest = ledger.claim_batch(10, lease_seconds=60, owner="w2")
    assert len(rest) == 2
    assert ledger.claim_batch(10, lease_seconds=60) == []


def test_only_due_rows_are_claimed(ledger: Ledger, clock: Clock) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    (claim,) = ledger.claim_batch(1, lease_seconds=60)
    ledger.retry_later(a, claim.lease_token, "503 from TENIOS", delay_seconds=120)
    rec = ledger.get(a)
    assert rec.state is State.PENDING and rec.last_error == "503 from TENIOS"
    assert ledger.claim_batch(1, lease_seconds=60) == []
    clock.advance(121)
    (again,) = ledger.claim_batch(1, lease_seconds=60)
    assert again.recording.attempts == 2 and again.lease_token != claim.lease_token


def test_expired_lease_is_reclaimable_and_the_old_token_is_fenced(
    ledger: Ledger, clock: Clock
) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    (old,) = ledger.claim_batch(1, lease_seconds=30, owner="crashed")
    clock.advance(10)
    assert ledger.claim_batch(1, lease_seconds=30) == []
    clock.advance(25)
    (new,) = ledger.claim_batch(1, lease_seconds=30, owner="rescuer")
    assert new.recording.lease_owner == "rescuer"
    assert ledger.events(a)[-1]["event"] == "claimed"
    assert "rescued_from" in ledger.events(a)[-1]["details"]
    before_events = event_count(ledger)
    with pytest.raises(StaleLease):
        ledger.complete(a, old.lease_token, {"sha256": "0" * 64})
    with pytest.raises(StaleLease):
        ledger.renew(a, old.lease_token, 30)
    assert event_count(ledger) == before_events
    assert ledger.get(a).state is State.IN_PROGRESS and ledger.get(a).sha256 is None
    ledger.complete(a, new.lease_token, {"sha256": "1" * 64, "size_bytes": 3})
    assert ledger.get(a).state is State.ARCHIVED


def test_renew_extends_a_held_lease(ledger: Ledger, clock: Clock) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    (claim,) = ledger.claim_batch(1, lease_seconds=30)
    clock.advance(25)
    ledger.renew(a, claim.lease_token, 30)
    clock.advance(25)
    assert ledger.claim_batch(1, lease_seconds=30) == []
    ledger.record(a, claim.lease_token, [("fetched", {"size": 3})])


@pytest.mark.parametrize(
    "action",
    ["complete", "fail", "retry_later", "release", "record"],
)
def test_every_leased_write_refuses_a_stale_token(ledger: Ledger, action: str) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    ledger.claim_batch(1, lease_seconds=60)
    before = (ledger.get(a), event_count(ledger))
    stale = str(uuid.uuid4())
    calls = {
        "complete": lambda: ledger.complete(a, stale, {"sha256": "2" * 64}),
        "fail": lambda: ledger.fail(a, stale, "boom"),
        "retry_later": lambda: ledger.retry_later(a, stale, "later", delay_seconds=1),
        "release": lambda: ledger.release(a, stale, "budget"),
        "record": lambda: ledger.record(a, stale, [("fetched", {})]),
    }
    with pytest.raises(StaleLease):
        calls[action]()
    assert (ledger.get(a), event_count(ledger)) == before


def test_outcomes_and_requeue(ledger: Ledger) -> None:
    a, b, c, d = ids(4)
    ledger.register([NewRecording(x) for x in (a, b, c, d)])
    claims = {cl.recording_uuid: cl.lease_token for cl in ledger.claim_batch(4, lease_seconds=60)}
    ledger.fail(a, claims[a], "403 access denied")
    ledger.fail(b, claims[b], "404 beyond grace", state=State.MISSING)
    ledger.fail(c, claims[c], "other bytes under the key", state=State.CONFLICT)
    ledger.release(d, claims[d], "time budget spent")
    assert ledger.get(d).state is State.PENDING and ledger.get(d).attempts == 0
    counts = ledger.counts()
    assert (counts[State.FAILED], counts[State.MISSING], counts[State.CONFLICT]) == (1, 1, 1)
    assert ledger.requeue(state=State.FAILED) == [a]
    assert sorted(ledger.requeue([b, c])) == sorted([b, c])
    assert ledger.counts()[State.PENDING] == 4
    with pytest.raises(IllegalTransition, match="only failed, missing or conflict"):
        ledger.requeue([a])
    with pytest.raises(UnknownRecording):
        ledger.requeue([str(uuid.uuid4())])
    assert ledger.verify_chain().ok


def test_annotate_checks_transitions(ledger: Ledger) -> None:
    (a,) = ids(1)
    ledger.register([NewRecording(a)])
    with pytest.raises(IllegalTransition):
        ledger.annotate(a, "purged", {}, to_state=State.PURGED)
    ledger.annotate(a, "legal_hold", {"on": True}, updates={"legal_hold": True})
    assert ledger.get(a).legal_hold is True


def test_chain_covers_every_change(ledger: Ledger) -> None:
    a, b = ids(2)
    ledger.register([NewRecording(a), NewRecording(b)])
    for cl in ledger.claim_batch(2, lease_seconds=60):
        ledger.record(cl.recording_uuid, cl.lease_token, [("fetched", {}), ("uploaded", {})])
        ledger.complete(cl.recording_uuid, cl.lease_token, {"sha256": "3" * 64})
    report = ledger.verify_chain()
    assert report.ok and report.events == 2 + 2 + 2 * 3
    assert [e["event"] for e in ledger.events(a)] == [
        "registered",
        "claimed",
        "fetched",
        "uploaded",
        "archived",
    ]


def test_sqlite_edited_event_is_named_by_verify_chain(sqlite_url: str, clock: Clock) -> None:
    """SQLite has no trigger: the chain is what catches the edit (PostgreSQL refuses it)."""
    from tenios_io.ledger.schema import upgrade

    upgrade(sqlite_url)
    ledger = Ledger(create_ledger_engine(sqlite_url), clock=clock)
    a, b = ids(2)
    ledger.register([NewRecording(a), NewRecording(b)])
    with ledger.engine.begin() as conn:
        conn.execute(
            custody_events.update().where(custody_events.c.seq == 2).values(actor="mallory")
        )
    report = ledger.verify_chain()
    assert not report.ok and report.first_broken_seq == 2


def _claim_all(url: str, worker: str, out: multiprocessing.Queue, start: Any) -> None:  # type: ignore[type-arg]
    engine = create_ledger_engine(url)
    ledger = Ledger(engine, actor=worker)
    got = [c.recording_uuid for c in ledger.claim_batch(25, lease_seconds=600, owner=worker)]
    start.wait(60)  # both have a first batch: then race for the rest
    while batch := ledger.claim_batch(25, lease_seconds=600, owner=worker):
        got.extend(c.recording_uuid for c in batch)
    engine.dispose()
    out.put(got)


def test_postgresql_two_processes_never_claim_the_same_recording(postgres_url: str) -> None:
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    engine = create_ledger_engine(postgres_url)
    Ledger(engine).register([NewRecording(i) for i in ids(1000)])
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_claim_all, args=(postgres_url, f"w{n}", queue, start)) for n in (1, 2)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    first, second = results
    assert first and second, "both workers should have claimed something"
    assert not set(first) & set(second)
    assert len(first) + len(second) == 1000 == len(set(first) | set(second))
    with engine.connect() as conn:
        owners = conn.execute(
            sa.select(recordings.c.lease_owner, sa.func.count()).group_by(recordings.c.lease_owner)
        ).all()
    assert {o for o, _ in owners} == {"w1", "w2"}
    assert Ledger(engine).verify_chain().ok
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE custody_events SET actor = 'mallory'",
        "DELETE FROM custody_events",
        "TRUNCATE custody_events",
    ],
)
def test_postgresql_trigger_refuses_tampering(postgres_url: str, statement: str) -> None:
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    engine = create_ledger_engine(postgres_url)
    ledger = Ledger(engine)
    ledger.register([NewRecording(i) for i in ids(3)])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert ledger.verify_chain().events == 3
    engine.dispose()


def test_register_across_chunks_is_one_consistent_import(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenios_io.ledger import registration

    monkeypatch.setattr(registration, "_CHUNK", 7)  # staged in chunks of 7
    monkeypatch.setattr(registration, "MERGE_CHUNK", {"postgresql": 7, "sqlite": 7})
    first = ids(10)
    ledger.register([NewRecording(i) for i in first])
    more = ids(20)
    items = (
        [NewRecording(i) for i in more]
        + [NewRecording(i, source_path=f"/drop/{i}.wav") for i in first]
        + [NewRecording(more[0]), NewRecording(more[15])]  # repeated, chunks later
    )
    result = ledger.register(items)
    assert result.added == more and result.known == first
    assert sorted(result.source_found) == sorted(first)
    report = ledger.verify_chain()
    assert report.ok and report.events == 10 + 20 + 10
    assert ledger.counts()[State.PENDING] == 30
    for key in first + more:
        assert [e["event"] for e in ledger.events(key)][:1] == ["registered"]
        assert [e["event"] for e in ledger.events(key)].count("registered") == 1
    again = ledger.import_recordings(NewRecording(i) for i in more + more[:3] + ids(2))
    assert (again.read, again.added, again.known, again.duplicates) == (25, 2, 20, 3)


def test_values_with_backslashes_tabs_and_newlines_survive_the_chain(ledger: Ledger) -> None:
    # PostgreSQL writes chain entries with COPY in its text format, escaped by us.
    path = '/drop/a\\b\tc\nd "e" ü.wav'
    key = ids(1)[0]
    ledger.register([NewRecording(key, source_path=path)], actor="tab\there\\back")
    ledger.append_events([NewEvent(key, "annotated", {"note": "x\\y\r\nz\t"})])
    report = ledger.verify_chain()
    assert report.ok and report.events == 2, report.problem
    registered, annotated = ledger.events(key)
    assert json.loads(registered["details"])["source_path"] == path
    assert registered["actor"] == "tab\there\\back"
    assert json.loads(annotated["details"]) == {"note": "x\\y\r\nz\t"}
