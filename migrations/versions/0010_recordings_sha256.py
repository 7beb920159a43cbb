"""An index on recordings.sha256 so the archiver asks "is this content already archived
under another recording id?" at archive time with one index probe, whatever the size of
the ledger, and `audit reconcile` / the report find shared content without sorting the
table (issue 25, duplicate content).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_sha256", "recordings", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_recordings_sha256", table_name="recordings")
