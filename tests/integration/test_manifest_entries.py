"""What a custody manifest says of a ledger, on a real SQLite file and PostgreSQL: each
line as the full recording row and the recording's stored custody events tell it
(read only in part since the manifest stopped re-reading whole rows; the bytes must
not change)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tenios_io.custody import chain
from tenios_io.ledger import Ledger, NewRecording, create_ledger_engine
from tenios_io.publish.manifests import manifest_body
from tenios_io.store.retention import iso


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test")
    engine.dispose()


def expected_line(ledger: Ledger, key: str, events: list[dict[str, object]]) -> bytes:
    """The line the manifest held when it was built from ``Ledger.get`` (the whole row)
    and every stored event up to ``archived``, hashed with chain.row_digest."""
    rec = ledger.get(key)
    names = [e["event"] for e in events]
    upto = len(names) - names[::-1].index("archived")
    line = {
        "recording_uuid": rec.recording_uuid,
        "bucket": rec.s3_bucket,
        "key": rec.s3_key,
        "version_id": rec.s3_version_id,
        "sha256": rec.sha256,
        "size": rec.size_bytes,
        "retention_mode": rec.retention_mode or "none",
        "retain_until": iso(rec.retain_until) if rec.retain_until else None,
        "legal_hold": rec.legal_hold,
        "archived_at": chain.format_time(rec.archived_at) if rec.archived_at else None,
        "events": [chain.row_digest(e) for e in events[:upto]],
    }
    text = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii") + b"\n"


def test_manifest_lines_are_the_rows_and_their_events(ledger: Ledger) -> None:
    keys = sorted(str(uuid.uuid4()) for _ in range(4))
    held, governed, plain, pending = keys
    ledger.register(
        [NewRecording(k, recorded_at=datetime(2026, 2, 3, tzinfo=UTC)) for k in keys[:3]]
    )
    ledger.annotate(
        held, "legal_hold", {"on": True, "note": "Müller"}, updates={"legal_hold": True}
    )
    claims = {c.recording_uuid: c for c in ledger.claim_batch(3, lease_seconds=60)}
    ledger.register([NewRecording(pending)])  # registered, never archived
    until = datetime(2036, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
    writes = []
    for key, mode in ((held, None), (governed, "governance"), (plain, None)):
        c = claims[key]
        updates = {
            "s3_bucket": "bucket",
            "s3_key": f"recordings/{c.recording_uuid}.wav",
            "s3_version_id": f"v-{c.recording_uuid[:4]}",
            "sha256": "ab" * 32,
            "size_bytes": 1234,
            "retention_mode": mode,
            "retain_until": until if mode else None,
        }
        events = [("fetched", {"source": "api", "size": 1234}), ("verified", {"ok": True})]
        writes.append(
            ledger.completed_write(
                c.recording_uuid, c.lease_token, updates, events, object_hold=key == held
            )
        )
    # The events up to the claim are on the chain, the outcomes' still queued: a manifest
    # names both (and not an event after `archived`).
    ledger.integrate_all()
    assert ledger.write_outcomes(writes).stale == {}
    assert ledger.queued_events() == 9
    archived = sorted(w.recording_uuid for w in writes)
    ledger.annotate(archived[0], "verified_again", {"ok": True})
    entries = ledger.manifest_entries([k.upper() for k in keys])  # any case; pending left out
    assert [e.recording_uuid for e in entries] == archived == sorted(keys[:3])
    body = manifest_body(entries)
    # Read the events only now (Ledger.events integrates what is queued).
    assert body == b"".join(expected_line(ledger, k, ledger.events(k)) for k in archived)
    lines = [json.loads(line) for line in body.splitlines()]
    assert {line["retention_mode"] for line in lines} == {"none", "governance"}
    assert {line["retain_until"] for line in lines} == {None, "2036-02-03T04:05:06Z"}
    # registered, (legal_hold,) claimed, fetched, verified, archived
    assert {line["recording_uuid"]: len(line["events"]) for line in lines} == {
        k: 6 if k == held else 5 for k in archived
    }


def test_no_archived_recording_no_entries(ledger: Ledger) -> None:
    key = str(uuid.uuid4())
    ledger.register([NewRecording(key)])
    assert ledger.manifest_entries([key]) == []
    assert ledger.manifest_entries([]) == []
