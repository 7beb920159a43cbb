"""The ledger's id: a UUID kept in the ledger and written into the archive bucket at the
first run, so a second ledger pointed at the same bucket prefix is refused at the
preflight (issue 12 item 4).  An existing ledger gets its id here; its bucket gets it
at the next run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "ledger_identity",
        sa.Column("ledger_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", name=op.f("pk_ledger_identity")),
    )
    op.bulk_insert(table, [{"ledger_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("ledger_identity")
