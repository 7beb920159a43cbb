"""The simulator over real HTTP, checked against the API document (plain httpx, no client)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenios_io.api import make_http_client
from tenios_io.simulator import FaultPlan, RunningSimulator, Simulator, running_simulator
from tests.fixtures.simulator import SIM_ACCESS_KEY

DOC_KEY = "XXXXX-XXXX-XXXXXX"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
BAD_CREDENTIALS = {
    "error_code": "BAD_CREDENTIALS",
    "error_message": "Bad credentials",
    "fields": [],
}


def invalid(*fields: str) -> dict[str, Any]:
    return {
        "error_code": "INVALID_VALUE",
        "error_message": "Invalid parameter type or format",
        "fields": list(fields),
    }


@pytest.fixture
def doc_sim(make_simulator: Callable[..., Simulator]) -> Iterator[tuple[Simulator, httpx.Client]]:
    """A simulator with the document's key and its stop/retrieve example recording."""
    sim = make_simulator(access_key=DOC_KEY)
    sim.add_recording(
        "1f92df20-f643-4105-bdbf-104c98aba611",
        "e3163745-1fbe-4b28-bf58-6e6030ca8ace",
        seconds=3,
        ready=False,
    )
    with running_simulator(sim) as running, make_http_client(running.url) as http:
        yield sim, http


# -- the seed document's examples, replayed ---------------------------------------------------


def test_doc_start_example(doc_sim: tuple[Simulator, httpx.Client]) -> None:
    _, http = doc_sim
    response = http.post(
        "/record-call/start",
        json={"access_key": DOC_KEY, "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace"},
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["recording_uuid"]
    assert UUID.fullmatch(body["recording_uuid"])


def test_doc_start_example_with_flags(doc_sim: tuple[Simulator, httpx.Client]) -> None:
    sim, http = doc_sim
    response = http.post(
        "/record-call/start",
        json={
            "access_key": DOC_KEY,
            "call_uuid": "1f9ff5f2-06a6-4d71-bc6a-3dd32b36f84f",
            "record_caller": False,
            "record_callee": True,
        },
    )
    assert response.status_code == 200
    recording = sim.recording(response.json()["recording_uuid"])
    assert recording.call_uuid == "1f9ff5f2-06a6-4d71-bc6a-3dd32b36f84f"
    assert recording.audio.channels == 1  # only the callee: mono


def test_doc_stop_then_retrieve_example(doc_sim: tuple[Simulator, httpx.Client]) -> None:
    sim, http = doc_sim
    rec = "1f92df20-f643-4105-bdbf-104c98aba611"
    retrieve = {"access_key": DOC_KEY, "recording_uuid": rec}

    assert http.post("/record-call/retrieve", json=retrieve).status_code == 404  # still recording

    stop = http.post(
        "/record-call/stop",
        json={
            "access_key": DOC_KEY,
            "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace",
            "recording_uuid": rec,
        },
    )
    assert stop.status_code == 200
    assert stop.json() == {"success": "true"}

    response = http.post("/record-call/retrieve", json=retrieve)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream; charset=UTF-8"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content[:4] == b"RIFF"
    assert hashlib.sha256(response.content).hexdigest() == sim.expected_sha256(rec)


def test_doc_retrieve_unknown_but_well_formed_is_404(
    doc_sim: tuple[Simulator, httpx.Client],
) -> None:
    _, http = doc_sim
    response = http.post(
        "/record-call/retrieve",
        json={"access_key": DOC_KEY, "recording_uuid": "8101fcb3-3843-4db3-9829-f7ab586625fe"},
    )
    assert response.status_code == 404


# -- the general rules ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningSimulator]:
    """One server for the stateless checks below (each server costs ~0.1 s to stop)."""
    with running_simulator(Simulator(access_key=SIM_ACCESS_KEY)) as running:
        yield running


@pytest.fixture
def http(shared_server: RunningSimulator) -> Iterator[httpx.Client]:
    with make_http_client(shared_server.url) as client:
        yield client


@pytest.fixture
def sim_http(simulator_server: RunningSimulator) -> Iterator[httpx.Client]:
    """A client of this test's own simulator (``simulator_server``)."""
    with make_http_client(simulator_server.url) as client:
        yield client


@pytest.mark.parametrize("endpoint", ["start", "stop", "retrieve"])
@pytest.mark.parametrize("key", [None, "wrong", 12345, ""])
def test_wrong_or_missing_key_is_403_bad_credentials(
    http: httpx.Client, endpoint: str, key: object
) -> None:
    body: dict[str, object] = {
        "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace",
        "recording_uuid": "1f92df20-f643-4105-bdbf-104c98aba611",
    }
    if key is not None:
        body["access_key"] = key
    response = http.post(f"/record-call/{endpoint}", json=body)
    assert response.status_code == 403
    assert response.json() == BAD_CREDENTIALS


@pytest.mark.parametrize("endpoint", ["start", "stop", "retrieve"])
@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bad_json_is_400(http: httpx.Client, endpoint: str, content: bytes) -> None:
    response = http.post(
        f"/record-call/{endpoint}", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_VALUE"
    assert response.json()["fields"] == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["call_uuid"]),
        ({"call_uuid": "e3163745"}, ["call_uuid"]),
        ({"call_uuid": 42}, ["call_uuid"]),
        ({"call_uuid": None}, ["call_uuid"]),
        ({"call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8acez"}, ["call_uuid"]),
        (
            {"call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace", "record_caller": "yes"},
            ["record_caller"],
        ),
        (
            {"call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace", "record_callee": 1},
            ["record_callee"],
        ),
        (
            {"call_uuid": "x", "record_caller": None, "record_callee": []},
            ["call_uuid", "record_caller", "record_callee"],
        ),
        (
            {
                "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace",
                "record_caller": False,
                "record_callee": "false",
            },
            ["record_caller", "record_callee"],
        ),
    ],
)
def test_start_validation(
    http: httpx.Client, shared_server: RunningSimulator, body: dict[str, Any], fields: list[str]
) -> None:
    response = http.post(
        "/record-call/start", json={"access_key": shared_server.access_key, **body}
    )
    assert response.status_code == 400
    assert response.json() == invalid(*fields)


@pytest.mark.parametrize(
    ("caller", "callee", "channels"),
    [("true", "false", 1), ("false", "TRUE", 1), (True, "true", 2), ("True", True, 2)],
)
def test_start_accepts_booleans_as_strings(
    http: httpx.Client,
    shared_server: RunningSimulator,
    caller: object,
    callee: object,
    channels: int,
) -> None:
    response = http.post(
        "/record-call/start",
        json={
            "access_key": shared_server.access_key,
            "call_uuid": "E3163745-1FBE-4B28-BF58-6E6030CA8ACE",
            "record_caller": caller,
            "record_callee": callee,
        },
    )
    assert response.status_code == 200
    assert shared_server.sim.recording(response.json()["recording_uuid"]).audio.channels == channels


def test_stop_validation_and_unknown_recordings(
    sim_http: httpx.Client, simulator_server: RunningSimulator
) -> None:
    sim, key = simulator_server.sim, simulator_server.access_key
    rec = sim.add_recording(call_uuid="e3163745-1fbe-4b28-bf58-6e6030ca8ace", ready=False)

    def stop(**body: Any) -> httpx.Response:
        return sim_http.post("/record-call/stop", json={"access_key": key, **body})

    assert stop().json() == invalid("recording_uuid")
    assert stop(recording_uuid="abc", call_uuid="def").json() == invalid(
        "recording_uuid", "call_uuid"
    )
    assert stop(recording_uuid=rec, call_uuid=None).json() == invalid("call_uuid")
    wrong_call = stop(recording_uuid=rec, call_uuid="1f9ff5f2-06a6-4d71-bc6a-3dd32b36f84f")
    assert (wrong_call.status_code, wrong_call.json()) == (400, invalid("call_uuid"))
    unknown = stop(recording_uuid="8101fcb3-3843-4db3-9829-f7ab586625fe")
    assert unknown.status_code == 404

    assert stop(recording_uuid=rec.upper()).json() == {"success": "true"}
    assert stop(recording_uuid=rec).json() == {"success": "true"}  # again: still fine


def test_retrieve_validation(http: httpx.Client, shared_server: RunningSimulator) -> None:
    key = shared_server.access_key
    for bad in (None, 7, "1f92df20", ""):
        response = http.post(
            "/record-call/retrieve", json={"access_key": key, "recording_uuid": bad}
        )
        assert (response.status_code, response.json()) == (400, invalid("recording_uuid"))
    missing = http.post("/record-call/retrieve", json={"access_key": key})
    assert missing.json() == invalid("recording_uuid")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/record-call/pause"),
        ("POST", "/"),
        ("POST", "/record-call/start/"),
        ("GET", "/record-call/start"),
        ("PUT", "/record-call/stop"),
        ("GET", "/record-call/retrieve"),
        ("DELETE", "/cdrs/retrieve"),
    ],
)
def test_unknown_endpoints_and_methods_are_404(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json={})
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


def test_started_recording_is_retrievable_after_stop(
    sim_http: httpx.Client, simulator_server: RunningSimulator
) -> None:
    key, sim = simulator_server.access_key, simulator_server.sim
    rec = sim_http.post(
        "/record-call/start",
        json={"access_key": key, "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace"},
    ).json()["recording_uuid"]
    retrieve = {"access_key": key, "recording_uuid": rec}

    assert sim_http.post("/record-call/retrieve", json=retrieve).status_code == 404
    assert (
        sim_http.post(
            "/record-call/stop", json={"access_key": key, "recording_uuid": rec}
        ).status_code
        == 200
    )
    response = sim_http.post("/record-call/retrieve", json=retrieve)

    assert response.status_code == 200
    assert sim.recording(rec).audio.channels == 2
    assert hashlib.sha256(response.content).hexdigest() == sim.expected_sha256(rec)


def test_not_ready_for_a_while_after_stop(make_simulator: Callable[..., Simulator]) -> None:
    now = [1_700_000_000.0]
    sim = make_simulator(clock=lambda: now[0], faults=FaultPlan(not_ready=30))
    rec = sim.add_recording(ready=False, seconds=1)
    with running_simulator(sim) as running, make_http_client(running.url) as http:
        body = {"access_key": running.access_key, "recording_uuid": rec}
        assert http.post("/record-call/stop", json=body).status_code == 200
        now[0] += 29.9
        assert http.post("/record-call/retrieve", json=body).status_code == 404
        now[0] += 0.1
        assert http.post("/record-call/retrieve", json=body).status_code == 200


def test_stop_through_the_api_delivers_to_the_drop_folder(
    make_simulator: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = make_simulator(drop_dir=tmp_path, drop_name_pattern="{date:%Y%m%d}_{recording_uuid}.wav")
    with running_simulator(sim) as running, make_http_client(running.url) as http:
        key = running.access_key
        rec = http.post(
            "/record-call/start",
            json={"access_key": key, "call_uuid": "e3163745-1fbe-4b28-bf58-6e6030ca8ace"},
        ).json()["recording_uuid"]
        assert list(tmp_path.iterdir()) == []
        http.post("/record-call/stop", json={"access_key": key, "recording_uuid": rec})

        files = list(tmp_path.iterdir())
        assert [f.name[9:] for f in files] == [f"{rec}.wav"]
        assert files[0].read_bytes() == sim.expected_bytes(rec)
        assert (
            files[0].read_bytes()
            == http.post(
                "/record-call/retrieve", json={"access_key": key, "recording_uuid": rec}
            ).content
        )


def test_fault_answers_look_like_tenios_errors(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(faults=FaultPlan(retry_after=3, schedule=("429", "503", "500", "404")))
    rec = sim.add_recording(seconds=1)
    with running_simulator(sim) as running, make_http_client(running.url) as http:
        body = {"access_key": running.access_key, "recording_uuid": rec}
        answers = [http.post("/record-call/retrieve", json=body) for _ in range(5)]

    assert [a.status_code for a in answers] == [429, 503, 500, 404, 200]
    assert [a.headers.get("retry-after") for a in answers[:3]] == ["3", "3", None]
    assert answers[2].json() == {
        "error_code": "INTERNAL_ERROR",
        "error_message": "Internal server error",
        "fields": [],
    }
    assert [(r.endpoint, r.status, r.fault) for r in sim.requests] == [
        ("retrieve", 429, "429"),
        ("retrieve", 503, "503"),
        ("retrieve", 500, "500"),
        ("retrieve", 404, "404"),
        ("retrieve", 200, "ok"),
    ]
