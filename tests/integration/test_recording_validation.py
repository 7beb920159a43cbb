"""Never archive what is not the whole recording (issue 11, found on main).

Each wrong body comes from the simulator over real HTTP, and goes through the real
archiver into a moto bucket and a real ledger.  On main each of these ended
``archived``: a close-delimited half recording, a JSON error document on a 200, a
WAV whose header promises more than it holds.  Now each is refused before upload
(retried, then ``failed`` with the reason), no object is written, and a
close-delimited body the container proves whole is archived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tenios_io.api import ApiSource
from tenios_io.ledger import Ledger, NewRecording, State, create_ledger_engine
from tenios_io.run.archiver import Archiver, Outcome
from tenios_io.run.retry import RetryPolicy
from tenios_io.simulator import Simulator, running_simulator
from tenios_io.store import ArchiveStore
from tests.fixtures.simulator import SIM_ACCESS_KEY, client_for


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, actor="test")
    engine.dispose()


def _run(
    ledger: Ledger, store: ArchiveStore, fault: str, *, max_attempts: int = 1
) -> tuple[Simulator, str, Outcome, Any]:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=5)
    uuid = sim.add_recording(seconds=3.0, channels=2, faults=[fault])
    ledger.register([NewRecording(uuid, call_uuid=sim.recording(uuid).call_uuid)])
    with running_simulator(sim) as server:
        client, http = client_for(server.url, max_attempts=1)
        with http:
            archiver = Archiver(
                ledger=ledger,
                store=store,
                sources=[ApiSource(client)],
                policy=RetryPolicy(max_attempts=max_attempts),
                lease_seconds=60,
            )
            [result] = archiver.archive_batch(ledger.claim_batch(1, lease_seconds=60))
    return sim, uuid, result.outcome, result


def _objects(s3: Any, bucket: str) -> list[str]:
    listed = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    return [v["Key"] for v in listed if "/_custody/" not in v["Key"]]


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("cut", "WAV header says"),
        ("json200", "a JSON document"),
        ("html200", "an HTML/XML document"),
        ("shortwav", "WAV header says"),
    ],
)
def test_a_body_that_is_not_the_whole_recording_is_never_archived(
    ledger: Ledger, make_store: Any, plain_bucket: str, s3_client: Any, fault: str, why: str
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    _, uuid, outcome, result = _run(ledger, store, fault)
    rec = ledger.get(uuid)
    assert outcome is Outcome.FAILED, result
    assert rec.state is State.FAILED and why in (rec.last_error or "")
    assert "did not deliver the whole recording" in (rec.last_error or "")
    assert rec.sha256 is None and _objects(s3_client, plain_bucket) == []
    failed = [e for e in ledger.events(uuid) if e["event"] == "failed"]
    assert json.loads(failed[-1]["details"])["error_type"] == "RecordingInvalid"


def test_an_incomplete_body_is_retried_not_failed_while_attempts_remain(
    ledger: Ledger, make_store: Any, plain_bucket: str, s3_client: Any
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    _, uuid, outcome, _ = _run(ledger, store, "cut", max_attempts=3)
    assert outcome is Outcome.RETRY
    assert ledger.get(uuid).state is State.PENDING
    assert _objects(s3_client, plain_bucket) == []


def test_a_close_delimited_body_the_container_proves_whole_is_archived_with_its_facts(
    ledger: Ledger, make_store: Any, plain_bucket: str, s3_client: Any
) -> None:
    store = make_store(plain_bucket, retention_mode="none")
    sim, uuid, outcome, result = _run(ledger, store, "close")
    assert outcome is Outcome.ARCHIVED, result
    rec = ledger.get(uuid)
    assert rec.sha256 == sim.expected_sha256(uuid)
    assert (rec.codec, rec.channels, rec.sample_rate) == ("pcm", 2, 8000)
    assert rec.duration_seconds == pytest.approx(3.0)
    meta = s3_client.head_object(Bucket=plain_bucket, Key=rec.s3_key)["Metadata"]
    assert meta["channels"] == "2" and meta["duration-seconds"] == "3.000"
    fetched = [json.loads(e["details"]) for e in ledger.events(uuid) if e["event"] == "fetched"]
    assert fetched[-1]["codec"] == "pcm" and fetched[-1]["duration_seconds"] == 3.0


@pytest.mark.parametrize(("fault", "part"), [("close", 1.0), ("cut", 0.5)])
def test_the_simulator_sends_close_delimited_bodies(fault: str, part: float) -> None:
    sim = Simulator(access_key=SIM_ACCESS_KEY, seed=6)
    uuid = sim.add_recording(seconds=2.0, faults=[fault])
    with running_simulator(sim) as server, httpx.Client(base_url=server.url) as http:
        body = {"access_key": SIM_ACCESS_KEY, "recording_uuid": uuid}
        with http.stream("POST", "record-call/retrieve", json=body) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            assert "transfer-encoding" not in response.headers
            data = response.read()
    assert data == sim.expected_bytes(uuid)[: int(sim.expected_size(uuid) * part)]
