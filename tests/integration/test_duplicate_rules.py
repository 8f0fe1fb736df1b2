"""Duplicate rules (查重) on every database: each key off, warn or block as the tenant's admin set it;
a blocked rep learns who owns the existing customer and nothing else; credit codes and region codes
are checked and stored; the look-ups read indexes."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.errors import AccessDenied, DuplicateCustomer, ValidationFailed
from crm_core.models import AuditEvent, Customer
from crm_core.services.customers import CustomerInput, create_customer, update_customer
from crm_core.services.duplicate_rules import duplicate_rules, save_duplicate_rules
from tests.factories import build_world, create_random_customer

CODE = "91440300MA5F0A1B2N"  # Shenzhen
OTHER_CODE = "91310115MA1K3C4D5L"  # Shanghai, Pudong


def test_a_credit_code_blocks_by_default_and_the_rep_learns_only_the_owner(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="深圳晨星科技有限公司", credit_code=CODE,
                           province_code="440000", city_code="440300", email="hello@chenxing.cn")
    with pytest.raises(DuplicateCustomer) as blocked:
        # another team's rep, another spelling, the code typed full-width: still the same company
        full_width = "９１４４０３００ＭＡ５Ｆ０Ａ１Ｂ２Ｎ"
        create_customer(db, world.rep_other_team, CustomerInput(name="晨星", credit_code=full_width),
                        allow_duplicate=True)  # confirming does not lift a block for a rep
    error = blocked.value
    assert (error.matched_on, error.action, error.existing_id, error.existing_name) == ("credit_code", "block", 0, "")
    assert error.message_key == "error.duplicate_customer_blocked"
    assert error.params == {"name": "", "matched_on": "credit_code", "owner": "Rita Rep"}  # no field of the record
    with db.system_session("test") as session:
        assert session.scalar(select(Customer.id).where(Customer.name == "晨星")) is None
    # a manager may override the block after confirming; without confirming he is told too
    with pytest.raises(DuplicateCustomer):
        create_customer(db, world.manager, CustomerInput(name="晨星", credit_code=CODE))
    assert create_customer(db, world.manager, CustomerInput(name="晨星", credit_code=CODE), allow_duplicate=True) > 0


def test_a_warning_rule_lets_the_user_confirm_and_off_does_not_check(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="上海晨光贸易有限公司", phone="021-6212 3456")
    with pytest.raises(DuplicateCustomer) as warned:  # the same landline, written as E.164
        create_customer(db, world.rep_other_team, CustomerInput(name="Other", phone="+86 21 62123456"))
    assert (warned.value.matched_on, warned.value.action) == ("phone", "warn")
    assert create_customer(db, world.rep_other_team, CustomerInput(name="Other", phone="+86 21 62123456"),
                           allow_duplicate=True) > 0

    save_duplicate_rules(db, world.admin, {"name": "off", "phone": "block"})
    assert duplicate_rules(db, world.rep) == {"credit_code": "block", "email": "warn", "phone": "block", "name": "off"}
    assert create_customer(db, world.rep, CustomerInput(name="上海晨光貿易（traditional）")) > 0  # name: off
    with pytest.raises(DuplicateCustomer) as blocked:
        create_customer(db, world.rep, CustomerInput(name="Third", phone="02162123456"), allow_duplicate=True)
    assert blocked.value.action == "block"
    # a tenant's rules are its own
    assert duplicate_rules(db, world.other_admin)["phone"] == "warn"


def test_a_blocking_match_wins_over_a_warning_one(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="Warned Name Co")
    create_random_customer(db, world.rep_same_team, name="Blocked Code Co", credit_code=OTHER_CODE)
    with pytest.raises(DuplicateCustomer) as found:
        create_customer(db, world.rep, CustomerInput(name="Warned Name", credit_code=OTHER_CODE))
    assert (found.value.matched_on, found.value.action) == ("credit_code", "block")
    # a teammate's customer: a rep sees her own only, so she learns its owner, not its name
    assert (found.value.existing_name, found.value.params["owner"]) == ("", "Tom Teammate")


def test_only_admins_change_the_rules_and_each_change_is_audited(db: Database) -> None:
    world = build_world(db)
    with pytest.raises(AccessDenied):
        save_duplicate_rules(db, world.manager, {"name": "off"})
    with pytest.raises(ValidationFailed):
        save_duplicate_rules(db, world.admin, {"name": "sometimes"})
    save_duplicate_rules(db, world.admin, {"email": "block"})
    save_duplicate_rules(db, world.admin, {"email": "off"})
    with db.system_session("test") as session:
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.entity == "duplicate_rule", AuditEvent.tenant_id == world.admin.tenant_id)).all()
    assert sorted(actions) == ["create", "update"]


def test_an_edit_is_checked_on_the_keys_it_changes_only(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="First Co", credit_code=CODE)
    second = create_random_customer(db, world.rep, name="First Co Ltd")  # an old pair on the name
    # editing the pair's other fields is not refused for the old name match
    update_customer(db, world.rep, second, CustomerInput(name="First Co Ltd", industry="Retail",
                                                         owner_id=world.rep.user_id), expected_version=1)
    with pytest.raises(DuplicateCustomer) as blocked:
        update_customer(db, world.rep, second, CustomerInput(name="First Co Ltd", credit_code=CODE,
                                                             owner_id=world.rep.user_id), expected_version=2)
    assert blocked.value.matched_on == "credit_code"


def test_credit_codes_and_region_codes_are_checked_and_stored(db: Database) -> None:
    world = build_world(db)
    with pytest.raises(ValidationFailed) as refused:
        create_customer(db, world.rep, CustomerInput(name="A", credit_code="91440300MA5F0A1B2M"))
    assert refused.value.errors["credit_code"][0] == "validation.credit_code_checksum"
    with pytest.raises(ValidationFailed) as mismatch:  # a Shenzhen code, Guangzhou chosen
        create_customer(db, world.rep, CustomerInput(name="A", credit_code=CODE, province_code="440000",
                                                     city_code="440100"))
    assert mismatch.value.errors["credit_code"][0] == "validation.credit_code_region"
    assert mismatch.value.errors["credit_code"][1]["region"] == "广东省 广州市"
    with pytest.raises(ValidationFailed) as cascade:
        create_customer(db, world.rep, CustomerInput(name="A", province_code="440000", city_code="110100"))
    assert cascade.value.errors == {"city_code": ("validation.region_not_in_parent", {})}
    customer_id = create_customer(db, world.rep, CustomerInput(
        name="A", credit_code="91440300-ma5f0a1b2n", province_code="440000", city_code="440300",
        district_code="440305", phone="138 0013 8000"))
    with db.system_session("test") as session:
        row = session.get(Customer, customer_id)
        assert row is not None
        assert (row.credit_code, row.province_code, row.city_code, row.district_code, row.phone_normalized) == (
            CODE, "440000", "440300", "440305", "+8613800138000")


def test_the_new_keys_are_looked_up_through_indexes(db: Database) -> None:
    if db.dialect_name != "sqlite":
        pytest.skip("the plan is read on SQLite, where the benchmark runs")
    world = build_world(db)
    with db.system_session("test") as session:
        plans = {
            column: " ".join(str(row[-1]) for row in session.execute(text(
                f"EXPLAIN QUERY PLAN SELECT id FROM customers WHERE tenant_id = :t AND {column} = :k"),
                {"t": world.admin.tenant_id, "k": "x"}))
            for column in ("credit_code", "province_code")
        }
    assert "ix_customers_tenant_id_credit_code" in plans["credit_code"]
    assert "ix_customers_tenant_id_province_code_updated_at" in plans["province_code"]
