"""The ledger's id: one UUID, made by the migration, kept in ``ledger_identity``.

The archive bucket keeps the same id (``tenios_io.publish.identity``), so a ledger and a
bucket prefix know each other: a second ledger pointed at a bucket prefix that already
holds another ledger's custody history is refused before it does any work.
``ledger restore --from-bucket`` adopts the bucket's id (:func:`adopt_ledger_id`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tenios_io.exceptions import SchemaNotCurrent
from tenios_io.ledger.records import utc_now
from tenios_io.ledger.tables import ledger_identity


def read_ledger_id(engine: Engine) -> str:
    """This ledger's id; SchemaNotCurrent if it has none (not migrated with this version)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(ledger_identity.c.ledger_id).order_by(ledger_identity.c.created_at).limit(1)
        ).scalar_one_or_none()
    if found is None:
        raise SchemaNotCurrent(
            "the ledger has no ledger id (table ledger_identity is empty): run "
            "`tenios-archive db upgrade` on a fresh database, or restore it with "
            "`tenios-archive ledger restore --from-bucket`"
        )
    return str(found)


def adopt_ledger_id(conn: Connection, ledger_id: str) -> None:
    """Make ``ledger_id`` this ledger's id (inside the caller's write transaction)."""
    conn.execute(ledger_identity.delete())
    conn.execute(ledger_identity.insert().values(ledger_id=ledger_id, created_at=utc_now()))
