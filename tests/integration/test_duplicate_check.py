"""查重 on every database: two spellings of one company are one customer, found through the indexed
company-name key; the rep is told who owns it without seeing it; the key follows every name change."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.errors import DuplicateCustomer
from crm_core.models import Customer
from crm_core.services.customers import CustomerInput, create_customer, update_customer
from tests.factories import build_world, create_random_customer


def test_two_spellings_of_one_company_are_one_customer_and_its_owner_is_named(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="北京字节跳动科技有限公司")
    with pytest.raises(DuplicateCustomer) as hidden:  # another team's rep: who to ask, not what it is
        create_customer(db, world.rep_other_team, CustomerInput(name="北京字节跳动科技", owner_id=None))
    assert (hidden.value.matched_on, hidden.value.existing_id, hidden.value.existing_name) == ("name", 0, "")
    assert hidden.value.params["owner"] == "Rita Rep"
    with pytest.raises(DuplicateCustomer) as seen:  # the owner's manager sees which record it is
        create_customer(db, world.manager, CustomerInput(name="北京字节跳动科技股份有限公司"))
    assert seen.value.existing_name == "北京字节跳动科技有限公司" and seen.value.existing_id > 0

    create_random_customer(db, world.rep, name="ＡＣＭＥ Co., Ltd.")
    with pytest.raises(DuplicateCustomer):
        create_customer(db, world.rep, CustomerInput(name="Acme"))
    # another tenant's customer is no duplicate
    assert create_customer(db, world.other_admin, CustomerInput(name="Acme Limited")) > 0


def test_the_key_follows_a_renamed_customer(db: Database) -> None:
    world = build_world(db)
    customer_id = create_random_customer(db, world.rep, name="Old Name Trading Co.")
    update_customer(db, world.rep, customer_id, CustomerInput(name="红隼物流有限公司", owner_id=world.rep.user_id),
                    expected_version=1)
    with db.system_session("test") as session:
        assert session.scalar(select(Customer.name_key).where(Customer.id == customer_id)) == "红隼物流"
    assert create_customer(db, world.rep, CustomerInput(name="Old Name Trading")) > 0  # the old key is free


def test_the_duplicate_check_reads_the_index(db: Database) -> None:
    if db.dialect_name != "sqlite":
        pytest.skip("the plan is read on SQLite, where the 1M benchmark runs")
    world = build_world(db)
    with db.system_session("test") as session:
        plan = " ".join(str(row[-1]) for row in session.execute(text(
            "EXPLAIN QUERY PLAN SELECT id FROM customers WHERE tenant_id = :t AND name_key = :k"),
            {"t": world.admin.tenant_id, "k": "acme"}))
    assert "ix_customers_tenant_id_name_key" in plan


def test_the_migration_keys_the_customers_that_exist(tmp_path: object) -> None:
    from pathlib import Path

    from alembic import command

    from crm_core.db import make_engine
    from crm_core.schema import alembic_config, upgrade_to_head

    engine = make_engine(f"sqlite:///{Path(str(tmp_path)) / 'old.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0017")
        connection.execute(text("INSERT INTO tenants (name, slug, churn_window_days, default_currency, is_active, "
                                "version, created_at, updated_at) VALUES ('T', 't', 180, 'CNY', 1, 1, "
                                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO customers (tenant_id, name, kind, lifecycle_stage, tags, custom_fields, "
                                "version, created_at, updated_at) VALUES (1, '上海晨光贸易有限公司', 'company', "
                                "'prospect', '', '{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade_to_head(engine)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT name_key FROM customers")) == "上海晨光贸易"
    engine.dispose()
