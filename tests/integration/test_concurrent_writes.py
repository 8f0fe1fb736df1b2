"""Many users at once on every database, the embedded SQLite file included (issue 19).

With plain ``BEGIN`` on SQLite, half of ten simultaneous logins failed with "database is locked":
a transaction that read and then wrote could not wait for the lock. Writes now wait their turn
(``BEGIN IMMEDIATE``); here 20 logins, 20 edits of the same records and imports running beside
edits must end with zero errors other than the named stale-record refusal, and nothing lost.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import StaleRecord
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import
from crm_core.models import AuditEvent, Customer
from crm_core.services import auth, tenants
from crm_core.services.customers import CustomerInput, update_customer
from tests.conftest import live_database
from tests.factories import PASSWORD, World, build_world, create_random_customer

SESSIONS = 20


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def live_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """An engine-bound database of each kind (real commits, parallel connections), private to this module."""
    with live_database(request.param, tmp_path_factory, "concurrent", pool_size=SESSIONS, max_overflow=5) as db:
        yield db


@pytest.fixture
def world(live_db: Database) -> World:
    return build_world(live_db)


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together; each result or the exception it raised."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        try:
            return call()
        except Exception as error:  # collected: the test names every kind of failure
            return error

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def kinds(results: list[Any]) -> Counter[str]:
    return Counter(type(result).__name__ if isinstance(result, Exception) else "ok" for result in results)


def test_twenty_logins_at_once_all_succeed(live_db: Database, world: World) -> None:
    usernames = [world.rep.username, world.manager.username, world.analyst.username, world.admin.username]
    for number in range(4):
        name = f"{world.rep.username}.c{number}"
        tenants.create_user(live_db, world.admin, tenants.UserInput(name, f"Rep {number}", "rep", password=PASSWORD))
        usernames.append(name)

    def log_in(username: str) -> bool:
        started = auth.record_login(live_db, username)
        return started is not None and auth.load_actor(live_db, username, session_started=started) is not None

    names = [usernames[i % len(usernames)] for i in range(SESSIONS)]
    results = all_at_once([partial(log_in, name) for name in names])
    assert kinds(results) == {"ok": SESSIONS}, results
    assert all(results)


def test_twenty_people_saving_the_same_two_customers_one_wins_each_the_rest_are_told_who(
    live_db: Database, world: World
) -> None:
    targets = [create_random_customer(live_db, world.rep, name=f"Shared {n}") for n in range(2)]

    def save(number: int) -> int:
        form = CustomerInput(name=f"Edit {number}", owner_id=world.rep.user_id)
        return update_customer(live_db, world.rep, targets[number % 2], form, expected_version=1)

    results = all_at_once([partial(save, n) for n in range(SESSIONS)])
    assert kinds(results) == {"ok": 2, "StaleRecord": SESSIONS - 2}, results
    stale = [result for result in results if isinstance(result, StaleRecord)]
    assert all(error.changed_by for error in stale)  # each refusal names who saved first
    with live_db.system_session("test") as session:
        rows = {row.id: row for row in session.scalars(select(Customer).where(Customer.id.in_(targets)))}
        audited = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity == "customer", AuditEvent.entity_id.in_(targets), AuditEvent.action == "update"))
    winners = {number % 2: f"Edit {number}" for number, result in enumerate(results) if result == 2}
    assert {row.id: (row.version, row.name) for row in rows.values()} == {
        targets[0]: (2, winners[0]), targets[1]: (2, winners[1])}
    assert audited == 2  # nothing half-written by the refused saves


def test_imports_and_edits_side_by_side_lose_nothing(live_db: Database, world: World) -> None:
    mine = [create_random_customer(live_db, world.rep, name=f"Mine {n}") for n in range(SESSIONS - 4)]

    def import_batch(batch: int) -> str:
        body = "name,email\n" + "".join(f"Imported {batch}-{row},b{batch}r{row}@example.com\n" for row in range(200))
        file = open_import_file(f"batch{batch}.csv", body.encode())
        result = run_import(live_db, world.admin, file, "customers", ImportMapping.suggested("customers", file.headers),
                            ImportOptions())
        return str(result.status)

    def edit(number: int) -> int:
        form = CustomerInput(name=f"Mine {number} (edited)", owner_id=world.rep.user_id)
        return update_customer(live_db, world.rep, mine[number], form, expected_version=1)

    calls: list[Callable[[], Any]] = [partial(import_batch, b) for b in range(4)]
    calls += [partial(edit, n) for n in range(len(mine))]
    results = all_at_once(calls)
    assert kinds(results) == {"ok": SESSIONS}, [r for r in results if isinstance(r, Exception)]
    assert results[:4] == ["imported"] * 4
    with live_db.system_session("test") as session:
        imported = session.scalar(select(func.count()).select_from(Customer).where(
            Customer.tenant_id == world.admin.tenant_id, Customer.name.like("Imported %")))
        edited = session.scalar(select(func.count()).select_from(Customer).where(
            Customer.id.in_(mine), Customer.name.like("% (edited)")))
    assert (imported, edited) == (800, len(mine))
