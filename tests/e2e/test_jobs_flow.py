"""In Chromium, with a job worker: the import wizard checks and imports as jobs, and the Jobs page follows them.

An admin uploads a CSV with two bad rows → checks it (a dry-run job) → imports the valid rows
→ watches the progress → reads the result and downloads the rejected rows. Then a large file:
the admin starts its import, leaves for Customers, comes back to Jobs while it runs and sees
it finish. Screenshots at 1280 and 390 px wide, in English and Chinese.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from crm_core.jobs import queue as job_queue
from crm_core.models import Customer, utcnow
from crm_core.models.jobs import Job, JobStatus
from crm_core.services import auth
from tests.e2e.conftest import Server, log_in, open_page, screenshot, switch_language
from tests.e2e.workers import jobs_server_fixture  # noqa: F401  - the fixture jobs_server

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
JOB_TIMEOUT = 180_000  # a check or an import of the large file on a busy two-core machine
BAD_ROWS = {4: "not-an-email", 9: "someone@"}  # file row numbers (the header is row 1)
LARGE_ROWS = 60_000


def small_file(directory: Path) -> Path:
    path = directory / "leads-with-two-bad-rows.csv"
    lines = ["name,email,phone"]
    for row in range(2, 32):
        email = BAD_ROWS.get(row, f"lead{row}@example.com")
        lines.append(f"Lead Company {row},{email},1380013{row:04d}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def large_file(directory: Path) -> Path:
    path = directory / "bulk-customers.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("name,email\n")
        for row in range(LARGE_ROWS):
            handle.write(f"Bulk Customer {row:06d},bulk{row}@example.com\n")
    return path


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the app is not running a script (its status widget is gone)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=TIMEOUT)


def picture(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A screenshot once the run is over and every element has drawn (no skeleton left, two frames painted)."""
    settle(page)
    expect(page.locator('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')).to_have_count(
        0, timeout=TIMEOUT)
    if page.viewport_size["width"] < 700:  # a phone: the sidebar drawer has slid out of sight
        page.wait_for_function(
            "() => { const bar = document.querySelector('[data-testid=\"stSidebar\"]');"
            " return !bar || bar.getBoundingClientRect().right <= 0; }", timeout=TIMEOUT)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    screenshot(page, name)


def menu(page, link: str, heading: str) -> None:  # type: ignore[no-untyped-def]
    """Open a page from the sidebar menu, showing the whole menu first (an admin's is long)."""
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and more.inner_text().startswith("View") and "more" in more.inner_text():
        more.click()
    open_page(page, link, heading)


def upload(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    settle(page)
    page.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text(f"{path.name}: UTF-8").wait_for(timeout=TIMEOUT)


def newest_job_id(server: Server) -> int:
    with server.db.system_session("e2e check") as session:
        job_id = session.scalar(select(func.max(Job.id)))
    assert job_id is not None
    return int(job_id)


def customers_like(server: Server, prefix: str) -> int:
    with server.db.system_session("e2e check") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name.like(prefix + "%")))
                   or 0)


def test_an_import_runs_as_jobs_with_progress_a_result_and_a_return_to_the_jobs_page(  # type: ignore[no-untyped-def]
    jobs_server: Server, browser, tmp_path: Path
) -> None:
    server = jobs_server
    context = browser.new_context(viewport={"width": 1280, "height": 1800}, locale="en-US", accept_downloads=True)
    page = context.new_page()
    log_in(page, server, server.world.admin.username)
    menu(page, "Imports", "Imports")

    # check the file: a dry-run job; the report lists the two bad rows and blocks an all-or-nothing import
    upload(page, small_file(tmp_path))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text("Rows that would be rejected: 2").wait_for(timeout=JOB_TIMEOUT)
    assert page.get_by_role("button", name="Import", exact=True).is_disabled()
    assert customers_like(server, "Lead Company") == 0

    # import the valid rows: the old check no longer counts, a new one allows the import
    page.get_by_role("tabpanel", name="New import").get_by_text("Import the valid rows, quarantine the rest").click()
    page.get_by_text("changed since this check").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text("Rows that would be rejected: 2").wait_for(timeout=JOB_TIMEOUT)
    import_button = page.get_by_role("button", name="Import", exact=True)
    import_button.wait_for(timeout=TIMEOUT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Import' && !b.disabled)",
        timeout=TIMEOUT,
    )
    import_button.click()
    # 30 rows take well under a second on the worker: the page may never rerun while this job runs (the large
    # file below is where the running job's progress bar is seen)
    page.get_by_text("Partly imported: 28 created, 0 updated, 0 skipped, 2 rejected").wait_for(timeout=JOB_TIMEOUT)
    assert customers_like(server, "Lead Company") == 28
    settle(page)
    with page.expect_download(timeout=TIMEOUT) as download_info:
        page.get_by_role("button", name="Download the quarantined rows (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["Row", "name", "email", "phone", "Reason"]
    assert sorted((int(row[0]), row[2]) for row in rows[1:]) == sorted(BAD_ROWS.items())
    assert all("not a valid email address" in row[-1] for row in rows[1:])
    picture(page, "jobs-wizard-result-1280-en")

    # a large file: start its import, leave for Customers, come back to Jobs while it runs, see it finish
    upload(page, large_file(tmp_path))
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text(f"All {LARGE_ROWS:,} rows pass").wait_for(timeout=JOB_TIMEOUT)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Importing in the background").wait_for(timeout=TIMEOUT)
    import_job = newest_job_id(server)
    menu(page, "Customers", "Customers")
    menu(page, "Jobs", "Jobs")
    card = page.locator(f".st-key-jobs_card_{import_job}")
    card.locator('[data-testid="stProgress"]').wait_for(timeout=TIMEOUT)  # still running when we came back
    picture(page, "jobs-page-running-1280-en")
    card.get_by_text(f"Imported: {LARGE_ROWS:,} created").wait_for(timeout=JOB_TIMEOUT)
    card.get_by_text("Succeeded").wait_for(timeout=TIMEOUT)
    assert customers_like(server, "Bulk Customer") == LARGE_ROWS
    picture(page, "jobs-page-1280-en")

    switch_language(page, "简体中文", "后台任务")
    page.locator(f".st-key-jobs_card_{import_job}").get_by_text("已完成").wait_for(timeout=TIMEOUT)
    picture(page, "jobs-page-1280-zh")
    context.close()
    for width, language in ((390, "en"), (390, "zh"), (1280, "zh")):
        look_at_results(server, browser, width, language)


def look_at_results(server: Server, browser, width: int, language: str) -> None:  # type: ignore[no-untyped-def]
    """In a new session: the Jobs page, and the wizard offering the latest import with its result; screenshots.

    The menu is used on a wide screen (on a phone the sidebar is a drawer), then the window narrows.
    """
    auth.set_language(server.db, server.world.admin.username, "en")  # the last switch to Chinese was remembered
    context = browser.new_context(viewport={"width": 1280, "height": 1800}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.admin.username)
    menu(page, "Jobs", "Jobs")
    if language == "zh":
        switch_language(page, "简体中文", "后台任务")
    page.set_viewport_size({"width": width, "height": 1800})
    page.get_by_text("Succeeded" if language == "en" else "已完成").first.wait_for(timeout=TIMEOUT)
    picture(page, f"jobs-page-{width}-{language}")

    page.set_viewport_size({"width": 1280, "height": 1800})
    imports_label = "Imports" if language == "en" else "数据导入"
    menu(page, imports_label, imports_label)
    page.set_viewport_size({"width": width, "height": 1800})
    # this session is new to the wizard: it offers the user's latest import jobs (the newest is the large import)
    page.get_by_role("button", name="Show" if language == "en" else "查看").click()
    result = f"Imported: {LARGE_ROWS:,} created" if language == "en" else f"已导入：新建 {LARGE_ROWS:,}"
    page.get_by_text(result).wait_for(timeout=TIMEOUT)
    picture(page, f"jobs-wizard-result-{width}-{language}")

    page.set_viewport_size({"width": 1280, "height": 1800})
    automation = "Automation" if language == "en" else "自动化规则"
    menu(page, automation, automation)
    page.get_by_role("tab", name="Schedules" if language == "en" else "定时计划").click()
    page.get_by_text("Times are UTC" if language == "en" else "时间均为 UTC").wait_for(timeout=TIMEOUT)
    page.set_viewport_size({"width": width, "height": 1800})
    picture(page, f"jobs-schedules-{width}-{language}")
    context.close()


def test_a_jobs_progress_reaches_the_page_without_a_click(  # type: ignore[no-untyped-def]
    jobs_server: Server, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress a worker reports shows on the open Jobs page by itself: the card's fragment polls each second.

    The delays are printed, not asserted: the issue's 2 s target is measured by ``python -m benchmarks jobs``
    (poll interval + the worst report-to-store delay), not by a timed test on a shared CI machine.
    """
    server = jobs_server
    assert server.db.engine.url.database is not None
    monkeypatch.setenv("CRM_JOBS_PATH", str(Path(server.db.engine.url.database).with_name("jobs.db")))
    monkeypatch.setenv("CRM_REDIS_URL", "")
    queue = job_queue.make_queue()  # the host's queue file: where a worker publishes progress
    with server.db.system_transaction("e2e: a job some worker runs") as session:
        job = Job(tenant_id=server.world.admin.tenant_id, kind="import", params={"file_name": "latency.csv"},
                  requested_by_id=server.world.admin.user_id, status=JobStatus.RUNNING.value, started_at=utcnow(),
                  worker="another-host:1")  # no worker of this machine will take it for its own
        session.add(job)
        session.flush()
        job_id = job.id
    job_queue.put_progress(job_id, 1, 100, {"key": "imports.importing", "params": {}}, queue)
    auth.set_language(server.db, server.world.admin.username, "en")  # another test may have left it Chinese
    context = browser.new_context(viewport={"width": 1280, "height": 1200}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.admin.username)
    menu(page, "Jobs", "Jobs")
    card = page.locator(f".st-key-jobs_card_{job_id}")
    card.get_by_text("Importing… — 1 of 100").wait_for(timeout=TIMEOUT)
    delays = []
    for done in (25, 50, 75):
        job_queue.put_progress(job_id, done, 100, {"key": "imports.importing", "params": {}}, queue)
        reported = time.monotonic()
        card.get_by_text(f"Importing… — {done} of 100").wait_for(timeout=TIMEOUT)
        delays.append(time.monotonic() - reported)
    print(f"progress reached the page after {', '.join(f'{delay:.2f}' for delay in delays)} s")
    with server.db.system_transaction("e2e: the job ends") as session:
        ended = session.get(Job, job_id)
        assert ended is not None
        ended.status, ended.finished_at = JobStatus.SUCCEEDED.value, utcnow()
    context.close()
