"""Shared fixtures: one ``db`` per supported database, each test inside a rolled-back transaction.

SQLite always runs. PostgreSQL and MariaDB run when ``CRM_TEST_POSTGRES_URL`` and
``CRM_TEST_MYSQL_URL`` are set (``.ci/run`` and ``make test`` set them when the servers
answer); otherwise those tests skip and say why. When a URL is set but the server does
not answer, the tests fail: a configured database must not be skipped silently.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, event, make_url, text

os.environ.setdefault("CRM_BCRYPT_ROUNDS", "4")  # tests hash many passwords; production uses 12
# Commands that run as jobs (import, check, migrate, score …) run them in the test's own process, as
# `--inline` does: only tests/integration/test_jobs*.py are about the worker, and start a real one.
os.environ.setdefault("CRM_JOBS_INLINE", "1")
# Uploads waiting for their job go to a directory of this test run, never to data/files.
if "CRM_FILES_DIR" not in os.environ:
    os.environ["CRM_FILES_DIR"] = tempfile.mkdtemp(prefix="kestrel-test-files-")
    atexit.register(shutil.rmtree, os.environ["CRM_FILES_DIR"], True)

from crm_core.backup import scratch_database  # noqa: E402
from crm_core.db import Database, make_engine  # noqa: E402
from crm_core.schema import upgrade_to_head  # noqa: E402
from tests.mail_sink import Sink, running_sink  # noqa: E402

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
        if os.environ.get("CRM_REQUIRE_ALL_DATABASES"):
            pytest.fail(f"{DATABASE_ENV[kind]} must be set: CI requires every database")
        pytest.skip(f"{DATABASE_ENV[kind]} is not set: no {kind} server configured for tests")
    return url


@contextmanager
def private_database(url: str) -> Iterator[str]:
    """A database of its own on the server behind ``url``, dropped afterwards (SQLite: ``url`` itself).

    Several test runs (developers, CI, helpers) may share one server; each gets its own
    database so that no run drops another's tables. The backup drill's scratch database does it.
    """
    if make_url(url).get_backend_name() == "sqlite":
        yield url
        return
    with scratch_database(url, prefix=f"crm_test_{os.getpid()}") as private_url:
        yield private_url


@contextmanager
def live_database(kind: str, tmp_path_factory: pytest.TempPathFactory, name: str,
                  **engine_options: object) -> Iterator[Database]:
    """An engine-bound database of ``kind`` (real commits, parallel connections), private to the caller."""
    url = database_url(kind, tmp_path_factory.mktemp(f"{name}-{kind}"))
    with private_database(url) as private_url:
        engine = make_engine(private_url, **engine_options)
        reset_schema(engine)
        yield Database(engine)
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Engine]]:
    """One migrated, empty database of each kind for the whole session, made on first use.

    Not a parametrized session fixture: pytest keeps one instance of those at a time, so each switch of kind
    tore the database down and migrated a new one — under xdist's ``--dist loadfile`` at nearly every file."""
    engines: dict[str, Engine] = {}
    with ExitStack() as stack:
        def get(kind: str) -> Engine:
            if kind not in engines:
                url = database_url(kind, tmp_path_factory.mktemp(kind))
                engine = make_engine(stack.enter_context(private_database(url)))
                stack.callback(engine.dispose)
                reset_schema(engine)
                engines[kind] = engine
            return engines[kind]

        yield get


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def engine(request: pytest.FixtureRequest, migrated_engines: Callable[[str], Engine]) -> Engine:
    """A migrated, empty database of each kind, shared by the session (tests write inside ``db``'s transaction)."""
    return migrated_engines(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session: tests that need a database file of their own copy it."""
    path = tmp_path_factory.mktemp("template") / "head.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()  # the last connection's close checkpoints the WAL into the file
    return path


@contextmanager
def sent_statements(target: Engine | type[Engine] = Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement, with its parameters, that ``target`` sends meanwhile (as the server receives it):
    one engine, or by default every engine of this process (an app's own included)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(target, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(target, "before_cursor_execute", record)


def fresh_sqlite(template: Path, path: Path) -> str:
    """A copy of the migrated ``template`` at ``path``; its URL."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Database]:
    """A Database whose every session joins one outer transaction, rolled back when the block ends."""
    connection = engine.connect()
    transaction = connection.begin()
    try:
        yield Database(connection)
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture
def db(engine: Engine) -> Iterator[Database]:
    """A Database whose every session joins one outer transaction, rolled back after the test."""
    with rolled_back(engine) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A fresh SQLite file database at head, for tests that need real commits."""
    engine = make_engine(fresh_sqlite(sqlite_template, tmp_path / "crm.db"))
    yield Database(engine)
    engine.dispose()


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    """An aiosmtpd sink on a free local port: (what it kept, its port)."""
    with running_sink() as running:
        yield running
