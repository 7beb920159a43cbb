"""The `audit` Prefect flow end to end under Prefect's test harness (moto server, SQLite):
it orchestrates the tenios_io checks, publishes the artifacts, and fails when they find
something."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tenios_io.ledger.schema import upgrade
from tests.fixtures.moto import FAKE_CREDENTIALS
from tests.integration.test_audit_support import AuditWorld, make_world

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def world(
    prefect_api_url: str,
    sqlite_url: str,
    s3_client: S3Client,
    locked_bucket: str,
    moto_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AuditWorld]:
    upgrade(sqlite_url)
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": moto_server,
        "TENIOS_DATABASE_URL": sqlite_url,
        "TENIOS_S3_BUCKET": locked_bucket,
        "TENIOS_RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TENIOS_SFTP_URL", raising=False)
    w = make_world(sqlite_url, s3_client, locked_bucket, retention_days=30)
    yield w
    w.ledger.engine.dispose()


def artifacts(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found}


def test_audit_flow_passes_then_fails_on_a_discrepancy(world: AuditWorld, tmp_path: Path) -> None:
    from flows.audit import audit

    ids = world.archive(4)
    state = audit(cycle_days=2, every_days=1, report_dir=str(tmp_path / "r"), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["ok"] and [c["check"] for c in result["checks"]] == [
        "custody chain",
        "checkpoints",
        "verify",
        "reconcile",
        "report",
    ]
    assert (tmp_path / "r" / "report.html").exists()
    assert world.event_rows()[-1]["event"] == "checkpoint"  # pinned at the end
    found = artifacts(state.state_details.flow_run_id)
    assert "audit-summary" in found and "All checks passed." in found["audit-findings"]
    verified = [k for k in ids if world.events(k)[-1] == "verified"]
    assert len(verified) == 2  # ceil(4 / 2) per nightly-sized run

    key = world.get(ids[0]).s3_key
    assert key
    world.s3.delete_object(Bucket=world.bucket, Key=key)  # a delete marker hides it
    failed = audit(cycle_days=1, return_state=True)
    assert failed.is_failed() and ids[0] in (failed.message or "")
    markdown = artifacts(failed.state_details.flow_run_id)["audit-findings"]
    assert "Problems found." in markdown and "current_version" in markdown
    assert "archived_without_object" in markdown
