"""A search box's text with control characters (NUL from a paste, a tab) searches for the rest, on every
database: SQLite's full-text query stopped at a NUL ("unterminated string") and PostgreSQL refuses NUL."""

from __future__ import annotations

import pytest

from crm_core.db import Database
from crm_core.queries.contacts import ContactFilters, list_contacts
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.search import global_search
from crm_core.rules.fields import search_text
from tests.factories import build_world, create_random_customer


@pytest.mark.parametrize(("typed", "searched"), [
    ("Acme\x00", "Acme"), ("a\x00b", "a b"), ("\x00", ""), ("  Acme\tTrading\r\n", "Acme Trading"), (None, ""),
    ("张三\x07科技", "张三 科技"),
])
def test_search_text_drops_control_characters(typed: str | None, searched: str) -> None:
    assert search_text(typed) == searched


def test_searches_with_a_nul_find_what_the_rest_of_the_text_finds(db: Database) -> None:
    world = build_world(db)
    create_random_customer(db, world.rep, name="Zyxwv Holdings")
    with db.session(world.rep) as session:
        for typed in ("Zyxwv\x00", "Zyx\x00", "\x00Zyxwv Holdings"):
            page = list_customers(session, filters=CustomerFilters(search=typed), with_total=True, count_cap=1000)
            assert [row.name for row in page.items] == ["Zyxwv Holdings"], typed
        assert [hit.title for hit in global_search(session, "Zyxwv\x00").customers] == ["Zyxwv Holdings"]
        list_contacts(session, filters=ContactFilters(search="a\x00b"))
