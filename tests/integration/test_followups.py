"""New customers get an owner by the tenant's rules and a follow-up task; activities move the customer."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import (
    Activity,
    AuditEvent,
    Customer,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from crm_core.models.automation import AssignmentRule, LifecycleTransition
from crm_core.services.activities import ActivityInput, log_activity
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def add_rule(db: Database, world: World, **fields: object) -> int:
    values: dict[str, object] = {"name": "Rule", "position": 10, "conditions": [], "method": "round_robin"}
    values.update(fields)
    with db.transaction(world.admin) as session:
        rule = AssignmentRule(**values)
        session.add(rule)
        session.flush()
        return rule.id


def tasks_of(db: Database, world: World, customer_id: int) -> list[Task]:
    with db.session(world.admin) as session:
        return list(session.scalars(select(Task).where(Task.customer_id == customer_id)))


def owner_of(db: Database, world: World, customer_id: int) -> int | None:
    with db.session(world.admin) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.owner_id


def test_an_owned_new_customer_gets_a_follow_up_task_for_its_owner(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    [task] = tasks_of(db, world, customer_id)
    assert task.assignee_id == world.rep.user_id
    assert task.status == TaskStatus.OPEN.value
    assert task.due_at is not None and task.due_at > utcnow()


def test_an_unowned_customer_goes_round_robin_to_the_reps_of_the_rule_team(db: Database, world: World) -> None:
    add_rule(db, world, team_id=world.east_team_id)
    owners = [owner_of(db, world, create_random_customer(db, world.admin, owner_id=None)) for _ in range(4)]
    east = sorted([world.rep.user_id, world.rep_same_team.user_id])
    assert owners == [east[0], east[1], east[0], east[1]]


def test_a_rep_creating_an_unowned_customer_triggers_the_rule_as_an_attributed_system_action(
    db: Database, world: World
) -> None:
    rule_id = add_rule(
        db, world, team_id=world.west_team_id, conditions=[{"field": "region", "op": "equals", "value": "West"}]
    )
    customer_id = create_random_customer(db, world.rep, owner_id=None, region="west")
    assert owner_of(db, world, customer_id) == world.rep_other_team.user_id
    [task] = tasks_of(db, world, customer_id)
    assert task.assignee_id == world.rep_other_team.user_id
    with db.session(world.admin) as session:
        changes = [
            event.changes
            for event in session.scalars(
                select(AuditEvent).where(
                    AuditEvent.entity == "customer", AuditEvent.entity_id == customer_id, AuditEvent.action == "assign"
                )
            )
        ]
    assert any(
        c.get("owner_id") == [None, world.rep_other_team.user_id] and f"#{rule_id}" in c["_source"][1] for c in changes
    )


def test_the_first_matching_rule_wins_and_a_non_matching_customer_stays_in_the_team_pool(
    db: Database, world: World
) -> None:
    add_rule(
        db,
        world,
        position=1,
        team_id=world.west_team_id,
        conditions=[{"field": "industry", "op": "equals", "value": "Retail"}],
    )
    add_rule(
        db,
        world,
        position=2,
        team_id=world.east_team_id,
        conditions=[{"field": "industry", "op": "in", "value": "Retail, Energy"}],
    )
    retail = create_random_customer(db, world.admin, owner_id=None, industry="Retail")
    energy = create_random_customer(db, world.admin, owner_id=None, industry="Energy")
    other = create_random_customer(db, world.rep, owner_id=None, industry="Banking")
    assert owner_of(db, world, retail) == world.rep_other_team.user_id
    assert owner_of(db, world, energy) in {world.rep.user_id, world.rep_same_team.user_id}
    assert owner_of(db, world, other) is None
    assert [task.assignee_id for task in tasks_of(db, world, other)] == [world.rep.user_id]


def test_least_busy_gives_the_customer_to_the_rep_with_fewest_open_tasks(db: Database, world: World) -> None:
    create_random_customer(db, world.rep)  # one open follow-up task for rep
    add_rule(db, world, team_id=world.east_team_id, method="least_busy")
    first = create_random_customer(db, world.admin, owner_id=None)
    second = create_random_customer(db, world.admin, owner_id=None)
    assert owner_of(db, world, first) == world.rep_same_team.user_id
    # now both have one open task: the tie goes round-robin, to the one not just served
    assert owner_of(db, world, second) == world.rep.user_id


def test_a_rule_whose_team_has_no_active_rep_falls_through_to_the_next(db: Database, world: World) -> None:
    with db.transaction(world.admin) as session:
        far = session.get(User, world.rep_other_team.user_id)
        assert far is not None
        far.is_active = False
    add_rule(db, world, position=1, team_id=world.west_team_id)
    add_rule(db, world, position=2, team_id=world.east_team_id)
    customer_id = create_random_customer(db, world.admin, owner_id=None)
    assert owner_of(db, world, customer_id) in {world.rep.user_id, world.rep_same_team.user_id}


def test_logging_an_activity_moves_last_contacted_and_creates_the_next_task(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    when = utcnow() - dt.timedelta(hours=2)
    follow_up = utcnow() + dt.timedelta(days=3)
    activity_id = log_activity(
        db,
        world.rep,
        ActivityInput(customer_id, "call", "Discussed the renewal", occurred_at=when, next_follow_up_at=follow_up),
    )
    with db.session(world.rep) as session:
        customer = session.get(Customer, customer_id)
        activity = session.get(Activity, activity_id)
        assert customer is not None and activity is not None
        assert customer.last_contacted_at is not None
        assert customer.last_contacted_at == when.replace(microsecond=customer.last_contacted_at.microsecond)
        assert customer.next_follow_up_at is not None
        assert abs((customer.next_follow_up_at - follow_up).total_seconds()) < 1
        assert activity.author_id == world.rep.user_id
    due = sorted(task.due_at for task in tasks_of(db, world, customer_id) if task.due_at is not None)
    assert abs((due[-1] - follow_up).total_seconds()) < 1


def test_bad_activity_input_is_refused_field_by_field_and_nothing_is_saved(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(ValidationFailed) as refused:
        log_activity(
            db,
            world.rep,
            ActivityInput(
                customer_id,
                "fax",
                "  ",
                occurred_at=utcnow() + dt.timedelta(days=1),
                next_follow_up_at=utcnow() - dt.timedelta(days=1),
            ),
        )
    assert set(refused.value.errors) == {"type", "summary", "occurred_at", "next_follow_up_at"}
    with db.session(world.admin) as session:
        assert session.scalars(select(Activity).where(Activity.customer_id == customer_id)).first() is None


def test_an_activity_on_someone_elses_customer_is_not_found_and_an_analyst_cannot_log(
    db: Database, world: World
) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(NotFound):
        log_activity(db, world.rep_other_team, ActivityInput(customer_id, "call", "Hello"))
    with pytest.raises(AccessDenied):
        log_activity(db, world.analyst, ActivityInput(customer_id, "call", "Hello"))


def test_a_new_customer_gets_its_first_lifecycle_transition(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with db.session(world.admin) as session:
        rows = list(session.scalars(select(LifecycleTransition).where(LifecycleTransition.customer_id == customer_id)))
    assert [(row.from_stage, row.to_stage) for row in rows] == [(None, "prospect")]
