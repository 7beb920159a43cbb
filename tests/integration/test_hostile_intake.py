"""Trust boundaries at the intake and the import (issue 25, cases 1-3): a producer holds
INSERT on ``recording_intake`` and nothing else, and what it writes is hostile data.

On SQLite and the machine's PostgreSQL; the producer inserts with the database's own
client.  Each test failed on main: a 70 KB ``producer`` poisoned the custody log for good
(no checkpoint written again, while verify-chain said OK), an absolute ``sftp:`` hint was
fetched and deleted from outside the drop, and ``recorded_at`` of year 1 was archived with
no Object Lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from tenios_io.audit import write_checkpoint
from tenios_io.audit.report import build_report
from tenios_io.custody.chain import canonical_json, chain_hash
from tenios_io.custody.layout import event_entry
from tenios_io.exceptions import ChainBroken, ImportFileError
from tenios_io.ledger import Ledger, NewRecording, State
from tenios_io.ledger.importing import read_import_file
from tenios_io.ledger.tables import custody_events
from tests.fixtures.producer import insert_values, run_sql
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HUGE = "p" * 70_000


@pytest.fixture
def world(database_url: str, s3_client: S3Client, locked_bucket: str) -> Iterator[AuditWorld]:
    w = make_world(database_url, s3_client, locked_bucket, retention_mode="governance")
    yield w
    w.ledger.engine.dispose()


def reasons(ledger: Ledger) -> list[str]:
    return [row.reason or "" for row in ledger.intake_rows("rejected")]


# -- case 1: length limits; custody entries always fit the log ------------------------------


def test_an_over_long_producer_row_is_rejected_and_checkpoints_go_on(
    database_url: str, world: AuditWorld
) -> None:
    ledger = world.ledger
    good, huge, long_call = (str(uuid.uuid4()) for _ in range(3))
    done = run_sql(
        database_url,
        [
            insert_values([(huge, None, None, HUGE)]),
            insert_values([(long_call, "c" * 5000, None, "pbx")]),
            insert_values([(good, None, None, "pbx-7")]),
        ],
    )
    assert done.returncode == 0, done.stderr

    result = ledger.drain_intake()

    assert result.to_dict() == {"registered": 1, "known": 0, "rejected": 2}
    first, second = reasons(ledger)
    assert first.startswith("producer is 70,000 characters long (at most 200)")
    assert second.startswith("call_uuid is 5,000 characters long")
    assert len(first) < 200  # the reason quotes the value cut short
    head = ledger.chain_head().seq
    cp = write_checkpoint(ledger, world.store, actor="nightly")
    assert cp.last_seq == head and ledger.verify_chain().ok


def test_an_over_long_value_that_reaches_the_chain_is_logged_bounded(world: AuditWorld) -> None:
    # A path other than the intake (a sweep's path, an operator's reason …): the event is
    # bounded as it is sequenced, so the log can always hold it.
    ledger = world.ledger
    key = str(uuid.uuid4())
    ledger.register([NewRecording(key, producer=HUGE, source_path="d/" + "n" * 80_000)])
    ledger.annotate(key, "note", {"reason": "r" * 100_000, "by": "me"})
    ledger.annotate(key, "note", {"many": ["x" * 900] * 200})
    ledger.integrate_all()

    events = [e for e in world.event_rows() if e["recording_uuid"] == key]
    details = json.loads(events[0]["details"])
    assert details["producer"].startswith("p" * 200 + "… [70,000 characters, sha256 ")
    assert len(details["source_path"]) < 400
    note, many = (json.loads(e["details"]) for e in events[1:3])
    assert note["reason"].endswith(" characters, sha256 " + note["reason"][-65:-1] + "]")
    assert note["by"] == "me"
    assert set(many) == {"details_omitted"} and many["details_omitted"]["bytes"] > 180_000
    assert all(len(event_entry(e)) <= 65_535 for e in events)
    head = ledger.chain_head().seq
    cp = write_checkpoint(ledger, world.store, actor="nightly")
    assert cp.last_seq == head and ledger.verify_chain().ok


def test_a_chain_poisoned_by_an_older_version_fails_loudly(
    world: AuditWorld, tmp_path: Path
) -> None:
    # An event written before events were bounded: verify-chain, the report and the
    # checkpoint all say so, none with a traceback or "all checks passed".
    ledger = world.ledger
    world.archive(1)
    head = ledger.chain_head()
    details = canonical_json({"producer": HUGE})
    row = {
        "seq": head.seq + 1,
        "recording_uuid": None,
        "event": "registered",
        "actor": "old-version",
        "occurred_at": "2026-01-01T00:00:00.000000Z",
        "details": details,
        "prev_hash": head.hash,
    }
    row["hash"] = chain_hash(
        head.hash, head.seq + 1, None, "registered", "old-version", row["occurred_at"], details
    )
    with ledger.engine.begin() as conn:
        conn.execute(custody_events.insert().values(**row))

    report = ledger.verify_chain()
    assert not report.ok and report.first_broken_seq == head.seq + 1
    assert "over the log's limit of 65,535" in (report.problem or "")
    with pytest.raises(ChainBroken, match="65,535"):
        write_checkpoint(ledger, world.store, actor="nightly")
    summary = json.loads(build_report(ledger, tmp_path / "r").files["summary"].read_text())
    assert summary["all_checks_passed"] is False


# -- case 2: an sftp: hint never names a path outside the drop --------------------------------


def test_sftp_hints_outside_the_drop_are_rejected(database_url: str, world: AuditWorld) -> None:
    ledger = world.ledger
    keys = [str(uuid.uuid4()) for _ in range(6)]
    hints = [
        f"sftp:/absolute/path/outside/the/drop/{keys[0]}.wav",
        f"sftp:../{keys[1]}.wav",
        f"sftp:in/../../{keys[2]}.wav",
        f"sftp:in/./{keys[3]}.wav",
        f"sftp:in/\x1b[31m{keys[4]}.wav",
        f"sftp:in/{keys[5]}.wav",  # relative to the drop: fine
    ]
    statements = [
        f"INSERT INTO recording_intake (recording_uuid, source_hint) VALUES ('{key}', '{hint}');"
        for key, hint in zip(keys, hints, strict=True)
    ]
    done = run_sql(database_url, statements)
    assert done.returncode == 0, done.stderr

    result = ledger.drain_intake()

    assert result.to_dict() == {"registered": 1, "known": 0, "rejected": 5}
    why = reasons(ledger)
    assert "is absolute" in why[0]
    assert "contains '..'" in why[1] and "contains '..'" in why[2]
    assert "not a normalised path" in why[3] and "control character" in why[4]
    assert ledger.get(keys[5]).source_path == f"in/{keys[5]}.wav"


# -- case 3: recorded_at within a sane window -------------------------------------------------


def test_recorded_at_outside_the_window_is_rejected_by_the_intake(
    database_url: str, world: AuditWorld
) -> None:
    ledger = world.ledger
    ancient, before, good = (str(uuid.uuid4()) for _ in range(3))
    done = run_sql(
        database_url,
        [
            insert_values([(ancient, None, "0001-01-01T00:00:00Z", "pbx")]),
            insert_values([(before, None, "1989-12-31T23:59:59Z", "pbx")]),
            insert_values([(good, None, "1990-01-01T00:00:00Z", "pbx")]),
        ],
    )
    assert done.returncode == 0, done.stderr

    assert ledger.drain_intake().to_dict() == {"registered": 1, "known": 0, "rejected": 2}
    assert all("is before 1990-01-01" in why for why in reasons(ledger))
    assert ledger.get(good).state is State.PENDING


@pytest.mark.parametrize("when", ["0001-01-01", "1989-12-31T23:00:00Z", "2999-01-01"])
def test_ledger_import_refuses_recorded_at_outside_the_window(
    world: AuditWorld, tmp_path: Path, when: str
) -> None:
    path = tmp_path / "import.csv"
    path.write_text(
        f"recording_uuid,recorded_at\n{uuid.uuid4()},2020-01-01\n{uuid.uuid4()},{when}\n"
    )
    with pytest.raises(ImportFileError, match="line 3, column recorded_at") as raised:
        world.ledger.import_recordings(read_import_file(path))
    assert "nothing was imported" in str(raised.value)
    with world.ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM recordings")).scalar_one() == 0
    today = datetime.now(UTC).date().isoformat()
    path.write_text(f"recording_uuid,recorded_at\n{uuid.uuid4()},{today}\n")
    assert world.ledger.import_recordings(read_import_file(path)).added == 1
