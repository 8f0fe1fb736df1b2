"""Who sees and changes which job, and schedules that start once a minute — on every database.

No worker here: jobs are recorded (``enqueue`` to an in-memory Huey) and read under the
access rules, inside the savepoint fixture. The worker itself is tested in ``test_jobs.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from huey import Huey, MemoryHuey
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, JobNotCancellable, NotFound
from crm_core.jobs.schedules import is_due, run_due_schedules
from crm_core.jobs.service import cancel_job, retry_job, submit_job
from crm_core.models.jobs import Job, JobSchedule, JobStatus
from crm_core.queries.jobs import get_job, list_jobs
from tests.factories import World, build_world


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def queue() -> Huey:
    return MemoryHuey("kestrel-test-access")


def record_job(db: Database, actor: Actor | None, *, tenant_id: int | None = None, status: str = "failed") -> int:
    """A job row as a user (or, with ``actor`` None, a schedule) left it."""
    with db.system_transaction("test: a job") as session:
        job = Job(tenant_id=actor.tenant_id if actor else tenant_id, kind="import", params={},
                  requested_by_id=actor.user_id if actor else None, status=status)
        session.add(job)
        session.flush()
        return job.id


def visible_ids(db: Database, actor: Actor, queue: Huey) -> set[int]:
    with db.session(actor) as session:
        return {view.id for view in list_jobs(session, per_page=100, queue=queue).items}


def test_a_rep_sees_only_their_own_jobs_an_admin_the_tenants_and_no_tenant_another_tenants(
    db: Database, world: World, queue: Huey
) -> None:
    rep_job = record_job(db, world.rep)
    teammate_job = record_job(db, world.rep_same_team)
    manager_job = record_job(db, world.manager)
    scheduled_job = record_job(db, None, tenant_id=world.admin.tenant_id)
    other_tenant_job = record_job(db, world.other_admin)

    assert visible_ids(db, world.rep, queue) == {rep_job}
    assert visible_ids(db, world.manager, queue) == {manager_job}  # a manager's team's jobs are theirs alone
    assert visible_ids(db, world.admin, queue) == {rep_job, teammate_job, manager_job, scheduled_job}
    assert visible_ids(db, world.other_admin, queue) == {other_tenant_job}
    for actor, job_id in ((world.rep, teammate_job), (world.rep, scheduled_job), (world.admin, other_tenant_job),
                          (world.other_admin, rep_job)):
        with db.session(actor) as session, pytest.raises(NotFound):
            get_job(session, job_id, queue=queue)
    with db.session(world.rep) as session:
        mine = get_job(session, rep_job, queue=queue)
    assert (mine.requested_by, mine.status) == (world.rep.username, JobStatus.FAILED)


def test_only_the_requester_or_an_admin_of_the_tenant_cancels_or_retries_a_job(
    db: Database, world: World, queue: Huey
) -> None:
    manager_job = record_job(db, world.manager, status="queued")
    with pytest.raises(NotFound):
        cancel_job(db, world.rep, manager_job, queue=queue)
    with pytest.raises(NotFound):
        cancel_job(db, world.other_admin, manager_job, queue=queue)
    assert cancel_job(db, world.admin, manager_job, queue=queue) == JobStatus.CANCELLED
    with pytest.raises(JobNotCancellable):
        cancel_job(db, world.manager, manager_job, queue=queue)
    with pytest.raises(NotFound):
        retry_job(db, world.other_admin, manager_job, queue=queue)
    retried = retry_job(db, world.manager, manager_job, queue=queue)
    with db.session(world.manager) as session:
        again = get_job(session, retried, queue=queue)
    assert (again.status, again.retry_of_id, again.requested_by) == (JobStatus.QUEUED, manager_job,
                                                                     world.manager.username)
    assert queue.pending_count() == 1  # the retry went on the queue; the cancelled job never did


def test_a_role_may_start_only_the_kinds_open_to_it(db: Database, world: World, queue: Huey) -> None:
    with pytest.raises(AccessDenied):
        submit_job(db, world.rep, "import", {"entity": "customers"}, queue=queue)
    with pytest.raises(AccessDenied):
        submit_job(db, world.manager, "demo_load", {}, queue=queue)
    with pytest.raises(AccessDenied):
        submit_job(db, world.manager, "migration", {"target_url": "sqlite:///elsewhere.db"}, queue=queue)
    assert submit_job(db, world.manager, "import", {"entity": "customers"}, queue=queue)
    assert submit_job(db, world.admin, "quality_check", {}, queue=queue)
    assert queue.pending_count() == 2


def test_each_due_schedule_starts_once_even_when_the_tick_runs_twice_in_the_same_minute(
    db: Database, world: World, queue: Huey
) -> None:
    minute = dt.datetime(2026, 12, 6, 3, 30)  # a Sunday: the daily check is due, so is the */15 automation
    with db.system_session("test: schedules") as session:
        schedules = session.scalars(select(JobSchedule)).all()
    due = sorted((schedule.tenant_id, schedule.kind) for schedule in schedules if is_due(schedule, minute))
    assert {kind for _, kind in due} >= {"quality_check", "automation_run"}
    assert {tenant for tenant, _ in due} == {world.admin.tenant_id, world.other_admin.tenant_id}

    first = run_due_schedules(db, queue=queue, now=minute.replace(second=5))
    second = run_due_schedules(db, queue=queue, now=minute.replace(second=55))

    assert (len(first), second) == (len(due), [])
    assert queue.pending_count() == len(due)
    with db.system_session("test: started jobs") as session:
        started = session.execute(select(Job.tenant_id, Job.kind, Job.status, Job.schedule_id)
                                  .where(Job.id.in_(first))).all()
        last_jobs = set(session.scalars(select(JobSchedule.last_job_id).where(JobSchedule.last_job_id.is_not(None))))
    assert sorted((tenant, kind) for tenant, kind, _, _ in started) == due
    assert {status for _, _, status, _ in started} == {"queued"}
    assert all(schedule_id is not None for _, _, _, schedule_id in started)
    assert last_jobs == set(first)

    next_minute = run_due_schedules(db, queue=queue, now=minute + dt.timedelta(minutes=1))
    with db.system_session("test: next minute") as session:
        fired = sorted(session.execute(select(Job.tenant_id, Job.kind).where(Job.id.in_(next_minute))).all())
    # 03:31: of the defaults only the every-minute ones fire (SLA sweep, campaign sequences), once per tenant
    assert [tuple(row) for row in fired] == sorted(
        (tenant, kind) for tenant in (world.admin.tenant_id, world.other_admin.tenant_id)
        for kind in ("marketing_tick", "sla_sweep"))
