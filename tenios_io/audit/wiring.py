"""Building what the audit needs from settings: the ledger, the archive store, the drop listing.

The CLI and the audit flow both start here, so they check the same things the
same way (each I/O object receives its client; STYLE.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from tenios_io.audit.reconcile import DropEntry
from tenios_io.config import Settings
from tenios_io.exceptions import StoreError
from tenios_io.ledger import Ledger, open_ledger
from tenios_io.publish.identity import check_bucket
from tenios_io.store import ArchiveStore, make_s3_client


@dataclass
class AuditContext:
    """The ledger, and the store when a bucket is configured.

    The store is this ledger's: the first time a command asks for it, the bucket's
    ledger id is compared with the ledger's (BucketOfAnotherLedger, exit 2, when the
    bucket prefix belongs to another ledger; :mod:`tenios_io.publish.identity`).
    """

    settings: Settings
    ledger: Ledger
    bucket_store: ArchiveStore | None
    _identity_checked: bool = field(default=False, repr=False)

    @property
    def store(self) -> ArchiveStore | None:
        """The store (None without a bucket), checked to be this ledger's."""
        if self.bucket_store is not None and not self._identity_checked:
            self._identity_checked = True
            try:
                check_bucket(self.ledger, self.bucket_store)
            except StoreError:
                pass  # the command's own use of the bucket meets it and says it its way
        return self.bucket_store

    def require_store(self) -> ArchiveStore:
        """The store, or ConfigError naming TENIOS_S3_BUCKET."""
        store = self.store
        if store is None:
            self.settings.require_bucket()
        assert store is not None
        return store


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
    from tenios_io.sftp.sweep import known_ids_of

    with SftpSource.from_settings(settings) as source:
        sweep = source.drop.sweep(known_ids_of(ledger))
    files = [DropEntry(f.path, f.recording_uuid) for f in [*sweep.ready, *sweep.duplicates]]
    files += [DropEntry(path, None, why) for path, why in sweep.ambiguous]
    return sorted(files), len(sweep.unsettled)
