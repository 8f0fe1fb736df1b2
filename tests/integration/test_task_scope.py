"""Tasks are seen through their assignee or their customer: the copy of the customer's owner and team on
each task (migration 0015's triggers) follows every way a customer or a task changes hands."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update

from crm_core.db import Database
from crm_core.models import Customer, Task
from crm_core.services.customers import bulk_reassign_owner
from crm_core.services.tasks import TaskInput, create_task
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def scope_of(db: Database, task_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(select(Task.customer_owner_id, Task.customer_team_id).where(Task.id == task_id)).one()
        return row[0], row[1]


def customer_scope(db: Database, customer_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(select(Customer.owner_id, Customer.team_id).where(Customer.id == customer_id)).one()
        return row[0], row[1]


def sees(db: Database, actor: object, task_id: int) -> bool:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return session.scalar(select(Task.id).where(Task.id == task_id)) is not None


def test_a_task_an_admin_assigned_to_themselves_on_a_reps_customer_follows_the_customer(
        db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    task_id = create_task(db, world.admin, TaskInput("Call the CFO", customer_id=customer_id,
                                                     assignee_id=world.admin.user_id))
    assert scope_of(db, task_id) == customer_scope(db, customer_id) and scope_of(db, task_id)[0] == world.rep.user_id
    assert sees(db, world.rep, task_id) and sees(db, world.manager, task_id)  # the customer's owner and manager
    assert not sees(db, world.rep_other_team, task_id)

    bulk_reassign_owner(db, world.admin, [customer_id], world.rep_other_team.user_id)
    assert scope_of(db, task_id) == customer_scope(db, customer_id)
    assert not sees(db, world.rep, task_id) and sees(db, world.rep_other_team, task_id)

    with db.system_transaction("bulk reassign in SQL") as session:  # whoever writes, the copy follows
        session.execute(update(Customer).where(Customer.id == customer_id)
                        .values(owner_id=None, team_id=world.west_team_id))
    assert scope_of(db, task_id) == (None, world.west_team_id)


def test_a_task_without_a_customer_is_seen_through_its_assignee_only(db: Database, world: World) -> None:
    task_id = create_task(db, world.admin, TaskInput("Prepare the QBR", assignee_id=world.rep.user_id))
    assert scope_of(db, task_id) == (None, None)
    assert sees(db, world.rep, task_id) and sees(db, world.manager, task_id)
    assert not sees(db, world.rep_same_team, task_id) and not sees(db, world.rep_other_team, task_id)


def test_a_task_written_with_a_wrong_scope_is_corrected(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    other_id = create_random_customer(db, world.rep_other_team)
    moment = dt.datetime(2026, 11, 1)
    with db.system_transaction("raw task") as session:
        session.execute(insert(Task).values(
            tenant_id=world.rep.tenant_id, title="RAW-1", status="open", priority="normal", customer_id=customer_id,
            version=1, created_at=moment, updated_at=moment,
            customer_owner_id=world.rep_other_team.user_id, customer_team_id=None,
        ))
        task_id = session.scalar(select(Task.id).where(Task.title == "RAW-1"))
    assert task_id is not None
    assert scope_of(db, task_id) == customer_scope(db, customer_id)

    with db.system_transaction("move the task") as session:
        session.execute(update(Task).where(Task.id == task_id).values(customer_id=other_id))
    assert scope_of(db, task_id) == customer_scope(db, other_id)

    with db.system_transaction("tamper") as session:
        session.execute(update(Task).where(Task.id == task_id).values(customer_owner_id=world.rep.user_id))
    assert scope_of(db, task_id) == customer_scope(db, other_id)
    assert not sees(db, world.rep, task_id)
