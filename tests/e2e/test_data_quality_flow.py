"""In Chromium: an admin runs a data-quality suite, reads the failure in Chinese, finds the run in the history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models.checks import CheckRun
from tests.e2e.conftest import Server, log_in, screenshot, switch_language
from tests.e2e.workers import jobs_server_fixture  # noqa: F401  - the fixture jobs_server
from tests.factories import create_random_customer

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def test_an_admin_runs_the_customer_suite_and_sees_the_unowned_customer(  # type: ignore[no-untyped-def]
    jobs_server: Server, browser
) -> None:
    server = jobs_server  # the suite runs as a job: this page needs the worker beside the host
    create_random_customer(server.db, server.world.admin, name="无主线索有限公司", owner_id=None)
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.admin.username)
    page.get_by_role("button", name="Log out").wait_for(timeout=TIMEOUT)

    page.goto(f"{server.url}/data-quality")
    page.get_by_role("heading", name="Data quality").first.wait_for(timeout=TIMEOUT)  # a rerun may hold two
    switch_language(page, "简体中文", "数据质量")

    page.locator('[data-testid="stForm"] [data-testid="stSelectbox"]').click()
    page.get_by_role("option", name="客户：负责人、重复、生命周期").click()
    page.get_by_role("button", name="运行检查").click()
    page.get_by_text("客户：负责人、重复、生命周期：7 项期望中 1 项未通过。").wait_for(timeout=90_000)
    page.get_by_text("❌ 既无负责人也无团队的有效客户").wait_for(timeout=TIMEOUT)
    page.get_by_text("1 条记录（客户）违反此规则。前几条：").wait_for(timeout=TIMEOUT)
    screenshot(page, "data-quality-run-zh")

    with server.db.system_session("e2e check") as session:
        run = session.scalars(select(CheckRun).order_by(CheckRun.id.desc()).limit(1)).one()
    assert (run.suite, run.status, run.violations, run.user_id) == (
        "db_customers", "failed", 1, server.world.admin.user_id
    )
    assert run.results[0]["examples"][0]["label"] == "无主线索有限公司"

    page.get_by_role("tab", name="历史").click()
    page.get_by_text("最近 30 天每日运行次数").wait_for(timeout=TIMEOUT)
    screenshot(page, "data-quality-history-zh")
    page.get_by_role("tab", name="数据文档").click()  # our rendering of the same results, in Chinese
    page.get_by_text("期望：没有任何客户违反此项。").first.wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="下载此数据文档（HTML）").wait_for(timeout=TIMEOUT)
    screenshot(page, "data-quality-docs-zh")
    context.close()
