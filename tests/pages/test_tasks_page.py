"""Tasks page: my follow-ups by bucket, completing with an activity, rescheduling, the team view."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_core.models import Activity, Customer, Task, utcnow
from crm_core.services.tasks import TaskInput, create_task
from tests.pages.conftest import AppWorld, log_in, open_as


def open_tasks_page(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/tasks.py")
    return app.run()


def picker(app):  # type: ignore[no-untyped-def]
    """The task picker (a new widget, with a new key, whenever the offered list changes)."""
    return next(box for box in app.selectbox if box.key and box.key.startswith("tasks_picker_"))


def picked_id(app) -> int:  # type: ignore[no-untyped-def]
    return int(picker(app).value)


def table_titles(app) -> list[str]:  # type: ignore[no-untyped-def]
    for frame in app.dataframe:
        value = frame.value
        if "Task" in value.columns:
            return list(value["Task"])
    return []


def test_a_rep_sees_the_follow_up_tasks_of_their_new_customers(app_world: AppWorld) -> None:
    app = open_tasks_page(log_in(app_world.world.rep.username))
    assert not app.exception
    app.radio(key="tasks_view").set_value("open").run()
    assert sorted(table_titles(app)) == ["Follow up with Acme Trading", "Follow up with 张三科技有限公司"]
    assert [m.value for m in app.metric] == ["0", "0", "2"]


def test_completing_a_task_logs_the_call_on_the_customer_in_the_same_step(app_world: AppWorld) -> None:
    app = open_tasks_page(log_in(app_world.world.rep.username))
    app.radio(key="tasks_view").set_value("open").run()
    with app_world.db.system_session("test") as session:
        task_id = session.scalar(select(Task.id).where(Task.title == "Follow up with Acme Trading"))
    picker(app).set_value(task_id).run()
    app.selectbox(key=f"tasks_activity_type_{task_id}").set_value("call")
    app.text_area(key=f"tasks_summary_{task_id}").input("Called, sending a quote")
    next(b for b in app.button if b.label == "Complete task").click()
    app = app.run()
    assert not app.exception
    assert any("Done" in toast.value for toast in app.toast)  # where the user is, not at the top
    assert table_titles(app) == ["Follow up with 张三科技有限公司"]
    with app_world.db.system_session("test") as session:
        task = session.get(Task, task_id)
        assert task is not None and task.status == "done"
        activity = session.scalars(select(Activity).where(Activity.customer_id == task.customer_id)).one()
        assert (activity.type, activity.summary) == ("call", "Called, sending a quote")
        customer = session.get(Customer, task.customer_id)
        assert customer is not None and customer.last_contacted_at is not None


def test_an_empty_summary_is_refused_and_the_task_stays_open(app_world: AppWorld) -> None:
    app = open_tasks_page(log_in(app_world.world.rep.username))
    app.radio(key="tasks_view").set_value("open").run()
    next(b for b in app.button if b.label == "Complete task").click()
    app = app.run()
    assert not app.exception
    assert any("What happened" in e.value for e in app.error)
    assert len(table_titles(app)) == 2


def test_a_manager_sees_the_overdue_count_per_rep_of_their_team(app_world: AppWorld) -> None:
    world = app_world.world
    create_task(app_world.db, world.rep, TaskInput(title="Late call", due_at=utcnow() - dt.timedelta(days=3)))
    app = open_tasks_page(log_in(world.manager.username))
    assert app.radio(key="tasks_scope").value == "team"  # a manager starts on the team's tasks
    assert not app.exception
    workload = app.dataframe[0].value
    rita = workload[workload["Assignee"] == "Rita Rep"].iloc[0]
    assert (int(rita["Open"]), int(rita["Overdue"])) == (3, 1)
    assert "Fay Faraway" not in set(workload["Assignee"])


def test_rescheduling_moves_an_overdue_task_out_of_overdue(app_world: AppWorld) -> None:
    world = app_world.world
    create_task(app_world.db, world.rep, TaskInput(title="Late call", due_at=utcnow() - dt.timedelta(days=3)))
    app = open_tasks_page(log_in(world.rep.username))
    assert table_titles(app) == ["Late call"]
    app.date_input(key=f"tasks_due_date_{picked_id(app)}").set_value(utcnow().date() + dt.timedelta(days=2))
    next(b for b in app.button if b.label == "Move the due date").click()
    app = app.run()
    assert not app.exception
    assert table_titles(app) == []
    assert app.metric[0].value == "0"


def test_the_action_applies_to_the_task_the_picker_shows_after_a_task_is_done(app_world: AppWorld) -> None:
    """The regression: after completing a task (or switching view) the picker showed one task while
    the action went to another, and the typed 'what happened' stayed filled in."""
    app = open_tasks_page(log_in(app_world.world.rep.username))
    app.radio(key="tasks_view").set_value("open").run()
    with app_world.db.system_session("test") as session:
        acme, zhang = (session.scalar(select(Task.id).where(Task.title == title))
                       for title in ("Follow up with Acme Trading", "Follow up with 张三科技有限公司"))
    assert acme is not None and zhang is not None
    picker(app).set_value(acme).run()
    app.text_area(key=f"tasks_summary_{acme}").input("Called Acme")
    next(b for b in app.button if b.label == "Complete task").click()
    app = app.run()
    assert not app.exception
    # the one task left is what the picker shows and what it holds; nothing typed carried over
    assert picked_id(app) == zhang
    assert "张三科技" in picker(app).format_func(picker(app).value)
    assert app.text_area(key=f"tasks_summary_{zhang}").value == ""
    app.text_area(key=f"tasks_summary_{zhang}").input("Visited 张三")
    next(b for b in app.button if b.label == "Complete task").click()
    app = app.run()
    assert not app.exception
    with app_world.db.system_session("test") as session:
        summaries = {task.title: session.scalars(select(Activity.summary).where(
            Activity.customer_id == task.customer_id)).all() for task in session.scalars(select(Task))
            if task.status == "done"}
    assert summaries == {"Follow up with Acme Trading": ["Called Acme"],
                         "Follow up with 张三科技有限公司": ["Visited 张三"]}


def test_switching_view_gives_a_picker_of_the_new_list_and_keeps_a_choice_still_offered(app_world: AppWorld) -> None:
    world = app_world.world
    late = create_task(app_world.db, world.rep, TaskInput(title="Late call", due_at=utcnow() - dt.timedelta(days=3)))
    app = open_tasks_page(log_in(world.rep.username))
    assert picked_id(app) == late  # overdue: the late call only
    app.radio(key="tasks_view").set_value("open").run()
    assert not app.exception
    assert picked_id(app) == late and len(picker(app).options) == 3  # still offered: still chosen
    app.radio(key="tasks_view").set_value("upcoming").run()
    assert picked_id(app) != late  # no longer offered: the picker shows and holds a task of this list
    assert "Late call" not in picker(app).format_func(picker(app).value)


def test_a_cards_work_on_button_puts_its_task_in_the_picker_and_the_form(app_world: AppWorld) -> None:
    """The phone's cards (the table's rows, one card each): "Work on this task" picks that task for the
    form below, and the picker then holds and shows it."""
    app = open_tasks_page(log_in(app_world.world.rep.username))
    app.radio(key="tasks_view").set_value("open").run()
    with app_world.db.system_session("test") as session:
        ids = {title: session.scalar(select(Task.id).where(Task.title == title))
               for title in ("Follow up with Acme Trading", "Follow up with 张三科技有限公司")}
    other = next(title for title, task_id in ids.items() if task_id != picked_id(app))  # not the one shown
    app.button(key=f"tasks_card_pick_{ids[other]}").click()
    app = app.run()
    assert not app.exception
    assert picked_id(app) == ids[other]
    assert other in picker(app).format_func(picker(app).value)
    assert app.text_area(key=f"tasks_summary_{ids[other]}").value == ""


def test_an_empty_list_says_what_to_do_next_in_chinese(app_world: AppWorld) -> None:
    app = open_as(app_world.world.rep.username, "pages/tasks.py", language="zh-CN")  # opens on "overdue"
    assert not app.exception
    assert [box.value for box in app.info] == ["没有逾期任务。🎉 看看今天到期的任务，或在下方“新建任务”中添加。"]
    # another view: a fresh session (AppTest translates a radio's labels outside the run, in English)
    app = log_in(app_world.world.rep.username)
    app.session_state["kestrel_lang"] = "zh-CN"
    app.session_state["tasks_view"] = "done"
    app = open_tasks_page(app)
    assert [box.value for box in app.info] == ["还没有已完成的任务：完成的任务会显示在这里。"]
