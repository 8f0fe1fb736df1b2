"""Schema management: bring any supported database to the Alembic head."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from crm_core.config import PROJECT_ROOT


def alembic_config() -> Config:
    """The project's Alembic configuration (``alembic.ini`` at the repository root)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "crm_core" / "migrations"))
    return config


def head_revision() -> str:
    """The newest migration."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None when empty)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, direction: str = "upgrade", revision: str = "head") -> None:
    """Run Alembic ``direction`` (upgrade/downgrade) to ``revision`` in one transaction.

    On SQLite, a migration that adds a foreign key rebuilds its table (copy, drop, rename: Alembic's
    batch mode), and dropping a table that other rows reference fails while foreign keys are enforced.
    So, as SQLite's own procedure for such changes says, enforcement is off during the migration (the
    pragma only changes outside a transaction), every reference is checked before the commit
    (``PRAGMA foreign_key_check``: a broken one rolls everything back), and it is on again after.
    """
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
