"""Engine and session factory.

The session's lifecycle is external to the functions that use it: services open
``with db.transaction(actor) as session:`` and query functions take ``session``.
Every session carries who is acting (an :class:`~crm_core.access.Actor`) or an
explicit ``system`` reason; :mod:`crm_core.access` refuses ORM work on a session
with neither, so a forgotten scope fails loudly instead of leaking another tenant.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from crm_core import access
from crm_core.config import DEFAULT_SQLITE_PATH


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite turn on WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite://" and ":memory:" not in url:
            DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkin", _restore_autocheckpoint)
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
        return engine
    if url.startswith("mysql") or url.startswith("mariadb"):
        kwargs.setdefault("pool_recycle", 3600)
        if "charset=" not in url:
            url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # the access layer's "customer_id IN (visible customers)" builds a temporary index; in memory
    # it is about twice as fast as in a temp file (manager's revenue trend, 1M customers)
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


_CHECKPOINT_DEFERRED = "crm_checkpoint_deferred"  # pool record info: autocheckpoint off until checkin
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
_checkpoints: list[threading.Thread] = []


def _restore_autocheckpoint(dbapi_connection: Any, record: Any) -> None:
    if record is not None and record.info.pop(_CHECKPOINT_DEFERRED, False):
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def wait_for_checkpoints() -> None:
    """Wait for the WAL checkpoints :meth:`Database.bulk_transaction` started (benchmarks, tests)."""
    while _checkpoints:
        _checkpoints.pop().join()


class Database:
    """One database: an engine (or a test connection) and scoped session factories."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        options: dict[str, Any] = {"expire_on_commit": False}
        if isinstance(bind, Connection):
            # Tests: each session joins the outer transaction through a savepoint,
            # so even commit() is rolled back at the end of the test.
            options["join_transaction_mode"] = "create_savepoint"
        self._factory = sessionmaker(bind=bind, **options)

    @property
    def engine(self) -> Engine:
        """The engine behind this database."""
        return self.bind if isinstance(self.bind, Engine) else self.bind.engine

    @property
    def opens_connections(self) -> bool:
        """Whether sessions get connections of their own (an engine), not one shared test connection."""
        return isinstance(self.bind, Engine)

    @property
    def dialect_name(self) -> str:
        """sqlite, postgresql or mysql."""
        return self.engine.dialect.name

    def session(self, actor: access.Actor) -> Session:
        """A read session scoped to what ``actor`` may see."""
        session = self._factory()
        access.bind_actor(session, actor)
        return session

    def system_session(self, reason: str) -> Session:
        """An unscoped session for setup work (init, demo data, login checks); ``reason`` is audited."""
        session = self._factory()
        access.bind_system(session, reason)
        return session

    @contextmanager
    def transaction(self, actor: access.Actor) -> Iterator[Session]:
        """A unit of work for ``actor``: committed on success, rolled back on any error."""
        with self.session(actor) as session, session.begin():
            yield session

    @contextmanager
    def bulk_transaction(self, actor: access.Actor) -> Iterator[Session]:
        """:meth:`transaction` for a bulk write (an import): on SQLite its commit returns before the WAL checkpoint.

        A commit that leaves more than 1,000 pages in SQLite's write-ahead log copies them
        into the database file before it returns (an import of 100,000 customers: ~1.2 s of
        its ~10 s). Here that copy runs after the commit, on a connection and thread of its
        own (a PASSIVE checkpoint: readers and writers go on meanwhile), so the user sees the
        result as soon as it is durable in the log. The connection gets SQLite's automatic
        checkpoints back when it returns to the pool. A test's shared connection never
        commits: nothing to defer there.
        """
        deferred = False
        with self.transaction(actor) as session:
            if self.opens_connections and self.dialect_name == "sqlite":
                pooled = session.connection().connection
                pooled.info[_CHECKPOINT_DEFERRED] = True
                pooled.driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
                deferred = True
            yield session
        if deferred:
            thread = threading.Thread(target=_checkpoint, args=(self.bind,), name="crm-wal-checkpoint")
            _checkpoints[:] = [running for running in _checkpoints if running.is_alive()]
            _checkpoints.append(thread)
            thread.start()

    @contextmanager
    def system_transaction(self, reason: str) -> Iterator[Session]:
        """A unit of work outside any user's scope."""
        with self.system_session(reason) as session, session.begin():
            yield session


def open_database(url: str) -> Database:
    """Engine plus factories for ``url``."""
    return Database(make_engine(url))


def refresh_planner_statistics(engine: Engine) -> None:
    """ANALYZE after a bulk load, so the query planner picks the right indexes.

    SQLite in particular has no statistics until ANALYZE runs and then chooses among the
    tenant-first indexes blindly; ``analysis_limit`` keeps the run short on large tables.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA analysis_limit=2000")
            connection.exec_driver_sql("ANALYZE")
        elif engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
        else:
            from crm_core.models import Base

            names = ", ".join(f"`{name}`" for name in Base.metadata.tables)
            connection.exec_driver_sql(f"ANALYZE TABLE {names}")
