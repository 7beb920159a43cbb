"""What validation learnt about each archived recording: codec, channels, sample rate
and duration (issue 11: compliance reads "10 min 32 s of call, both channels").

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("codec", sa.String(32), nullable=True))
        batch.add_column(sa.Column("channels", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("sample_rate", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        for name in ("duration_seconds", "sample_rate", "channels", "codec"):
            batch.drop_column(name)
