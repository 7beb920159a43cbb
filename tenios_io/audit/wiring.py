"""Building what the audit needs from settings: the ledger, the archive store, the drop listing.

The CLI and the audit flow both start here, so they check the same things the
same way (each I/O object receives its client; STYLE.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from tenios_io.audit.reconcile import DropEntry
from tenios_io.config import Settings
from tenios_io.ledger import Ledger, open_ledger
from tenios_io.store import ArchiveStore, make_s3_client


@dataclass
class AuditContext:
    """The ledger, and the store when a bucket is configured."""

    settings: Settings
    ledger: Ledger
    store: ArchiveStore | None

    def require_store(self) -> ArchiveStore:
        """The store, or ConfigError naming TENIOS_S3_BUCKET."""
        if self.store is None:
            self.settings.require_bucket()
        assert self.store is not None
        return self.store


@contextmanager
def open_audit(
    settings: Settings, *, actor: str | None = None, need_store: bool = True
) -> Iterator[AuditContext]:
    """The ledger (migrated, or SchemaNotCurrent) and the store (ConfigError without a
    bucket unless ``need_store`` is false); closed on exit."""
    if need_store:
        settings.require_bucket()
    with ExitStack() as stack:
        ledger = stack.enter_context(open_ledger(settings, actor=actor))
        store = None
        if settings.s3_bucket:
            client = make_s3_client()
            stack.callback(client.close)
            store = ArchiveStore.from_settings(settings, client)
        yield AuditContext(settings, ledger, store)


def drop_entries(settings: Settings, ledger: Ledger) -> tuple[list[DropEntry], int] | None:
    """The settled files of the SFTP drop, each matched to a ledger row the way a run's
    sweep matches them (ambiguous names carry no recording_uuid), and how many are still
    being written; None when TENIOS_SFTP_URL is not set."""
    if not settings.sftp_url:
        return None
    from tenios_io.sftp import SftpSource  # paramiko only when a drop is configured
    from tenios_io.sweep import known_ids_of

    with SftpSource.from_settings(settings) as source:
        sweep = source.drop.sweep(known_ids_of(ledger))
    files = [DropEntry(f.path, f.recording_uuid) for f in [*sweep.ready, *sweep.duplicates]]
    files += [DropEntry(path, None, why) for path, why in sweep.ambiguous]
    return sorted(files), len(sweep.unsettled)
