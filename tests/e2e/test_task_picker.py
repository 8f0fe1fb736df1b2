"""In Chromium, the Tasks regression: after a task is done, the picker showed the previous task
while the next action went to another one, and the 'what happened' text stayed filled in.
Now the action acts on exactly the task shown, and nothing typed carries over."""

from __future__ import annotations

import re

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


def test_on_a_phone_a_card_picks_its_task_and_the_toast_confirms_where_the_rep_is(
    server: Server, browser  # type: ignore[no-untyped-def]
) -> None:
    """390 px: cards instead of the table, no sideways scroll; a card's button brings the form, holding
    that task, into view; completing it is confirmed by a toast on screen."""
    import datetime as dt

    from playwright.sync_api import expect

    from crm_core.models import utcnow
    from crm_core.services.tasks import TaskInput, create_task

    rep = server.world.rep
    tomorrow = utcnow() + dt.timedelta(days=1)
    wanted, other = "Phone: send the brochure", "Phone: book the visit"
    for title in (other, wanted):
        create_task(server.db, rep, TaskInput(title=title, due_at=tomorrow))
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", has_touch=True)
    page = context.new_page()
    log_in(page, server, rep.username)
    page.goto(f"{server.url}/tasks")
    page.get_by_role("heading", name="Tasks").wait_for(timeout=TIMEOUT)
    page.locator('[data-testid="stRadio"]').get_by_text("Upcoming", exact=True).click()
    card = page.locator("[class*='st-key-tasks_task_card_']").filter(has_text=wanted)
    card.wait_for(timeout=TIMEOUT)
    settled(page)
    expect(page.locator(".st-key-tasks_table")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    card.get_by_role("button", name="Work on this task").click()
    picker = page.get_by_role("combobox", name="Task", exact=True)
    expect(picker).to_have_value(re.compile(re.escape(wanted)), timeout=TIMEOUT)
    expect(page.get_by_role("heading", name="Work on a task")).to_be_in_viewport(timeout=TIMEOUT)
    settled(page)
    screenshot(page, "tasks-phone-card-picked")

    page.get_by_role("button", name="Complete task").click()
    toast = page.locator('[data-testid="stToast"]').filter(has_text=f"Done: “{wanted}”.")
    expect(toast).to_be_in_viewport(timeout=TIMEOUT)
    screenshot(page, "tasks-phone-toast")
    with server.db.system_session("e2e check") as session:
        status = dict(session.execute(select(Task.title, Task.status).where(Task.title.in_([wanted, other]))).all())
    assert status == {wanted: "done", other: "open"}
    context.close()
