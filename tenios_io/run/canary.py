"""The canary: is TENIOS still serving recordings, when every one this run asks for
answers 404?

A run that meets :data:`~tenios_io.run.stop.NOT_FOUND_STREAK` 404s in a row cannot
tell "not ready yet" (recordings registered soon after their calls) from a
``TENIOS_API_URL`` that points at the wrong server or an API that lost its data.  The
canary asks TENIOS for one recording known to exist there — the last one this run
archived from the API, else the most recently archived one the ledger holds from the
API — without downloading it (:meth:`~tenios_io.api.TeniosClient.exists`).  Found: the
404s mean "not ready yet" and the run goes on; not found (or the question fails): the
run stops (tenios_io/run/stop.py).
"""

from __future__ import annotations

from tenios_io.api import TeniosClient
from tenios_io.exceptions import TeniosArchiveError
from tenios_io.ledger import Ledger
from tenios_io.run.stop import CanaryAnswer


class ApiCanary:
    """Asks TENIOS for a recording known to exist there (callable: the guard's canary,
    given the recording this run last archived from the API, if any)."""

    def __init__(self, ledger: Ledger, client: TeniosClient) -> None:
        self._ledger = ledger
        self._client = client

    def known(self, recent: str | None = None) -> str | None:
        """The recording to ask about: ``recent``, else the ledger's most recently
        archived one from the API (None: none is known)."""
        if recent is not None:
            return recent
        try:
            return self._ledger.newest_archived_from_api()
        except TeniosArchiveError:
            return None

    def __call__(self, recent: str | None = None) -> CanaryAnswer:
        recording_uuid = self.known(recent)
        if recording_uuid is None:
            return CanaryAnswer(None, False)
        try:
            return CanaryAnswer(recording_uuid, self._client.exists(recording_uuid))
        except TeniosArchiveError as exc:
            return CanaryAnswer(recording_uuid, False, f"{type(exc).__name__}: {exc}")


__all__ = ["ApiCanary"]
