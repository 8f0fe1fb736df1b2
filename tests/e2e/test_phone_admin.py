"""In Chromium at 390 px: every admin page, every tab, with the demo workspace's data in its tables, and
nothing scrolls sideways (issue 11: cards instead of wide tables on a phone). Pictures go to
``artifacts/screenshots/phone-admin-*``; the Chinese walk (test_chinese_walk) checks the same in 中文.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from crm_core.demo import DEMO_PASSWORD, generate_demo
from crm_core.models import Role
from crm_core.quality.runs import run_suite_for_tenant
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
from tests.e2e.workers import start_worker
from tests.factories import create_random_customer

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
    subscription_id, _ = webhooks.create_subscription(prepared.db, admin, webhooks.SubscriptionForm(
        url="http://127.0.0.1:9/kestrel/hooks/a-rather-long-path-for-a-phone", event_types=list(EVENT_TYPES[:3]),
        description="The warehouse's order system"))
    macros.save_macro(prepared.db, admin, name="Thanks for waiting", language="en",
                      body="Hello {customer_name}, thank you for waiting while we looked into case {case_number}.")
    # rows for the delivery log, and a data-quality run that fails on an unowned customer (its examples)
    for _ in range(2):
        webhooks.send_ping(prepared.db, admin, subscription_id)
    create_random_customer(prepared.db, admin, name="An unowned customer with a rather long name, Ltd.",
                           owner_id=None)
    run_suite_for_tenant(prepared.db, admin, "db_customers", data_docs=False)
    try:  # a suite run from the page is a job: a worker beside the host runs it
        worker = start_worker(prepared.env, prepared.directory / "worker.log")
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        with serving(prepared, CRM_DEMO_MODE="1") as running:
            yield running
    finally:
        worker.stop()


def phone_login(browser: Any, server: Server) -> tuple[Any, Any]:
    """A 390 px touch context logged in as the demo admin (the host's cookie set: pages open by address)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("demo.admin")
    page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=TIMEOUT)
    session_cookie(context, TIMEOUT)
    settled(page, TIMEOUT)
    return context, page


def test_no_admin_page_scrolls_sideways_on_a_phone(server: Server, browser: Any) -> None:
    context, page = phone_login(browser, server)
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


def open_at_phone_width(page: Any, server: Server, url_path: str) -> None:
    page.goto(f"{server.url}/{url_path}")
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=TIMEOUT)
    settled(page, TIMEOUT)


def upload_wide_file(page: Any, path: Path) -> None:
    """Drop ``path`` on the import wizard's uploader once the page is settled with one uploader (a rerun the
    login cookie starts can replace the uploader the file went to: then it is dropped again)."""
    for attempt in range(3):
        settled(page, TIMEOUT)
        page.locator('input[type="file"]').set_input_files(str(path))
        try:
            page.locator(".st-key-imports_mapping").wait_for(timeout=TIMEOUT // 3)
            return
        except Exception:
            if attempt == 2:
                raise


def test_the_wide_tables_read_as_cards_on_a_phone(server: Server, browser: Any, tmp_path: Path) -> None:
    """Deeper than the walk above, with rows in every table: the users, a segment's members (every customer),
    a data-quality run's failure with its examples and the checks of a past run, the webhook log, and the
    import wizard's column mapping for a file of many long columns. None scrolls sideways at 390 px; each
    table's cards (or the mapping's boxes) show instead."""
    wide_file = tmp_path / "a-wide-export-from-the-old-system.csv"
    headers = ["Customer name", "Telephone number", "Electronic mail address", "Account owner's full name",
               "Lifecycle stage", "Industry", "Region", "Annual revenue (CNY)", "Notes from the old system"]
    wide_file.write_text(",".join(headers) + "\n" + ",".join([
        "Shenzhen Kestrel Electronics Company Limited", "0755-8888 6666", "purchasing.department@kestrel.example.cn",
        "Li Lei", "lead", "Electronics", "South", "1200000", "Met at the trade fair; wants a quote for 2027"]) + "\n",
        encoding="utf-8")
    context, page = phone_login(browser, server)
    found: dict[str, list[str]] = {}

    def check(where: str, cards: str) -> None:
        page.wait_for_function(TABLES_DRAWN, timeout=TIMEOUT)
        if scrolling := page.evaluate(SIDEWAYS_SCROLLERS):
            found[where] = scrolling
        if not page.locator(f".st-key-{cards}").first.is_visible():
            found.setdefault(where, []).append(f"no .st-key-{cards} shown")
        screenshot(page, f"phone-tables-{where}")

    open_at_phone_width(page, server, "users")
    check("users", "users_list_cards")
    # a card's "Change this user" fills the edit form below with that user and brings it into view
    name = page.locator(".st-key-users_list_cards strong").nth(3).inner_text()
    page.get_by_role("button", name="Change this user").nth(3).click()
    expect(page.get_by_role("textbox", name="Full name *").last).to_have_value(name, timeout=TIMEOUT)
    page.wait_for_function("""() => {
      const place = document.querySelector('.st-key-layout_picked');
      const top = place ? place.getBoundingClientRect().top : -1;
      return top >= 0 && top < window.innerHeight / 2;
    }""", timeout=TIMEOUT)
    screenshot(page, "phone-tables-users-change")

    open_at_phone_width(page, server, "segments")  # the builder: no condition yet, every customer
    check("segments", "segments_members_cards")

    open_at_phone_width(page, server, "data-quality")  # a run: its failure's examples, then every check
    page.locator('[data-testid="stForm"] [data-testid="stSelectbox"]').click()
    page.get_by_role("option", name="Customers: owners, duplicates, lifecycle").click()
    page.get_by_role("button", name="Run checks").click()
    page.get_by_text("❌ Active customers with neither an owner nor a team").wait_for(timeout=90_000)
    settled(page, TIMEOUT)
    check("data-quality-run", "quality_examples_db_customers_customers_without_owner_cards")
    select_tab(page.get_by_role("tab", name="History"))
    check("data-quality-history", "quality_details_cards")

    open_at_phone_width(page, server, "webhooks")
    check("webhooks", "webhooks_log_cards")

    open_at_phone_width(page, server, "imports")
    upload_wide_file(page, wide_file)
    settled(page, TIMEOUT)
    check("imports-mapping", "imports_mapping")
    context.close()
    assert not found, "sideways scrolling at 390 px:\n" + "\n".join(f"{where}: {what}" for where, what in found.items())
