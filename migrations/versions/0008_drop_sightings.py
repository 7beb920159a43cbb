"""Sightings of SFTP drop files: the size and mtime each sweep saw, and since when (by
the database's clock) they have not changed, so a file is "stable" when it is unchanged
across two sightings at least TENIOS_SFTP_SETTLE_SECONDS apart, whatever the clocks of
the archiver's host and the SFTP server say (issue 11).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drop_sightings",
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complete", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_drop_sightings")),
    )


def downgrade() -> None:
    # Only observations: the next sweep sights every file again (and waits the settle time).
    op.drop_table("drop_sightings")
