"""Alembic, driven from code: upgrade, downgrade, current revision, and the
"is this database migrated?" preflight check.

The migration scripts live in the top-level ``migrations/`` folder of a source
checkout; a wheel carries them as ``tenios_io/migrations`` (see pyproject.toml).
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tenios_io.exceptions import ConfigError, LedgerUnavailable, SchemaNotCurrent
from tenios_io.ledger.engine import create_ledger_engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako and Pygments) costs most of a second to import: it is loaded only
# to migrate.  The preflight every command runs reads the revision itself.


def migrations_dir() -> Path:
    """Where the Alembic scripts are (source checkout or installed wheel)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "migrations", here.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigError("the Alembic migrations folder is missing from this installation")


def alembic_config(database_url: str) -> Config:
    """An Alembic Config for ``database_url`` without needing an alembic.ini."""
    from alembic.config import Config

    # Config's ``stdout`` defaults to the sys.stdout of the moment alembic.config was
    # first imported; under a captured test that stream is closed by the next call.
    # Hand it the current one, every time.
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (creating the SQLite file if needed)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


@cache
def head_revision() -> str | None:
    """The newest revision in the scripts: the one no script names as its
    ``down_revision``, read from the scripts' ``revision`` / ``down_revision`` lines
    (tests/migration checks this equals Alembic's own answer)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((migrations_dir() / "versions").glob("*.py")):
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                value = node.value.value
                if "revision" in names and isinstance(value, str):
                    revisions.add(value)
                if "down_revision" in names and isinstance(value, str):
                    parents.add(value)
    heads = sorted(revisions - parents)
    if len(heads) > 1:
        raise ConfigError(f"the migrations have several heads ({', '.join(heads)})")
    return heads[0] if heads else None


def missing_sqlite_file(database_url: str) -> Path | None:
    """The SQLite ledger file the URL names when it does not exist (else None): a
    read-only command must say so, not leave an empty ledger file behind."""
    try:
        url = make_url(database_url)
    except (sa.exc.ArgumentError, ValueError):
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.exists() else path


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated, or no such SQLite file —
    which is not created)."""
    if missing_sqlite_file(database_url) is not None:
        return None
    engine = create_ledger_engine(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            # Alembic's version table (one row; none after a downgrade to base).
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])
    except LedgerUnavailable as exc:
        shown = make_url(database_url).render_as_string(hide_password=True)
        reason = str(exc).removeprefix("ledger database unavailable: ")
        raise ConfigError(
            f"TENIOS_DATABASE_URL: cannot open the ledger database {shown} ({reason})",
            variable="TENIOS_DATABASE_URL",
        ) from None
    finally:
        engine.dispose()


def require_current(database_url: str) -> None:
    """SchemaNotCurrent unless the database is at the head revision."""
    missing = missing_sqlite_file(database_url)
    if missing is not None:
        raise SchemaNotCurrent(
            f"the ledger database file {missing} does not exist: check TENIOS_DATABASE_URL, "
            "or create it with `tenios-archive db upgrade`"
        )
    current, head = current_revision(database_url), head_revision()
    if current != head:
        state = "has never been migrated" if current is None else f"is at revision {current}"
        raise SchemaNotCurrent(
            f"the ledger database {state}, this version needs {head}: "
            "run `tenios-archive db upgrade`"
        )
