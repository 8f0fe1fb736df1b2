"""In Chromium: switching the language keeps what the user picked in translated choice boxes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    Server,
    log_in,
    open_page,
    pick_option,
    screenshot,
    settled,
    switch_language,
    watched_page,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
# what a select box shows: its label and the chosen option (the input's value)
SHOWN_TEXT = "box => box.innerText + ' ' + [...box.querySelectorAll('input')].map(i => i.value).join(' ')"


def test_the_dashboard_period_survives_a_language_switch(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.manager.username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
    pick_option(page, "Period", "this quarter")
    page.get_by_text("Won this quarter").first.wait_for(timeout=TIMEOUT)

    switch_language(page, "简体中文", "仪表盘")
    page.get_by_text("本季度赢单").wait_for(timeout=TIMEOUT)
    settled(page)  # the box of the run that drew the tile, not one a rerun is replacing
    period_box = page.locator('[data-testid="stSelectbox"]').filter(has_text="期间")
    shown = period_box.evaluate(SHOWN_TEXT)
    assert "本季度" in shown and "this quarter" not in shown, shown
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "dashboard-quarter-zh")
    context.close()


def open_filters(page) -> None:  # type: ignore[no-untyped-def]
    """Open the grid's filter expander; again when a rerun (the login cookie's) drew it closed meanwhile."""
    stage_box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Lifecycle stage").first
    for attempt in range(3):
        if not stage_box.is_visible():  # a click on an open expander would close it
            page.get_by_text("Filters, columns and sort").first.click()  # the filters live in one expander
        try:
            stage_box.wait_for(state="visible", timeout=10_000)
            return
        except Exception:
            if attempt == 2:
                raise


def test_customer_filters_survive_a_language_switch(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.rep.username)  # each test its own user: the language is remembered
    page.goto(f"{server.url}/customers")
    page.get_by_role("heading", name="Customers").wait_for(timeout=TIMEOUT)
    page.get_by_text("customers match").first.wait_for(timeout=TIMEOUT)
    settled(page)  # the login's last rerun draws the expander closed: open it once that is over
    open_filters(page)
    settled(page)
    open_filters(page)  # opens it again only if a rerun closed it meanwhile
    pick_option(page, "Lifecycle stage", "Churned")
    page.get_by_text("0 customers match").first.wait_for(timeout=TIMEOUT)

    switch_language(page, "简体中文", "客户")
    stage_box = page.locator('[data-testid="stSelectbox"]').filter(has_text="生命周期阶段").first
    shown = stage_box.evaluate(SHOWN_TEXT)
    assert "流失客户" in shown and "Churned" not in shown, shown
    page.get_by_text("共 0 个客户符合条件").first.wait_for(timeout=TIMEOUT)
    # the column chips relabel too (once the rerun in Chinese has replaced the English elements)
    expect(page.get_by_text("Lifecycle stage", exact=True)).to_have_count(0, timeout=TIMEOUT)
    screenshot(page, "customers-filter-zh")
    context.close()


# the calendar's header row: the weekdays' short names (decision 0035)
WEEKDAYS = "() => [...document.querySelectorAll('[role=dialog] th, [role=grid] th')].map(th => th.innerText.trim())"


def open_calendar(page, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Open the calendar of the date box labelled ``label``; its weekday names, once it shows them."""
    box = page.locator('[data-testid="stDateInput"]').filter(has_text=label).first
    for attempt in range(3):  # a rerun that lands on the click closes the popup: open it again
        box.locator("button").last.click()
        try:
            page.wait_for_function(f"() => ({WEEKDAYS})().length === 7", timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
    weekdays: list[str] = page.evaluate(WEEKDAYS)
    page.keyboard.press("Escape")
    return weekdays


def test_the_date_picker_calendar_follows_the_chosen_language_not_the_browser(  # type: ignore[no-untyped-def]
        server: Server, browser) -> None:
    watched = watched_page(browser, server, viewport={"width": 1400, "height": 1100}, locale="en-US")
    page = watched.page
    log_in(page, server, server.world.analyst.username)
    open_page(page, "Funnel", "Sales funnel")
    settled(page)
    english = open_calendar(page, "Created from")
    assert english[0] in {"S", "Su", "Sun"}, english  # the browser's en-US: Sunday first

    switch_language(page, "简体中文", "销售漏斗")
    settled(page)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    chinese = open_calendar(page, "创建日期从")
    assert chinese == ["一", "二", "三", "四", "五", "六", "日"], chinese  # Chinese names, Monday first
    screenshot(page, "funnel-calendar-zh")

    switch_language(page, "English", "Sales funnel")
    settled(page)
    assert open_calendar(page, "Created from") == english
    assert watched.violations() == []  # each language's script is allowed by its hash
    watched.context.close()
