"""SFTP releases in flight: the record of intent written before a drop file is moved
or deleted, and the record of what happened, each with its custody event.

``release_intended`` (with the SHA-256 and size it will release) is written together
with a ``source_releases`` row before the destructive step; ``released_from_source``
(or ``release_refused``) removes the row in the same transaction.  A row that is
still there at the next sweep is a release a crash or a database error interrupted:
the sweep finishes it or records what it left (tenios_io/sftp/release.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tenios_io.custody.chain import NewEvent
from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.records import as_utc
from tenios_io.ledger.tables import source_releases

_S = source_releases.c


@dataclass(frozen=True)
class ReleaseIntent:
    """What one release may do: which file, how, and the bytes it may release."""

    recording_uuid: str
    path: str
    action: str
    """The after-action: ``delete`` or ``move:<DIR>``."""
    sha256: str
    size_bytes: int
    source_mtime: float | None = None
    """The file's mtime when the archiving run hashed it (None: hash it again)."""
    intended_at: datetime | None = None

    @property
    def source(self) -> str:
        return f"sftp:{self.path}"

    def details(self) -> dict[str, Any]:
        """The ``release_intended`` event's details."""
        return {
            "source": self.source,
            "path": self.path,
            "action": self.action,
            "sha256": self.sha256,
            "size": self.size_bytes,
            "source_mtime": self.source_mtime,
        }


class SourceReleases(LedgerCore):
    """Intent and outcome of SFTP releases (one short transaction each)."""

    def intend_release(self, intent: ReleaseIntent, *, actor: str | None = None) -> None:
        """Record that ``intent`` is about to be carried out: its row and the
        ``release_intended`` event, in one transaction (replacing an older intent)."""
        now = self.now()
        with self._write() as conn:
            conn.execute(source_releases.delete().where(_S.recording_uuid == intent.recording_uuid))
            conn.execute(
                source_releases.insert().values(
                    recording_uuid=intent.recording_uuid,
                    path=intent.path,
                    action=intent.action,
                    sha256=intent.sha256,
                    size_bytes=intent.size_bytes,
                    source_mtime=intent.source_mtime,
                    intended_at=now,
                )
            )
            self._enqueue(
                conn,
                [NewEvent(intent.recording_uuid, "release_intended", intent.details())],
                actor=actor,
                now=now,
            )
        self.integrate()

    def finish_release(
        self,
        intent: ReleaseIntent,
        event: str,
        details: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> None:
        """Record how the release ended (``released_from_source``, ``release_refused``)
        and forget its intent, in one transaction."""
        with self._write() as conn:
            conn.execute(source_releases.delete().where(_S.recording_uuid == intent.recording_uuid))
            self._enqueue(conn, [NewEvent(intent.recording_uuid, event, details)], actor=actor)
        self.integrate()

    def note_release(
        self,
        recording_uuid: str,
        event: str,
        details: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> None:
        """An event about a release that keeps its intent (``release_failed``: the file
        stays, the next sweep tries again)."""
        with self._write() as conn:
            self._enqueue(conn, [NewEvent(recording_uuid, event, details)], actor=actor)
        self.integrate()

    def releases_in_flight(self) -> list[ReleaseIntent]:
        """Every intent not yet finished, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(source_releases).order_by(_S.intended_at, _S.recording_uuid)
            ).mappings()
            found = [
                ReleaseIntent(
                    recording_uuid=str(row["recording_uuid"]),
                    path=str(row["path"]),
                    action=str(row["action"]),
                    sha256=str(row["sha256"]),
                    size_bytes=int(row["size_bytes"]),
                    source_mtime=row["source_mtime"],
                    intended_at=as_utc(row["intended_at"]),
                )
                for row in rows
            ]
        return found


__all__ = ["ReleaseIntent", "SourceReleases"]
