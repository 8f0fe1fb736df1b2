"""In Chromium: log in, switch to 中文, search, create a customer, log out; the old cookie is dead."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Customer
from tests.e2e.conftest import Server, log_in, open_page, screenshot, session_cookie, switch_language

pytestmark = pytest.mark.e2e
TIMEOUT = 45_000


def log_in_to_customers(page, server: Server, username: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)  # the landing page
    open_page(page, "Customers", "Customers")


def test_a_rep_works_in_chinese_and_logging_out_kills_the_cookie(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = context.new_page()
    log_in_to_customers(page, server, server.world.rep.username)
    screenshot(page, "customers-en")

    # switch the interface to Simplified Chinese
    switch_language(page, "简体中文", "客户")

    # server-side search, Chinese included
    search = page.get_by_role("textbox", name="搜索", exact=True)
    search.fill("张三")
    search.press("Enter")
    page.get_by_text("共 1 个客户符合条件").wait_for(timeout=TIMEOUT)
    screenshot(page, "customers-zh-search")

    # create a customer through the form
    page.get_by_role("textbox", name="名称 *").fill("深圳红隼电子有限公司")
    page.get_by_role("textbox", name="邮箱").fill("sales@hongsun.example.cn")
    page.get_by_role("button", name="创建客户").click()
    page.get_by_text("客户“深圳红隼电子有限公司”已创建。").wait_for(timeout=TIMEOUT)
    with server.db.system_session("e2e check") as session:
        created = session.scalars(select(Customer).where(Customer.name == "深圳红隼电子有限公司")).one()
    assert created.owner_id == server.world.rep.user_id
    screenshot(page, "customers-zh-created")

    cookie = session_cookie(context)
    # set by the server: scripts cannot read it
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert "kestrel_session" not in page.evaluate("document.cookie")

    # log out: the page returns to the login form
    page.get_by_role("button", name="退出登录").click()
    page.get_by_text("您已退出登录。").wait_for(timeout=TIMEOUT)
    context.close()

    # a browser replaying the old cookie is not logged back in
    replay = browser.new_context(viewport={"width": 1400, "height": 1000})
    replay.add_cookies([cookie])  # type: ignore[list-item]
    replayed = replay.new_page()
    replayed.goto(server.url)
    replayed.get_by_role("button", name="Log in").wait_for(timeout=TIMEOUT)
    assert replayed.get_by_role("heading", name="Customers").count() == 0
    screenshot(replayed, "old-cookie-refused")
    replay.close()


def test_a_valid_cookie_logs_back_in_without_a_password(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    log_in_to_customers(page, server, server.world.analyst.username)
    cookie = session_cookie(context)
    context.close()
    again = browser.new_context(viewport={"width": 1400, "height": 1000})
    again.add_cookies([cookie])  # type: ignore[list-item]
    page = again.new_page()
    page.goto(server.url)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
    again.close()
