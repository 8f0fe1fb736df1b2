"""Faults (issue 19): the database goes away, stays locked or fills up in the middle of a unit of work.

What must hold: nothing half-written, the caller told plainly (``is_database_outage``: the pages and
the API say "the database did not answer; nothing was saved; try again", the API with 503 and
Retry-After), and the next unit of work succeeds on its own once the database is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError

import crm_core.db
from crm_core.db import WRITE_OPTION, Database, make_engine
from crm_core.incidents import is_database_outage
from crm_core.models import Customer
from crm_core.schema import upgrade_to_head
from crm_core.services.customers import CustomerInput, create_customer
from tests.api.conftest import build_client
from tests.conftest import live_database
from tests.factories import World, build_world, create_random_customer


def customers_named(db: Database, prefix: str) -> int:
    with db.system_session("test") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name.like(f"{prefix}%")))
                   or 0)


@pytest.fixture
def impatient_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A SQLite file whose writers give up after 0.2 s instead of 30 (the same code path, sooner)."""
    monkeypatch.setattr(crm_core.db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    upgrade_to_head(engine)
    yield Database(engine)
    engine.dispose()


def hold_write_lock(engine: Engine):  # type: ignore[no-untyped-def]
    """Another process's long import: a connection holding SQLite's write lock until released."""
    holder = engine.connect().execution_options(**{WRITE_OPTION: True})
    return holder, holder.begin()


def test_sqlite_locked_past_the_busy_timeout_is_an_outage_nothing_written_and_it_recovers(
    impatient_sqlite: Database,
) -> None:
    world = build_world(impatient_sqlite)
    holder, held = hold_write_lock(impatient_sqlite.engine)
    try:
        with pytest.raises(OperationalError) as refused:
            create_customer(impatient_sqlite, world.rep,
                            CustomerInput(name="Locked Out Ltd", owner_id=world.rep.user_id))
        assert is_database_outage(refused.value) and "locked" in str(refused.value.orig)
    finally:
        held.rollback()
        holder.close()
    assert customers_named(impatient_sqlite, "Locked Out") == 0
    create_customer(impatient_sqlite, world.rep, CustomerInput(name="Locked Out Ltd", owner_id=world.rep.user_id))
    assert customers_named(impatient_sqlite, "Locked Out") == 1


def test_a_full_disk_is_an_outage_nothing_written_and_it_recovers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    with engine.connect() as connection:
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
    engine.dispose()
    small = make_engine(url)  # the disk: a few pages more than the database uses now

    @event.listens_for(small, "connect")
    def limit(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 3}")

    full = Database(small)
    with pytest.raises(OperationalError) as refused, full.transaction(world.rep) as session:
        session.add_all(Customer(name=f"Filler {n} " + "x" * 180, owner_id=world.rep.user_id) for n in range(2000))
    assert is_database_outage(refused.value) and "full" in str(refused.value.orig)
    small.dispose()
    assert customers_named(db, "Filler") == 0  # all or nothing
    roomy = Database(make_engine(url))
    create_random_customer(roomy, world.rep, name="Filler after space was freed")
    assert customers_named(roomy, "Filler") == 1
    roomy.engine.dispose()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with live_database("postgresql", tmp_path_factory, "faults") as db:
        yield db


def test_postgres_terminating_the_backend_mid_transaction_writes_nothing_and_the_pool_recovers(
    postgres: Database,
) -> None:
    world = build_world(postgres)
    admin = make_engine(postgres.engine.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(Exception) as refused, postgres.transaction(world.rep) as session:
            session.add(Customer(name="Half Written GmbH", owner_id=world.rep.user_id))
            session.flush()
            backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as killer:  # the server restarts, an operator kills the query
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            session.add(Customer(name="Half Written GmbH 2", owner_id=world.rep.user_id))
        assert is_database_outage(refused.value)
    finally:
        admin.dispose()
    assert customers_named(postgres, "Half Written") == 0
    create_random_customer(postgres, world.rep, name="Half Written, written after")  # a fresh connection
    assert customers_named(postgres, "Half Written") == 1


def test_the_api_answers_503_with_retry_after_while_the_database_is_locked(impatient_sqlite: Database) -> None:
    from crm_core.services.api_tokens import issue_api_token

    world: World = build_world(impatient_sqlite)
    token = issue_api_token(impatient_sqlite, world.rep, name="faults", scope="read_write", expires_in_days=None)
    client = build_client(impatient_sqlite)
    headers = {"Authorization": f"Bearer {token.secret}", "Accept-Language": "zh-CN"}
    holder, held = hold_write_lock(impatient_sqlite.engine)
    try:
        answer = client.post("/api/v1/customers", json={"name": "Busy Co"}, headers=headers)
    finally:
        held.rollback()
        holder.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    body = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "数据库暂时没有响应" in body["detail"] and body["correlation_id"] in body["detail"]
    assert "Traceback" not in answer.text and "locked" not in answer.text  # no internals
    again = client.post("/api/v1/customers", json={"name": "Busy Co"}, headers=headers)
    assert again.status_code == 201
