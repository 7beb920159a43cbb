"""The simulator's ASGI app driven directly, without a server (no network)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from tenios_io.simulator import Simulator
from tenios_io.simulator.app import _BrokenOnPurpose


async def call(sim: Simulator, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one request through ``sim.app``; return what it sent."""
    messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    try:
        await sim.app(scope, receive, send)
    finally:
        call.sent = sent  # type: ignore[attr-defined]
    return sent


def body_bytes(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_answers_without_a_server() -> None:
    sim = Simulator(access_key="k")
    rec = sim.add_recording(seconds=1)

    sent = anyio.run(call, sim, "/record-call/retrieve", {"access_key": "k", "recording_uuid": rec})

    assert sent[0]["status"] == 200
    assert body_bytes(sent) == sim.expected_bytes(rec)
    assert sent[-1]["more_body"] is False


@pytest.mark.parametrize(("fault", "share"), [("truncate", 2), ("reset", 4)])
def test_without_a_tracked_connection_a_broken_answer_raises_so_the_server_drops_it(
    fault: str, share: int
) -> None:
    # Under a server that does not register connections (not ours), truncate and reset
    # still end the body early: the error makes any ASGI server close the connection.
    sim = Simulator(access_key="k")
    rec = sim.add_recording(seconds=1, faults=[fault])

    with pytest.raises(_BrokenOnPurpose):
        anyio.run(call, sim, "/record-call/retrieve", {"access_key": "k", "recording_uuid": rec})

    sent = call.sent  # type: ignore[attr-defined]
    assert sent[0]["status"] == 200
    assert len(body_bytes(sent)) == sim.expected_size(rec) // share
    assert all(m.get("more_body", True) for m in sent[1:])  # never claimed to be complete
