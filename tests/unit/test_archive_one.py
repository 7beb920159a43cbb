"""archive_one's decisions with the in-memory fakes of tenios_io.testing for the source
and the store (a real SQLite ledger underneath: it is fast and the fencing is what
matters).  The fakes are held to the real ones' contract in
tests/integration/test_fakes_contract.py; the real peers are exercised in
tests/acceptance."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tenios_io.custody import chain
from tenios_io.exceptions import (
    AccessDenied,
    ApiUnavailable,
    ArchiveConflict,
    InvalidRequest,
    RecordingNotFound,
    SourceFileMissing,
    SourceUnavailable,
)
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.ledger.schema import upgrade
from tenios_io.recording.source import Fetched, FetchRequest, Sink
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.retry import RetryPolicy
from tenios_io.testing import FakeSource, MemoryStore, ProgressRecorder
from tests.fixtures.moto import sample_wav

WAV = sample_wav(144)  # a whole WAV: archive_one validates the container before upload
REC = "8101fcb3-3843-4db3-9829-f7ab586625fe"
OTHER = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"


def source(**kw: Any) -> FakeSource:
    """A source holding both test recordings."""
    return FakeSource({REC: WAV, OTHER: WAV}, **kw)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    upgrade(url)
    engine = create_ledger_engine(url)
    led = Ledger(engine, actor="unit")
    led.register([NewRecording(REC, recorded_at=datetime(2026, 2, 3, tzinfo=UTC))])
    yield led
    engine.dispose()


def archiver(
    ledger: Ledger, store: MemoryStore, *sources: FakeSource, tmp: Path, **kw: Any
) -> Archiver:
    return Archiver(
        ledger=ledger,
        store=store,
        sources=list(sources) or [source()],
        policy=RetryPolicy(max_attempts=2),
        lease_seconds=60,
        spool_dir=tmp,
        **kw,
    )


def claim(ledger: Ledger) -> Any:
    (c,) = ledger.claim_batch(1, lease_seconds=60)
    return c


def test_archives_records_events_and_removes_the_spool(ledger: Ledger, tmp_path: Path) -> None:
    store = MemoryStore()
    recorder = ProgressRecorder()
    work = archiver(ledger, store, tmp=tmp_path, progress=recorder)
    result = work.archive_one(claim(ledger))
    assert result.outcome is Outcome.ARCHIVED and result.size == len(WAV)
    rec = ledger.get(REC)
    assert rec.state is State.ARCHIVED and rec.s3_key == f"recordings/2026/02/03/{REC}.wav"
    assert rec.content_type == "audio/wav" and rec.retention_mode == "governance"
    events = ledger.events(REC)
    assert [e["event"] for e in events][2:] == [
        "fetched",
        "uploaded",
        "verified",
        "archived",
    ]
    # One write: the upload itself carries the custody facts (no sidecar afterwards).
    (call,) = store.calls
    assert call["fetched_at"] == json.loads(events[2]["details"])["fetched_at"]
    assert (call["recording_uuid"], call["source"]) == (REC, "api")
    assert call["audio_metadata"]["codec"] == "pcm"
    assert store.body(rec.s3_key) == WAV
    # Then the batch's custody manifest: one line naming the object and its events.
    ((key, body),) = store.documents.items()
    assert key.startswith("recordings/_custody/manifests/") and key.endswith("-000001.jsonl")
    (line,) = [json.loads(text) for text in body.decode().splitlines()]
    assert (line["recording_uuid"], line["key"], line["version_id"]) == (REC, rec.s3_key, "v1")
    assert line["events"] == [chain.row_digest(e) for e in events]
    assert ledger.manifests_pending() == []
    # The spool file is kept for the next recording to overwrite, until the archiver closes.
    assert len(list(tmp_path.glob("tenios-*.spool"))) == 1
    work.close()
    assert list(tmp_path.glob("tenios-*.spool")) == []
    assert recorder.bytes == len(WAV) and recorder.done == ["archived"]


@pytest.mark.parametrize(
    ("error", "state", "outcome"),
    [
        (ApiUnavailable("503"), State.PENDING, Outcome.RETRY),
        (InvalidRequest("400"), State.FAILED, Outcome.FAILED),
        (RecordingNotFound("404"), State.PENDING, Outcome.RETRY),
    ],
)
def test_source_errors_become_ledger_verdicts(
    ledger: Ledger, tmp_path: Path, error: Exception, state: State, outcome: Outcome
) -> None:
    store = MemoryStore()
    work = archiver(ledger, store, source(errors=[error]), tmp=tmp_path)
    result = work.archive_one(claim(ledger))
    assert result.outcome is outcome and ledger.get(REC).state is state
    work.close()
    assert store.calls == [] and list(tmp_path.glob("tenios-*.spool")) == []
    assert str(error) in (ledger.get(REC).last_error or "")


def test_access_denied_stops_the_run_and_gives_the_claim_back(
    ledger: Ledger, tmp_path: Path
) -> None:
    # On main a refused key failed the recording (terminal); now it is run-wide.
    work = archiver(ledger, MemoryStore(), source(errors=[AccessDenied("403")]), tmp=tmp_path)
    result = work.archive_one(claim(ledger))
    rec = ledger.get(REC)
    assert result.outcome is Outcome.RELEASED and (rec.state, rec.attempts) == (State.PENDING, 0)
    assert work.guard.stopped is not None and work.guard.stopped.exit_code == 2


def test_conflict_is_never_overwritten(ledger: Ledger, tmp_path: Path) -> None:
    store = MemoryStore(
        fail_with=[ArchiveConflict("other bytes", expected_sha256="a", found_sha256="b")]
    )
    result = archiver(ledger, store, tmp=tmp_path).archive_one(claim(ledger))
    assert result.outcome is Outcome.CONFLICT and ledger.get(REC).state is State.CONFLICT
    assert '"found_sha256":"b"' in ledger.events(REC)[-1]["details"]


def test_attempts_exhausted_fail(ledger: Ledger, tmp_path: Path) -> None:
    flaky = source(errors=[ApiUnavailable("503"), ApiUnavailable("503")])
    arch = archiver(ledger, MemoryStore(), flaky, tmp=tmp_path)
    assert arch.archive_one(claim(ledger)).outcome is Outcome.RETRY
    ledger._clock = lambda: datetime.now(UTC) + timedelta(hours=2)  # type: ignore[method-assign]
    result = arch.archive_one(claim(ledger))
    assert result.outcome is Outcome.FAILED and "gave up after 2 attempts" in (result.reason or "")


def test_sftp_first_then_api_when_the_file_is_gone_and_release_after_archive(
    ledger: Ledger, tmp_path: Path
) -> None:
    sftp = source(name="sftp", errors=[SourceFileMissing("gone")])
    api = source(name="api")
    result = archiver(ledger, MemoryStore(), sftp, api, tmp=tmp_path).archive_one(claim(ledger))
    assert result.outcome is Outcome.ARCHIVED and result.source == "api"
    assert api.released == [REC] and sftp.released == []


def test_a_failed_release_never_unarchives(ledger: Ledger, tmp_path: Path) -> None:
    sftp = source(name="sftp", release_error=SourceUnavailable("connection dropped"))
    result = archiver(ledger, MemoryStore(), sftp, tmp=tmp_path).archive_one(claim(ledger))
    assert result.outcome is Outcome.ARCHIVED and ledger.get(REC).state is State.ARCHIVED
    assert ledger.events(REC)[-1]["event"] == "release_failed"


def test_budget_spent_releases_unworked_claims(ledger: Ledger, tmp_path: Path) -> None:
    arch = archiver(ledger, MemoryStore(), tmp=tmp_path)
    (result,) = arch.archive_batch([claim(ledger)], deadline=0.0)
    assert result.outcome is Outcome.RELEASED
    rec = ledger.get(REC)
    assert rec.state is State.PENDING and rec.attempts == 0


def test_a_hold_placed_while_claimed_is_on_the_object_before_archived(
    ledger: Ledger, tmp_path: Path
) -> None:
    # Changed with the batched outcome write: the hold is no longer re-read before the
    # upload (a hold placed after that read was missed); it is settled under the row
    # lock when the outcome is written, so no hold placed in flight can be missed.
    store = MemoryStore()
    c = claim(ledger)
    assert c.recording.legal_hold is False
    ledger.annotate(REC, "legal_hold", {"on": True}, updates={"legal_hold": True})
    result = archiver(ledger, store, tmp=tmp_path).archive_one(c)
    assert result.outcome is Outcome.ARCHIVED
    assert [c["legal_hold"] for c in store.calls] == [False]  # uploaded as claimed ...
    key = f"recordings/2026/02/03/{REC}.wav"
    assert store.holds_set == [(key, "v1", True)]  # ... then held
    held = store.head(key)
    assert held is not None and held.legal_hold
    events = [e["event"] for e in ledger.events(REC)]
    assert events.index("legal_hold_applied") < events.index("archived")


def test_a_hold_known_at_claim_goes_with_the_upload(ledger: Ledger, tmp_path: Path) -> None:
    ledger.annotate(REC, "legal_hold", {"on": True}, updates={"legal_hold": True})
    store = MemoryStore()
    archiver(ledger, store, tmp=tmp_path).archive_one(claim(ledger))
    assert [c["legal_hold"] for c in store.calls] == [True] and store.holds_set == []


def test_a_rerun_batch_skips_what_it_already_finished(ledger: Ledger, tmp_path: Path) -> None:
    store = MemoryStore()
    arch = archiver(ledger, store, tmp=tmp_path)
    batch = [claim(ledger)]
    assert [r.outcome for r in arch.archive_batch(batch)] == [Outcome.ARCHIVED]
    again = arch.archive_batch(batch)  # as when Prefect retries a crashed batch
    assert [r.outcome for r in again] == [Outcome.LOST_LEASE]
    assert len(store.calls) == 1


@dataclass
class TimedSource(FakeSource):
    """A source whose every fetch takes ``seconds`` of the archiver's clock, and which
    notes, as each fetch starts, which recordings the ledger already calls archived."""

    recordings: dict[str, bytes] = field(default_factory=lambda: {REC: WAV, OTHER: WAV})
    clock: list[float] = field(default_factory=lambda: [0.0])
    seconds: float = 0.0
    ledger: Ledger | None = None
    archived_at_fetch: list[set[str]] = field(default_factory=list)

    def fetch(self, request: FetchRequest, sink: Sink) -> Fetched:
        assert self.ledger is not None
        rows = self.ledger.rows_for([REC, OTHER])
        self.archived_at_fetch.append(
            {key for key, row in rows.items() if row.state is State.ARCHIVED}
        )
        self.clock[0] += self.seconds
        return super().fetch(request, sink)


@pytest.mark.parametrize(("seconds", "separate_writes"), [(0.01, False), (2.0, True)])
def test_outcomes_are_written_together_unless_a_recording_took_long(
    ledger: Ledger, tmp_path: Path, seconds: float, separate_writes: bool
) -> None:
    ledger.register([NewRecording(OTHER)])
    source = TimedSource(seconds=seconds, ledger=ledger)
    arch = Archiver(
        ledger=ledger,
        store=MemoryStore(),
        sources=[source],
        policy=RetryPolicy(max_attempts=2),
        lease_seconds=60,
        spool_dir=tmp_path,
        clock=lambda: source.clock[0],
    )
    claims = ledger.claim_batch(2, lease_seconds=60)
    results = arch.archive_batch(claims)
    assert {r.outcome for r in results} == {Outcome.ARCHIVED}
    first = claims[0].recording_uuid
    # Fast recordings share one write at the end; one that took longer than
    # FLUSH_SECONDS is archived in the ledger before the next one is fetched.
    assert source.archived_at_fetch == [set(), {first} if separate_writes else set()]


def test_recordings_after_the_first_reuse_its_spool_file(ledger: Ledger, tmp_path: Path) -> None:
    """Each recording is hashed and uploaded from its own bytes, though the spool file
    is the previous recording's, overwritten (a shorter one after a longer one)."""
    longer, shorter = sample_wav(4000, seed=1), sample_wav(300, seed=2)
    store = MemoryStore()
    work = archiver(ledger, store, FakeSource({REC: longer, OTHER: shorter}), tmp=tmp_path)
    assert work.archive_one(claim(ledger)).outcome is Outcome.ARCHIVED  # REC, the longer
    ledger.register([NewRecording(OTHER, recorded_at=datetime(2026, 2, 3, tzinfo=UTC))])
    assert work.archive_one(claim(ledger)).outcome is Outcome.ARCHIVED
    for uuid, body in ((REC, longer), (OTHER, shorter)):
        rec = ledger.get(uuid)
        assert rec.s3_key is not None and store.body(rec.s3_key) == body
        assert (rec.sha256, rec.size_bytes) == (hashlib.sha256(body).hexdigest(), len(body))
    assert len(list(tmp_path.glob("tenios-*.spool"))) == 1
    work.close()
    assert list(tmp_path.glob("tenios-*.spool")) == []
