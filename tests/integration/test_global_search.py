"""Global search on every database: customers, contacts and deals by name, email and phone,
Chinese names and phone fragments, grouped, best match first, within the actor's scope."""

from __future__ import annotations

import pytest

from crm_core.db import Database
from crm_core.queries.search import EXACT, INSIDE, PREFIX, global_search, match_rank
from crm_core.services.contacts import ContactInput, create_contact
from tests.factories import World, add_open_deal, build_world, create_random_customer


@pytest.fixture
def searchable(db: Database) -> tuple[World, dict[str, int]]:
    world = build_world(db)
    ids = {
        "zhang": create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn",
                                        phone="138 0013 8000"),
        "acme": create_random_customer(db, world.rep, name="Acme Trading", email="hello@acme.com",
                                       phone="+1 415 555 0100"),
        "acme_labs": create_random_customer(db, world.rep, name="Acme Labs", email="lab@acme-labs.io"),
        "west": create_random_customer(db, world.rep_other_team, name="West Coast 科技", email="w@west.example"),
    }
    create_contact(db, world.rep, ContactInput(ids["zhang"], "王经理", "采购", "wang@zhangsan.cn", "139-1234-5678",
                                               True))
    create_contact(db, world.rep, ContactInput(ids["acme"], "Jane Buyer", "CFO", "jane@acme.com", "(415) 555-0199"))
    create_contact(db, world.rep_other_team, ContactInput(ids["west"], "王小姐", "", "wang@west.example", ""))
    add_open_deal(db, world.rep, ids["zhang"], name="张三科技 ERP 升级")
    add_open_deal(db, world.rep, ids["acme"], name="Acme renewal 2027")
    add_open_deal(db, world.rep_other_team, ids["west"], name="West Coast 科技 expansion")
    return world, ids


def titles(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [hit.title for hit in hits]


def test_a_chinese_name_finds_the_customer_its_contact_and_its_deal(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, ids = searchable
    with db.session(world.rep) as session:
        found = global_search(session, "张三")
    assert titles(found.customers) == ["张三科技有限公司"]
    assert titles(found.deals) == ["张三科技 ERP 升级"]
    assert found.deals[0].customer_id == ids["zhang"]
    assert found.best is not None and found.best.kind == "customer" and found.best.id == ids["zhang"]


def test_a_phone_fragment_finds_customers_and_contacts_however_it_is_written(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, ids = searchable
    with db.session(world.rep) as session:
        by_customer_phone = global_search(session, "138-0013")
        by_contact_phone = global_search(session, "1391234")
        by_us_contact = global_search(session, "555 0199")
    assert titles(by_customer_phone.customers) == ["张三科技有限公司"]
    assert titles(by_contact_phone.contacts) == ["王经理"] and by_contact_phone.contacts[0].customer_id == ids["zhang"]
    assert "张三科技有限公司" in by_contact_phone.contacts[0].detail
    assert titles(by_us_contact.contacts) == ["Jane Buyer"]


def test_an_email_finds_the_customer_and_the_contact_and_the_exact_one_is_best(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, ids = searchable
    with db.session(world.rep) as session:
        found = global_search(session, "JANE@acme.com")
        acme = global_search(session, "acme")
    assert titles(found.contacts) == ["Jane Buyer"]
    assert found.best is not None and found.best.kind == "contact"
    assert sorted(titles(acme.customers)) == ["Acme Labs", "Acme Trading"]
    assert titles(acme.deals) == ["Acme renewal 2027"]


def test_a_rep_finds_nothing_of_another_team_and_an_analyst_finds_the_tenants(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, ids = searchable
    with db.session(world.rep) as session:
        rep_view = global_search(session, "王")
        west_for_rep = global_search(session, "West Coast")
    with db.session(world.analyst) as session:
        analyst_view = global_search(session, "王")
    assert titles(rep_view.contacts) == ["王经理"]
    assert not west_for_rep
    assert sorted(titles(analyst_view.contacts)) == ["王小姐", "王经理"]
    with db.session(world.other_admin) as session:
        assert not global_search(session, "张三")  # another tenant


def test_a_blank_query_finds_nothing_and_one_letter_searches_customers_only(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, _ = searchable
    with db.session(world.rep) as session:
        assert not global_search(session, "   ")
        single = global_search(session, "A")
    # the grid's short-search rule decides (name start on SQLite; PostgreSQL also matches emails)
    assert {"Acme Labs", "Acme Trading"} <= set(titles(single.customers))
    assert single.customers[0].title.startswith("Acme")  # a name starting with the letter ranks first
    assert single.contacts == [] and single.deals == []


def test_markup_and_wildcards_in_a_query_are_searched_as_text(db: Database, searchable) -> None:  # type: ignore[no-untyped-def]
    world, _ = searchable
    with db.session(world.rep) as session:
        assert not global_search(session, "%_%")
        assert not global_search(session, "<script>")


@pytest.mark.parametrize(
    ("query", "values", "rank"),
    [
        ("acme trading", ("Acme Trading",), EXACT),
        ("ＡＣＭＥ", ("Acme Labs",), PREFIX),
        ("labs", ("Acme Labs",), INSIDE),
        ("hello@acme.com", ("Acme Trading", "hello@acme.com"), EXACT),
        ("138 0013 8000", ("张三科技有限公司", None, "138-0013-8000"), EXACT),
        ("1380013", ("张三科技有限公司", None, "138 0013 8000"), PREFIX),
        ("0013", ("张三", None, "138 0013 8000"), INSIDE),
        ("张三", ("张三科技有限公司",), PREFIX),
    ],
)
def test_match_rank(query: str, values: tuple[str | None, ...], rank: int) -> None:
    assert match_rank(query, *values) == rank
