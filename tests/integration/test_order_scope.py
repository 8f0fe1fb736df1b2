"""Orders are seen through their customer: the copy of the customer's owner and team on each
order (migration 0010's triggers) follows every way a customer or an order changes hands."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, text, update

from crm_core.db import Database
from crm_core.models import Customer, Order, OrderLine
from crm_core.queries.orders import customer_orders
from crm_core.queries.reports import revenue_by_month
from crm_core.services.customers import bulk_reassign_owner
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from tests.factories import World, build_world, create_random_customer

TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def book_order(db: Database, world: World, customer_id: int) -> int:
    product = create_product(db, world.manager, ProductInput(f"P-{customer_id}", "Licence", "100"))
    return create_order(db, world.admin, OrderInput(customer_id, [OrderLineInput(product, 2)], ordered_at=TODAY))


def scope_of(db: Database, order_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(
            select(Order.customer_owner_id, Order.customer_team_id).where(Order.id == order_id)
        ).one()
        return row[0], row[1]


def customer_scope(db: Database, customer_id: int) -> tuple[int | None, int | None]:
    with db.system_session("check") as session:
        row = session.execute(select(Customer.owner_id, Customer.team_id).where(Customer.id == customer_id)).one()
        return row[0], row[1]


def visible_order_ids(db: Database, actor: object, customer_id: int) -> list[int]:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return [row.id for row in customer_orders(session, customer_id)]


def test_a_new_order_carries_its_customers_owner_and_team(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    order_id = book_order(db, world, customer_id)
    assert scope_of(db, order_id) == customer_scope(db, customer_id)
    assert scope_of(db, order_id)[0] == world.rep.user_id


def test_reassigning_the_customer_moves_its_orders_to_the_new_owner(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    order_id = book_order(db, world, customer_id)
    assert visible_order_ids(db, world.rep, customer_id) == [order_id]
    assert visible_order_ids(db, world.rep_other_team, customer_id) == []

    bulk_reassign_owner(db, world.admin, [customer_id], world.rep_other_team.user_id)

    assert scope_of(db, order_id) == customer_scope(db, customer_id)
    assert visible_order_ids(db, world.rep, customer_id) == []
    assert visible_order_ids(db, world.rep_other_team, customer_id) == [order_id]
    with db.session(world.rep_other_team) as session:
        lines = session.scalars(select(OrderLine.order_id)).all()
    assert set(lines) == {order_id}


def test_a_reassignment_written_in_plain_sql_is_followed_too(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    order_id = book_order(db, world, customer_id)
    with db.system_transaction("bulk reassign in SQL") as session:
        session.execute(
            update(Customer).where(Customer.id == customer_id).values(owner_id=None, team_id=world.west_team_id)
        )
    assert scope_of(db, order_id) == (None, world.west_team_id)


def test_an_order_written_with_a_wrong_scope_is_corrected(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    other_id = create_random_customer(db, world.rep_other_team)
    with db.system_transaction("raw order") as session:
        session.execute(insert(Order).values(
            tenant_id=world.rep.tenant_id, customer_id=customer_id, order_number="RAW-1", status="confirmed",
            ordered_at=dt.datetime(2026, 11, 1), total_amount=5, currency="CNY", version=1,
            created_at=dt.datetime(2026, 11, 1), updated_at=dt.datetime(2026, 11, 1),
            customer_owner_id=world.rep_other_team.user_id, customer_team_id=None,
        ))
        order_id = session.scalar(select(Order.id).where(Order.order_number == "RAW-1"))
    assert order_id is not None
    assert scope_of(db, order_id) == customer_scope(db, customer_id)

    with db.system_transaction("move the order") as session:
        session.execute(update(Order).where(Order.id == order_id).values(customer_id=other_id))
    assert scope_of(db, order_id) == customer_scope(db, other_id)

    with db.system_transaction("tamper") as session:
        session.execute(update(Order).where(Order.id == order_id).values(customer_owner_id=world.rep.user_id))
    assert scope_of(db, order_id) == customer_scope(db, other_id)


def test_the_revenue_trend_counts_the_orders_of_the_customers_each_user_sees(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep)
    colleague = create_random_customer(db, world.rep_same_team)
    elsewhere = create_random_customer(db, world.rep_other_team)
    for customer_id in (mine, colleague, elsewhere):
        book_order(db, world, customer_id)
    with db.system_session("expected") as session:
        all_orders = session.execute(text("SELECT COUNT(*) FROM orders")).scalar_one()

    def orders_seen(actor: object) -> int:
        with db.session(actor) as session:  # type: ignore[arg-type]
            return sum(month.orders for month in revenue_by_month(session, today=TODAY))

    assert orders_seen(world.rep) == 1
    assert orders_seen(world.manager) == 2  # the manager's team: rep and rep_same_team
    assert orders_seen(world.admin) == all_orders == 3
    bulk_reassign_owner(db, world.admin, [elsewhere], world.rep.user_id)
    assert orders_seen(world.rep) == 2
