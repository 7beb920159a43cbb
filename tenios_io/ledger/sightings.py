"""Sightings of SFTP drop files, timed by the database's clock.

Each sweep hands over what it listed (path → size, mtime).  A file whose size and
mtime are the ones already recorded keeps its ``first_seen_at``; a new or changed one
starts again from now; a file no longer listed is forgotten.  "Now" is the database's
``clock_timestamp()`` on PostgreSQL (SQLite has no server clock: the ledger's clock,
the same host every sweep), so "unchanged for N seconds" compares two readings of one
clock — never the archiver's clock with the SFTP server's mtime.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from tenios_io.ledger.core import LedgerCore
from tenios_io.ledger.records import as_utc
from tenios_io.ledger.states import State
from tenios_io.ledger.tables import drop_sightings, recordings

_S = drop_sightings.c
_R = recordings.c
_CHUNK = 900
#: Arbitrary constant naming the sweeps' advisory lock on PostgreSQL.
SIGHTING_LOCK_KEY = 0x5E1657


@dataclass(frozen=True)
class Sighting:
    """What the ledger knows of one drop file after this sweep's sighting."""

    unchanged_seconds: float
    """Since when (database clock) the file has had this size and mtime; 0 when new."""
    complete: bool
    """Whether its container was already found complete at this size and mtime."""


class DropSightings(LedgerCore):
    """The sweep's memory of the drop (one write transaction per sweep)."""

    def sight_drop_files(self, files: Mapping[str, tuple[int, float]]) -> dict[str, Sighting]:
        """Record this sweep's sighting of ``files`` (path → (size, mtime)); forget the
        files not listed; return each listed file's :class:`Sighting`."""
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                # Two runs sweeping at once take turns (SQLite's BEGIN IMMEDIATE already
                # does): the second sees the first's sightings instead of inserting them
                # again.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SIGHTING_LOCK_KEY})
            now = as_utc(conn.execute(sa.select(self._lease_now())).scalar_one())
            assert now is not None
            known = {
                str(row.path): row
                for row in conn.execute(
                    sa.select(_S.path, _S.size_bytes, _S.mtime, _S.first_seen_at, _S.complete)
                )
            }
            gone = [path for path in known if path not in files]
            for start in range(0, len(gone), _CHUNK):
                conn.execute(
                    drop_sightings.delete().where(_S.path.in_(gone[start : start + _CHUNK]))
                )
            fresh: list[dict[str, object]] = []
            changed: list[str] = []
            result: dict[str, Sighting] = {}
            for path, (size, mtime) in files.items():
                row = known.get(path)
                if row is not None and (int(row.size_bytes), float(row.mtime)) == (size, mtime):
                    first: datetime | None = as_utc(row.first_seen_at)
                    assert first is not None
                    age = max(0.0, (now - first).total_seconds())
                    result[path] = Sighting(age, bool(row.complete))
                    continue
                if row is not None:
                    changed.append(path)
                fresh.append(
                    {"path": path, "size_bytes": size, "mtime": mtime, "first_seen_at": now}
                )
                result[path] = Sighting(0.0, False)
            for start in range(0, len(changed), _CHUNK):
                conn.execute(
                    drop_sightings.delete().where(_S.path.in_(changed[start : start + _CHUNK]))
                )
            if fresh:
                conn.execute(drop_sightings.insert(), fresh)
        return result

    def mark_drop_files_complete(self, paths: Collection[str]) -> None:
        """Their containers were found complete at the size and mtime last sighted."""
        wanted = list(paths)
        if not wanted:
            return
        with self._write() as conn:
            for start in range(0, len(wanted), _CHUNK):
                conn.execute(
                    drop_sightings.update()
                    .where(_S.path.in_(wanted[start : start + _CHUNK]))
                    .values(complete=True)
                )

    def wait_for_drop(self, recording_uuids: Collection[str], seconds: float) -> int:
        """Their files are on the drop, still settling: the pending ones among them are
        not due before ``seconds`` from now (the ledger's clock), so no run fetches them
        from the API meanwhile; no attempt is spent, a later due time is kept.  Returns
        how many were held."""
        wanted = list(recording_uuids)
        held = 0
        if not wanted:
            return 0
        with self._write() as conn:
            until = self._lease_after(seconds)
            for start in range(0, len(wanted), _CHUNK):
                held += conn.execute(
                    recordings.update()
                    .where(
                        _R.recording_uuid.in_(wanted[start : start + _CHUNK]),
                        _R.state == State.PENDING.value,
                        _R.next_attempt_at < until,
                    )
                    .values(next_attempt_at=until)
                ).rowcount
        return held


__all__ = ["DropSightings", "Sighting"]
