"""The benchmarks' browserless load driver against the real host (``benchmarks/stream_driver.py``, decision 0061).

The driver speaks Streamlit's websocket protocol with the pinned Streamlit's own message classes; these tests
keep it honest across upgrades: a session it opens is logged in by the host's real cookie check, reaches the
pages a link reaches, and sees what the page drew (a search's hits, a 360's name).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.stream_driver import SessionFailed, StreamSession
from crm_core.config import COOKIE_NAME
from crm_core.db import Database, make_engine
from crm_ui.session_cookie import cookie_value
from tests.conftest import fresh_sqlite
from tests.factories import World, build_world, create_random_customer
from tests.hosting import Host, start_host
from tests.integration.test_host import COOKIE_KEY, host_env


@pytest.fixture(scope="module")
def world_host(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[Host, World, int]]:
    directory = tmp_path_factory.mktemp("stream-driver")
    url = fresh_sqlite(sqlite_template, directory / "crm.db")
    engine = make_engine(url)
    db = Database(engine)
    world = build_world(db)
    customer_id = create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn")
    create_random_customer(db, world.rep, name="Acme Trading")
    engine.dispose()
    host = start_host(host_env(url, directory), directory / "server.log", cwd=directory)
    yield host, world, customer_id
    host.stop()


def cookie(username: str, key: str = COOKIE_KEY) -> str:
    return f"{COOKIE_NAME}={cookie_value(username, key)}"


def test_a_session_with_the_login_cookie_walks_the_pages_a_rep_sees(world_host: tuple[Host, World, int]) -> None:
    host, world, customer_id = world_host

    async def walk() -> None:
        async with StreamSession(host.url, cookie(world.rep.username)) as session:
            landing = await session.open()
            assert "Dashboard" in landing.headings and landing.seconds > 0
            assert {"customers", "customer", "pipeline", "tasks"} <= set(session.pages)
            grid = await session.open("customers")
            assert "Customers" in grid.headings
            assert {"张三科技有限公司", "Acme Trading"} <= set(grid.links)
            found = await session.open("customers", widgets={session.widget(grid, "customers_search"): "张三"})
            assert "张三科技有限公司" in found.links and "Acme Trading" not in found.links
            profile = await session.open("customer", query=f"customer_id={customer_id}")
            assert profile.headings[0] == "张三科技有限公司"

    asyncio.run(walk())


def test_a_forged_cookie_gets_the_login_form(world_host: tuple[Host, World, int]) -> None:
    host, world, _ = world_host

    async def visit() -> None:
        async with StreamSession(host.url, cookie(world.rep.username, key="not-the-hosts-key-0123456789abcdef")) as s:
            landing = await s.open()
            assert "Dashboard" not in landing.headings
            assert {"Username", "Password"} <= set(landing.text_inputs.values())
            with pytest.raises(SessionFailed, match="no text input 'customers_search'"):
                s.widget(landing, "customers_search")

    asyncio.run(visit())
