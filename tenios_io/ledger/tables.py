"""The ledger's tables (SQLAlchemy Core metadata; Alembic's ``target_metadata``).

``recordings`` is the work queue: one row per recording_uuid, its current state.
``custody_queue`` holds custody events written but not yet sequenced: writers insert
there in the same transaction as their state change, and the sequencer moves them
into ``custody_events`` (see sequencer.py).
``custody_events`` is the audit record: append-only, hash-chained.
``source_releases`` holds the SFTP releases in flight: written with the
``release_intended`` event before a drop file is moved or deleted, removed with
``released_from_source`` (tenios_io/sftp/release.py).
``drop_sightings`` holds what the sweeps saw of each drop file (size, mtime, since
when unchanged by the database clock): the drop's stability check (sightings.py).
``recording_intake`` is the producers' door: other systems INSERT recording ids there
with plain SQL, and every run drains it through the normal registration (intake.py).
``ledger_identity`` holds this ledger's id (one row), which the archive bucket keeps
too (identity.py): a ledger and a bucket prefix know each other.
``manifest_queue`` holds the archived recordings whose batch's custody manifest is not
in the bucket yet (manifests.py): the next run writes what a crash left.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)
TS = sa.DateTime(timezone=True)

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("recording_uuid", sa.String(36), primary_key=True),
    sa.Column("call_uuid", sa.String(36), nullable=True, index=True),
    sa.Column("source_hint", sa.String(16), nullable=False, server_default="api"),
    sa.Column("source_path", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("lease_token", sa.String(36), nullable=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", TS, nullable=True),
    sa.Column("discovered_at", TS, nullable=False),
    sa.Column("recorded_at", TS, nullable=True),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("content_type", sa.String(100), nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("s3_bucket", sa.String(255), nullable=True),
    sa.Column("s3_key", sa.Text, nullable=True),
    sa.Column("s3_version_id", sa.String(1024), nullable=True),
    sa.Column("retention_mode", sa.String(16), nullable=True),
    sa.Column("retain_until", TS, nullable=True),
    sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fetched_at", TS, nullable=True),
    sa.Column("archived_at", TS, nullable=True),
    sa.Column("last_verified_at", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    # How many times a lease on this recording expired before its worker finished
    # (the worker died); counted when the lease is rescued.
    sa.Column("lease_expiries", sa.Integer, nullable=False, server_default="0"),
    # What validation learnt from the container before upload (tenios_io/recording/validation.py).
    sa.Column("codec", sa.String(32), nullable=True),
    sa.Column("channels", sa.SmallInteger, nullable=True),
    sa.Column("sample_rate", sa.Integer, nullable=True),
    sa.Column("duration_seconds", sa.Float, nullable=True),
    # Claims read the due-pending and the expired-lease rows through these two
    # indexes, in index order, so a claim costs the same at any backlog size.
    sa.Index("ix_recordings_state_next_attempt_at", "state", "next_attempt_at"),
    sa.Index("ix_recordings_state_lease_expires_at", "state", "lease_expires_at"),
    # What changed recently, by state: `ledger stats` (failed / archived in the last 24 h).
    sa.Index("ix_recordings_state_updated_at", "state", "updated_at"),
    # Content already archived under another id: one probe at archive time (issue 25).
    sa.Index("ix_recordings_sha256", "sha256"),
)

custody_queue = sa.Table(
    "custody_queue",
    metadata,
    # Insertion order; the sequencer integrates in this order what is committed.
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("recording_uuid", sa.String(36), nullable=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("occurred_at", sa.String(32), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)

custody_events = sa.Table(
    "custody_events",
    metadata,
    # seq is assigned under the chain-head lock (prev seq + 1), so it is gap-free and
    # part of the hashed content: deleting or reordering events breaks the chain.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("recording_uuid", sa.String(36), nullable=True, index=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("occurred_at", sa.String(32), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
)

recording_intake = sa.Table(
    "recording_intake",
    metadata,
    # An identity column: a producer role with INSERT on this table alone can insert
    # (PostgreSQL checks no sequence privilege for identity columns), and drains take
    # rows in arrival order.
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.Identity(),
        primary_key=True,
    ),
    # Text, not typed columns, and no unique constraint: whatever a producer sends is
    # accepted (a duplicate insert must never fail), then validated by the drain, which
    # keeps a malformed row as ``rejected`` with its reason.
    sa.Column("recording_uuid", sa.Text, nullable=False),
    sa.Column("call_uuid", sa.Text, nullable=True),
    sa.Column("recorded_at", sa.Text, nullable=True),
    sa.Column("source_hint", sa.Text, nullable=True),
    sa.Column("producer", sa.Text, nullable=True),
    sa.Column("received_at", TS, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_recording_intake_state_id", "state", "id"),
)

source_releases = sa.Table(
    "source_releases",
    metadata,
    # One release in flight per recording: its drop path, the after-action, and the
    # bytes it may release (the archived SHA-256 and size; the mtime the file had when
    # the run that archived it hashed it, if that run wrote the intent).
    sa.Column("recording_uuid", sa.String(36), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("source_mtime", sa.Float, nullable=True),
    sa.Column("intended_at", TS, nullable=False),
)

ledger_identity = sa.Table(
    "ledger_identity",
    metadata,
    # One row: this ledger's id (a UUID made by the migration, or adopted from the bucket
    # by `ledger restore --from-bucket`), written into the bucket at the first run.
    sa.Column("ledger_id", sa.String(36), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
)

drop_sightings = sa.Table(
    "drop_sightings",
    metadata,
    # One row per drop file the sweeps see: its size and mtime, since when (database
    # clock) they are unchanged, and whether its container was found complete then.
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("mtime", sa.Float, nullable=False),
    sa.Column("first_seen_at", TS, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
)

manifest_queue = sa.Table(
    "manifest_queue",
    metadata,
    # One row per archived recording not yet in a written custody manifest: inserted in
    # the transaction that archives it, deleted once its batch's manifest is in the
    # bucket.  A row left behind (a crash before the manifest) is written by the next run.
    sa.Column("recording_uuid", sa.String(36), primary_key=True),
    sa.Column("queued_at", TS, nullable=False, index=True),
)
