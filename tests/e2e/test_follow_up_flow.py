"""In Chromium, the seed's core flow: a rep enters a customer → a follow-up task is assigned
automatically → the rep logs a call from it and the call shows on the customer's 360 timeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Activity, Customer, Task
from tests.e2e.conftest import Server, log_in, open_page, screenshot

pytestmark = pytest.mark.e2e
TIMEOUT = 20_000
NAME = "杭州红隼贸易有限公司"


def test_a_new_customer_gets_a_follow_up_task_and_a_logged_call_shows_on_the_timeline(
    server: Server, browser  # type: ignore[no-untyped-def]
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1200}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.rep.username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)  # the landing page

    # 1. the rep enters a customer
    open_page(page, "Customers", "Customers")
    page.get_by_role("textbox", name="Name *").fill(NAME)
    page.get_by_role("button", name="Create customer").click()
    page.get_by_text(f'Customer "{NAME}" created.').wait_for(timeout=TIMEOUT)

    # 2. the follow-up task is there, assigned to the rep, due tomorrow
    open_page(page, "Tasks", "Tasks")
    page.locator('[data-testid="stRadio"]').get_by_text("Upcoming", exact=True).click()
    page.get_by_role("heading", name="Work on a task").wait_for(timeout=TIMEOUT)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Task").click()
    page.get_by_role("option", name=f"Follow up with {NAME}").click()
    page.get_by_role("link", name=f"Open {NAME}").wait_for(timeout=TIMEOUT)
    screenshot(page, "tasks-follow-up-assigned")
    with server.db.system_session("e2e check") as session:
        customer = session.scalars(select(Customer).where(Customer.name == NAME)).one()
        task = session.scalars(select(Task).where(Task.customer_id == customer.id)).one()
    assert task.assignee_id == server.world.rep.user_id and task.status == "open"

    # 3. from the task to the customer's 360, where the rep logs the call
    page.get_by_role("link", name=f"Open {NAME}").click()
    page.get_by_role("heading", name=NAME).wait_for(timeout=TIMEOUT)
    page.get_by_role("radio", name="Log a call").click()
    page.get_by_role("textbox", name="What happened *").fill("电话沟通：客户需要报价单")
    page.get_by_role("button", name="Log activity").click()
    page.get_by_text("Activity logged.").wait_for(timeout=TIMEOUT)
    page.get_by_text("电话沟通：客户需要报价单").first.wait_for(timeout=TIMEOUT)  # on the timeline
    screenshot(page, "profile-call-on-timeline")
    with server.db.system_session("e2e check") as session:
        activity = session.scalars(select(Activity).where(Activity.customer_id == customer.id)).one()
        refreshed = session.get(Customer, customer.id)
    assert activity.type == "call" and activity.author_id == server.world.rep.user_id
    assert refreshed is not None and refreshed.last_contacted_at is not None
    context.close()
