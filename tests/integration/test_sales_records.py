"""Editing the sales records: customers (archive, bulk actions), contacts, products, orders with
lines, custom fields, saved views and the customer 360, on every database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, StaleRecord, ValidationFailed
from crm_core.models import AuditEvent, Customer, Order, OrderLine
from crm_core.queries.customer_profile import get_customer_profile
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.saved_views import list_views
from crm_core.services.contacts import ContactInput, archive_contact, create_contact, update_contact
from crm_core.services.custom_fields import FieldDefinitionInput, create_field, delete_field, update_field
from crm_core.services.customers import (
    CustomerInput,
    archive_customer,
    bulk_add_tag,
    bulk_change_stage,
    bulk_reassign_owner,
    create_customer,
    restore_customer,
    update_customer,
)
from crm_core.services.orders import OrderInput, OrderLineInput, create_order, update_order
from crm_core.services.products import ProductInput, archive_product, create_product, update_product
from crm_core.services.saved_views import SavedViewInput, delete_view, save_view
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def audit_events(db: Database, entity: str, entity_id: int) -> list[AuditEvent]:
    with db.system_session("check") as session:
        return list(session.scalars(
            select(AuditEvent).where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        ))


# --- customers -------------------------------------------------------------------------------


def test_archiving_a_customer_removes_it_from_lists_and_keeps_its_history(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Archived Co")
    archive_customer(db, world.rep, customer_id, expected_version=1)
    with db.session(world.rep) as session:
        assert "Archived Co" not in [row.name for row in list_customers(session).items]
    assert [event.action for event in audit_events(db, "customer", customer_id)] == ["create", "archive"]
    restore_customer(db, world.rep, customer_id, expected_version=2)
    with db.session(world.rep) as session:
        assert "Archived Co" in [row.name for row in list_customers(session).items]


def test_saving_over_someone_elses_change_names_them_and_overwrites_nothing(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Locked Co")
    update_customer(db, world.manager, customer_id,
                    CustomerInput(name="Locked Co (manager)", owner_id=world.rep.user_id), expected_version=1)
    with pytest.raises(StaleRecord) as raised:
        update_customer(db, world.rep, customer_id, CustomerInput(name="Locked Co (rep)", owner_id=world.rep.user_id),
                        expected_version=1)
    assert raised.value.changed_by == "Mia Manager"
    assert raised.value.changed_at is not None
    with db.system_session("check") as session:
        assert session.get(Customer, customer_id).name == "Locked Co (manager)"  # type: ignore[union-attr]


def test_an_edit_is_audited_with_the_field_diff(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Diff Co", industry="Retail")
    update_customer(db, world.rep, customer_id,
                    CustomerInput(name="Diff Co", industry="Software", owner_id=world.rep.user_id), expected_version=1)
    update = audit_events(db, "customer", customer_id)[-1]
    assert update.action == "update" and update.actor_id == world.rep.user_id
    assert update.changes == {"industry": ["Retail", "Software"]}


def test_bulk_actions_change_every_selected_row_and_audit_each(db: Database, world: World) -> None:
    ids = [create_random_customer(db, world.rep, tags="vip" if i == 0 else "") for i in range(3)]
    assert bulk_add_tag(db, world.rep, ids, "华南").changed == 3
    result = bulk_add_tag(db, world.rep, ids, "vip")
    assert (result.changed, result.unchanged) == (2, 1)
    assert bulk_change_stage(db, world.manager, ids, "intent").changed == 3
    assert bulk_reassign_owner(db, world.manager, ids, world.rep_same_team.user_id).changed == 3
    with db.system_session("check") as session:
        rows = session.execute(text("SELECT tags, lifecycle_stage, owner_id FROM customers WHERE id IN (:a, :b, :c)"),
                               dict(zip("abc", ids, strict=False))).all()
    assert {row.lifecycle_stage for row in rows} == {"intent"}
    assert {row.owner_id for row in rows} == {world.rep_same_team.user_id}
    assert all(",华南," in row.tags and ",vip," in row.tags for row in rows)
    for customer_id in ids:
        actions = [event.action for event in audit_events(db, "customer", customer_id)]
        assert actions.count("update") == (4 if customer_id != ids[0] else 3)


def test_a_bulk_action_touching_an_invisible_row_changes_nothing(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep)
    theirs = create_random_customer(db, world.rep_other_team)
    with pytest.raises(NotFound):
        bulk_change_stage(db, world.rep, [mine, theirs], "churned")
    with db.system_session("check") as session:
        assert session.get(Customer, mine).lifecycle_stage == "prospect"  # type: ignore[union-attr]


def test_a_rep_cannot_bulk_reassign_to_another_team(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep)
    with pytest.raises(AccessDenied):
        bulk_reassign_owner(db, world.rep, [mine], world.rep_other_team.user_id)


# --- custom fields -----------------------------------------------------------------------------


def test_required_custom_fields_are_enforced_and_typed(db: Database, world: World) -> None:
    create_field(db, world.admin, FieldDefinitionInput("budget", "Budget", "预算", "number", required=True))
    create_field(db, world.admin, FieldDefinitionInput("tier", "Tier", "等级", "choice", choices="A, B，C"))
    with pytest.raises(ValidationFailed) as raised:
        create_customer(db, world.rep, CustomerInput(name="Needs budget", owner_id=world.rep.user_id))
    assert raised.value.errors["custom.budget"][0] == "validation.required"
    with pytest.raises(ValidationFailed) as raised:
        create_customer(db, world.rep, CustomerInput(name="Bad tier", custom_fields={"budget": "x", "tier": "D"}))
    assert set(raised.value.errors) == {"custom.budget", "custom.tier"}
    customer_id = create_customer(
        db, world.rep, CustomerInput(name="Good", custom_fields={"budget": "12.5", "tier": "C"})
    )
    with db.session(world.rep) as session:
        row = list_customers(session, filters=CustomerFilters(custom={"tier": "=C"})).items
    assert [r.id for r in row] == [customer_id] and row[0].value("custom.budget") == "12.5"


def test_only_an_admin_defines_custom_fields_and_names_are_unique(db: Database, world: World) -> None:
    with pytest.raises(AccessDenied):
        create_field(db, world.manager, FieldDefinitionInput("x", "X", "X"))
    field_id = create_field(db, world.admin, FieldDefinitionInput("vip_level", "VIP level", "VIP 等级"))
    with pytest.raises(ValidationFailed) as raised:
        create_field(db, world.admin, FieldDefinitionInput("vip_level", "Again", "再次"))
    assert raised.value.errors["name"][0] == "sales.field_name_taken"
    with pytest.raises(ValidationFailed):
        create_field(db, world.admin, FieldDefinitionInput("Bad Name", "B", "B"))
    assert update_field(db, world.admin, field_id, FieldDefinitionInput("ignored", "Level", "等级", required=True),
                        expected_version=1) == 2
    delete_field(db, world.admin, field_id, expected_version=2)


# --- contacts ----------------------------------------------------------------------------------


def test_contacts_are_validated_and_one_is_primary(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(ValidationFailed) as raised:
        create_contact(db, world.rep, ContactInput(customer_id, "", email="nope", phone="12"))
    assert set(raised.value.errors) == {"name", "email", "phone"}
    first = create_contact(db, world.rep, ContactInput(customer_id, "王五", email="wang@example.cn", is_primary=True))
    second = create_contact(db, world.rep, ContactInput(customer_id, "Li Si", is_primary=True))
    with db.session(world.rep) as session:
        profile = get_customer_profile(session, customer_id)
    assert profile is not None
    assert [(c.name, c.is_primary) for c in profile.contacts] == [("Li Si", True), ("王五", False)]
    update_contact(db, world.rep, first, ContactInput(customer_id, "王五", title="CEO"), expected_version=2)
    with pytest.raises(StaleRecord):
        update_contact(db, world.rep, first, ContactInput(customer_id, "王五", title="CTO"), expected_version=2)
    archive_contact(db, world.rep, second, expected_version=1)
    with db.session(world.rep) as session:
        assert [c.name for c in get_customer_profile(session, customer_id).contacts] == ["王五"]  # type: ignore[union-attr]


def test_a_rep_cannot_add_a_contact_to_another_reps_customer(db: Database, world: World) -> None:
    theirs = create_random_customer(db, world.rep_other_team)
    with pytest.raises(NotFound):
        create_contact(db, world.rep, ContactInput(theirs, "Sneaky"))


# --- products and orders -----------------------------------------------------------------------


def test_products_need_a_unique_sku_when_given_and_a_price_of_zero_or_more(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as raised:
        create_product(db, world.manager, ProductInput("", "", unit_price="-1", currency="yuan"))
    assert raised.value.errors["unit_price"][0] == "imports.rule.range"
    assert raised.value.errors["currency"][0] == "imports.rule.choice"  # the currencies an import knows
    assert set(raised.value.errors) == {"name", "unit_price", "currency"}  # the SKU is optional (issue 18)
    # two products without a SKU: NULLs never collide in the (tenant, sku) unique constraint
    assert create_product(db, world.manager, ProductInput(" ", "No code A")) != create_product(
        db, world.manager, ProductInput("", "No code B"))
    product_id = create_product(db, world.manager, ProductInput("CRM-1", "CRM 授权", unit_price="1,200.50"))
    with pytest.raises(ValidationFailed) as raised:
        create_product(db, world.manager, ProductInput("CRM-1", "Copy"))
    assert raised.value.errors["sku"][0] == "sales.sku_taken"
    with pytest.raises(AccessDenied):
        create_product(db, world.rep, ProductInput("REP-1", "Rep product"))
    changed = ProductInput("CRM-1", "CRM licence", "99")
    assert update_product(db, world.manager, product_id, changed, expected_version=1) == 2
    with pytest.raises(StaleRecord):
        archive_product(db, world.manager, product_id, expected_version=1)


def test_an_order_total_is_the_sum_of_its_lines_in_decimal(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    licence = create_product(db, world.manager, ProductInput("LIC", "Licence", "19.99"))
    service = create_product(db, world.manager, ProductInput("SVC", "Service", "0.10"))
    order_id = create_order(db, world.rep, OrderInput(customer_id, [
        OrderLineInput(licence, "3"), OrderLineInput(service, "0.5", "0.15"), OrderLineInput(service, 7),
    ]))
    expected = Decimal("3") * Decimal("19.99") + Decimal("0.08") + Decimal("0.70")  # 0.075 rounds half-up
    with db.system_session("check") as session:
        order = session.get(Order, order_id)
        assert order is not None and order.total_amount == expected == Decimal("60.75")
        assert order.order_number.startswith("SO-")
        line_sum = session.execute(text(
            "SELECT SUM(ROUND(quantity * unit_price, 2)) FROM order_lines WHERE order_id = :o"), {"o": order_id}
        ).scalar_one()
        assert Decimal(str(line_sum)).quantize(Decimal("0.01")) == expected
    update_order(db, world.rep, order_id, OrderInput(customer_id, [OrderLineInput(licence, 1)]), expected_version=1)
    with db.session(world.rep) as session:
        profile = get_customer_profile(session, customer_id)
        assert profile is not None
        assert profile.order_totals.total_amount == Decimal("19.99") and profile.order_totals.count == 1
        assert [(line.sku, line.line_total) for line in profile.orders[0].lines] == [("LIC", Decimal("19.99"))]
    with db.system_session("check") as session:
        dropped = select(OrderLine.id).where(OrderLine.order_id == order_id, OrderLine.product_id == service)
        assert session.scalar(dropped) is None


def test_an_order_needs_lines_with_positive_quantities(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    product = create_product(db, world.manager, ProductInput("P1", "P1", "5"))
    with pytest.raises(ValidationFailed) as raised:
        create_order(db, world.rep, OrderInput(customer_id, []))
    assert raised.value.errors["lines"][0] == "sales.order_needs_lines"
    with pytest.raises(ValidationFailed) as raised:
        bad_lines = [OrderLineInput(product, "0"), OrderLineInput(product, 1, "-2")]
        create_order(db, world.rep, OrderInput(customer_id, bad_lines))
    assert set(raised.value.errors) == {"line1.quantity", "line2.unit_price"}


# --- saved views -------------------------------------------------------------------------------


def test_saved_views_are_private_unless_shared_with_the_team(db: Database, world: World) -> None:
    filters = CustomerFilters(industry="Retail", search="张").as_dict()
    private = save_view(db, world.rep, SavedViewInput("My retail", filters, ["name", "owner"], "name", False))
    shared = save_view(db, world.rep, SavedViewInput("Team retail", filters, ["name"], shared_with_team=True))
    with db.session(world.rep_same_team) as session:
        assert [v.name for v in list_views(session, user_id=world.rep_same_team.user_id)] == ["Team retail"]
    with db.session(world.rep_other_team) as session:
        assert list_views(session, user_id=world.rep_other_team.user_id) == []
    with db.session(world.rep) as session:
        mine = list_views(session, user_id=world.rep.user_id)
    assert [(v.name, v.mine) for v in mine] == [("My retail", True), ("Team retail", True)]
    assert CustomerFilters.from_dict(mine[0].filters) == CustomerFilters(industry="Retail", search="张")
    assert (mine[0].columns, mine[0].sort, mine[0].descending) == (["name", "owner"], "name", False)
    with pytest.raises(AccessDenied):
        delete_view(db, world.rep_same_team, shared)
    save_view(db, world.rep, SavedViewInput("My retail", {}, ["name"]))  # same name: replaced
    with db.session(world.rep) as session:
        assert [v.id for v in list_views(session, user_id=world.rep.user_id)] == [private, shared]
    delete_view(db, world.rep, private)


# --- the 360 -----------------------------------------------------------------------------------


def test_the_360_shows_history_with_who_changed_what(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="History Co", industry="Retail")
    moved = CustomerInput(name="History Co", industry="Software", owner_id=world.rep.user_id)
    update_customer(db, world.manager, customer_id, moved, expected_version=1)
    with db.session(world.rep) as session:
        profile = get_customer_profile(session, customer_id)
    assert profile is not None
    latest = profile.history[0]
    assert (latest.action, latest.actor_name, latest.changes) == ("update", "Mia Manager",
                                                                   {"industry": ["Retail", "Software"]})
    assert profile.history[-1].action == "create"


def test_the_360_of_another_reps_customer_is_not_found(db: Database, world: World) -> None:
    theirs = create_random_customer(db, world.rep_other_team)
    with db.session(world.rep) as session:
        assert get_customer_profile(session, theirs) is None
