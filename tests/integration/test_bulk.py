"""``crm_core.bulk`` on every database: ids pair with their rows across statements, errors roll back."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_core.bulk import INSERT_BATCH, insert_returning_ids, insert_rows
from crm_core.db import Database
from crm_core.models import Base
from tests.factories import World, build_world

TASK_COLUMNS = ("tenant_id", "title", "status", "priority", "created_at", "updated_at")
NOW = dt.datetime(2026, 11, 25, 8, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def task_rows(world: World, titles: list[str]) -> list[tuple[object, ...]]:
    return [(world.admin.tenant_id, title, "open", "normal", NOW, NOW) for title in titles]


def test_returned_ids_pair_with_their_rows_over_several_statements(db: Database, world: World) -> None:
    tasks = Base.metadata.tables["tasks"]
    titles = [f"bulk task {n:05d}" for n in range(INSERT_BATCH * 2 + 7)]  # three multi-row INSERTs
    with db.transaction(world.admin) as session:
        ids = insert_returning_ids(session, tasks, task_rows(world, titles), "title", columns=TASK_COLUMNS)
        as_dicts = insert_returning_ids(
            session, tasks, [dict(zip(TASK_COLUMNS, row, strict=True)) for row in task_rows(world, ["by dict"])],
            "title",
        )
        stored: dict[int, str] = dict(
            session.execute(text("SELECT id, title FROM tasks WHERE title LIKE 'bulk task %'")).all()
        )
        version = session.execute(text("SELECT version FROM tasks WHERE id = :id"), {"id": as_dicts[0]}).scalar_one()
    assert [stored[record_id] for record_id in ids] == titles
    assert ids == sorted(ids) and len(set(ids)) == len(titles)
    assert version == 1  # the table's scalar default filled in


def test_a_refused_row_raises_where_it_is_inserted_and_the_transaction_keeps_nothing(
    db: Database, world: World
) -> None:
    tasks = Base.metadata.tables["tasks"]
    with pytest.raises(DBAPIError), db.transaction(world.admin) as session:
        insert_rows(session, tasks, task_rows(world, ["kept until the rollback"]), columns=TASK_COLUMNS)
        insert_rows(session, tasks, [(world.admin.tenant_id, None, "open")], columns=("tenant_id", "title", "status"))
    with db.system_session("test") as session:
        count = session.execute(
            text("SELECT COUNT(*) FROM tasks WHERE title = 'kept until the rollback'")
        ).scalar_one()
    assert count == 0
