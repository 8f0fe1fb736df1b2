"""In Chromium: switching the language keeps what the user picked in translated choice boxes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server, log_in, pick_option, screenshot, settled, switch_language

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
    open_filters(page)
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
