"""In Chromium: find a customer in the grid, open its 360, edit it and read the change in its
history; select rows for a bulk tag with confirmation; export the current filter to CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from crm_core.models import Customer
from crm_core.services.pool import PoolRuleForm, return_to_pool, save_pool_rule
from tests.e2e.conftest import Server, log_in, open_page, screenshot, settled
from tests.factories import create_random_customer

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def log_in_to_customers(page, server: Server, username: str) -> None:  # type: ignore[no-untyped-def]
    log_in(page, server, username)
    # a click that lands in the login's second run (the cookie component reporting back) is dropped:
    # open_page clicks again until the page's heading shows, instead of clicking once and hoping
    open_page(page, "Customers", "Customers")
    try:
        page.get_by_text("customers match").wait_for(timeout=TIMEOUT)
    except Exception:
        screenshot(page, "debug-customers")
        raise


def select_grid_row(page, row: int, selected_after: int) -> None:  # type: ignore[no-untyped-def]
    """Tick the selection checkbox of ``row`` (0-based) in the glide data grid canvas."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for(timeout=TIMEOUT)
    for _attempt in range(3):
        settled(page)  # the run is over: the grid on screen holds the latest rows
        box = grid.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * row + 17)
        try:
            page.get_by_text(f"{selected_after} selected", exact=True).wait_for(timeout=10_000)
            return
        except Exception:  # the click landed on a grid that was being replaced: try again
            continue
    raise AssertionError(f"row {row} could not be selected")


def test_a_rep_finds_a_customer_edits_it_in_the_360_and_sees_the_history(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    create_random_customer(server.db, server.world.rep, name="红隼物流有限公司", email="ops@hongsun-logistics.cn")
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in_to_customers(page, server, server.world.rep.username)

    search = page.get_by_role("textbox", name="Search", exact=True)
    search.fill("物流有限")
    search.press("Enter")
    page.get_by_text("1 customers match").wait_for(timeout=TIMEOUT)
    select_grid_row(page, 0, selected_after=1)
    page.get_by_role("button", name="Open the selected customer").click()
    page.get_by_role("heading", name="红隼物流有限公司").wait_for(timeout=TIMEOUT)
    screenshot(page, "customer-360")

    settled(page)  # the 360's run is over: the expander opened next is not redrawn closed under the click
    page.get_by_role("tab", name="Details").click()  # the 360 opens on its timeline
    page.get_by_text("✏️ Edit customer").click()
    page.get_by_role("textbox", name="Industry").fill("物流")
    expect(page.get_by_role("textbox", name="Industry")).to_have_value("物流")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_role("button", name="Save changes").wait_for(state="hidden", timeout=TIMEOUT)  # the editor closes
    page.get_by_role("tab", name="History").click()
    # the grid's accessible cells back the canvas: present in the DOM, drawn on the canvas
    try:
        page.locator("td", has_text="Changed · customer").first.wait_for(state="attached", timeout=TIMEOUT)
    except Exception:
        screenshot(page, "debug-history")
        raise
    assert page.locator("td", has_text="Industry:  → 物流").count() == 1
    screenshot(page, "customer-360-history")
    with server.db.system_session("e2e check") as session:
        saved = session.scalars(select(Customer).where(Customer.name == "红隼物流有限公司")).one()
    assert saved.industry == "物流" and saved.version == 2
    context.close()


def test_a_manager_tags_selected_rows_after_confirming_and_exports_the_filter(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    for index in range(3):
        create_random_customer(server.db, server.world.rep_same_team, name=f"Bulk Target {index}", industry="Bulkware")
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, locale="en-US", accept_downloads=True)
    page = context.new_page()
    log_in_to_customers(page, server, server.world.manager.username)
    search = page.get_by_role("textbox", name="Search", exact=True)
    search.fill("Bulk Target")
    search.press("Enter")
    page.get_by_text("3 customers match").wait_for(timeout=TIMEOUT)
    select_grid_row(page, 0, selected_after=1)
    select_grid_row(page, 1, selected_after=2)
    settled(page)  # the bulk bar of the previous run is gone (two "Bulk action" boxes for a moment)
    page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Bulk action", exact=True)).click()
    page.get_by_role("option", name="Add a tag").click()
    tag = page.get_by_role("textbox", name="Tag", exact=True).last
    tag.wait_for(timeout=TIMEOUT)
    tag.fill("重点客户")
    tag.press("Enter")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Apply to 2 selected…").click()
    try:
        page.get_by_text("Add the tag \"重点客户\" to 2 customers?").wait_for(timeout=TIMEOUT)
    except Exception:
        screenshot(page, "debug-bulk")
        raise
    screenshot(page, "customers-bulk-confirm")
    with server.db.system_session("e2e check") as session:
        assert not session.scalars(select(Customer.id).where(Customer.tags.contains(",重点客户,"))).all()
    page.get_by_role("button", name="Yes, apply").click()
    page.get_by_text("Done: 2 changed, 0 already matched.").wait_for(timeout=TIMEOUT)
    with server.db.system_session("e2e check") as session:
        tagged = session.scalars(select(Customer.name).where(Customer.tags.contains(",重点客户,"))).all()
    assert len(tagged) == 2 and all(name.startswith("Bulk Target") for name in tagged)

    content = ""
    for _attempt in range(3):  # a rerun may replace the button (and its deferred file) under the click
        page.wait_for_timeout(1500)
        try:
            with page.expect_download(timeout=15_000) as download_info:
                page.get_by_role("button", name="⬇ Export CSV").click()
        except Exception:
            continue
        content = download_info.value.path().read_bytes().decode("utf-8-sig")
        break
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:2] == ["ID", "Name"]
    assert sorted(row[1] for row in rows[1:]) == ["Bulk Target 0", "Bulk Target 1", "Bulk Target 2"]
    context.close()


def test_a_rep_claims_a_customer_from_the_pool(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    world = server.world
    save_pool_rule(server.db, world.admin, PoolRuleForm(team_id=world.east_team_id, idle_days=30, daily_claim_cap=5))
    silent = [create_random_customer(server.db, world.rep, name=f"公海客户 {index}") for index in range(2)]
    long_ago = dt.datetime.now() - dt.timedelta(days=60)
    with server.db.system_transaction("e2e: silent customers") as session:
        session.execute(update(Customer).where(Customer.id.in_(silent)).values(
            last_contacted_at=long_ago, owner_since=long_ago, created_at=long_ago))
    assert return_to_pool(server.db, world.admin.tenant_id).returned == 2

    context = browser.new_context(viewport={"width": 1500, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, world.rep_same_team.username)
    open_page(page, "Customer pool", "Customer pool")
    page.get_by_text("In the pool:").wait_for(timeout=TIMEOUT)
    select_grid_row(page, 0, selected_after=1)
    page.get_by_role("button", name="Claim 1").click()
    page.get_by_text("Claimed 1 customer(s)").wait_for(timeout=TIMEOUT)
    screenshot(page, "pool-claimed")
    with server.db.system_session("e2e check") as session:
        owners = set(session.scalars(select(Customer.owner_id).where(Customer.id.in_(silent))))
    assert owners == {None, world.rep_same_team.user_id}
    context.close()
