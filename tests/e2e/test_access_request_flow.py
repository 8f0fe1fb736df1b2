"""In Chromium, 撞单: a rep creates a company another rep owns → blocked, told the owner's name → asks for
access → the owner approves from the notification → the customer is the requester's, who opens it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Customer
from tests.e2e.conftest import Server, log_in, open_page, screenshot, settled

pytestmark = pytest.mark.e2e
TIMEOUT = 20_000
NAME = "Acme Trading"  # the rep's customer in the e2e world


def test_a_blocked_rep_asks_for_the_customer_and_the_owner_gives_it_from_the_notification(
    server: Server, browser  # type: ignore[no-untyped-def]
) -> None:
    world = server.world
    asker_context = browser.new_context(viewport={"width": 1400, "height": 1200}, locale="en-US")
    asker = asker_context.new_page()
    log_in(asker, server, world.rep_other_team.username)

    # 1. Fay (West) types a company Rita (East) owns: refused, with the owner's name and nothing else
    open_page(asker, "Customers", "Customers")
    asker.get_by_role("textbox", name="Name *").fill("ACME trading")
    asker.get_by_role("button", name="Create customer").click()
    asker.get_by_text("Rita Rep").first.wait_for(timeout=TIMEOUT)
    assert asker.get_by_text("hello@acme.com").count() == 0  # no field of the record leaks
    asker.get_by_role("textbox", name="Reason (optional)").fill("Met their buyer at the Canton fair")
    asker.get_by_role("button", name="Request access").click()
    asker.get_by_text("Your request was sent").wait_for(timeout=TIMEOUT)
    screenshot(asker, "access-request-sent")

    # 2. Rita sees the bell's count, opens the notifications, approves
    owner_context = browser.new_context(viewport={"width": 1400, "height": 1200}, locale="en-US")
    owner = owner_context.new_page()
    log_in(owner, server, world.rep.username)
    bell = owner.get_by_role("link", name="🔔 Notifications (1 unread)")
    bell.wait_for(timeout=TIMEOUT)
    bell.click()
    owner.get_by_role("heading", name="Notifications", exact=True).wait_for(timeout=TIMEOUT)
    owner.get_by_text("Fay Faraway asks for Acme Trading").wait_for(timeout=TIMEOUT)
    owner.get_by_text("Reason: Met their buyer at the Canton fair").wait_for(timeout=TIMEOUT)
    owner.get_by_role("button", name="Approve: give the customer").click()
    owner.get_by_text("Approved: the customer now belongs to Fay Faraway.").wait_for(timeout=TIMEOUT)
    screenshot(owner, "access-request-approved")
    with server.db.system_session("e2e check") as session:
        customer = session.scalars(select(Customer).where(Customer.name == NAME)).one()
    assert customer.owner_id == world.rep_other_team.user_id

    # 3. Fay is told, and opens the customer from the notification
    asker.reload()
    settled(asker)
    bell = asker.get_by_role("link", name="🔔 Notifications (1 unread)")
    bell.wait_for(timeout=TIMEOUT)
    bell.click()
    asker.get_by_text("Rita Rep approved your request: Acme Trading is yours now").wait_for(timeout=TIMEOUT)
    settled(asker)
    asker.locator('[data-testid="stMain"]').get_by_role("button", name="Open", exact=True).click()
    asker.get_by_role("heading", name=NAME).wait_for(timeout=TIMEOUT)
    screenshot(asker, "access-request-opened")
    asker_context.close()
    owner_context.close()
