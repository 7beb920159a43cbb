"""The Ledger: every query against the ledger's tables lives in this package.

Each state change and the custody events that explain it are written in ONE
transaction (the events into the custody queue, which the sequencer integrates
into the hash chain — sequencer.py), so the work queue and the audit record never
disagree.  The Ledger is assembled from one part per job:

- :mod:`~tenios_io.ledger.workqueue` — claims, leases, outcomes (the hot path);
- :mod:`~tenios_io.ledger.registration` — adding ids, one or a streamed million;
- :mod:`~tenios_io.ledger.intake` — the producers' intake table, drained through registration;
- :mod:`~tenios_io.ledger.actions` — requeue, annotations, free-standing events;
- :mod:`~tenios_io.ledger.releases` — SFTP releases: the intent before, the outcome after;
- :mod:`~tenios_io.ledger.sightings` — what the sweeps saw of the drop, by the database clock;
- :mod:`~tenios_io.ledger.manifests` — archived recordings whose manifest is not written yet;
- :mod:`~tenios_io.ledger.reads` — everything that only reads, the audit's questions too;
- :mod:`~tenios_io.ledger.core` — the engine, clocks, write transactions, the sequencer.
"""

from __future__ import annotations

from tenios_io.ledger.actions import OperatorActions
from tenios_io.ledger.identity import read_ledger_id
from tenios_io.ledger.intake import Intake
from tenios_io.ledger.manifests import ManifestQueue
from tenios_io.ledger.reads import Reads
from tenios_io.ledger.records import (
    Claim,
    Clock,
    ImportResult,
    NewRecording,
    Recording,
    RegisterResult,
    as_utc,
    default_actor,
    utc_now,
)
from tenios_io.ledger.registration import Registration
from tenios_io.ledger.releases import ReleaseIntent, SourceReleases
from tenios_io.ledger.sightings import DropSightings
from tenios_io.ledger.workqueue import LeasedWrite, OutcomesWritten, WorkQueue


class Ledger(
    WorkQueue,
    Intake,
    Registration,
    OperatorActions,
    SourceReleases,
    DropSightings,
    ManifestQueue,
    Reads,
):
    """Register, claim, transition and audit recordings (SQLite or PostgreSQL)."""

    def ledger_id(self) -> str:
        """This ledger's id (a UUID; the archive bucket keeps it too, see identity.py)."""
        return read_ledger_id(self.engine)


__all__ = [
    "Claim",
    "Clock",
    "ImportResult",
    "LeasedWrite",
    "Ledger",
    "NewRecording",
    "OutcomesWritten",
    "Recording",
    "RegisterResult",
    "ReleaseIntent",
    "as_utc",
    "default_actor",
    "utc_now",
]
