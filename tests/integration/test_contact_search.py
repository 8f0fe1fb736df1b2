"""Contacts search on every database: Chinese names (one, two, three characters, anywhere), email, phone
fragments however typed, within the actor's scope, and the index kept in step with edits and deletes.

Expected sets are written out by hand; the global search's contacts group and the contacts list
(the API's) must find the same contacts.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text

from crm_core.db import Database
from crm_core.models import Contact
from crm_core.queries.contacts import ContactFilters, count_contacts, list_contacts
from crm_core.queries.search import search_contacts
from crm_core.services.contacts import ContactInput, archive_contact, create_contact, update_contact
from tests.conftest import sent_statements
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def people(db: Database) -> tuple[World, dict[str, int]]:
    world = build_world(db)
    mine = create_random_customer(db, world.rep, name="张三科技有限公司")
    theirs = create_random_customer(db, world.rep_other_team, name="West Coast 科技")
    ids = {
        "wang": create_contact(db, world.rep, ContactInput(mine, "王小明", "采购经理", "Wang.XM@ZhangSan.cn",
                                                           "139-1234-5678", True)),
        "ouyang": create_contact(db, world.rep, ContactInput(mine, "欧阳娜娜", "财务", "nana@zhangsan.cn",
                                                             "010-6552-1234")),
        "jane": create_contact(db, world.rep, ContactInput(mine, "Jane Buyer", "CFO", "jane@acme.com",
                                                           "(415) 555-0199")),
        "west": create_contact(db, world.rep_other_team, ContactInput(theirs, "王小姐", "", "wang@west.example",
                                                                      "138 0013 8000")),
    }
    return world, ids


def found_by_search(db: Database, actor, query: str) -> set[str]:  # type: ignore[no-untyped-def]
    with db.session(actor) as session:
        return {hit.title for hit in search_contacts(session, query, limit=50)}


def found_by_list(db: Database, actor, query: str) -> set[str]:  # type: ignore[no-untyped-def]
    with db.session(actor) as session:
        return {row.name for row in list_contacts(session, filters=ContactFilters(search=query), per_page=100).items}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("王", {"王小明", "王小姐"}),  # one Chinese character
        ("小明", {"王小明"}),  # two, at the end of the name
        ("阳娜", {"欧阳娜娜"}),  # two, inside the name
        ("欧阳娜娜", {"欧阳娜娜"}),  # the whole name
        ("王小", {"王小明", "王小姐"}),
        ("wang.xm@zhangsan", {"王小明"}),  # email, any case
        ("ZHANGSAN.CN", {"王小明", "欧阳娜娜"}),
        ("jane", {"Jane Buyer"}),  # a Latin name, any case
        ("Buy", {"Jane Buyer"}),
        ("1391234", {"王小明"}),  # mobile digits
        ("139-1234", {"王小明"}),  # typed with separators
        ("555 0199", {"Jane Buyer"}),
        ("010-6552", {"欧阳娜娜"}),  # a landline fragment with its trunk 0 (stored as +86 10 …)
        ("6552 1234", {"欧阳娜娜"}),
        ("0013 8000", {"王小姐"}),
        ("娜", {"欧阳娜娜"}),
        ("李", set()),
        ("Ja", {"Jane Buyer"}),  # one or two Latin characters: anywhere in the name or the email, any case
        ("wA", {"王小明", "王小姐"}),
        ("XM", {"王小明"}),
        ("E", {"Jane Buyer", "王小姐"}),
        ("g@", {"王小姐"}),
        ("%", set()),
        ("nobody@nowhere", set()),
        ("100%", set()),  # LIKE and FTS syntax are literal
        ('"王', set()),
    ],
)
def test_the_analyst_finds_contacts_by_chinese_name_email_and_phone(
    db: Database, people: tuple[World, dict[str, int]], query: str, expected: set[str]
) -> None:
    world, _ids = people
    assert found_by_search(db, world.analyst, query) == expected
    assert found_by_list(db, world.analyst, query) == expected


def test_a_rep_finds_only_the_contacts_of_customers_they_see(
    db: Database, people: tuple[World, dict[str, int]]
) -> None:
    world, _ids = people
    assert found_by_search(db, world.rep, "王") == {"王小明"}
    assert found_by_list(db, world.rep, "王") == {"王小明"}
    assert found_by_search(db, world.rep, "0013 8000") == set()
    assert found_by_search(db, world.rep_other_team, "王") == {"王小姐"}
    assert found_by_search(db, world.rep_other_team, "zhangsan") == set()
    with db.session(world.rep) as session:
        assert count_contacts(session, filters=ContactFilters(search="王")) == 1
    with db.session(world.manager) as session:  # the rep's manager: the rep's team, not the other
        assert count_contacts(session, filters=ContactFilters(search="王")) == 1


def test_the_contacts_list_count_beside_a_search_is_capped(db: Database) -> None:
    world = build_world(db)
    customer = create_random_customer(db, world.rep, name="华东贸易")
    for index in range(5):
        create_contact(db, world.rep, ContactInput(customer, f"李{index}号", email=f"li{index}@east.cn"))
    create_contact(db, world.rep_other_team, ContactInput(
        create_random_customer(db, world.rep_other_team, name="别家"), "李四", email="li@west.cn"))
    with db.session(world.rep) as session:
        capped = list_contacts(session, filters=ContactFilters(search="李"), per_page=2, with_total=True, count_cap=3)
        exact = list_contacts(session, filters=ContactFilters(search="李"), per_page=2, with_total=True, count_cap=100)
    assert (capped.total, capped.total_capped) == (3, True)
    assert (exact.total, exact.total_capped) == (5, False)


def test_edited_archived_and_deleted_contacts_are_found_as_they_are_now(
    db: Database, people: tuple[World, dict[str, int]]
) -> None:
    world, ids = people
    with db.session(world.rep) as session:
        version = session.get(Contact, ids["wang"]).version  # type: ignore[union-attr]
    update_contact(db, world.rep, ids["wang"], ContactInput(0, "赵小明", "采购经理", "zhao@zhangsan.cn",
                                                            "186 0000 1111", True), expected_version=version)
    assert found_by_search(db, world.analyst, "赵") == {"赵小明"}
    assert found_by_search(db, world.analyst, "王") == {"王小姐"}
    assert found_by_search(db, world.analyst, "wang.xm") == set()
    assert found_by_search(db, world.analyst, "1860000") == {"赵小明"}
    with db.session(world.rep) as session:
        version = session.get(Contact, ids["jane"]).version  # type: ignore[union-attr]
    archive_contact(db, world.rep, ids["jane"], expected_version=version)
    assert found_by_search(db, world.analyst, "jane") == set()
    assert found_by_list(db, world.analyst, "jane") == set()
    with db.session(world.analyst) as session:
        archived = list_contacts(session, filters=ContactFilters(search="jane", include_archived=True)).items
    assert [row.name for row in archived] == ["Jane Buyer"]
    with db.system_transaction("test delete") as session:
        session.execute(delete(Contact).where(Contact.id == ids["ouyang"]))
    assert found_by_search(db, world.analyst, "欧阳") == set()
    if db.dialect_name == "sqlite":  # the external-content index agrees with its content
        with db.system_session("test fts") as session:
            session.execute(text("INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)"))


def test_sqlite_reads_contacts_through_their_full_text_index(
    db: Database, people: tuple[World, dict[str, int]]
) -> None:
    if db.dialect_name != "sqlite":
        pytest.skip("the FTS5 table is SQLite's; PostgreSQL plans pg_trgm on its own statistics")
    world, _ids = people
    with sent_statements(db.engine) as statements:
        found_by_search(db, world.rep, "王小")
        found_by_search(db, world.rep, "zhangsan")
    searches = [statement for statement, _ in statements if "FROM contacts_fts" in statement]
    assert len(searches) == 2 and all("contacts_fts MATCH" in s and " LIKE " not in s for s in searches)
