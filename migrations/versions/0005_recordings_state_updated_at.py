"""An index on (state, updated_at) so `ledger stats` answers "failed / archived in the
last 24 h" with an index range read, whatever the size of the ledger (issue 15).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_state_updated_at", "recordings", ["state", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_recordings_state_updated_at", table_name="recordings")
