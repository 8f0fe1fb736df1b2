"""In Chromium, the Tasks regression: after a task is done, the picker showed the previous task
while the next action went to another one, and the 'what happened' text stayed filled in.
Now the action acts on exactly the task shown, and nothing typed carries over."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Activity, Customer, Task
from tests.e2e.conftest import Server, log_in, open_page, screenshot, settled

pytestmark = pytest.mark.e2e
TIMEOUT = 20_000
ACME, ZHANG = "Follow up with Acme Trading", "Follow up with 张三科技有限公司"


def shown(picker: object) -> str:
    """What the picker shows (its input's value)."""
    return str(picker.input_value())  # type: ignore[attr-defined]


def summaries_of_done_tasks(server: Server) -> dict[str, list[str]]:
    with server.db.system_session("e2e check") as session:
        done = session.scalars(select(Task).where(Task.status == "done")).all()
        return {task.title: list(session.scalars(select(Activity.summary).where(
            Activity.customer_id == task.customer_id))) for task in done}


def test_completing_a_task_acts_on_the_task_shown_and_clears_what_was_typed(
    server: Server, browser  # type: ignore[no-untyped-def]
) -> None:
    with server.db.system_session("e2e check") as session:  # the rep's two follow-ups, due tomorrow
        titles = set(session.scalars(select(Task.title).join(Customer, Customer.id == Task.customer_id)
                                     .where(Task.status == "open")))
    assert {ACME, ZHANG} <= titles
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.rep.username)
    open_page(page, "Tasks", "Tasks")
    page.locator('[data-testid="stRadio"]').get_by_text("Upcoming", exact=True).click()
    page.get_by_role("heading", name="Work on a task").wait_for(timeout=TIMEOUT)

    # the second task in the list is picked and completed with a note
    picker = page.get_by_role("combobox", name="Task", exact=True)
    second = ZHANG if ACME in shown(picker) else ACME
    first = ACME if second == ZHANG else ZHANG
    options = page.get_by_role("option")
    picker.click()
    options.filter(has_text=second).first.click()
    page.get_by_role("link", name=f"Open {second.removeprefix('Follow up with ')}").wait_for(timeout=TIMEOUT)
    settled(page)
    summary = page.get_by_role("textbox", name="What happened")
    summary.fill("First call")
    page.get_by_role("button", name="Complete task").click()
    page.get_by_text("Done:").first.wait_for(timeout=TIMEOUT)

    # the picker now shows the one task left, its link names that task's customer, nothing typed remains
    page.get_by_role("link", name=f"Open {first.removeprefix('Follow up with ')}").wait_for(timeout=TIMEOUT)
    settled(page)
    assert first in shown(picker) and second not in shown(picker)
    assert page.get_by_role("textbox", name="What happened").input_value() == ""
    screenshot(page, "tasks-picker-after-done")

    page.get_by_role("textbox", name="What happened").fill("Second call")
    page.get_by_role("button", name="Complete task").click()
    page.get_by_role("heading", name="Work on a task").wait_for(state="detached", timeout=TIMEOUT)
    assert summaries_of_done_tasks(server) == {second: ["First call"], first: ["Second call"]}
    context.close()
