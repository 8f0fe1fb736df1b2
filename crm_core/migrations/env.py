"""Alembic environment: migrates the database named by CRM_DATABASE_URL, or the
connection handed over in ``config.attributes["connection"]`` (tests, ``crm_core init``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from crm_core.config import default_database_url
from crm_core.db import make_engine, refresh_planner_statistics
from crm_core.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    upgraded: list[str] = []
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        on_version_apply=lambda *, step, **_: upgraded.append(step.up_revision_id) if step.is_upgrade else None,
    )
    with context.begin_transaction():
        context.run_migrations()
        if upgraded and connection.dialect.name == "postgresql":
            # a migrated (or restored) PostgreSQL database has no statistics, and a new index
            # expression has none until ANALYZE: the planner would guess (``alembic upgrade`` and
            # ``crm_core init`` both come here; init refreshes the other databases itself)
            refresh_planner_statistics(connection)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or default_database_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=default_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
