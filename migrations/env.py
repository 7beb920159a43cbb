"""Alembic environment: the URL is the caller's (tenios-archive db ...) or the
settings' TENIOS_DATABASE_URL; target_metadata is the ledger's tables."""

from __future__ import annotations

from alembic import context

from tenios_io.config import load_settings
from tenios_io.ledger.engine import create_ledger_engine
from tenios_io.ledger.tables import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_ledger_engine(_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
