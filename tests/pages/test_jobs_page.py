"""Jobs page: a user sees their own jobs, an admin the workspace's, no one another tenant's; cancel, retry."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.jobs import queue as job_queue
from crm_core.models import utcnow
from crm_core.models.jobs import Job, JobStatus
from tests.pages.conftest import AppWorld, log_in
from tests.pages.job_helpers import isolated_queue, run_queued_jobs  # noqa: F401  - the fixture

pytestmark = pytest.mark.usefixtures("isolated_queue")
HEADER = re.compile(r"^\*\*\\#(\d+) · ")


def add_job(app_world: AppWorld, actor: Actor | None, kind: str, status: JobStatus, *, tenant_id: int | None = None,
            **columns: object) -> int:
    """A jobs row as the services leave it (``actor`` None: a schedule's job)."""
    with app_world.db.system_transaction("test: add job") as session:
        job = Job(tenant_id=tenant_id or (actor.tenant_id if actor else app_world.world.admin.tenant_id), kind=kind,
                  params={}, requested_by_id=actor.user_id if actor else None, status=status.value, **columns)
        if status.finished:
            job.started_at, job.finished_at = utcnow(), utcnow()
        session.add(job)
        session.flush()
        return job.id


def open_jobs(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/jobs.py")
    return app.run()


def shown_jobs(app) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids of the job cards on the page, in order."""
    return [int(match.group(1)) for markdown in app.markdown if (match := HEADER.match(markdown.value))]


def unescaped(text: str) -> str:
    return text.replace("\\", "")


@pytest.fixture
def jobs_of_everyone(app_world: AppWorld) -> dict[str, int]:
    world = app_world.world
    return {
        "rep": add_job(app_world, world.rep, "import", JobStatus.SUCCEEDED,
                       result={"dry_run": False, "status": "imported", "rows_read": 2, "created": 2, "updated": 0,
                               "skipped": 0, "rejected": 0, "run_id": 7, "rejected_rows_run_id": None}),
        "teammate": add_job(app_world, world.rep_same_team, "import", JobStatus.FAILED,
                            error_key="jobs.error.upload_missing"),
        "manager": add_job(app_world, world.manager, "import", JobStatus.QUEUED),
        "admin": add_job(app_world, world.admin, "lifecycle_refresh", JobStatus.SUCCEEDED,
                         result={"transitions": 3, "stages": {}}),
        "schedule": add_job(app_world, None, "automation_run", JobStatus.SUCCEEDED,
                            result={"fired": 0, "seeded_rules": 0, "rules": []}),
        "other_tenant": add_job(app_world, world.other_admin, "lifecycle_refresh", JobStatus.QUEUED),
    }


def test_a_rep_sees_only_the_jobs_they_started(app_world: AppWorld, jobs_of_everyone: dict[str, int]) -> None:
    app = open_jobs(log_in(app_world.world.rep.username))
    assert not app.exception
    assert shown_jobs(app) == [jobs_of_everyone["rep"]]
    assert any("2 created" in unescaped(success.value) for success in app.success)


def test_an_admin_sees_every_job_of_the_workspace_and_none_of_another(
    app_world: AppWorld, jobs_of_everyone: dict[str, int]
) -> None:
    app = open_jobs(log_in(app_world.world.admin.username))
    assert not app.exception
    expected = {name: job_id for name, job_id in jobs_of_everyone.items() if name != "other_tenant"}
    # the queued job first (in progress), then the finished ones newest first
    assert shown_jobs(app) == [expected["manager"], expected["schedule"], expected["admin"], expected["teammate"],
                               expected["rep"]]
    captions = " ".join(unescaped(caption.value) for caption in app.caption)
    assert "by its schedule" in captions
    assert f"by {app_world.world.rep.username}" in captions
    # a failed job says why, in the user's language
    assert any("no longer there" in unescaped(error.value) for error in app.error)
    # the admin may stop anyone's queued job and retry anyone's failed one
    assert app.button(key=f"jobs_cancel_{expected['manager']}")
    assert app.button(key=f"jobs_retry_{expected['teammate']}")


def test_another_tenant_never_sees_the_jobs_of_this_one(app_world: AppWorld, jobs_of_everyone: dict[str, int]) -> None:
    app = open_jobs(log_in(app_world.world.other_admin.username))
    assert not app.exception
    assert shown_jobs(app) == [jobs_of_everyone["other_tenant"]]


def test_a_user_cancels_their_queued_job(app_world: AppWorld, jobs_of_everyone: dict[str, int]) -> None:
    manager_job = jobs_of_everyone["manager"]
    app = open_jobs(log_in(app_world.world.manager.username))
    assert [progress.text for progress in app.get("progress")]  # a queued job shows its bar
    assert "Waiting for a worker" in unescaped(app.get("progress")[0].text)
    app.button(key=f"jobs_cancel_{manager_job}").click()
    app = app.run()
    assert not app.exception
    assert [toast.value for toast in app.toast] == [f"Job #{manager_job} cancelled."]
    with app_world.db.system_session("test") as session:
        assert session.get(Job, manager_job).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    # the job moved to the finished list, where it may be retried
    assert f"jobs_cancel_{manager_job}" not in {button.key for button in app.button}
    assert f"jobs_retry_{manager_job}" in {button.key for button in app.button}


def test_an_admin_retries_a_failed_job_and_sees_its_result(app_world: AppWorld) -> None:
    world = app_world.world
    failed = add_job(app_world, world.admin, "lifecycle_refresh", JobStatus.FAILED,
                     error_key="jobs.error.unexpected", error_params={"id": "ab12cd34"})
    app = open_jobs(log_in(world.admin.username))
    assert any("Quote reference ab12cd34" in unescaped(error.value) for error in app.error)
    app.button(key=f"jobs_retry_{failed}").click()
    app = app.run()
    assert not app.exception
    with app_world.db.system_session("test") as session:
        retried = session.scalars(select(Job).where(Job.retry_of_id == failed)).one()
        assert (retried.kind, retried.status) == ("lifecycle_refresh", "queued")
        assert retried.requested_by_id == world.admin.user_id
    assert [toast.value for toast in app.toast] == [f"Job #{failed} started again as job #{retried.id}."]
    assert shown_jobs(app)[0] == retried.id  # in progress, at the top

    assert run_queued_jobs(app_world.db) == [retried.id]
    app = app.run()
    assert shown_jobs(app) == [retried.id, failed]
    assert any("customers changed stage" in unescaped(success.value) for success in app.success)
    assert any(f"retry of #{failed}" in unescaped(caption.value) for caption in app.caption)


def test_a_running_job_shows_its_live_step_and_count(app_world: AppWorld) -> None:
    world = app_world.world
    running = add_job(app_world, world.manager, "import", JobStatus.RUNNING, started_at=utcnow())
    job_queue.put_progress(running, 2_000, 10_000, {"key": "imports.importing", "params": {}})
    app = open_jobs(log_in(world.manager.username))
    [bar] = app.get("progress")
    assert bar.value == 20
    assert unescaped(bar.text) == "Importing… — 2,000 of 10,000"
    app.switch_page("pages/jobs.py")
    app.session_state["kestrel_lang"] = "zh-CN"
    app.session_state["kestrel_lang_chosen"] = True
    app = app.run()
    assert unescaped(app.get("progress")[0].text).startswith("正在导入")


def test_filters_narrow_the_list_and_an_empty_result_says_so(
    app_world: AppWorld, jobs_of_everyone: dict[str, int]
) -> None:
    app = open_jobs(log_in(app_world.world.admin.username))
    app.multiselect(key="jobs_status@en").set_value([JobStatus.FAILED])
    app = app.run()
    assert shown_jobs(app) == [jobs_of_everyone["teammate"]]
    app.multiselect(key="jobs_kind@en").set_value(["automation_run"])
    app = app.run()
    assert shown_jobs(app) == []
    assert any("No job matches these filters" in info.value for info in app.info)


def test_a_user_without_jobs_is_told_what_to_do_next(app_world: AppWorld) -> None:
    app = open_jobs(log_in(app_world.world.analyst.username))
    assert not app.exception
    assert shown_jobs(app) == []
    assert any("No jobs yet" in info.value for info in app.info)


def test_every_role_finds_the_jobs_page_in_its_menu() -> None:
    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    assert all(any(spec.path == "pages/jobs.py" for spec in pages_for(role)) for role in Role)


def test_a_quality_check_shows_each_suites_verdict_and_links_to_the_results(app_world: AppWorld) -> None:
    world = app_world.world
    add_job(app_world, world.admin, "quality_check", JobStatus.SUCCEEDED, result={
        "status": "failed", "run_ids": [1, 2], "data_docs": None,
        "runs": [{"suite": "db_customers", "expectations": 7, "failed": 1, "checks": []},
                 {"suite": "db_sales", "expectations": 5, "failed": 0, "checks": []}],
    })
    app = open_jobs(log_in(world.admin.username))
    assert not app.exception
    assert any("1 of 7 expectations failed" in unescaped(error.value) for error in app.error)
    assert any("all 5 expectations held" in unescaped(success.value) for success in app.success)
    assert "Open the data-quality results and Data Docs" in [link.value for link in app.get("page_link")]
