"""In Chromium, with a job worker: an admin uploads the dirty GBK sample, reads the failures, fixes a value
mapping, imports (the check and the import are jobs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.models import Customer, ImportRun
from tests.e2e.conftest import Server, log_in, screenshot
from tests.e2e.workers import jobs_server_fixture  # noqa: F401  - the fixture jobs_server

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "samples" / "customers_dirty_gbk.csv"
IMPORTED = ["深圳红隼电子有限公司", "杭州青禾茶业", "广州南粤科技", "成都天府餐饮", "武汉长江制造"]


def imported_count(server: Server) -> int:
    with server.db.system_session("e2e check") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name.in_(IMPORTED))) or 0)


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the app's script run is over and nothing of an earlier run is left on the page."""
    page.wait_for_function(
        """() => {
          const app = document.querySelector('[data-testid="stApp"]');
          return app && app.getAttribute('data-test-script-state') === 'notRunning'
            && !document.querySelector('[data-stale="true"]');
        }""",
        timeout=TIMEOUT,
    )


def upload(page) -> None:  # type: ignore[no-untyped-def]
    """Drop the sample on the uploader once the page is settled with a single uploader on it.

    A rerun the login cookie starts just after the first run can replace the page while the file goes to the
    uploader being replaced; then the upload never shows, and the file is dropped again on the new one."""
    for attempt in range(3):
        page.wait_for_function(
            """() => {
              const app = document.querySelector('[data-testid="stApp"]');
              return app && app.getAttribute('data-test-script-state') === 'notRunning'
                && !document.querySelector('[data-stale="true"]')
                && document.querySelectorAll('input[type="file"]').length === 1;
            }""",
            timeout=TIMEOUT,
        )
        page.locator('input[type="file"]').set_input_files(str(SAMPLE))
        try:
            page.get_by_text("customers_dirty_gbk.csv: GBK/GB18030").wait_for(timeout=TIMEOUT // 3)
            return
        except Exception:  # the file went to an uploader a rerun replaced
            if attempt == 2:
                raise


def test_an_admin_imports_the_dirty_gbk_file_after_seeing_and_fixing_the_failures(  # type: ignore[no-untyped-def]
    jobs_server: Server, browser
) -> None:
    server = jobs_server
    context = browser.new_context(viewport={"width": 1400, "height": 3000}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.admin.username)
    page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT)

    page.goto(f"{server.url}/imports")
    page.get_by_role("heading", name="Imports").first.wait_for(timeout=TIMEOUT)
    upload(page)
    screenshot(page, "imports-uploaded")

    # all or nothing: the failures are listed with their rows, and nothing can be imported
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text("Rows that would be rejected: 6 (checks failed: 5).").wait_for(timeout=90_000)
    # the failure table is a canvas grid: its cells are in the DOM for screen readers, not visible
    page.get_by_text("Email is not a valid email address.").first.wait_for(state="attached", timeout=TIMEOUT)
    page.get_by_text("yuanhang@example", exact=True).last.wait_for(state="attached", timeout=TIMEOUT)
    assert page.get_by_role("button", name="Import", exact=True).is_disabled()
    screenshot(page, "imports-failures")
    assert imported_count(server) == 0

    # fix the value mapping: the typo 意象客户 and the old CRM's Engaging are the stage Intent;
    # then import the valid rows and quarantine the rest
    for file_value in ("意象客户", "Engaging"):
        page.locator('[data-testid="stSelectbox"]').filter(has_text=file_value).click()
        page.get_by_role("option", name="Intent").click()
        settle(page)
    page.get_by_role("tabpanel", name="New import").get_by_text("Import the valid rows, quarantine the rest").click()
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text("Rows that would be rejected: 4 (checks failed: 4).").wait_for(timeout=90_000)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Partly imported: 5 created, 0 updated, 1 skipped, 4 rejected").wait_for(timeout=90_000)
    screenshot(page, "imports-done")

    assert imported_count(server) == 5
    with server.db.system_session("e2e check") as session:
        stage = session.scalar(select(Customer.lifecycle_stage).where(Customer.name == "广州南粤科技"))
        run = session.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
    assert stage == "intent"
    assert run is not None and (run.status, run.created_count, run.rejected_count) == ("partial", 5, 4)
    context.close()
