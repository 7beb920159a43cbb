"""The compliance audit: prove the archive matches the ledger and the ledger is untampered.

- :mod:`~tenios_io.audit.verify` — re-check archived objects (HEAD / deep re-hash) and
  their custody metadata (or earlier versions' sidecars) against the ledger; verdicts
  become custody events.
- :mod:`~tenios_io.publish.checkpoints` — pin the custody chain head in the bucket
  (:func:`write_checkpoint`) and check the ledger against every checkpoint.
- :mod:`~tenios_io.audit.reconcile` — ledger vs bucket listing vs SFTP drop.
- :mod:`~tenios_io.audit.retention` — retention due, legal holds, purging with evidence.
- :mod:`~tenios_io.audit.report` — the HTML / CSV / JSONL / JSON report.
- :mod:`~tenios_io.audit.summary` — one audit run's verdicts as a table and markdown.
"""

from __future__ import annotations

from tenios_io.audit.export import EXPORT_COLUMNS, export_row
from tenios_io.audit.reconcile import Category, Finding, ReconcileReport, reconcile
from tenios_io.audit.report import build_report
from tenios_io.audit.report_data import AuditReport, Period
from tenios_io.audit.retention import (
    HoldResult,
    PurgeAction,
    PurgeReport,
    PurgeResult,
    RetentionOverview,
    purge_expired,
    retention_overview,
    set_legal_hold,
)
from tenios_io.audit.summary import AuditSummary
from tenios_io.audit.verify import (
    Difference,
    Selection,
    VerifyReport,
    VerifyResult,
    VerifyStatus,
    select_recordings,
    verify_archive,
)
from tenios_io.audit.wiring import AuditContext, drop_entries, open_audit
from tenios_io.publish.checkpoints import (
    Checkpoint,
    CheckpointProblem,
    CheckpointReport,
    check_checkpoints,
    checkpoint_key,
    checkpoint_prefix,
    write_checkpoint,
)

__all__ = [
    "EXPORT_COLUMNS",
    "AuditContext",
    "AuditReport",
    "AuditSummary",
    "Category",
    "Checkpoint",
    "CheckpointProblem",
    "CheckpointReport",
    "Difference",
    "Finding",
    "HoldResult",
    "Period",
    "PurgeAction",
    "PurgeReport",
    "PurgeResult",
    "ReconcileReport",
    "RetentionOverview",
    "Selection",
    "VerifyReport",
    "VerifyResult",
    "VerifyStatus",
    "build_report",
    "check_checkpoints",
    "checkpoint_key",
    "checkpoint_prefix",
    "drop_entries",
    "export_row",
    "open_audit",
    "purge_expired",
    "reconcile",
    "retention_overview",
    "select_recordings",
    "set_legal_hold",
    "verify_archive",
    "write_checkpoint",
]
