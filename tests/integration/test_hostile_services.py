"""Issue 19: the hostile corpus (tests/hostile.py) through the services the forms call, on every database.

Each value goes into each free-text field of the create (and the customer edit) services. The outcome
is either the value stored in its stored form (trimmed; NFKC-folded where the field rules fold) or a
:class:`~crm_core.errors.DomainError` whose catalog keys have a text in both languages — never another
exception, and never a row written by a refusal. One test per entity, the values batched in it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from crm_core.db import Database
from crm_core.errors import DomainError, ValidationFailed
from crm_core.i18n import t
from crm_core.rules.fields import clean_text
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.cases import CaseInput, create_case
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.customers import CustomerInput, create_customer, update_customer
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.products import ProductInput, create_product
from crm_core.services.segments import SegmentInput, save_segment
from crm_core.services.tasks import TaskInput, create_task
from tests.factories import World, build_world, create_random_customer
from tests.hostile import CORPUS, Hostile, sample

CALLS: Counter[str] = Counter()
THIN = sample(5)  # secondary fields: five values of every family, its longest among them


def count(db: Database, table: str) -> int:
    with db.system_session("test: count") as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def stored(db: Database, table: str, column: str, row_id: int) -> Any:
    with db.system_session("test: read back") as session:
        return session.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id}).scalar_one()


def untranslated(error: DomainError) -> list[str]:
    """The catalog keys of ``error`` that have no text (a refusal the user could not read)."""
    keys = [key for key, _ in error.errors.values()] if isinstance(error, ValidationFailed) else [error.message_key]
    return [key for key in keys for language in ("en", "zh-CN") if t(key, language) == key]


def run(db: Database, table: str, column: str, values: list[Hostile], call: Callable[[str], int],
        expected: Callable[[str], set[Any]] | None = None) -> list[str]:
    """``call`` with each value; the failures, each named by the value's id.

    Each test is one rolled-back transaction: on PostgreSQL every savepoint keeps a lock until its end,
    and thousands exceed max_locks_per_transaction; there (and on MariaDB) the corpus is sampled."""
    if values is CORPUS and db.dialect_name != "sqlite":
        values = sample(10)
    failures = []
    for item in values:
        before = count(db, table)
        where = f"{table}.{column}={item!r}"
        CALLS[table] += 1
        try:
            row_id = call(item.value)
        except DomainError as error:
            failures += [f"{where}: refused with an untranslated key {key}" for key in untranslated(error)]
            if count(db, table) != before:
                failures.append(f"{where}: refused ({type(error).__name__}) but a row was written")
            continue
        except Exception as error:  # noqa: BLE001 - exactly what the corpus looks for
            failures.append(f"{where}: {type(error).__name__}: {str(error)[:200]}")
            continue
        value = stored(db, table, column, row_id)
        allowed = expected(item.value) if expected else {clean_text(item.value), item.value.strip()}
        if value not in allowed:
            failures.append(f"{where}: stored {str(value)[:60]!r}, not the value's stored form")
    return failures


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def report(name: str, started: float, failures: list[str]) -> None:
    print(f"\n{name}: {sum(CALLS.values())} service calls so far, {time.monotonic() - started:.1f}s")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:60])


def test_customers(db: Database, world: World) -> None:
    started = time.monotonic()
    rep = world.rep
    failures = run(db, "customers", "name", CORPUS, lambda value: create_customer(
        db, rep, CustomerInput(name=value, owner_id=rep.user_id), allow_duplicate=True))
    for column in ("industry", "region", "source", "email", "phone", "external_id"):
        failures += run(db, "customers", column, THIN, lambda value, column=column: create_customer(  # type: ignore[misc]
            db, rep, CustomerInput(name="Hostile Services Ltd", owner_id=rep.user_id, **{column: value}),
            allow_duplicate=True))
    failures += run(db, "customers", "tags", THIN, lambda value: create_customer(
        db, rep, CustomerInput(name="Hostile Tags Ltd", owner_id=rep.user_id, tags=value), allow_duplicate=True),
        expected=lambda value: {None, "", *[f",{tag}," for tag in [clean_text(value)] if tag]} | {
            stored_tags(value)})
    # the edit form: one customer renamed to each value, its version followed
    customer_id = create_random_customer(db, rep)
    version = [1]

    def rename(value: str) -> int:
        version[0] = update_customer(db, rep, customer_id, CustomerInput(name=value, owner_id=rep.user_id),
                                     expected_version=version[0])
        return customer_id

    failures += run(db, "customers", "name", CORPUS, rename)
    report("customers", started, failures)


def stored_tags(value: str) -> str:
    from crm_core.rules.contact_details import parse_tags, store_tags

    return store_tags(parse_tags(value))


def test_contacts_deals_and_cases(db: Database, world: World) -> None:
    started = time.monotonic()
    rep = world.rep
    customer_id = create_random_customer(db, rep)
    failures = run(db, "contacts", "name", CORPUS, lambda value: create_contact(
        db, rep, ContactInput(customer_id=customer_id, name=value)))
    for column in ("title", "email", "phone"):
        failures += run(db, "contacts", column, THIN, lambda value, column=column: create_contact(  # type: ignore[misc]
            db, rep, ContactInput(customer_id=customer_id, name="Lin Mei", **{column: value})))
    failures += run(db, "opportunities", "name", CORPUS, lambda value: create_opportunity(
        db, rep, OpportunityInput(customer_id=customer_id, name=value)))
    failures += run(db, "cases", "subject", CORPUS, lambda value: create_case(
        db, rep, CaseInput(customer_id=customer_id, subject=value)))
    failures += run(db, "cases", "description", THIN, lambda value: create_case(
        db, rep, CaseInput(customer_id=customer_id, subject="Broken", description=value)),
        expected=lambda value: {value.strip(), clean_text(value), "", None})
    report("contacts, deals, cases", started, failures)


def test_tasks_activities_products_and_segments(db: Database, world: World) -> None:
    started = time.monotonic()
    rep, admin = world.rep, world.admin
    customer_id = create_random_customer(db, rep)
    failures = run(db, "tasks", "title", CORPUS, lambda value: create_task(
        db, rep, TaskInput(title=value, customer_id=customer_id)))
    failures += run(db, "activities", "summary", CORPUS, lambda value: log_activity(
        db, rep, ActivityInput(customer_id=customer_id, type="note", summary=value)))
    skus = iter(range(1_000_000))
    failures += run(db, "products", "name", CORPUS, lambda value: create_product(
        db, admin, ProductInput(sku=f"HS-{next(skus)}", name=value)))
    failures += run(db, "products", "sku", THIN, lambda value: create_product(
        db, admin, ProductInput(sku=value, name="Scanner")))
    conditions = {"match": "all", "conditions": [{"field": "name", "op": "contains", "value": "Acme"}]}
    failures += run(db, "segments", "name", CORPUS, lambda value: save_segment(
        db, admin, SegmentInput(name=value, conditions=conditions)))
    failures += run(db, "segments", "description", THIN, lambda value: save_segment(
        db, admin, SegmentInput(name=f"Segment {next(skus)}", conditions=conditions, description=value)),
        expected=lambda value: {value.strip(), clean_text(value), "", None})
    failures += run(db, "segments", "name", sample(3), lambda value: save_segment(  # as a condition's value
        db, admin, SegmentInput(name=f"Search {next(skus)}", conditions={
            "match": "all", "conditions": [{"field": "name", "op": "contains", "value": value}]})),
        expected=lambda value: {stored(db, "segments", "name", max_segment(db))})
    report("tasks, activities, products, segments", started, failures)


def max_segment(db: Database) -> int:
    with db.system_session("test: last segment") as session:
        return int(session.execute(text("SELECT max(id) FROM segments")).scalar_one())


def test_the_global_search_and_the_grid_search_answer_every_value(db: Database, world: World) -> None:
    """The sidebar's search and the grid's search box take the corpus (cut to the boxes' 200 characters)
    on every database: LIKE wildcards, FTS5/tsquery syntax, NUL and quotes are text to look for."""
    from crm_core.queries.customers import CustomerFilters, list_customers
    from crm_core.queries.search import global_search

    started = time.monotonic()
    create_random_customer(db, world.rep, name="Acme Trading", email="hello@acme.example")
    failures = []
    values = CORPUS if db.dialect_name == "sqlite" else sample(10)
    for item in values:
        for name, search in (("global search", lambda session, q: global_search(session, q)),
                             ("grid search", lambda session, q: list_customers(
                                 session, filters=CustomerFilters(search=q), per_page=20))):
            CALLS["search"] += 1
            try:
                with db.session(world.rep) as session:
                    search(session, item.value[:200])
            except Exception as error:  # noqa: BLE001 - exactly what the corpus looks for
                failures.append(f"{name} {item!r}: {type(error).__name__}: {str(error)[:200]}")
    report("searches", started, failures)
