"""The simulator's ASGI app driven directly, without a server (no network)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from tenios_io.simulator import Simulator
from tenios_io.simulator.app import _BrokenOnPurpose


async def call(sim: Simulator, path: str, body: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    """Run one request through ``sim.app``, appending what it sends to ``sent``."""
    messages = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    complete = anyio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await complete.wait()  # as servers do: "disconnect" once the response is complete
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete.set()

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
    await sim.app(scope, receive, send)


def body_bytes(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_answers_without_a_server() -> None:
    sim = Simulator(access_key="k")
    rec = sim.add_recording(seconds=1)

    sent: list[dict[str, Any]] = []
    anyio.run(call, sim, "/record-call/retrieve", {"access_key": "k", "recording_uuid": rec}, sent)

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

    sent: list[dict[str, Any]] = []
    with pytest.raises(_BrokenOnPurpose):
        anyio.run(
            call, sim, "/record-call/retrieve", {"access_key": "k", "recording_uuid": rec}, sent
        )

    assert sent[0]["status"] == 200
    assert len(body_bytes(sent)) == sim.expected_size(rec) // share
    assert all(m.get("more_body", True) for m in sent[1:])  # never claimed to be complete
