"""Shared fixtures: one ``db`` per supported database, each test inside a rolled-back transaction.

SQLite always runs. PostgreSQL and MariaDB run when ``CRM_TEST_POSTGRES_URL`` and
``CRM_TEST_MYSQL_URL`` are set (``.ci/run`` and ``make test`` set them when the servers
answer); otherwise those tests skip and say why. When a URL is set but the server does
not answer, the tests fail: a configured database must not be skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, text

os.environ.setdefault("CRM_BCRYPT_ROUNDS", "4")  # tests hash many passwords; production uses 12

from crm_core.db import Database, make_engine  # noqa: E402
from crm_core.schema import upgrade_to_head  # noqa: E402

DATABASE_ENV = {"postgresql": "CRM_TEST_POSTGRES_URL", "mysql": "CRM_TEST_MYSQL_URL"}


def reset_schema(engine: Engine) -> None:
    """Drop every table (ours and Alembic's) and migrate from empty to head."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "mysql":
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
            for table in metadata.tables.values():
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS `{table.name}`")
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")
        elif engine.dialect.name == "postgresql":
            for table in metadata.tables.values():
                connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        else:
            metadata.drop_all(connection)
    upgrade_to_head(engine)


def database_url(kind: str, tmp_dir: Path) -> str:
    """The URL for ``kind``, or a skip when its server is not configured."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_dir / 'test.db'}"
    url = os.environ.get(DATABASE_ENV[kind])
    if not url:
        pytest.skip(f"{DATABASE_ENV[kind]} is not set: no {kind} server configured for tests")
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "mysql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated, empty database of each kind, shared by the session."""
    url = database_url(request.param, tmp_path_factory.mktemp(request.param))
    engine = make_engine(url)
    reset_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Database]:
    """A Database whose every session joins one outer transaction, rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    try:
        yield Database(connection)
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A fresh SQLite file database at head, for tests that need real commits."""
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    upgrade_to_head(engine)
    yield Database(engine)
    engine.dispose()
