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

The names below are imported from their modules on first use (PEP 562), as in
:mod:`tenios_io.ledger`: `ledger show` needs :func:`export_row`, not boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_LAZY = {
    **dict.fromkeys(("EXPORT_COLUMNS", "export_row"), "tenios_io.audit.export"),
    **dict.fromkeys(
        ("Category", "Finding", "ReconcileReport", "reconcile"), "tenios_io.audit.reconcile"
    ),
    **dict.fromkeys(("build_report",), "tenios_io.audit.report"),
    **dict.fromkeys(("AuditReport", "Period"), "tenios_io.audit.report_data"),
    **dict.fromkeys(
        (
            "HoldResult",
            "PurgeAction",
            "PurgeReport",
            "PurgeResult",
            "RetentionOverview",
            "purge_expired",
            "retention_overview",
            "set_legal_hold",
        ),
        "tenios_io.audit.retention",
    ),
    **dict.fromkeys(("AuditSummary",), "tenios_io.audit.summary"),
    **dict.fromkeys(
        (
            "Difference",
            "Selection",
            "VerifyReport",
            "VerifyResult",
            "VerifyStatus",
            "select_recordings",
            "verify_archive",
        ),
        "tenios_io.audit.verify",
    ),
    **dict.fromkeys(("AuditContext", "drop_entries", "open_audit"), "tenios_io.audit.wiring"),
    **dict.fromkeys(
        (
            "Checkpoint",
            "CheckpointProblem",
            "CheckpointReport",
            "check_checkpoints",
            "checkpoint_key",
            "checkpoint_prefix",
            "write_checkpoint",
        ),
        "tenios_io.publish.checkpoints",
    ),
}


def __getattr__(name: str) -> Any:
    """``from tenios_io.audit import open_audit``: the name from its module, imported now."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
