"""In Chromium at 390 px: every admin page, every tab, with the demo workspace's data in its tables, and
nothing scrolls sideways (issue 11: cards instead of wide tables on a phone). Pictures go to
``artifacts/screenshots/phone-admin-*``; the Chinese walk (test_chinese_walk) checks the same in 中文.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from crm_core.demo import DEMO_PASSWORD, generate_demo
from crm_core.models import Role
from crm_core.rules.webhooks import EVENT_TYPES
from crm_core.services import auth, macros, webhooks
from crm_ui.navigation import pages_for
from tests.e2e.conftest import (
    SIDEWAYS_SCROLLERS,
    TABLES_DRAWN,
    Server,
    prepare_database,
    screenshot,
    select_tab,
    serving,
    session_cookie,
    settled,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 45_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The host in demo mode over the small world plus a demo workspace (its users, rules, calendars, tiers),
    a webhook subscription and a macro: the admin tables hold rows."""
    prepared = prepare_database(tmp_path_factory, "phone-admin")
    generate_demo(prepared.db, customers=60, seed=11)
    admin = auth.load_actor(prepared.db, "demo.admin")
    assert admin is not None
    webhooks.set_allow_private_targets(prepared.db, admin, True)  # no name resolves here: an address
    webhooks.create_subscription(prepared.db, admin, webhooks.SubscriptionForm(
        url="http://127.0.0.1:9/kestrel/hooks/a-rather-long-path-for-a-phone", event_types=list(EVENT_TYPES[:3]),
        description="The warehouse's order system"))
    macros.save_macro(prepared.db, admin, name="Thanks for waiting", language="en",
                      body="Hello {customer_name}, thank you for waiting while we looked into case {case_number}.")
    with serving(prepared, CRM_DEMO_MODE="1") as running:
        yield running


def test_no_admin_page_scrolls_sideways_on_a_phone(server: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("demo.admin")
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=TIMEOUT)
    session_cookie(context, TIMEOUT)  # set by the host: the pages below are opened by address
    settled(page, TIMEOUT)
    # the top of the page: no empty element above the title (the cookie manager's frame was one)
    first = page.evaluate("""() => [...document.querySelector(
      '[data-testid="stMain"] [data-testid="stVerticalBlock"]').children]
      .find(el => el.getBoundingClientRect().height > 0).querySelector('h1') !== null""")
    assert first, "something takes space above the page title"

    found: dict[str, list[str]] = {}
    admin_pages = [spec for spec in pages_for(Role.ADMIN) if spec.section_key == "nav.section.admin"]
    admin_pages += [spec for spec in pages_for(Role.ADMIN) if spec.url_path in ("macros", "jobs")]
    for spec in admin_pages:
        page.goto(f"{server.url}/{spec.url_path}")
        page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=TIMEOUT)
        settled(page, TIMEOUT)
        # logged in (the menu is there) and on this page (its link is the current one)
        expect(page.locator(f'[data-testid="stSidebarNav"] a[href$="/{spec.url_path}"]')).to_have_attribute(
            "aria-current", "page", timeout=TIMEOUT)
        tabs = page.locator('[data-testid="stMain"] [role="tab"]')
        for index in range(max(1, tabs.count())):
            if tabs.count():
                select_tab(tabs.nth(index))
            page.wait_for_function(TABLES_DRAWN, timeout=TIMEOUT)
            if scrolling := page.evaluate(SIDEWAYS_SCROLLERS):
                found[f"{spec.url_path} tab {index + 1}"] = scrolling
        screenshot(page, f"phone-admin-{spec.url_path}")
    context.close()
    assert not found, "sideways scrolling at 390 px:\n" + "\n".join(f"{where}: {what}" for where, what in found.items())
