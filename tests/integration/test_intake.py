"""The intake against a real SQLite file and the machine's PostgreSQL: producers insert
with the databases' own command-line clients (no project code on their side)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.tables import custody_events, recording_intake, recordings
from tests.fixtures.producer import insert_values, run_sql, start_sql


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test-run")
    engine.dispose()


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def registered_per_recording(ledger: Ledger) -> dict[str, int]:
    ledger.integrate_all()
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(custody_events.c.recording_uuid, sa.func.count())
            .where(custody_events.c.event == "registered")
            .group_by(custody_events.c.recording_uuid)
        ).all()
    return {str(key): int(n) for key, n in rows}


def intake_left(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(recording_intake)).scalar_one()
        )


def test_plain_sql_rows_are_registered_with_their_producer(
    database_url: str, ledger: Ledger
) -> None:
    new, known, dup = ids(3)
    ledger.register([NewRecording(known)])
    call = str(uuid.uuid4())
    done = run_sql(
        database_url,
        [
            # the minimal insert: one column
            f"INSERT INTO recording_intake (recording_uuid) VALUES ('{known}');",
            "INSERT INTO recording_intake (recording_uuid, call_uuid, recorded_at, source_hint, "
            f"producer) VALUES ('{new.upper()}', '{call}', '2019-03-04T05:06:07Z', 'api', "
            "'pbx-7');",
            # a duplicate insert is harmless, within one drain too
            insert_values([(dup, None, None, "pbx-7")]),
            insert_values([(dup, None, None, "pbx-7")]),
        ],
    )
    assert done.returncode == 0, done.stderr

    result = ledger.drain_intake()

    assert result.to_dict() == {"registered": 2, "known": 2, "rejected": 0}
    assert intake_left(ledger) == 0
    rec = ledger.get(new)
    assert rec.state is State.PENDING and rec.call_uuid == call
    assert rec.recorded_at is not None and rec.recorded_at.year == 2019
    assert rec.key_date == rec.recorded_at  # the S3 key and the retention start there
    [event] = ledger.events(new)
    details = json.loads(event["details"])
    assert event["event"] == "registered" and event["actor"] == "test-run"
    assert details["producer"] == "pbx-7" and details["date_from"] == "recorded_at"
    assert details["recorded_at"] == "2019-03-04T05:06:07.000000Z"
    assert json.loads(ledger.events(dup)[0]["details"])["date_from"] == "discovered_at"
    assert registered_per_recording(ledger) == {known: 1, new: 1, dup: 1}


def test_malformed_rows_are_rejected_with_their_reason_and_kept(
    database_url: str, ledger: Ledger
) -> None:
    good = str(uuid.uuid4())
    done = run_sql(
        database_url,
        [
            insert_values([("not-a-uuid", None, None, "crm")]),
            insert_values([(str(uuid.uuid4()), None, "yesterday", "crm")]),
            insert_values([(str(uuid.uuid4()), "call-42", None, "crm")]),
            insert_values([(str(uuid.uuid4()), None, "2999-01-01T00:00:00Z", "crm")]),
            "INSERT INTO recording_intake (recording_uuid, source_hint) "
            f"VALUES ('{uuid.uuid4()}', 'ftp');",
            insert_values([(good, None, None, "crm")]),
        ],
    )
    assert done.returncode == 0, done.stderr

    result = ledger.drain_intake()

    assert result.to_dict() == {"registered": 1, "known": 0, "rejected": 5}
    reasons = [row.reason or "" for row in ledger.intake_rows("rejected")]
    assert [r.split(" ", 1)[0] for r in reasons] == [
        "recording_uuid",
        "recorded_at",
        "call_uuid",
        "recorded_at",
        "source_hint",
    ]
    assert "'not-a-uuid' is not a UUID" in reasons[0] and "in the future" in reasons[3]
    assert ledger.intake_counts() == {"pending": 0, "rejected": 5}
    assert ledger.get(good).state is State.PENDING
    # A second drain leaves the rejected rows alone.
    assert ledger.drain_intake().taken == 0
    assert ledger.intake_counts() == {"pending": 0, "rejected": 5}


def test_drain_goes_in_bounded_chunks_and_stops_at_what_was_there(ledger: Ledger) -> None:
    keys = ids(25)
    for key in keys:
        ledger.submit_intake(key, producer="unit")
    result = ledger.drain_intake(chunk=10)
    assert result.registered == 25 and intake_left(ledger) == 0
    assert registered_per_recording(ledger) == dict.fromkeys(keys, 1)


def test_sftp_hint_gives_the_drop_path(ledger: Ledger) -> None:
    key = str(uuid.uuid4())
    ledger.submit_intake(key, producer="sweeper")
    with ledger.engine.begin() as conn:
        conn.execute(recording_intake.update().values(source_hint=f"sftp:in/{key}.wav"))
    ledger.drain_intake()
    rec = ledger.get(key)
    assert rec.source_path == f"in/{key}.wav" and rec.source_hint == "sftp"


def test_ten_thousand_rows_inserted_while_runs_drain_and_claim_are_registered_once(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    keys = ids(10_000)
    # 100 transactions of 100 rows, each with a duplicate of an earlier row.
    statements = [
        insert_values(
            [(k, None, None, "load") for k in keys[i : i + 100]] + [(keys[i], None, None, "load")]
        )
        for i in range(0, len(keys), 100)
    ]
    producer = start_sql(database_url, statements, tmp_path / "producer.sql")
    errors: list[BaseException] = []
    claimed: list[int] = []

    def run(name: str) -> None:
        engine = create_ledger_engine(database_url)
        worker = Ledger(engine, actor=name)
        try:
            while True:
                finished = producer.poll() is not None
                worker.drain_intake(chunk=500)
                batch = worker.claim_batch(50, lease_seconds=60, owner=name)
                for claim in batch:
                    worker.release(claim.recording_uuid, claim.lease_token, "test")
                claimed.append(len(batch))
                if finished:
                    return
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            engine.dispose()

    runs = [threading.Thread(target=run, args=(f"run-{n}",)) for n in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=600)
    assert producer.wait(timeout=60) == 0, producer.stderr.read() if producer.stderr else ""
    assert not errors, errors
    assert sum(claimed) > 0  # the runs claimed while the intake was being drained

    assert intake_left(ledger) == 0
    assert registered_per_recording(ledger) == dict.fromkeys(keys, 1)
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(recordings)).scalar_one() == (
            10_000
        )
    assert ledger.verify_chain().ok


@pytest.mark.postgres
def test_a_producer_role_can_insert_but_not_read_or_change_the_ledger(
    postgres_url: str,
) -> None:
    from tenios_io.ledger.schema import upgrade

    upgrade(postgres_url)
    role = f"producer_{uuid.uuid4().hex[:10]}"
    database = make_url(postgres_url).database
    admin = create_ledger_engine(postgres_url)
    ledger = Ledger(admin, actor="test-run")
    known = str(uuid.uuid4())
    ledger.register([NewRecording(known)])
    with admin.begin() as conn:
        # The README's lines, verbatim apart from the names.
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        conn.exec_driver_sql(f"GRANT INSERT ON recording_intake TO {role}")
    try:
        key = str(uuid.uuid4())
        ok = run_sql(postgres_url, [insert_values([(key, None, None, role)])], user=role)
        assert ok.returncode == 0, ok.stderr
        for denied in (
            "SELECT count(*) FROM recording_intake;",
            "SELECT count(*) FROM recordings;",
            f"UPDATE recordings SET state = 'archived' WHERE recording_uuid = '{known}';",
            f"INSERT INTO recordings (recording_uuid) VALUES ('{uuid.uuid4()}');",
            "DELETE FROM recording_intake;",
            "SELECT count(*) FROM custody_events;",
        ):
            refused = run_sql(postgres_url, [denied], user=role)
            assert refused.returncode != 0 and "permission denied" in refused.stderr, denied
        assert ledger.drain_intake().registered == 1
        assert ledger.get(key).state is State.PENDING
        assert ledger.get(known).state is State.PENDING
    finally:
        admin.dispose()
        cleanup = create_ledger_engine(postgres_url)
        with cleanup.begin() as conn:
            conn.exec_driver_sql(f"REVOKE ALL ON recording_intake FROM {role}")
            conn.exec_driver_sql(f'REVOKE ALL ON DATABASE "{database}" FROM {role}')
        cleanup.dispose()
        # Roles belong to the cluster: drop it once the database has no grant left to it.
        server = create_ledger_engine(postgres_url.rsplit("/", 1)[0] + "/postgres")
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        server.dispose()


def test_the_report_counts_recordings_without_recorded_at(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    from tenios_io.audit.report import build_report

    done = run_sql(
        database_url,
        [
            insert_values([(k, None, None, "pbx-7") for k in ids(2)]),
            insert_values([(ids(1)[0], None, "2019-05-01 10:00:00+00", "pbx-7")]),
        ],
    )
    assert done.returncode == 0, done.stderr
    ledger.drain_intake()

    report = build_report(ledger, tmp_path / "report")

    summary = json.loads(report.files["summary"].read_text())
    assert summary["recordings_in_period"] == 3
    assert summary["recordings_in_period_without_recorded_at"] == 2
    html = report.files["html"].read_text()
    assert "2 of 3 recordings in the period had no <code>recorded_at</code>" in html


def test_the_demos_producer_insert_is_drained(sqlite_url: str) -> None:
    from tenios_io.ledger.schema import upgrade
    from tenios_io.simulator.demo import hand_over_by_sql

    upgrade(sqlite_url)
    pairs = [(k, c) for k, c in zip(ids(3), ids(3), strict=True)]
    hand_over_by_sql(Path(make_url(sqlite_url).database or ""), pairs)
    engine = create_ledger_engine(sqlite_url)
    ledger = Ledger(engine, actor="demo-run")
    try:
        assert ledger.drain_intake().registered == 3
        for key, call in pairs:
            assert ledger.get(key).call_uuid == call
            details = json.loads(ledger.events(key)[0]["details"])
            assert details["producer"] == "demo-telephony-app"
    finally:
        engine.dispose()
