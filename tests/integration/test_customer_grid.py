"""The customers grid: every filter, sorting, keyset paging, capped counts and search, on every database.

Expected numbers come from hand-written SQL over the same rows, never from the query under test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, select, text, update

from crm_core.db import Database
from crm_core.models import Contact, Customer
from crm_core.queries.contacts import contact_text_condition
from crm_core.queries.customers import (
    CustomerFilters,
    _sqlite_plan,
    count_customers,
    iter_customers,
    list_customers,
    search_condition,
)
from crm_core.services.custom_fields import FieldDefinitionInput, create_field
from tests.conftest import sent_statements
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def grid(db: Database) -> World:
    world = build_world(db)
    create_field(db, world.admin, FieldDefinitionInput("contract_value", "Contract value", "合同金额", "number"))
    create_field(db, world.admin, FieldDefinitionInput("channel", "Channel", "渠道", "choice", choices="web,fair"))
    rows: list[dict[str, object]] = [
        dict(name="张三科技有限公司", email="zhang@example.cn", phone="138 0013 8000", industry="软件", region="广东",
             tags="vip,华南", lifecycle_stage="customer", custom_fields={"contract_value": "1200", "channel": "fair"}),
        dict(name="深圳红隼电子", email="sales@hongsun.cn", phone="0755-8888 7777", industry="电子", region="广东",
             tags="华南", custom_fields={"contract_value": "80", "channel": "web"}),
        dict(name="Acme Trading", email="hello@acme.com", phone="+1 415 555 0100", industry="Retail", region="CA",
             tags="vip", lifecycle_stage="intent"),
        dict(name="acme labs", email="lab@acme-labs.io", industry="Retail", region="CA"),
        dict(name="Zeta 100% Growth_Co", email="z@zeta.com", industry="Finance", region="NY"),
    ]
    for values in rows:
        create_random_customer(db, world.rep, **values)
    create_random_customer(db, world.rep_other_team, name="West Coast Ltd", industry="Retail", region="WA")
    create_random_customer(db, world.rep_same_team, name="Teammate Co", industry="Retail")
    # spread timestamps so ranges and sorts are deterministic
    with db.system_transaction("test setup") as session:
        for index, name in enumerate(["张三科技有限公司", "深圳红隼电子", "Acme Trading", "acme labs",
                                      "Zeta 100% Growth_Co", "West Coast Ltd", "Teammate Co"]):
            session.execute(
                update(Customer).where(Customer.name == name).values(
                    created_at=dt.datetime(2026, 1, 1 + index, 9), updated_at=dt.datetime(2026, 3, 1 + index, 9),
                    last_contacted_at=None if index % 3 == 2 else dt.datetime(2026, 2, 1 + index, 9),
                )
            )
    return world


def names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.name for row in page.items]


def sql_names(db: Database, where: str, **params: object) -> set[str]:
    with db.system_session("expected") as session:
        return set(session.execute(text(f"SELECT name FROM customers WHERE {where}"), params).scalars())


def test_an_admin_sees_the_tenant_and_the_count_matches_sql(db: Database, grid: World) -> None:
    expected = sql_names(db, "tenant_id = :t AND archived_at IS NULL", t=grid.admin.tenant_id)
    with db.session(grid.admin) as session:
        page = list_customers(session, per_page=100)
    assert set(names(page)) == expected and page.total == len(expected) == 7


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        (CustomerFilters(industry="Retail"), "industry = 'Retail'"),
        (CustomerFilters(region="广东"), "region = '广东'"),
        (CustomerFilters(lifecycle_stage="intent"), "lifecycle_stage = 'intent'"),
        (CustomerFilters(tag="vip"), "tags LIKE '%,vip,%'"),
        (CustomerFilters(tag="华南"), "tags LIKE '%,华南,%'"),
        (CustomerFilters(created_from=dt.date(2026, 1, 2), created_to=dt.date(2026, 1, 4)),
         "created_at >= '2026-01-02' AND created_at < '2026-01-05'"),
        (CustomerFilters(last_contacted_from=dt.date(2026, 2, 2)), "last_contacted_at >= '2026-02-02'"),
        (CustomerFilters(never_contacted=True), "last_contacted_at IS NULL"),
    ],
)
def test_each_filter_returns_what_sql_returns(db: Database, grid: World, filters: CustomerFilters, where: str) -> None:
    expected = sql_names(db, f"tenant_id = :t AND archived_at IS NULL AND {where}", t=grid.admin.tenant_id)
    with db.session(grid.admin) as session:
        page = list_customers(session, filters=filters, per_page=100)
    assert expected and set(names(page)) == expected
    assert page.total == len(expected)


def test_owner_and_team_filters(db: Database, grid: World) -> None:
    with db.session(grid.admin) as session:
        by_owner = list_customers(session, filters=CustomerFilters(owner_id=grid.rep_other_team.user_id))
        by_team = list_customers(session, filters=CustomerFilters(team_id=grid.west_team_id))
    assert names(by_owner) == ["West Coast Ltd"]
    assert names(by_team) == ["West Coast Ltd"]


def test_custom_fields_filter_by_choice_and_number_range(db: Database, grid: World) -> None:
    with db.session(grid.admin) as session:
        fair = list_customers(session, filters=CustomerFilters(custom={"channel": "=fair"}))
        big = list_customers(session, filters=CustomerFilters(custom={"contract_value": [100, None]}))
        small = list_customers(session, filters=CustomerFilters(custom={"contract_value": ["0", "99.5"]}))
    assert names(fair) == ["张三科技有限公司"]
    assert names(big) == ["张三科技有限公司"]
    assert names(small) == ["深圳红隼电子"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("张三", {"张三科技有限公司"}),  # two CJK characters: name prefix
        ("科技有限", {"张三科技有限公司"}),  # CJK substring in the middle
        ("红隼电", {"深圳红隼电子"}),
        ("acme", {"Acme Trading", "acme labs"}),  # case-insensitive, several matches
        ("HELLO@acme", {"Acme Trading"}),
        ("138-0013", {"张三科技有限公司"}),  # phone typed with separators
        ("555 0100", {"Acme Trading"}),
        ("100% g", {"Zeta 100% Growth_Co"}),  # LIKE wildcards are literal
        ("th%Co", set()),
        ("0100", {"Acme Trading"}),  # digits only: the phone too
        ("0755 8888", {"深圳红隼电子"}),  # a landline's start with its trunk 0: stored as +86 755…
        ("(0755) 88887777", {"深圳红隼电子"}),  # the whole landline
        ("07558", {"深圳红隼电子"}),
        ("Ze", {"Zeta 100% Growth_Co"}),  # short Latin prefix, any case
        ("nothing-like-this", set()),
    ],
)
def test_search_finds_names_emails_and_phones(db: Database, grid: World, search: str, expected: set[str]) -> None:
    with db.session(grid.admin) as session:
        page = list_customers(session, filters=CustomerFilters(search=search), per_page=100)
    assert set(names(page)) == expected


@pytest.fixture
def short_world(db: Database) -> World:
    world = build_world(db)
    for name, email in (("张三科技有限公司", "zhang@example.cn"), ("深圳红隼电子", "sales@hongsun.cn"),
                        ("Acme Trading", "hello@acme.com"), ("acme labs", "lab@acme-labs.io"),
                        ("Zeta 100% Growth_Co", "z@zeta.com"), ("北京华为技术", None)):
        create_random_customer(db, world.rep, name=name, email=email)
    return world


@pytest.mark.parametrize(
    ("search", "expected", "on_sqlite"),
    [
        # one or two Chinese characters: anywhere in the name, on every database
        ("张", {"张三科技有限公司"}, None),
        ("科技", {"张三科技有限公司"}, None),
        ("隼", {"深圳红隼电子"}, None),
        ("北京", {"北京华为技术"}, None),
        ("京华", {"北京华为技术"}, None),
        ("李", set(), None),
        # one or two Latin characters: anywhere in the name or email, any case; SQLite matches the
        # name's start only (as typed, Capitalised, UPPER: crm_core.queries.customers.sqlite_search_candidates)
        ("ZE", {"Zeta 100% Growth_Co"}, set()),
        ("Ac", {"Acme Trading", "acme labs"}, {"Acme Trading"}),
        ("e", {"张三科技有限公司", "深圳红隼电子", "Acme Trading", "acme labs", "Zeta 100% Growth_Co"}, set()),
        ("LA", {"acme labs"}, set()),
        ("%", {"Zeta 100% Growth_Co"}, set()),  # LIKE wildcards are literal
        ("_c", {"Zeta 100% Growth_Co"}, set()),
        ("q", set(), None),
    ],
)
def test_one_or_two_characters_find_what_they_did_before_the_short_search_index(
    db: Database, short_world: World, search: str, expected: set[str], on_sqlite: set[str] | None
) -> None:
    """PostgreSQL answers short terms through the short-substring GIN indexes (migration 0036): the
    rows must be exactly those of the ILIKE it ran before, written out here in plain SQL."""
    with db.session(short_world.admin) as session:
        found = set(names(list_customers(session, filters=CustomerFilters(search=search), per_page=100)))
        assert count_customers(session, filters=CustomerFilters(search=search)) == len(found)
    if db.dialect_name == "sqlite" and on_sqlite is not None:
        expected = on_sqlite
    assert found == expected
    if db.dialect_name == "postgresql":
        before = "strpos(lower(name), lower(:term)) > 0 OR strpos(email_normalized, lower(:term)) > 0"
        assert found == sql_names(db, before, term=search)


def test_postgresql_plans_short_searches_and_the_owner_name_sort_on_their_indexes(
    db: Database, short_world: World
) -> None:
    """The expressions the queries use are the ones indexed (a handful of rows: PostgreSQL would rightly
    read the table, so sequential scans are off; the question is which index can find the rows)."""
    if db.dialect_name != "postgresql":
        pytest.skip("the short-substring and owner/name indexes are PostgreSQL's (migration 0036)")
    connection = db.bind
    assert isinstance(connection, Connection)
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")

    def plan(statement: Any) -> str:
        compiled = statement.compile(connection)
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))

    for term in ("张", "科技", "a", "Ac"):
        text_plan = plan(select(Customer.id).where(search_condition(term, "postgresql")))
        assert "Bitmap Index Scan on ix_customers_name_short_grams" in text_plan, text_plan
        assert "Bitmap Index Scan on ix_customers_email_short_grams" in text_plan, text_plan
    contact_plan = plan(select(Contact.id).where(contact_text_condition("王", "postgresql")))
    assert "Bitmap Index Scan on ix_contacts_name_short_grams" in contact_plan, contact_plan

    with sent_statements(db.engine) as statements, db.session(short_world.admin) as session:
        list_customers(session, filters=CustomerFilters(owner_id=short_world.rep.user_id), sort="name",
                       descending=False)
    statement, parameters = next((s, p) for s, p in statements if s.lstrip().startswith("SELECT customers.id"))
    grid_plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
    # the page in name order straight from the index: no row of the owner fetched only to test archived_at
    assert "Index Scan using ix_customers_owner_name_live" in grid_plan and "Sort" not in grid_plan, grid_plan


def test_a_rep_never_sees_another_reps_customers_even_when_searching(db: Database, grid: World) -> None:
    with db.session(grid.rep_other_team) as session:
        assert names(list_customers(session, filters=CustomerFilters(search="acme"))) == []
        assert names(list_customers(session)) == ["West Coast Ltd"]
        assert count_customers(session, filters=CustomerFilters(industry="Retail")) == 1
        assert [row.name for row in iter_customers(session)] == ["West Coast Ltd"]


def test_a_manager_sees_the_team_but_not_the_other_team(db: Database, grid: World) -> None:
    with db.session(grid.manager) as session:
        seen = set(names(list_customers(session, per_page=100)))
    assert "Teammate Co" in seen and "张三科技有限公司" in seen and "West Coast Ltd" not in seen


@pytest.mark.parametrize("sort", ["updated_at", "created_at", "name", "lifecycle_stage", "last_contacted_at"])
@pytest.mark.parametrize("descending", [True, False])
def test_keyset_pages_walk_every_row_once_in_sort_order(db: Database, grid: World, sort: str, descending: bool) -> None:
    with db.session(grid.admin) as session:
        everything = names(list_customers(session, sort=sort, descending=descending, per_page=100))
        walked: list[str] = []
        page = list_customers(session, sort=sort, descending=descending, per_page=2, with_total=False)
        walked += names(page)
        number = 1
        while page.has_next:
            number += 1
            page = list_customers(session, sort=sort, descending=descending, per_page=2, with_total=False,
                                  after=page.next_cursor, page=number)
            walked += names(page)
    assert walked == everything and len(walked) == 7


def test_a_capped_count_stops_at_the_cap(db: Database, grid: World) -> None:
    with db.session(grid.admin) as session:
        page = list_customers(session, per_page=2, count_cap=3)
        exact = list_customers(session, per_page=2, count_cap=100)
    assert (page.total, page.total_capped) == (3, True)
    assert (exact.total, exact.total_capped) == (7, False)


def test_archived_customers_leave_the_grid_unless_asked_for(db: Database, grid: World) -> None:
    with db.system_transaction("archive") as session:
        session.execute(
            update(Customer).where(Customer.name == "acme labs").values(archived_at=dt.datetime(2026, 4, 1))
        )
    with db.session(grid.admin) as session:
        assert "acme labs" not in names(list_customers(session, per_page=100))
        with_archived = CustomerFilters(include_archived=True)
        assert "acme labs" in names(list_customers(session, filters=with_archived, per_page=100))


def test_filters_survive_a_round_trip_through_a_saved_view() -> None:
    filters = CustomerFilters(search="张三", created_from=dt.date(2026, 1, 2), custom={"contract_value": [1, None]},
                              never_contacted=True)
    assert CustomerFilters.from_dict(filters.as_dict()) == filters


@pytest.mark.parametrize("search", ["科技", "红隼", "隼", "科技有限"])
def test_one_or_two_chinese_characters_match_anywhere_in_the_name(db: Database, search: str) -> None:
    world = build_world(db)
    create_random_customer(db, world.admin, name="深圳红隼科技有限公司")
    create_random_customer(db, world.admin, name="北京华为技术有限公司")
    with db.session(world.admin) as session:
        page = list_customers(session, filters=CustomerFilters(search=search))
    assert [row.name for row in page.items] == ["深圳红隼科技有限公司"]


@pytest.mark.parametrize("search", ["小明", "明", "王小明", "王"])
def test_chinese_words_at_the_end_of_a_name_are_found_too(db: Database, search: str) -> None:
    world = build_world(db)
    create_random_customer(db, world.admin, name="王小明")
    create_random_customer(db, world.admin, name="李华")
    with db.session(world.admin) as session:
        page = list_customers(session, filters=CustomerFilters(search=search))
    assert [row.name for row in page.items] == ["王小明"]


def test_a_renamed_customer_is_found_by_its_new_short_name_only(db: Database) -> None:
    world = build_world(db)
    customer_id = create_random_customer(db, world.admin, name="红隼电子")
    with db.system_transaction("rename") as session:
        session.execute(update(Customer).where(Customer.id == customer_id).values(name="蓝鲸电子"))
    with db.session(world.admin) as session:
        assert names(list_customers(session, filters=CustomerFilters(search="蓝鲸"))) == ["蓝鲸电子"]
        assert names(list_customers(session, filters=CustomerFilters(search="红隼"))) == []


def test_a_common_chinese_word_is_searched_row_by_row_with_the_same_result(db: Database) -> None:
    """Found in at least 0.5 % of a sample, a short Chinese term is tested on each row in sort
    order (no full-text match set); the rows must be the ones the index would have found."""
    world = build_world(db)
    for index in range(24):  # a rep needs twice the sample hits of a manager (see _sqlite_plan)
        owner = world.rep if index % 2 else world.rep_other_team
        create_random_customer(db, world.admin, name=f"华东科技{index:02d}", owner_id=owner.user_id)
    create_random_customer(db, world.admin, name="华南贸易", owner_id=world.rep.user_id)
    search = CustomerFilters(search="科技")
    for actor, expected in ((world.admin, 24), (world.rep, 12)):
        with db.session(actor) as session:
            if db.dialect_name == "sqlite":
                assert _sqlite_plan(session, search, "updated_at")[1] is True  # the row-by-row plan
            found = names(list_customers(session, filters=search, per_page=100))
            assert count_customers(session, filters=search) == expected
        owner_rule = "" if actor is world.admin else f" AND owner_id = {actor.user_id}"
        assert set(found) == sql_names(db, f"name LIKE '%科技%'{owner_rule}") and len(found) == expected


@pytest.fixture
def common_word(db: Database) -> World:
    """Nine customers named '…科技…' (three the rep's, one of them archived; six another team's), one other."""
    world = build_world(db)
    for index in range(9):
        owner = world.rep if index < 3 else world.rep_other_team
        create_random_customer(db, world.admin, name=f"华东科技{index:02d}", email=f"tech{index}@east.cn",
                               owner_id=owner.user_id)
    create_random_customer(db, world.admin, name="华南贸易", owner_id=world.rep.user_id)
    with db.system_transaction("archive one") as session:
        archived = dt.datetime(2026, 4, 1)
        session.execute(update(Customer).where(Customer.name == "华东科技00").values(archived_at=archived))
    return world


@pytest.mark.parametrize("search", ["科技", "华东科技", "EAST.CN", "科"])
@pytest.mark.parametrize(("role", "cap"), [
    ("admin", None), ("admin", 5), ("admin", 7), ("admin", 8), ("rep", None), ("rep", 1), ("rep", 2),
    ("rep_other_team", 5), ("rep_other_team", 6),
])
def test_the_count_beside_a_search_keeps_visibility_archiving_and_the_cap(
    db: Database, common_word: World, search: str, role: str, cap: int | None
) -> None:
    actor = getattr(common_word, role)
    owner_rule = "" if role == "admin" else f" AND owner_id = {actor.user_id}"
    exact = len(sql_names(db, f"name LIKE '华东科技%' AND archived_at IS NULL{owner_rule}"))
    assert exact == {"admin": 8, "rep": 2, "rep_other_team": 6}[role]
    filters = CustomerFilters(search=search)
    with db.session(actor) as session:
        page = list_customers(session, filters=filters, per_page=1, count_cap=cap)
        counted = count_customers(session, filters=filters, cap=cap)
    if cap is None or exact <= cap:
        assert (page.total, page.total_capped, counted) == (exact, False, exact)
    else:  # "cap+ match": the count read one more than the cap and stopped
        assert (page.total, page.total_capped, counted) == (cap, True, cap + 1)


def test_with_a_search_the_count_and_its_filters_agree_with_sql(db: Database, grid: World) -> None:
    with db.session(grid.admin) as session:
        retail_acme = count_customers(session, filters=CustomerFilters(search="acme", industry="Retail"), cap=1000)
        vip_acme = count_customers(session, filters=CustomerFilters(search="acme", tag="vip"), cap=1000)
        teammate = count_customers(session, filters=CustomerFilters(search="mmate",
                                                                    owner_id=grid.rep_same_team.user_id))
        not_rep = count_customers(session, filters=CustomerFilters(search="mmate", owner_id=grid.rep.user_id))
    assert retail_acme == len(sql_names(db, "industry = 'Retail' AND lower(name) LIKE '%acme%'")) == 2
    assert vip_acme == len(sql_names(db, "tags LIKE '%,vip,%' AND lower(name) LIKE '%acme%'")) == 1
    assert (teammate, not_rep) == (1, 0)


def test_sqlite_counts_a_search_through_the_full_text_index(db: Database, common_word: World) -> None:
    """The count must not read the grid's sort index and LIKE each row (0.8 s at 1M customers)."""
    if db.dialect_name != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    with sent_statements(db.engine) as statements, db.session(common_word.rep) as session:
        for search in ("科技", "科", "east.cn"):
            count_customers(session, filters=CustomerFilters(search=search), cap=1000)
    counts = [statement for statement, _ in statements if "count(" in statement.lower()]
    assert len(counts) == 3
    assert all("FROM customers_fts JOIN customers" in s and "MATCH" in s and " LIKE " not in s for s in counts)
