"""Tenant and role scoping on every database: what each user can read and change."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core.access import UnscopedSession
from crm_core.db import Database
from crm_core.errors import AccessDenied
from crm_core.models import AuditEvent, Customer, Pipeline, Tenant, User
from crm_core.queries.customers import CustomerFilters, count_customers, list_customers
from crm_core.services.customers import CustomerInput, create_customer, update_customer
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def visible_names(db: Database, actor: object) -> set[str]:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return {row.name for row in list_customers(session, per_page=500).items}


def test_a_user_of_tenant_a_never_sees_a_row_of_tenant_b(db: Database, world: World) -> None:
    create_random_customer(db, world.other_admin, name="Beta secret")
    create_random_customer(db, world.admin, name="Acme customer")
    with db.session(world.admin) as session:
        assert "Beta secret" not in {c.name for c in session.scalars(select(Customer))}
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
        assert {t.id for t in session.scalars(select(Tenant))} == {world.admin.tenant_id}
        assert all(u.tenant_id == world.admin.tenant_id for u in session.scalars(select(User)))
        assert all(p.tenant_id == world.admin.tenant_id for p in session.scalars(select(Pipeline)))
        assert all(e.tenant_id == world.admin.tenant_id for e in session.scalars(select(AuditEvent)))


def test_a_rep_sees_own_customers_and_unowned_leads_of_their_team_only(db: Database, world: World) -> None:
    create_random_customer(db, world.rep, name="Mine")
    create_random_customer(db, world.rep_same_team, name="Teammate's")
    create_random_customer(db, world.rep_other_team, name="Far away")
    create_random_customer(db, world.rep, name="East lead", owner_id=None)
    create_random_customer(db, world.admin, name="West lead", owner_id=None, )
    assert visible_names(db, world.rep) == {"Mine", "East lead"}
    assert visible_names(db, world.rep_other_team) == {"Far away"}


def test_a_manager_sees_their_teams_and_an_analyst_sees_the_whole_tenant(db: Database, world: World) -> None:
    for actor, name in [(world.rep, "Mine"), (world.rep_same_team, "Teammate's"), (world.rep_other_team, "Far away")]:
        create_random_customer(db, actor, name=name)
    assert visible_names(db, world.manager) == {"Mine", "Teammate's"}
    assert visible_names(db, world.analyst) == {"Mine", "Teammate's", "Far away"}
    with db.session(world.manager) as session:
        assert count_customers(session, filters=CustomerFilters()) == 2


def test_an_analyst_writes_nothing(db: Database, world: World) -> None:
    with pytest.raises(AccessDenied):
        create_customer(db, world.analyst, CustomerInput(name="Not allowed"))
    customer_id = create_random_customer(db, world.admin, name="Existing")
    with pytest.raises(AccessDenied):
        update_customer(db, world.analyst, customer_id, CustomerInput(name="Renamed"), expected_version=1)


def test_a_rep_cannot_give_a_customer_to_a_colleague_or_edit_one_they_cannot_see(
    db: Database, world: World
) -> None:
    with pytest.raises(AccessDenied):
        create_customer(db, world.rep, CustomerInput(name="Gift", owner_id=world.rep_same_team.user_id))
    theirs = create_random_customer(db, world.rep_same_team, name="Theirs")
    with pytest.raises(Exception) as raised:
        update_customer(db, world.rep, theirs, CustomerInput(name="Hijacked"), expected_version=1)
    assert type(raised.value).__name__ in {"NotFound", "AccessDenied"}


def test_a_tenant_b_admin_cannot_write_into_tenant_a(db: Database, world: World) -> None:
    with db.session(world.other_admin) as session, pytest.raises(AccessDenied), session.begin():
        session.add(Customer(tenant_id=world.admin.tenant_id, name="Smuggled"))


def test_a_session_without_actor_or_system_reason_refuses_orm_queries(db: Database) -> None:
    session = db._factory()  # bypassing the factories on purpose
    with pytest.raises(UnscopedSession):
        session.execute(select(Customer))
    session.close()


def test_every_write_is_audited_with_the_field_diff(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Audited", email="a@example.com")
    update_customer(
        db, world.rep, customer_id,
        CustomerInput(name="Audited Ltd", email="a@example.com", owner_id=world.rep.user_id),
        expected_version=1,
    )
    with db.session(world.admin) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity == "customer", AuditEvent.entity_id == customer_id)
            .order_by(AuditEvent.id)
        ).all()
    assert [event.action for event in events] == ["create", "update"]
    assert events[0].actor_id == world.rep.user_id
    assert events[1].changes == {"name": ["Audited", "Audited Ltd"]}


def test_a_customers_activities_follow_that_customers_rule_even_when_asked_by_id(db: Database, world: World) -> None:
    """Activities are scoped through their own customer (a correlated EXISTS, not a list of every visible id)."""
    from crm_core.models import Activity
    from crm_core.queries.customer_profile import customer_activities
    from crm_core.services.activities import ActivityInput, log_activity

    mine = create_random_customer(db, world.rep, name="Mine")
    far = create_random_customer(db, world.rep_other_team, name="Far away")
    secret = create_random_customer(db, world.other_admin, name="Beta secret")
    log_activity(db, world.rep, ActivityInput(customer_id=mine, type="call", summary="mine"))
    log_activity(db, world.rep_other_team, ActivityInput(customer_id=far, type="call", summary="far"))
    log_activity(db, world.other_admin, ActivityInput(customer_id=secret, type="call", summary="secret"))
    with db.session(world.rep) as session:
        assert [row.summary for row in customer_activities(session, mine)] == ["mine"]
        assert customer_activities(session, far) == []
        assert customer_activities(session, secret) == []
        assert {a.summary for a in session.scalars(select(Activity))} == {"mine"}
        joined = select(Activity.summary).join(Customer, Customer.id == Activity.customer_id)
        assert set(session.scalars(joined)) == {"mine"}
    with db.session(world.manager) as session:
        assert customer_activities(session, far) == []
        assert {a.summary for a in session.scalars(select(Activity))} == {"mine"}
    with db.session(world.analyst) as session:
        assert {a.summary for a in session.scalars(select(Activity))} == {"mine", "far"}
        assert customer_activities(session, secret) == []


def test_a_records_history_is_read_with_the_record_whoever_changed_it(db: Database, world: World) -> None:
    """The audit trail of a case or contact follows its customer's rule: the rep reads what the admin did on
    the rep's customer (an API 412 names that admin), never the history of another rep's customer."""
    from crm_core.services.cases import CaseInput, create_case, update_case
    from crm_core.services.contacts import ContactInput, create_contact

    mine = create_random_customer(db, world.rep, name="Mine")
    far = create_random_customer(db, world.rep_other_team, name="Far away")
    my_case = create_case(db, world.admin, CaseInput(customer_id=mine, subject="Broken"))
    update_case(db, world.admin, my_case, CaseInput(customer_id=mine, subject="Broken screen"), expected_version=1)
    far_case = create_case(db, world.admin, CaseInput(customer_id=far, subject="Elsewhere"))
    my_contact = create_contact(db, world.admin, ContactInput(customer_id=mine, name="王五"))
    far_contact = create_contact(db, world.admin, ContactInput(customer_id=far, name="赵六"))

    def history(actor: object, entity: str, entity_id: int) -> list[str]:
        with db.session(actor) as session:  # type: ignore[arg-type]
            return list(session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
                .order_by(AuditEvent.id)
            ))

    assert history(world.rep, "case", my_case) == ["create", "update"]
    assert history(world.rep, "contact", my_contact) == ["create"]
    assert history(world.rep, "case", far_case) == []
    assert history(world.rep, "contact", far_contact) == []
    assert history(world.rep_other_team, "case", far_case) == ["create"]
    assert history(world.other_admin, "case", my_case) == []  # another tenant


def test_a_statement_carries_the_rules_of_the_tables_it_reads_and_its_sql_stays_the_same(
    db: Database, world: World
) -> None:
    """Decision 0037: each statement gets the tenant criteria and the rules of the tables it reads (joins,
    subqueries, the tables those rules read in turn), and compiles to the very SQL every rule gave."""
    from sqlalchemy import update

    from crm_core.access import _scope_options
    from crm_core.models import Activity, Case, Contact, OrderLine, Task
    from crm_core.models.segments import SegmentSnapshot
    from crm_core.models.service import CaseEvent, CaseSla

    statements = [
        select(Case, Customer.name, CaseSla.next_due_at).join(CaseSla, CaseSla.case_id == Case.id)
        .outerjoin(Customer, Customer.id == Case.customer_id).order_by(CaseSla.next_due_at).limit(51),
        select(CaseEvent.id).where(CaseEvent.case_id == 1),
        select(AuditEvent.action).where(AuditEvent.entity == "contact"),
        select(func.count()).select_from(select(Contact.id).limit(5).subquery()),
        select(Customer.id).where(Customer.id.in_(select(Activity.customer_id))),
        select(OrderLine.id), select(SegmentSnapshot.id),
        update(Task).where(Task.id == 1).values(title="x"),
    ]
    for actor in (world.rep, world.manager, world.admin):
        scope = _scope_options(actor)
        for statement in statements:
            chosen = scope.for_statement(statement)
            assert len(chosen) < len(scope.every)
            assert (str(statement.options(*chosen).compile(dialect=db.engine.dialect))
                    == str(statement.options(*scope.every).compile(dialect=db.engine.dialect)))
    # tenant, tenants; the rules of cases, customers and case_sla: not those of the 20-odd other tables
    assert len(_scope_options(world.rep).for_statement(statements[0])) == 2 + 3
