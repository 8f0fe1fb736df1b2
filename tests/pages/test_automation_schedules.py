"""Schedules on the Automation page: admins edit them (a refused crontab keeps the input) and start a kind now;
other roles read them on the Jobs page; a schedule links to its last job."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.jobs.schedules import ensure_default_schedules, run_due_schedules
from crm_core.models.jobs import Job, JobSchedule
from tests.pages.conftest import AppWorld, log_in
from tests.pages.job_helpers import isolated_queue, run_queued_jobs  # noqa: F401  - the fixture

pytestmark = pytest.mark.usefixtures("isolated_queue")


@pytest.fixture
def schedules(app_world: AppWorld) -> dict[str, JobSchedule]:
    """The default schedules of every tenant, by kind (tenant A's)."""
    ensure_default_schedules(app_world.db)
    with app_world.db.system_session("test") as session:
        rows = session.scalars(select(JobSchedule).where(JobSchedule.tenant_id == app_world.world.admin.tenant_id))
        return {row.kind: row for row in rows}


def open_automation(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/automation_admin.py")
    return app.run()


def texts(elements) -> str:  # type: ignore[no-untyped-def]
    return " ".join(element.value.replace("\\", "") for element in elements)


def stored(app_world: AppWorld, schedule_id: int) -> tuple[str, str, str, bool]:
    with app_world.db.system_session("test") as session:
        row = session.get(JobSchedule, schedule_id)
        assert row is not None
        return row.minute, row.hour, row.day_of_week, row.enabled


def save(app, label: str = "Save schedule") -> None:  # type: ignore[no-untyped-def]
    next(button for button in app.button if button.label == label).click()


def pick(app, schedule: JobSchedule):  # type: ignore[no-untyped-def]
    next(box for box in app.selectbox if (box.key or "").startswith("schedules_pick")).set_value(schedule.id)
    return app.run()


def test_an_admin_reads_the_schedules_in_utc_and_changes_one(
    app_world: AppWorld, schedules: dict[str, JobSchedule]
) -> None:
    refresh = schedules["lifecycle_refresh"]
    app = open_automation(log_in(app_world.world.admin.username))
    assert not app.exception
    assert "Times are UTC" in texts(app.caption)
    assert "**Lifecycle refresh**" in [markdown.value for markdown in app.markdown]
    assert "Runs (UTC): `10 1 *`" in texts(app.markdown)
    app = pick(app, refresh)
    prefix = f"schedules_{refresh.id}_"
    app.text_input(key=prefix + "minute").input("30")
    app.text_input(key=prefix + "hour").input("2")
    app.text_input(key=prefix + "day_of_week").input("1-5")
    app.toggle(key=prefix + "enabled").set_value(False)
    save(app)
    app = app.run()
    assert not app.exception
    assert "Schedule of “Lifecycle refresh” saved." in texts(app.success)
    assert stored(app_world, refresh.id) == ("30", "2", "1-5", False)
    assert "Runs (UTC): `30 2 1-5`" in texts(app.markdown)


def test_a_refused_crontab_is_explained_and_the_input_kept(
    app_world: AppWorld, schedules: dict[str, JobSchedule]
) -> None:
    automation = schedules["automation_run"]
    before = stored(app_world, automation.id)
    app = pick(open_automation(log_in(app_world.world.admin.username)), automation)
    prefix = f"schedules_{automation.id}_"
    app.text_input(key=prefix + "minute").input("*/15")
    app.text_input(key=prefix + "hour").input("25")
    save(app)
    app = app.run()
    assert not app.exception
    assert "“25” is not a valid hour for a schedule" in texts(app.error)
    assert app.text_input(key=prefix + "hour").value == "25"
    assert stored(app_world, automation.id) == before



def refusal_shown_in_chinese() -> None:
    import streamlit as st

    from crm_core.errors import InvalidSchedule
    from crm_ui.jobs import show_job_error

    st.session_state["kestrel_lang"] = "zh-CN"
    show_job_error(InvalidSchedule(field="day_of_week", value="mon"))


def test_a_refused_crontab_names_its_field_in_the_users_language() -> None:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(refusal_shown_in_chinese).run()
    assert not app.exception
    assert texts(app.error) == "“mon”不是有效的计划星期。请使用数字、*、*/n、范围（1-5）或列表（1,15）。"


def test_an_admin_runs_a_kind_now_and_a_schedule_links_to_its_last_job(
    app_world: AppWorld, schedules: dict[str, JobSchedule]
) -> None:
    app = open_automation(log_in(app_world.world.admin.username))
    app.button(key="schedules_run_now_lifecycle_refresh").click()
    app = app.run()
    assert not app.exception
    with app_world.db.system_session("test") as session:
        job = session.scalars(select(Job)).one()
    assert (job.kind, job.status, job.requested_by_id) == ("lifecycle_refresh", "queued", app_world.world.admin.user_id)
    assert f"started as job #{job.id}" in texts(app.success)

    # the schedule's own run (01:10 UTC) is the one its row links to
    [scheduled] = [job_id for job_id in run_due_schedules(app_world.db, now=dt.datetime(2026, 12, 7, 1, 10))
                   if job_id != job.id and stored_kind(app_world, job_id) == "lifecycle_refresh"
                   and tenant_of(app_world, job_id) == app_world.world.admin.tenant_id]
    app = open_automation(app)
    assert f"Last job #{scheduled}" in [link.value for link in app.get("page_link")]
    run_queued_jobs(app_world.db)
    app.query_params["job"] = str(scheduled)
    app.switch_page("pages/jobs.py")
    app = app.run()
    assert not app.exception
    assert [markdown.value for markdown in app.markdown if markdown.value.startswith("**\\#")] == [
        f"**\\#{scheduled} · Lifecycle refresh**"
    ]
    assert "by its schedule" in texts(app.caption)


def stored_kind(app_world: AppWorld, job_id: int) -> str:
    with app_world.db.system_session("test") as session:
        return str(session.get(Job, job_id).kind)  # type: ignore[union-attr]


def tenant_of(app_world: AppWorld, job_id: int) -> int:
    with app_world.db.system_session("test") as session:
        return int(session.get(Job, job_id).tenant_id)  # type: ignore[union-attr]


def test_other_roles_read_the_schedules_on_the_jobs_page_without_a_form(
    app_world: AppWorld, schedules: dict[str, JobSchedule]
) -> None:
    app = log_in(app_world.world.manager.username)
    app.switch_page("pages/jobs.py")
    app = app.run()
    assert not app.exception
    assert "Only administrators change schedules." in texts(app.caption)
    assert "Runs (UTC): `10 1 *`" in texts(app.markdown)
    assert not [box for box in app.text_input if (box.key or "").startswith("schedules_")]
    assert not [button for button in app.button if (button.key or "").startswith("schedules_run_now_")]
