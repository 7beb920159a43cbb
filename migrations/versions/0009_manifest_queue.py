"""Custody manifests: the archived recordings not yet in a manifest written to the bucket.

One S3 write per recording (issue 13): each archived batch gets one custody manifest
(JSON lines) under ``{prefix}/_custody/manifests/``.  A row is inserted in the
transaction that archives a recording and deleted once its manifest is written, so a
crash in between loses nothing: the next run writes the manifests that are missing.
Recordings archived before this revision had sidecars and get no row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifest_queue",
        sa.Column("recording_uuid", sa.String(36), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recording_uuid", name=op.f("pk_manifest_queue")),
    )
    op.create_index(
        op.f("ix_manifest_queue_queued_at"), "manifest_queue", ["queued_at"], unique=False
    )


def downgrade() -> None:
    # Manifests are derived from the ledger: dropping what is still to be written loses
    # no fact, only those manifests (the recordings stay archived in ledger and bucket).
    op.drop_index(op.f("ix_manifest_queue_queued_at"), table_name="manifest_queue")
    op.drop_table("manifest_queue")
