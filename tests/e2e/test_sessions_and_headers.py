"""In Chromium: the pages load nothing from outside and break no Content-Security-Policy; an open tab
ends at its next click when the user logs out elsewhere or an admin changes their password."""

from __future__ import annotations

import re
import urllib.request

import pytest
from sqlalchemy import select

from crm_core.models import User
from crm_core.services import tenants
from tests.e2e.conftest import Server, log_in, open_page, screenshot, session_cookie, settled, watched_page
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e
TIMEOUT = 45_000


def test_pages_load_only_from_this_host_under_a_strict_policy(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    watched = watched_page(browser, server, viewport={"width": 1400, "height": 1000})
    context, page = watched.context, watched.page
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    response = page.goto(server.url)
    assert response is not None
    headers = response.headers
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert "img-src 'self' data: blob:" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"

    log_in(page, server, server.world.manager.username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
    settled(page)
    for link, heading in (("Customers", "Customers"), ("Pipeline", "Pipeline"), ("Funnel", "Sales funnel"),
                          ("Customer 360", "Customer 360"), ("My account", "My account")):
        open_page(page, link, heading)
        settled(page)
    assert watched.violations() == [], watched.violations()
    refused = [line for line in console if "Content Security Policy" in line]
    assert refused == [], refused
    assert watched.outside == [], watched.outside
    screenshot(page, "account-under-csp")
    context.close()
    # the walk is in the host's metrics: one series per page, labelled by the page's path only
    scraped = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
    for path in ("customers", "pipeline", "funnel", "account"):
        assert f'kestrel_page_run_seconds_count{{page="{path}"}}' in scraped, path
    active = re.search(r"^kestrel_active_sessions (\d+)", scraped, re.M)
    assert active and int(active.group(1)) >= 1  # the walk's session ran pages a moment ago


def test_an_open_tab_ends_when_the_user_logs_out_elsewhere_or_gets_a_new_password(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    username = server.world.rep.username
    desk = browser.new_context(viewport={"width": 1400, "height": 1000})
    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    desk_page, laptop_page = desk.new_page(), laptop.new_page()
    log_in(desk_page, server, username)
    log_in(laptop_page, server, username)
    for page in (desk_page, laptop_page):
        page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
        settled(page)

    desk_page.get_by_role("button", name="Log out").click()
    desk_page.get_by_text("You have logged out.").wait_for(timeout=TIMEOUT)

    # the other browser's next click: back to the login form, told why
    laptop_page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Customers").click()
    laptop_page.get_by_text("Your session has ended. Please log in again.").wait_for(timeout=TIMEOUT)
    assert laptop_page.get_by_role("heading", name="Customers").count() == 0
    screenshot(laptop_page, "session-ended-elsewhere")

    # logged in again; an admin sets a new password: the open tab ends at its next click
    log_in(desk_page, server, username)
    desk_page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
    settled(desk_page)
    with server.db.system_session("e2e") as session:
        user = session.scalars(select(User).where(User.username == username)).one()
    form = tenants.UserInput(username, user.full_name, user.role, team_id=user.team_id, password="Reset-by-admin-77")
    tenants.update_user(server.db, server.world.admin, user.id, form, expected_version=user.version)
    desk_page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Customers").click()
    desk_page.get_by_role("button", name="Log in").wait_for(timeout=TIMEOUT)
    assert desk_page.get_by_role("heading", name="Customers").count() == 0
    desk.close()
    laptop.close()


def test_my_new_password_keeps_this_browser_signed_in_across_a_reload(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    log_in(page, server, server.world.analyst.username)
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=TIMEOUT)
    first = session_cookie(context)
    assert first["httpOnly"] is True
    open_page(page, "My account", "My account")
    settled(page)
    page.get_by_role("textbox", name="Current password").fill(PASSWORD)
    page.get_by_role("textbox", name="New password", exact=True).fill("Analyst-new-pass-31")
    page.get_by_role("textbox", name="New password again").fill("Analyst-new-pass-31")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed.", exact=False).wait_for(timeout=TIMEOUT)

    def renewed() -> bool:
        return any(c["name"] == "kestrel_session" and c["value"] != first["value"] for c in context.cookies())

    for _ in range(300):
        if renewed():
            break
        page.wait_for_timeout(100)
    assert renewed(), "the host did not renew the login cookie after the password change"
    page.reload()
    page.get_by_role("heading", name="My account").wait_for(timeout=TIMEOUT)  # signed in by the new cookie
    settled(page)
    assert page.get_by_role("button", name="Log in").count() == 0
    assert page.get_by_text("Customers, pipeline and follow-ups for your sales team.").count() == 0  # no login screen
    page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=TIMEOUT)
    screenshot(page, "password-changed-reloaded")
    context.close()


@pytest.mark.parametrize("page_name", ["case", "customer"])
def test_a_link_into_the_app_survives_the_login(server: Server, browser, page_name: str) -> None:  # type: ignore[no-untyped-def]
    """A notification's or a colleague's link to a case or a customer, opened logged out: the login form,
    then that record (not Streamlit's English "Page not found" and the first page). ``case`` is also the
    name of a file of pages/, which Streamlit runs on its own before the frame; ``customer`` is not."""
    from crm_core.models import Customer
    from crm_core.services.cases import CaseInput, create_case

    with server.db.system_session("e2e") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    case_id = create_case(server.db, server.world.rep, CaseInput(customer_id=customer_id, subject="Label printer"))
    reader = server.world.manager  # the rep's team lead (another test here gives the rep a new password)
    address, heading = ((f"/case?case_id={case_id}", f"#{case_id} Label printer") if page_name == "case"
                        else (f"/customer?customer_id={customer_id}", "Acme Trading"))
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.goto(server.url + address)
    page.get_by_role("textbox", name="用户名").fill(reader.username)
    page.get_by_role("textbox", name="密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("heading", name=heading).first.wait_for(timeout=TIMEOUT)
    assert page.get_by_text("Page not found").count() == 0
    assert page.url.endswith(address)
    context.close()
