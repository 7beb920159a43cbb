from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tenios_io.run.archiver import Outcome, RecordingResult
from tenios_io.run.loop import RunSummary, split_claims


def summary() -> RunSummary:
    s = RunSummary(started_at=datetime(2026, 1, 1, tzinfo=UTC), started=0.0)
    s.add(
        [
            RecordingResult("a", Outcome.ARCHIVED, size=1000, source="api"),
            RecordingResult("b", Outcome.ARCHIVED, size=500, source="sftp:/drop/b.wav"),
            RecordingResult("c", Outcome.ALREADY_ARCHIVED, size=70, source="api"),
            RecordingResult("d", Outcome.RETRY, reason="503"),
        ]
    )
    s.finished = 2.0
    return s


def test_counts_bytes_sources_and_exit_code() -> None:
    s = summary()
    assert s.counts == {"archived": 2, "already_archived": 1, "retry": 1}
    assert s.bytes_archived == 1500 and s.per_source == {"api": 2, "sftp": 1}
    assert s.exit_code == 0 and s.processed == 4
    rows = {r["outcome"]: r for r in s.table()}
    assert rows["total"]["recordings"] == 4 and rows["throughput"]["recordings"] == "2.0/s"


def test_failed_or_conflict_make_exit_1_and_are_listed_with_reasons() -> None:
    s = summary()
    assert "No recording" in s.failures_markdown()
    s.add([RecordingResult("e", Outcome.CONFLICT, reason="other | bytes")])
    assert s.exit_code == 1
    md = s.failures_markdown()
    assert "`e`" in md and "other \\| bytes" in md
    s2 = summary()
    s2.add([RecordingResult("f", Outcome.MISSING, reason="404")])
    assert s2.exit_code == 0 and s2.to_dict()["problems"][0]["outcome"] == "missing"


def test_one_claim_for_every_free_slot_is_cut_into_batches() -> None:
    claims: list[Any] = list(range(80))
    assert [len(b) for b in split_claims(claims, 8, 10)] == [10] * 8
    assert [len(b) for b in split_claims(claims[:12], 3, 10)] == [10, 2]
    assert [len(b) for b in split_claims(claims[:2], 8, 10)] == [2]
    assert split_claims([], 8, 10) == []
    assert [x for b in split_claims(claims[:25], 3, 10) for x in b] == claims[:25]
    with pytest.raises(ValueError):
        split_claims(claims[:31], 3, 10)


def test_totals_count_recordings_not_attempts_and_retries_name_their_reason() -> None:
    """Issue 27: "retry 1, total 51" for 50 recordings; throughput for a run that
    archived nothing."""
    s = summary()
    s.add([RecordingResult("d", Outcome.ARCHIVED, size=10, source="api", released=True)])
    assert s.processed == 5 and s.recordings == 4
    rows = {r["outcome"]: r for r in s.table()}
    assert rows["total"]["recordings"] == 4 and rows["attempts"]["recordings"] == 5
    plain = s.to_dict()
    assert plain["recordings"] == 4 and plain["released_from_drop"] == 1
    assert plain["retry_reasons"] == {"503": 1}
    idle = RunSummary(started_at=datetime(2026, 1, 1, tzinfo=UTC), started=0.0)
    idle.add([RecordingResult("x", Outcome.RETRY, reason="not ready yet (404): RecordingNotFound")])
    idle.finished = 1.0
    rows = {r["outcome"]: r for r in idle.table()}
    assert "throughput" not in rows and "attempts" not in rows
    assert idle.to_dict()["retry_reasons"] == {"not ready yet (404)": 1}
