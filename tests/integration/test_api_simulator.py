"""TeniosClient against the simulator over real HTTP: every status and every fault.

Each test ends with the exact bytes (SHA-256) or the right error class.
"""

from __future__ import annotations

import hashlib
import io
import socket
from collections import Counter
from collections.abc import Callable

import pytest

from tenios_io.api import ApiSource
from tenios_io.exceptions import (
    AccessDenied,
    ApiUnavailable,
    InvalidRequest,
    RecordingNotFound,
    TruncatedBody,
)
from tenios_io.recording.source import FetchRequest
from tenios_io.simulator import FaultPlan, RunningSimulator, Simulator, running_simulator
from tests.fixtures.simulator import SimClient, client_for

CALL = "e3163745-1fbe-4b28-bf58-6e6030ca8ace"


def sha256(sink: io.BytesIO) -> str:
    return hashlib.sha256(sink.getvalue()).hexdigest()


def retrieve(client: SimClient, recording_uuid: str) -> io.BytesIO:
    sink = io.BytesIO()
    client.retrieve_recording(recording_uuid, sink)
    return sink


def outcomes(sim: Simulator, endpoint: str = "retrieve") -> list[str]:
    return [r.fault for r in sim.requests if r.endpoint == endpoint]


# -- the documented behaviour -----------------------------------------------------------------


def test_start_stop_retrieve_round_trip(tenios_client: SimClient, simulator: Simulator) -> None:
    recording_uuid = tenios_client.start_recording(CALL, record_caller=False)
    tenios_client.stop_recording(recording_uuid, call_uuid=CALL)

    sink = io.BytesIO()
    result = tenios_client.retrieve_recording(recording_uuid, sink)

    assert result.size == simulator.expected_size(recording_uuid)
    assert result.content_type == "application/octet-stream; charset=UTF-8"
    assert sha256(sink) == simulator.expected_sha256(recording_uuid)
    assert simulator.recording(recording_uuid).call_uuid == CALL
    assert tenios_client.sleeps == []


def test_api_source_fetches_exact_bytes(tenios_client: SimClient, simulator: Simulator) -> None:
    recording_uuid = simulator.add_recording(seconds=12, channels=2)
    sink = io.BytesIO()

    fetched = ApiSource(tenios_client).fetch(FetchRequest(recording_uuid), sink)

    assert fetched.source == "api"
    assert fetched.size == simulator.expected_size(recording_uuid) == len(sink.getvalue())
    assert sink.getvalue() == simulator.expected_bytes(recording_uuid)


def test_wrong_key_is_access_denied_without_retries(
    simulator_server: RunningSimulator, simulator: Simulator
) -> None:
    recording_uuid = simulator.add_recording(seconds=1)
    client, http = client_for(simulator_server.url, "not-the-key")
    with http, pytest.raises(AccessDenied, match="TENIOS_ACCESS_KEY"):
        retrieve(client, recording_uuid)
    assert len(simulator.requests) == 1


def test_malformed_uuid_is_invalid_request_naming_the_field(tenios_client: SimClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        tenios_client.start_recording("e3163745")
    assert caught.value.fields == ["call_uuid"]


def test_stop_with_the_wrong_call_is_invalid_request(
    tenios_client: SimClient, simulator: Simulator
) -> None:
    recording_uuid = simulator.add_recording(ready=False, seconds=1)
    with pytest.raises(InvalidRequest) as caught:
        tenios_client.stop_recording(recording_uuid, call_uuid=CALL)
    assert caught.value.fields == ["call_uuid"]
    assert caught.value.recording_uuid == recording_uuid


def test_unknown_recording_is_not_found(tenios_client: SimClient) -> None:
    unknown = "8101fcb3-3843-4db3-9829-f7ab586625fe"
    with pytest.raises(RecordingNotFound) as caught:
        retrieve(tenios_client, unknown)
    assert caught.value.recording_uuid == unknown
    with pytest.raises(RecordingNotFound):
        tenios_client.stop_recording(unknown)


def test_not_ready_is_not_found_until_it_is_ready(make_simulator: Callable[..., Simulator]) -> None:
    now = [1_700_000_000.0]
    sim = make_simulator(clock=lambda: now[0], faults=FaultPlan(not_ready=30))
    with running_simulator(sim) as running:
        client, http = client_for(running.url)
        with http:
            recording_uuid = client.start_recording(CALL)
            with pytest.raises(RecordingNotFound):  # still recording
                retrieve(client, recording_uuid)
            client.stop_recording(recording_uuid)
            with pytest.raises(RecordingNotFound):  # stopped, not delivered yet
                retrieve(client, recording_uuid)
            now[0] += 30
            assert sha256(retrieve(client, recording_uuid)) == sim.expected_sha256(recording_uuid)


# -- status faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["500", "502", "503", "504", "429", "408"])
def test_transient_status_is_retried_to_the_exact_bytes(
    tenios_client: SimClient, simulator: Simulator, status: str
) -> None:
    recording_uuid = simulator.add_recording(seconds=3, faults=[status, status])

    sink = retrieve(tenios_client, recording_uuid)

    assert sha256(sink) == simulator.expected_sha256(recording_uuid)
    assert outcomes(simulator) == [status, status, "ok"]
    assert len(tenios_client.sleeps) == 2


def test_retry_after_is_honoured(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(faults=FaultPlan(retry_after=4))
    recording_uuid = sim.add_recording(seconds=2, faults=["429", "503", "500"])
    with running_simulator(sim) as running:
        client, http = client_for(running.url, backoff_base=0.5)
        with http:
            sink = retrieve(client, recording_uuid)

    assert sha256(sink) == sim.expected_sha256(recording_uuid)
    assert client.sleeps[:2] == [4.0, 4.0]  # Retry-After of the 429 and the 503
    assert 0 <= client.sleeps[2] <= 2.0  # the 500 had none: jittered backoff (3rd try)


def test_retry_after_is_capped_by_backoff_max(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(faults=FaultPlan(retry_after=3600))
    recording_uuid = sim.add_recording(seconds=1, faults=["429"])
    with running_simulator(sim) as running:
        client, http = client_for(running.url, backoff_max=5.0)
        with http:
            retrieve(client, recording_uuid)
    assert client.sleeps == [5.0]


def test_persistent_503_ends_in_api_unavailable(
    simulator_server: RunningSimulator, simulator: Simulator
) -> None:
    recording_uuid = simulator.add_recording(seconds=1, faults=["503"] * 3)
    client, http = client_for(simulator_server.url, max_attempts=3)
    with http, pytest.raises(ApiUnavailable) as caught:
        retrieve(client, recording_uuid)
    assert caught.value.status_code == 503
    assert caught.value.retry_after == 1.0
    assert caught.value.recording_uuid == recording_uuid
    assert outcomes(simulator) == ["503"] * 3


def test_stop_is_retried_through_faults(tenios_client: SimClient, simulator: Simulator) -> None:
    recording_uuid = simulator.add_recording(ready=False, seconds=1, faults=["500", "reset"])
    tenios_client.stop_recording(recording_uuid)
    assert outcomes(simulator, "stop") == ["500", "reset", "ok"]
    assert sha256(retrieve(tenios_client, recording_uuid)) == simulator.expected_sha256(
        recording_uuid
    )


def test_start_is_retried_after_503_but_not_after_a_lost_answer(
    tenios_client: SimClient, simulator: Simulator
) -> None:
    simulator.schedule_faults("503", "429")
    first = tenios_client.start_recording(CALL)
    assert outcomes(simulator, "start") == ["503", "429", "ok"]

    simulator.schedule_faults("reset")
    with pytest.raises(ApiUnavailable):
        tenios_client.start_recording(CALL)
    # The server did start a second recording; only the answer was lost. Not retrying
    # means no third one: the operator sees the error and decides.
    assert outcomes(simulator, "start") == ["503", "429", "ok", "reset"]
    assert len(simulator.catalogue) == 2
    assert first in simulator.catalogue.uuids()


# -- broken bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_broken_body_is_retried_to_the_exact_bytes(
    tenios_client: SimClient, simulator: Simulator, fault: str
) -> None:
    recording_uuid = simulator.add_recording(seconds=90, channels=2, faults=[fault, fault])

    sink = io.BytesIO()
    result = tenios_client.retrieve_recording(recording_uuid, sink)

    assert result.size == simulator.expected_size(recording_uuid) == len(sink.getvalue())
    assert sha256(sink) == simulator.expected_sha256(recording_uuid)
    assert outcomes(simulator) == [fault, fault, "ok"]


def test_truncated_every_time_is_truncated_body(
    simulator_server: RunningSimulator, simulator: Simulator
) -> None:
    recording_uuid = simulator.add_recording(seconds=10, faults=["truncate"] * 2)
    client, http = client_for(simulator_server.url, max_attempts=2)
    with http, pytest.raises(TruncatedBody) as caught:
        retrieve(client, recording_uuid)
    size = simulator.expected_size(recording_uuid)
    assert f"{size // 2} of {size} bytes" in str(caught.value)
    assert caught.value.recording_uuid == recording_uuid


def test_reset_every_time_is_api_unavailable(
    simulator_server: RunningSimulator, simulator: Simulator
) -> None:
    recording_uuid = simulator.add_recording(seconds=10, faults=["reset"] * 2)
    client, http = client_for(simulator_server.url, max_attempts=2)
    with http, pytest.raises(ApiUnavailable) as caught:
        retrieve(client, recording_uuid)
    assert caught.value.recording_uuid == recording_uuid


# -- latency ----------------------------------------------------------------------------------


def test_slow_answer_beyond_the_read_timeout_is_retried(
    make_simulator: Callable[..., Simulator],
) -> None:
    sim = make_simulator()  # no latency configured: "slow" waits 1 s
    recording_uuid = sim.add_recording(seconds=2, faults=["slow"])
    with running_simulator(sim) as running:
        client, http = client_for(running.url, read_timeout=0.3)
        with http:
            sink = retrieve(client, recording_uuid)
    assert sha256(sink) == sim.expected_sha256(recording_uuid)
    assert len(client.sleeps) == 1
    assert sorted(outcomes(sim)) == ["ok", "slow"]  # the slow one answered into the void


def test_always_too_slow_is_api_unavailable(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator()
    recording_uuid = sim.add_recording(seconds=1, faults=["slow", "slow"])
    with running_simulator(sim) as running:
        client, http = client_for(running.url, read_timeout=0.2, max_attempts=2)
        with http, pytest.raises(ApiUnavailable, match="ReadTimeout"):
            retrieve(client, recording_uuid)


def test_latency_within_the_timeout_changes_nothing(
    make_simulator: Callable[..., Simulator],
) -> None:
    sim = make_simulator(faults=FaultPlan(latency=0.05))
    uuids = sim.seed(5, seconds=1)
    with running_simulator(sim) as running:
        client, http = client_for(running.url)
        with http:
            digests = [sha256(retrieve(client, u)) for u in uuids]
    assert digests == [sim.expected_sha256(u) for u in uuids]
    assert client.sleeps == []


# -- everything at once -----------------------------------------------------------------------


def test_a_faulty_run_still_gets_every_recording_exactly(
    make_simulator: Callable[..., Simulator],
) -> None:
    plan = FaultPlan.parse("500=0.1,503=0.1,429=0.1,retry-after=0,truncate=0.1,reset=0.1")
    sim = make_simulator(faults=plan, seed=11)
    uuids = sim.seed(25, seconds=4)
    with running_simulator(sim) as running:
        client, http = client_for(running.url, max_attempts=15)
        with http:
            digests = {u: sha256(retrieve(client, u)) for u in uuids}

    assert digests == {u: sim.expected_sha256(u) for u in uuids}
    seen = Counter(outcomes(sim))
    assert {"500", "503", "429", "truncate", "reset", "ok"} <= set(seen)
    assert seen["ok"] == 25


def test_no_server_is_api_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, http = client_for(f"http://127.0.0.1:{port}", max_attempts=3)
    with http, pytest.raises(ApiUnavailable, match="ConnectError"):
        client.stop_recording("8101fcb3-3843-4db3-9829-f7ab586625fe")
    assert len(client.sleeps) == 2
