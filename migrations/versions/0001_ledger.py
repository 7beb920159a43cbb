"""The ledger: recordings (current state) and custody_events (append-only, hash-chained).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

APPEND_ONLY_FN = """
CREATE OR REPLACE FUNCTION custody_events_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'custody_events is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_uuid", sa.String(36), nullable=False),
        sa.Column("call_uuid", sa.String(36), nullable=True),
        sa.Column("source_hint", sa.String(16), server_default="api", nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("discovered_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("s3_bucket", sa.String(255), nullable=True),
        sa.Column("s3_key", sa.Text(), nullable=True),
        sa.Column("s3_version_id", sa.String(1024), nullable=True),
        sa.Column("retention_mode", sa.String(16), nullable=True),
        sa.Column("retain_until", TS, nullable=True),
        sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fetched_at", TS, nullable=True),
        sa.Column("archived_at", TS, nullable=True),
        sa.Column("last_verified_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("recording_uuid", name=op.f("pk_recordings")),
    )
    op.create_index(op.f("ix_recordings_call_uuid"), "recordings", ["call_uuid"])
    op.create_index(
        "ix_recordings_state_next_attempt_at", "recordings", ["state", "next_attempt_at"]
    )
    op.create_table(
        "custody_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("recording_uuid", sa.String(36), nullable=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_custody_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_custody_events_hash")),
    )
    op.create_index(
        op.f("ix_custody_events_recording_uuid"), "custody_events", ["recording_uuid"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FN)
        op.execute(
            "CREATE TRIGGER custody_events_no_update_delete BEFORE UPDATE OR DELETE "
            "ON custody_events FOR EACH ROW EXECUTE FUNCTION custody_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER custody_events_no_truncate BEFORE TRUNCATE "
            "ON custody_events FOR EACH STATEMENT EXECUTE FUNCTION custody_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS custody_events_no_truncate ON custody_events")
        op.execute("DROP TRIGGER IF EXISTS custody_events_no_update_delete ON custody_events")
        op.execute("DROP FUNCTION IF EXISTS custody_events_append_only()")
    op.drop_index(op.f("ix_custody_events_recording_uuid"), table_name="custody_events")
    op.drop_table("custody_events")
    op.drop_index("ix_recordings_state_next_attempt_at", table_name="recordings")
    op.drop_index(op.f("ix_recordings_call_uuid"), table_name="recordings")
    op.drop_table("recordings")
