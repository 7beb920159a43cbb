"""Releases of SFTP drop files in flight: a row is written with the
``release_intended`` custody event before the file is moved or deleted, and removed
with ``released_from_source``, so the next sweep finds (and finishes or records) a
release a crash interrupted, even when the file is already gone (issue 11).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_releases",
        sa.Column("recording_uuid", sa.String(36), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source_mtime", sa.Float(), nullable=True),
        sa.Column("intended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recording_uuid", name=op.f("pk_source_releases")),
    )


def downgrade() -> None:
    # A release in flight would lose its record of intent: refuse instead.
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM source_releases")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} SFTP release(s) are in flight: run `tenios-archive run nightly` "
            "(its sweep finishes them) before downgrading"
        )
    op.drop_table("source_releases")
