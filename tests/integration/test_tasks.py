"""Task use cases and queries on every database: buckets, complete, reschedule, reassign."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from crm_core.db import Database
from crm_core.errors import AccessDenied, StaleRecord, ValidationFailed
from crm_core.models import utcnow
from crm_core.queries.tasks import TaskFilters, bucket_counts, list_tasks, task_overview
from crm_core.services.activities import ActivityInput
from crm_core.services.tasks import (
    TaskInput,
    complete_task,
    create_task,
    reassign_task,
    reschedule_task,
)
from tests.factories import World, build_world, create_random_customer

NOW = dt.datetime(2030, 6, 15, 12, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def add(db: Database, world: World, title: str, due: dt.datetime | None) -> int:
    return create_task(db, world.rep, TaskInput(title=title, due_at=due))


def test_open_tasks_fall_into_overdue_today_and_upcoming_buckets(db: Database, world: World) -> None:
    add(db, world, "yesterday", dt.datetime(2030, 6, 14, 23, 59))
    add(db, world, "midnight", dt.datetime(2030, 6, 15, 0, 0))
    add(db, world, "tonight", dt.datetime(2030, 6, 15, 23, 59))
    add(db, world, "tomorrow", dt.datetime(2030, 6, 16, 0, 0))
    add(db, world, "someday", None)
    with db.session(world.rep) as session:
        counts = bucket_counts(session, assignee_id=world.rep.user_id, now=NOW)
        titles = {
            view: [
                row.title for row in list_tasks(session, filters=TaskFilters(world.rep.user_id, view), now=NOW).items
            ]
            for view in ("overdue", "today", "upcoming")
        }
        sql_overdue = session.execute(
            text("SELECT COUNT(*) FROM tasks WHERE assignee_id = :user AND status = 'open' AND due_at < :start"),
            {"user": world.rep.user_id, "start": dt.datetime(2030, 6, 15)},
        ).scalar()
    assert titles == {"overdue": ["yesterday"], "today": ["midnight", "tonight"], "upcoming": ["tomorrow", "someday"]}
    assert counts == {"overdue": sql_overdue, "today": 2, "upcoming": 2}


def test_the_team_workload_counts_open_and_overdue_tasks_per_rep_the_manager_sees(db: Database, world: World) -> None:
    create_task(db, world.rep, TaskInput(title="late", due_at=utcnow() - dt.timedelta(days=2)))
    create_task(db, world.rep_same_team, TaskInput(title="soon", due_at=utcnow() + dt.timedelta(days=2)))
    create_task(db, world.rep_other_team, TaskInput(title="far", due_at=utcnow() - dt.timedelta(days=2)))
    customer_id = create_random_customer(db, world.rep_same_team)  # with its follow-up task for the colleague
    # the admin's own task on the team's customer: the manager sees it, in the admin's row
    create_task(db, world.admin, TaskInput(title="admin's", customer_id=customer_id,
                                           due_at=utcnow() - dt.timedelta(days=1)))
    with db.session(world.manager) as session:
        counts, workload = task_overview(session, now=utcnow())
        expected = bucket_counts(session, assignee_id=None, now=utcnow())
    rows = {row.assignee_id: (row.open, row.overdue) for row in workload}
    assert rows == {world.rep.user_id: (1, 1), world.rep_same_team.user_id: (2, 0), world.admin.user_id: (1, 1)}
    assert counts == expected and counts["overdue"] == 2


def test_completing_with_an_activity_is_all_or_nothing(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with db.session(world.rep) as session:
        [task] = list_tasks(session, filters=TaskFilters(customer_id=customer_id), now=utcnow()).items
    with pytest.raises(ValidationFailed):
        complete_task(
            db, world.rep, task.id, expected_version=task.version, activity=ActivityInput(customer_id, "call", "")
        )
    with db.session(world.rep) as session:
        [still_open] = list_tasks(session, filters=TaskFilters(customer_id=customer_id), now=utcnow()).items
    assert still_open.status == "open"
    activity_id = complete_task(
        db,
        world.rep,
        task.id,
        expected_version=task.version,
        activity=ActivityInput(customer_id, "meeting", "Met the buyer"),
    )
    assert activity_id is not None
    with db.session(world.rep) as session:
        [done] = list_tasks(session, filters=TaskFilters(customer_id=customer_id, view="done"), now=utcnow()).items
    assert done.completed_at is not None


def test_a_second_person_acting_on_a_changed_task_is_told_it_is_stale(db: Database, world: World) -> None:
    task_id = add(db, world, "call back", utcnow() + dt.timedelta(days=1))
    reschedule_task(db, world.rep, task_id, due_at=utcnow() + dt.timedelta(days=2), expected_version=1)
    with pytest.raises(StaleRecord):
        complete_task(db, world.manager, task_id, expected_version=1)


def test_a_rep_cannot_hand_a_task_to_a_colleague_but_their_manager_can(db: Database, world: World) -> None:
    task_id = add(db, world, "call back", utcnow() + dt.timedelta(days=1))
    with pytest.raises(AccessDenied):
        reassign_task(db, world.rep, task_id, assignee_id=world.rep_same_team.user_id)
    reassign_task(db, world.manager, task_id, assignee_id=world.rep_same_team.user_id)
    with pytest.raises(AccessDenied):
        reassign_task(db, world.manager, task_id, assignee_id=world.rep_other_team.user_id)


def test_a_task_cannot_be_rescheduled_into_the_past(db: Database, world: World) -> None:
    task_id = add(db, world, "call back", utcnow() + dt.timedelta(days=1))
    with pytest.raises(ValidationFailed) as refused:
        reschedule_task(db, world.rep, task_id, due_at=utcnow() - dt.timedelta(days=2))
    assert set(refused.value.errors) == {"due_at"}
