"""Ledger at backfill scale: the unsequenced custody queue, an index for expired
leases, and the count of expired leases per recording.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "recordings",
        sa.Column("lease_expiries", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_recordings_state_lease_expires_at", "recordings", ["state", "lease_expires_at"]
    )
    op.create_table(
        "custody_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recording_uuid", sa.String(36), nullable=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_queue")),
    )


def downgrade() -> None:
    # Events still queued would be lost by dropping the queue: refuse instead.
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM custody_queue")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} custody event(s) are not yet integrated into the chain: run "
            "`tenios-archive audit verify-chain` (it integrates them) before downgrading"
        )
    op.drop_table("custody_queue")
    op.drop_index("ix_recordings_state_lease_expires_at", table_name="recordings")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("lease_expiries")
