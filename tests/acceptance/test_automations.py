"""The operator's notifications (issue 15): `tenios-archive prefect apply --notify BLOCK`
creates two Prefect automations on the server, and they fire, against the session's
Prefect server (whose trigger and action services run) and a webhook receiver on
127.0.0.1 behind a real `custom-webhook` notification block: a run ending with a
recording due longer than TENIOS_ALERT_OLDEST_DUE_HOURS, and a nightly run that
fails."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

from flows.nightly import nightly_archive
from tenios_io.exceptions import ConfigError
from tenios_io.ledger import State
from tenios_io.ledger.tables import recordings
from tenios_io.ops.prefect_setup import BACKLOG_OVERDUE, NIGHTLY_FAILED, apply_rate_limit
from tests.acceptance.conftest import ArchiveWorld
from tests.fixtures.cli import CliResult

Cli = Callable[..., CliResult]
BLOCK = "tenios-test-receiver"


@dataclass
class Receiver:
    """What the notification block POSTed, one JSON body per notification."""

    url: str
    received: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)

    def next(self) -> dict[str, Any]:
        # Blocks until the automation's action has POSTed (a bound, not a guessed pause).
        return self.received.get(timeout=180)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_port}/hook", got)
    finally:
        server.shutdown()
        server.server_close()


def _delete_automations() -> None:
    with get_client(sync_client=True) as client:
        for name in (NIGHTLY_FAILED, BACKLOG_OVERDUE):
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)


@pytest.fixture
def notifying(world: ArchiveWorld, receiver: Receiver) -> Iterator[Receiver]:
    """A `custom-webhook` block posting subject and body to ``receiver``; no
    automations or rate limit left on the shared server before or after."""
    CustomWebhookNotificationBlock(
        name="tenios-test",
        url=receiver.url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    ).save(BLOCK, overwrite=True)
    _delete_automations()
    apply_rate_limit(None)
    yield receiver
    _delete_automations()


def test_apply_creates_the_automations_and_both_notify(
    notifying: Receiver, world: ArchiveWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = cli("prefect", "apply", "--notify", f"custom-webhook/{BLOCK}")
    assert applied.exit_code == 0, applied.output
    assert f"{NIGHTLY_FAILED}: created" in applied.words
    assert f"{BACKLOG_OVERDUE}: created" in applied.words
    again = cli("prefect", "apply", "--notify", f"custom-webhook/{BLOCK}")
    assert f"{NIGHTLY_FAILED}: replaced" in again.words, again.output
    block = CustomWebhookNotificationBlock.load(BLOCK)
    with get_client(sync_client=True) as client:
        for name in (NIGHTLY_FAILED, BACKLOG_OVERDUE):
            (automation,) = client.read_automations_by_name(name)  # one, not two
            assert automation.enabled
            (action,) = automation.actions
            assert action.block_document_id == block._block_document_id  # type: ignore[union-attr]

    # A run that ends with recordings due for 2 h, the threshold 1 h: notified.
    uuids = world.sim.seed(3)
    world.register(uuids)
    ledger = world.ledger()
    with ledger.engine.begin() as conn:
        conn.execute(
            recordings.update().values(next_attempt_at=datetime.now(UTC) - timedelta(hours=2))
        )
    monkeypatch.setenv("TENIOS_ALERT_OLDEST_DUE_HOURS", "1")
    done = nightly_archive(concurrency=1, batch_size=1, limit=1, max_wait_seconds=30)
    assert done["counts"] == {"archived": 1}
    overdue = notifying.next()
    assert overdue["subject"] == "tenios-archive: backlog overdue", overdue
    assert "The oldest due recording has waited 2h" in overdue["body"], overdue
    assert "2 recordings are due" in overdue["body"], overdue

    # A nightly run that fails (here: a rate asked for, none applied): notified.
    monkeypatch.setenv("TENIOS_API_RATE_LIMIT", "5")
    with pytest.raises(ConfigError):
        nightly_archive(concurrency=1, batch_size=1, max_wait_seconds=30)
    failed = notifying.next()
    assert failed["subject"].startswith("tenios-archive: nightly run "), failed
    assert failed["subject"].endswith(" Failed"), failed
    assert "tenios-archive prefect apply" in failed["body"], failed
    assert [ledger.get(u).state for u in uuids].count(State.PENDING) == 2
    ledger.engine.dispose()


def test_apply_names_a_missing_block(notifying: Receiver, cli: Cli) -> None:
    refused = cli("prefect", "apply", "--notify", "custom-webhook/no-such-block")
    assert refused.exit_code == 2, refused.output
    assert "no notification block 'custom-webhook/no-such-block'" in refused.words
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name(NIGHTLY_FAILED) == []
