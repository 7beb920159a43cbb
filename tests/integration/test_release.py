"""Releasing drop files with the intent recorded first (tenios_io/sftp/release.py), against a
real SFTP server and a real ledger (SQLite and PostgreSQL): a database error on either
side of the move loses no evidence."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tenios_io.exceptions import LedgerUnavailable
from tenios_io.ledger import Ledger, create_ledger_engine
from tenios_io.ledger.releases import ReleaseIntent
from tenios_io.sftp import SftpConnection, SftpDrop, connect_sftp
from tenios_io.sftp.release import GONE_NOTE, RELEASED, UNRECORDED, finish_interrupted, release
from tests.fixtures.sshd import SftpServer

U1 = "8101fcb3-3843-4db3-9829-f7ab586625fe"
DATA = b"RIFF the archived recording"


class FlakyLedger(Ledger):
    """A real ledger whose named write fails once with LedgerUnavailable (as when the
    database goes away at that moment)."""

    fail: str | None = None

    def intend_release(self, intent: ReleaseIntent, *, actor: str | None = None) -> None:
        if self.fail == "intent":
            self.fail = None
            raise LedgerUnavailable("ledger database unavailable: connection lost")
        super().intend_release(intent, actor=actor)

    def finish_release(
        self,
        intent: ReleaseIntent,
        event: str,
        details: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> None:
        if self.fail == "finish":
            self.fail = None
            raise LedgerUnavailable("ledger database unavailable: connection lost")
        super().finish_release(intent, event, details, actor=actor)


@pytest.fixture
def ledger(database_url: str) -> Iterator[FlakyLedger]:
    engine = create_ledger_engine(database_url)
    yield FlakyLedger(engine, actor="test")
    engine.dispose()


@pytest.fixture
def connection(sftp_server: SftpServer) -> Iterator[SftpConnection]:
    with connect_sftp(sftp_server.settings(), retry_delay=0) as conn:
        yield conn


def _drop_file(server: SftpServer) -> tuple[Path, ReleaseIntent]:
    path = server.drop_dir / f"{U1}.wav"
    path.write_bytes(DATA)
    old = time.time() - 3600
    os.utime(path, (old, old))
    intent = ReleaseIntent(
        recording_uuid=U1,
        path=str(path),
        action="delete",
        sha256=hashlib.sha256(DATA).hexdigest(),
        size_bytes=len(DATA),
        source_mtime=float(int(old)),
    )
    return path, intent


def _events(ledger: Ledger) -> list[tuple[str, dict[str, object]]]:
    return [(e["event"], json.loads(e["details"])) for e in ledger.events(U1)]


def test_no_intent_recorded_means_no_release(
    ledger: FlakyLedger, sftp_server: SftpServer, connection: SftpConnection
) -> None:
    path, intent = _drop_file(sftp_server)
    drop = SftpDrop.from_settings(connection, sftp_server.settings(sftp_after="delete"))
    ledger.fail = "intent"
    assert release(ledger, drop, intent, by="run") == UNRECORDED
    assert path.read_bytes() == DATA  # untouched: nothing would say why it went
    assert ledger.releases_in_flight() == [] and _events(ledger) == []


def test_a_release_whose_outcome_was_not_recorded_is_recorded_by_the_next_sweep(
    ledger: FlakyLedger, sftp_server: SftpServer, connection: SftpConnection
) -> None:
    path, intent = _drop_file(sftp_server)
    drop = SftpDrop.from_settings(connection, sftp_server.settings(sftp_after="delete"))
    ledger.fail = "finish"
    assert release(ledger, drop, intent, by="run") == UNRECORDED
    assert not path.exists()  # deleted, and the intent says who and what
    assert [e for e, _ in _events(ledger)] == ["release_intended"]
    assert [i.path for i in ledger.releases_in_flight()] == [str(path)]

    assert finish_interrupted(ledger, drop, actor="sweep") == {U1: RELEASED}
    (_, intended), (event, recorded) = _events(ledger)
    assert intended["sha256"] == intent.sha256 and event == RELEASED
    assert recorded["note"] == GONE_NOTE and recorded["action"] == "already gone"
    assert ledger.releases_in_flight() == []
    assert ledger.verify_chain().ok
