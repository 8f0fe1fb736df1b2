"""Engine and session factory.

The session's lifecycle is external to the functions that use it: services open
``with db.transaction(actor) as session:`` and query functions take ``session``.
Every session carries who is acting (an :class:`~crm_core.access.Actor`) or an
explicit ``system`` reason; :mod:`crm_core.access` refuses ORM work on a session
with neither, so a forgotten scope fails loudly instead of leaking another tenant.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from crm_core import access
from crm_core.config import keep_private


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite turn on WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            keep_private(Path(database))
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("mysql") or url.startswith("mariadb"):
        kwargs.setdefault("pool_recycle", 3600)
        if "charset=" not in url:
            url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    if url.startswith("postgresql") and transaction_pooler():
        # psycopg prepares a statement on the server once a connection has run it 5 times; behind a pooler in
        # transaction mode the next transaction may get another server connection, which has no such statement
        kwargs.setdefault("connect_args", {"prepare_threshold": None})
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def transaction_pooler() -> bool:
    """``CRM_DATABASE_POOLER=transaction``: PostgreSQL is reached through a pooler in transaction mode (PgBouncer's
    ``pool_mode = transaction``), so no statement is prepared on the server (decision 0059)."""
    return os.environ.get("CRM_DATABASE_POOLER", "").strip().lower() == "transaction"


WRITE_OPTION = "crm_writes"  # execution option: this connection's transaction will write
SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another to finish before "database is locked"


def sqlite_busy_timeout_ms() -> int:
    """How long an SQLite writer waits for another: ``CRM_SQLITE_BUSY_TIMEOUT_MS``, else 30 s."""
    configured = os.environ.get("CRM_SQLITE_BUSY_TIMEOUT_MS", "")
    return int(configured) if configured.isascii() and configured.isdecimal() else SQLITE_BUSY_TIMEOUT_MS


def _sqlite_begin(connection: Connection) -> None:
    # A unit of work takes SQLite's write lock up front (BEGIN IMMEDIATE): a deferred transaction
    # that read first and then writes while another process writes fails at once with "database
    # is locked" instead of waiting its turn (busy_timeout does not apply to that upgrade).
    # Read sessions keep a plain BEGIN, so they never wait for a writer.
    immediate = connection.get_execution_options().get(WRITE_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={sqlite_busy_timeout_ms()}")
    # the access layer's "customer_id IN (visible customers)" builds a temporary index; in memory
    # it is about twice as fast as in a temp file (manager's revenue trend, 1M customers)
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


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
    def dialect_name(self) -> str:
        """sqlite, postgresql or mysql."""
        return self.engine.dialect.name

    def session(self, actor: access.Actor) -> Session:
        """A read session scoped to what ``actor`` may see."""
        session = self._factory()
        access.bind_actor(session, actor)
        return session

    def system_session(self, reason: str, *, tenant_id: int | None = None, beside: Session | None = None) -> Session:
        """An unscoped session for setup work (init, demo data, login checks); ``reason`` is audited.

        ``tenant_id``: the work is that tenant's (a job, a sweep): its ORM statements read and change that
        tenant's rows only, and name it (decision 0057). Core statements still name their tenant themselves.

        ``beside``: a unit of work this look-up belongs to (a duplicate check across the tenant, beyond the actor's
        scope): the session runs on its connection, inside its transaction (which it neither commits nor ends),
        and takes no second connection. One request holding a connection while it waits for another empties the
        pool under load — or a transaction pooler's few server connections (decision 0059) — and every such
        request then waits for the others."""
        session = self._factory() if beside is None else Session(bind=beside.connection(), expire_on_commit=False)
        access.bind_system(session, reason, tenant_id=tenant_id)
        return session

    @contextmanager
    def transaction(self, actor: access.Actor) -> Iterator[Session]:
        """A unit of work for ``actor``: committed on success, rolled back on any error."""
        with self.session(actor) as session, session.begin():
            self._claim_writes(session)
            yield session

    @contextmanager
    def system_transaction(self, reason: str, *, tenant_id: int | None = None) -> Iterator[Session]:
        """A unit of work outside any user's scope (of one tenant's rows with ``tenant_id``)."""
        with self.system_session(reason, tenant_id=tenant_id) as session, session.begin():
            self._claim_writes(session)
            yield session

    def _claim_writes(self, session: Session) -> None:
        if isinstance(self.bind, Engine) and self.dialect_name == "sqlite":
            session.connection(execution_options={WRITE_OPTION: True})


def open_database(url: str) -> Database:
    """Engine plus factories for ``url``."""
    return Database(make_engine(url))


def run_catalog_ddl(connection: Connection, statement: str) -> None:
    """Run DDL read back from the database's catalog (``pg_get_indexdef`` …) as it stands.

    psycopg and PyMySQL read ``%`` as the start of a placeholder even with no parameters, so a definition
    holding one (a partial index's ``LIKE '%.%'``, migration 0045) is escaped for them first.
    """
    if connection.dialect.paramstyle in ("pyformat", "format"):
        statement = statement.replace("%", "%%")
    connection.exec_driver_sql(statement)


def vacuum_rewritten(engine: Engine, models: Sequence[Any]) -> None:
    """PostgreSQL: ``VACUUM (ANALYZE)`` the tables of ``models`` after a job rewrote them (a rollup's swap replaces
    every row of a tenant). Their dead rows otherwise stay in the indexes until autovacuum comes, where it runs at
    all, and each read of a period visits them (a manager's 90-day funnel at 10M customers: 7,923 table pages
    instead of 226); their statistics come from it too. Outside a transaction, as VACUUM requires. SQLite and
    MariaDB need nothing."""
    if engine.dialect.name != "postgresql":
        return
    tables = ", ".join(model.__table__.name for model in models)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (ANALYZE) {tables}")


def refresh_planner_statistics(bind: Engine | Connection, *, bulk_loaded: bool = False) -> None:
    """ANALYZE after a bulk load or a migration, so the query planner picks the right indexes.

    SQLite in particular has no statistics until ANALYZE runs and then chooses among the
    tenant-first indexes blindly; ``analysis_limit`` keeps the run short on large tables.
    PostgreSQL's autovacuum analyzes a table only after enough changes and never an index
    expression a migration just added (the short-search GIN indexes' statistics tell the
    planner whether a one-character term is rare or everywhere). An engine runs it in a
    transaction of its own; a connection (a migration's) runs it in its current one.

    ``bulk_loaded`` (a demo load, a database copy: an engine) runs ``VACUUM (ANALYZE)`` on PostgreSQL instead.
    Until a vacuum marks the new pages all-visible, PostgreSQL cannot answer from an index alone: the
    dashboard's counts and sums, which the covering indexes hold, fetch every row from the table
    (the manager's new-customer count at 1M customers: 214 ms, 26 ms after the vacuum). Autovacuum
    would do it some minutes later where it runs at all; the first users of a loaded database come sooner.
    """
    if bulk_loaded and isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")  # not in a transaction: VACUUM refuses one
        return
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            refresh_planner_statistics(connection)
        return
    connection = bind
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit=2000")
        connection.exec_driver_sql("ANALYZE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE")
    else:
        from crm_core.models import Base

        names = ", ".join(f"`{name}`" for name in Base.metadata.tables)
        connection.exec_driver_sql(f"ANALYZE TABLE {names}")
