"""Cases are seen through their customer, queue or assignee: the copy of the customer's owner and team on
each case (migration 0031's triggers, as tasks' in 0015) follows every way a customer or a case changes hands."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update

from crm_core.db import Database
from crm_core.models import Case, Customer
from crm_core.models.service import CaseSla
from crm_core.services.cases import CaseInput, create_case
from crm_core.services.customers import bulk_reassign_owner
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def scope_of(db: Database, case_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(select(Case.customer_owner_id, Case.customer_team_id).where(Case.id == case_id)).one()
        return row[0], row[1]


def customer_scope(db: Database, customer_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(select(Customer.owner_id, Customer.team_id).where(Customer.id == customer_id)).one()
        return row[0], row[1]


def sees(db: Database, actor: object, case_id: int) -> bool:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return session.scalar(select(Case.id).where(Case.id == case_id)) is not None


def test_a_case_in_no_queue_follows_its_customer_whoever_reassigns_it(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Invoice copy"))
    assert scope_of(db, case_id) == customer_scope(db, customer_id) and scope_of(db, case_id)[0] == world.rep.user_id
    assert sees(db, world.rep, case_id) and sees(db, world.manager, case_id)
    assert not sees(db, world.rep_other_team, case_id)

    bulk_reassign_owner(db, world.admin, [customer_id], world.rep_other_team.user_id)
    assert scope_of(db, case_id) == customer_scope(db, customer_id)
    assert not sees(db, world.rep, case_id) and sees(db, world.rep_other_team, case_id)

    with db.system_transaction("pool the customer in SQL") as session:  # whoever writes, the copy follows
        session.execute(update(Customer).where(Customer.id == customer_id)
                        .values(owner_id=None, team_id=world.east_team_id))
    assert scope_of(db, case_id) == (None, world.east_team_id)
    assert sees(db, world.rep_same_team, case_id) and not sees(db, world.rep_other_team, case_id)


def test_a_case_written_with_a_wrong_scope_or_moved_to_another_customer_is_corrected(
        db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    other_id = create_random_customer(db, world.rep_other_team)
    moment = dt.datetime(2026, 11, 1)
    with db.system_transaction("raw case") as session:
        session.execute(insert(Case).values(
            tenant_id=world.rep.tenant_id, customer_id=customer_id, subject="RAW-1", description="", status="open",
            priority="normal", channel="web", opened_at=moment, version=1, created_at=moment, updated_at=moment,
            customer_owner_id=world.rep_other_team.user_id, customer_team_id=None,
        ))
        case_id = session.scalar(select(Case.id).where(Case.subject == "RAW-1"))
    assert case_id is not None
    assert scope_of(db, case_id) == customer_scope(db, customer_id)

    with db.system_transaction("move the case") as session:  # a merge moves cases to the surviving customer
        session.execute(update(Case).where(Case.id == case_id).values(customer_id=other_id))
    assert scope_of(db, case_id) == customer_scope(db, other_id)

    with db.system_transaction("tamper") as session:
        session.execute(update(Case).where(Case.id == case_id).values(customer_owner_id=world.rep.user_id))
    assert scope_of(db, case_id) == customer_scope(db, other_id)
    assert not sees(db, world.rep, case_id) and sees(db, world.rep_other_team, case_id)


def test_a_cases_clock_follows_the_case_rule(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Clock"))
    with db.system_transaction("clock") as session:
        session.add(CaseSla(tenant_id=world.rep.tenant_id, case_id=case_id, paused_seconds=0, escalation_level=0))
    for actor, expected in ((world.rep, True), (world.manager, True), (world.rep_other_team, False)):
        with db.session(actor) as session:
            assert (session.scalar(select(CaseSla.id).where(CaseSla.case_id == case_id)) is not None) is expected
