"""``crm_core.bulk.write_behind`` on a real SQLite file: order, reserved ids, errors, the switch interval."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from contextlib import closing

import pytest
from sqlalchemy import text

from crm_core.bulk import WRITE_BEHIND_KEY, insert_returning_ids, insert_rows, write_behind
from crm_core.db import Database, wait_for_checkpoints
from crm_core.models import Base
from tests.factories import World, build_world


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


TASK_COLUMNS = ("tenant_id", "title", "status", "priority", "created_at", "updated_at")


NOW = dt.datetime(2026, 11, 25, 8, 0)


def task_rows(world: World, titles: list[str]) -> list[tuple[object, ...]]:
    return [(world.admin.tenant_id, title, "open", "normal", NOW, NOW) for title in titles]


def test_a_read_after_queued_inserts_sees_them_and_reserved_ids_match_the_rows(
    sqlite_db: Database, world: World
) -> None:
    tasks = Base.metadata.tables["tasks"]
    with sqlite_db.transaction(world.admin) as session, write_behind(session) as behind:
        assert behind is not None and session.info[WRITE_BEHIND_KEY] is behind
        first = insert_returning_ids(session, tasks, task_rows(world, ["a", "b"]), "title", columns=TASK_COLUMNS)
        insert_rows(session, tasks, task_rows(world, [f"bulk {n}" for n in range(2500)]), columns=TASK_COLUMNS)
        # an insert made outside the writer takes the next id: the following reservation reads it again
        session.execute(
            text("INSERT INTO tasks (tenant_id, title, status, priority, version, created_at, updated_at) "
                 "VALUES (:tenant, 'outside', 'open', 'normal', 1, '2026-11-25', '2026-11-25')"),
            {"tenant": world.admin.tenant_id},
        )
        second = insert_returning_ids(session, tasks, task_rows(world, ["c", "d"]), "title", columns=TASK_COLUMNS)
        titles = dict(session.execute(text("SELECT id, title FROM tasks WHERE title IN ('a','b','c','d','outside')")).all())
        count = session.execute(text("SELECT COUNT(*) FROM tasks WHERE title LIKE 'bulk %'")).scalar_one()
    assert [titles[record_id] for record_id in first + second] == ["a", "b", "c", "d"]
    assert count == 2500
    assert max(titles) == second[-1] and titles[second[0] - 1] == "outside"


def test_an_error_on_the_thread_behind_reaches_the_caller_and_the_transaction_rolls_back(
    sqlite_db: Database, world: World
) -> None:
    tasks = Base.metadata.tables["tasks"]
    interval = sys.getswitchinterval()
    with pytest.raises(sqlite3.IntegrityError), sqlite_db.transaction(world.admin) as session:
        with write_behind(session):
            assert sys.getswitchinterval() < interval
            insert_rows(session, tasks, task_rows(world, ["kept until the rollback"]), columns=TASK_COLUMNS)
            insert_rows(session, tasks, [(world.admin.tenant_id, None, "open")], columns=("tenant_id", "title", "status"))
            insert_rows(session, tasks, task_rows(world, ["never run"]), columns=TASK_COLUMNS)
    assert sys.getswitchinterval() == interval
    with sqlite_db.system_session("test") as session:
        assert session.execute(text("SELECT COUNT(*) FROM tasks")).scalar_one() == 0


def test_other_databases_write_in_the_caller(db: Database, world_db: World) -> None:
    with db.transaction(world_db.admin) as session, write_behind(session) as behind:
        if db.dialect_name == "sqlite":
            assert behind is not None
        else:
            assert behind is None and WRITE_BEHIND_KEY not in session.info


@pytest.fixture
def world_db(db: Database) -> World:
    return build_world(db)


def test_a_bulk_transaction_checkpoints_after_its_commit_and_gives_the_connection_its_checkpoints_back(
    sqlite_db: Database, world: World
) -> None:
    tasks = Base.metadata.tables["tasks"]
    with sqlite_db.bulk_transaction(world.admin) as session:
        raw = session.connection().connection.driver_connection
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # type: ignore[union-attr]
        insert_rows(session, tasks, task_rows(world, [f"logged {n}" for n in range(5000)]), columns=TASK_COLUMNS)
    wait_for_checkpoints()
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # type: ignore[union-attr]
    # the database file itself (read without the log) holds the rows: the checkpoint after the commit ran
    path = sqlite_db.engine.url.database
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as file_only:
        assert file_only.execute("SELECT COUNT(*) FROM tasks WHERE title LIKE 'logged %'").fetchone()[0] == 5000
    with sqlite_db.system_session("test") as session:
        assert session.execute(text("SELECT COUNT(*) FROM tasks WHERE title LIKE 'logged %'")).scalar_one() == 5000
