"""Schema management: bring any supported database to the Alembic head.

Alembic is imported by the functions that migrate, not by the module: the web host only asks "is the
database at the code's head?" (its readiness check, the API's status), and answers it from the migration
files' own lines and the ``alembic_version`` table, without loading Alembic and every migration module
(about 14 MB per replica, issue 15's memory budget).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from crm_core.config import PROJECT_ROOT

if TYPE_CHECKING:
    from alembic.config import Config

VERSIONS = PROJECT_ROOT / "crm_core" / "migrations" / "versions"
_REVISION = re.compile(r"""^revision(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"""^down_revision(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.MULTILINE)


def alembic_config() -> Config:
    """The project's Alembic configuration (``alembic.ini`` at the repository root)."""
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "crm_core" / "migrations"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration: the one no other migration names as its ``down_revision``.

    Read from the files' ``revision`` and ``down_revision`` lines (the chain is linear);
    tests/integration/test_migration_chain.py holds it equal to Alembic's own head.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found.group(1))
        if parent := _DOWN_REVISION.search(source):
            parents.add(parent.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None when empty): Alembic's own ``alembic_version`` row."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine, direction: str = "upgrade", revision: str = "head") -> None:
    """Run Alembic ``direction`` (upgrade/downgrade) to ``revision`` in one transaction.

    On SQLite, a migration that adds a foreign key rebuilds its table (copy, drop, rename: Alembic's
    batch mode), and dropping a table that other rows reference fails while foreign keys are enforced.
    So, as SQLite's own procedure for such changes says, enforcement is off during the migration (the
    pragma only changes outside a transaction), every reference is checked before the commit
    (``PRAGMA foreign_key_check``: a broken one rolls everything back), and it is on again after.
    """
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        # straight on the driver's connection, which is in autocommit: SQLAlchemy's own statements
        # here open a transaction first (crm_core.db._sqlite_begin), where the pragma does nothing
        raw = connection.connection.dbapi_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                getattr(command, direction)(config, revision)
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"the migration left {len(broken)} broken references, first {broken[0]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after). Idempotent."""
    before = current_revision(engine)
    migrate(engine, "upgrade", "head")
    return before, head_revision()
