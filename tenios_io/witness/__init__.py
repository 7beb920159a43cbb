"""A transparency-log witness (C2SP tlog-witness) that runs apart from the archive.

The compliance team or an external auditor runs it (``tenios-archive witness
serve``) with its own key and state folder; archive runs submit each new checkpoint
of the custody log and store the cosignature it answers.  Once it has cosigned a
checkpoint, it refuses any later one that does not extend it — a rewritten and
re-signed log cannot collect its cosignature.

- :mod:`~tenios_io.witness.state`: per-origin state, durable and locked;
- :mod:`~tenios_io.witness.service`: the ``add-checkpoint`` checks and answers;
- :mod:`~tenios_io.witness.server`: the HTTP server;
- :mod:`~tenios_io.witness.client`: the archive's side (httpx), one round trip.

The server side imports the custody format only, never the ledger, the store or the
run (an import-linter contract holds it to that).
"""

from __future__ import annotations

from tenios_io.witness.service import Answer, Witness
from tenios_io.witness.state import LogState, StateError, WitnessState

__all__ = ["Answer", "LogState", "StateError", "Witness", "WitnessState"]
