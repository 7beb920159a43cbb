"""The producers' intake: other systems hand recording ids to the ledger with one
plain SQL INSERT into ``recording_intake``; every run drains it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_intake",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            nullable=False,
        ),
        sa.Column("recording_uuid", sa.Text(), nullable=False),
        sa.Column("call_uuid", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.Text(), nullable=True),
        sa.Column("source_hint", sa.Text(), nullable=True),
        sa.Column("producer", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_intake")),
    )
    op.create_index("ix_recording_intake_state_id", "recording_intake", ["state", "id"])


def downgrade() -> None:
    # Rows not yet drained would be lost by dropping the intake: refuse instead.
    bind = op.get_bind()
    waiting = bind.execute(
        sa.text("SELECT count(*) FROM recording_intake WHERE state = 'pending'")
    ).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} intake row(s) are not yet registered: run `tenios-archive run "
            "nightly` (it drains the intake) before downgrading"
        )
    op.drop_index("ix_recording_intake_state_id", table_name="recording_intake")
    op.drop_table("recording_intake")
