"""In Chromium: find a customer's deal on the board, open it by its name, edit its stage, see the
funnel change; win it from the card's "Move to" list."""

from __future__ import annotations

import pytest

from crm_core.models import Customer, Opportunity
from crm_core.services.deals import OpportunityInput, create_opportunity
from tests.e2e.conftest import Server, log_in, open_page, screenshot

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def metric(page, label: str) -> str:  # type: ignore[no-untyped-def]
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def open_funnel(page) -> None:  # type: ignore[no-untyped-def]
    open_page(page, "Funnel", "Sales funnel")
    page.locator('[data-testid="stMetric"]').filter(has_text="Weighted forecast").wait_for(timeout=TIMEOUT)


def test_a_rep_moves_a_deal_and_the_funnel_follows(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    rep = server.world.rep
    with server.db.session(rep) as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "张三科技有限公司")).one()
    deal_id = create_opportunity(server.db, rep, OpportunityInput(customer_id=customer_id, name="Pilot 试点",
                                                                  amount="10000"))
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, rep.username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)

    open_funnel(page)
    assert metric(page, "Weighted forecast") == "¥1,000"  # 10,000 at Lead, 10 %
    assert metric(page, "Win rate") == "—"

    # find the customer's deal on the board and open it
    open_page(page, "Pipeline", "Pipeline")
    page.get_by_role("heading", name="Pipeline", exact=True).wait_for(timeout=TIMEOUT)
    search = page.get_by_role("textbox", name="Search deals")
    search.fill("张三")
    search.press("Enter")
    page.locator(".kb-name", has_text="Pilot 试点").click()  # the deal's name opens it
    page.get_by_text("Edit deal: Pilot 试点").wait_for(timeout=TIMEOUT)

    # edit its stage in the deal form
    page.locator('[data-testid="stForm"] [data-testid="stSelectbox"]').filter(has_text="Stage").click()
    page.get_by_role("option", name="Proposal (50%)").click()
    page.get_by_role("button", name="Save deal").click()
    page.get_by_text('Deal "Pilot 试点" saved.').wait_for(timeout=TIMEOUT)
    screenshot(page, "pipeline-after-edit")
    with server.db.session(rep) as session:
        deal = session.get(Opportunity, deal_id)
        assert deal is not None and deal.version == 2

    open_funnel(page)
    page.locator('[data-testid="stMetricValue"]').filter(has_text="¥5,000").wait_for(timeout=TIMEOUT)
    assert metric(page, "Weighted forecast") == "¥5,000"  # now at Proposal, 50 %
    screenshot(page, "funnel-after-edit")

    # win it from the card's "Move to" list: won asks for the day it closed
    open_page(page, "Pipeline", "Pipeline")
    page.locator(f'.kb-card[data-deal="{deal_id}"] select').select_option(label="Won")
    page.get_by_role("dialog").get_by_role("button", name="Mark as Won").click()
    page.get_by_text("Last move: Pilot 试点 from Proposal to Won.").wait_for(timeout=TIMEOUT)

    open_funnel(page)
    page.locator('[data-testid="stMetricValue"]').filter(has_text="100.0%").wait_for(timeout=TIMEOUT)
    assert metric(page, "Win rate") == "100.0%"
    screenshot(page, "funnel-after-win")
    context.close()
