"""Notifications and access requests (撞单) on every database: the producers, the idempotent daily sweep with
frozen time, the access request workflow and its access rules, tenants kept apart."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied, DuplicateCustomer, NotFound, ValidationFailed
from crm_core.models import AuditEvent, Customer, Task
from crm_core.models.notifications import AccessRequest, Notification
from crm_core.notifications.sweep import sweep_task_reminders
from crm_core.queries.customer_profile import get_customer_profile
from crm_core.queries.notifications import get_access_request, list_notifications, pending_access_requests, unread_count
from crm_core.services.access_requests import decide_access_request, request_access
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.customers import CustomerInput, bulk_reassign_owner, create_customer
from crm_core.services.merging import Versions, merge_customers
from crm_core.services.notifications import mark_all_read, mark_read, preferences_of, save_preferences
from crm_core.services.tasks import TaskInput, create_task
from tests.factories import World, build_world, create_random_customer, unique

NOW = dt.datetime(2026, 6, 15, 8, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def kinds_of(db: Database, actor) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session(actor) as session:
        return [row.kind for row in list_notifications(session, limit=100).items]


def test_a_task_given_by_a_manager_notifies_the_assignee_but_not_one_taken_by_oneself(db: Database,
                                                                                       world: World) -> None:
    create_task(db, world.manager, TaskInput(title="Call back", assignee_id=world.rep.user_id))
    create_task(db, world.rep, TaskInput(title="My own"))
    with db.session(world.rep) as session:
        page = list_notifications(session)
        assert unread_count(session) == 1
    assert [(row.kind, row.params["title"], row.params["by"]) for row in page.items] == [
        ("task_assigned", "Call back", "Mia Manager")]
    assert kinds_of(db, world.manager) == []


def test_a_user_reads_and_marks_only_their_own_notifications(db: Database, world: World) -> None:
    create_task(db, world.manager, TaskInput(title="One", assignee_id=world.rep.user_id))
    create_task(db, world.manager, TaskInput(title="Two", assignee_id=world.rep.user_id))
    with db.session(world.rep) as session:
        first = list_notifications(session).items[0].id
    with pytest.raises(NotFound):
        mark_read(db, world.rep_same_team, first)
    with db.session(world.admin) as session:  # an admin reads no one else's bell either
        assert unread_count(session) == 0
    mark_read(db, world.rep, first)
    with db.session(world.rep) as session:
        assert unread_count(session) == 1
    assert mark_all_read(db, world.rep) == 1
    with db.session(world.rep) as session:
        assert unread_count(session) == 0
        assert len(list_notifications(session).items) == 2


def test_preferences_turn_a_kind_off(db: Database, world: World) -> None:
    assert save_preferences(db, world.rep, {"task_assigned": (False, False)}) == 1
    create_task(db, world.manager, TaskInput(title="Quiet", assignee_id=world.rep.user_id))
    assert kinds_of(db, world.rep) == []
    with db.session(world.rep) as session:
        assert preferences_of(session)["task_assigned"] == (False, False)
        assert preferences_of(session)["mention"] == (True, True)
    with db.session(world.manager) as session:  # each user's own
        assert preferences_of(session)["task_assigned"] == (True, True)


def test_a_mention_tells_the_named_users_who_see_the_customer(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with db.session(world.rep) as session:
        from crm_core.models import User
        mate = session.get(User, world.rep_same_team.user_id)
        assert mate is not None
        mate_handle = mate.username
    # the manager sees the rep's customer; Fay (another team) and the teammate do not
    log_activity(db, world.rep, ActivityInput(
        customer_id=customer_id, type="note",
        summary=f"Ask @MiaManager and @{mate_handle} and @FayFaraway; mail me at x@{mate_handle}.com"))
    assert kinds_of(db, world.manager) == ["mention"]
    assert kinds_of(db, world.rep_same_team) == []
    assert kinds_of(db, world.rep_other_team) == []
    with db.session(world.manager) as session:
        params = list_notifications(session).items[0].params
    assert params["by"] == "Rita Rep" and "@MiaManager" in params["excerpt"]


def test_the_daily_sweep_tells_due_and_overdue_once(db: Database, world: World) -> None:
    due_today = create_task(db, world.rep, TaskInput(title="Today", due_at=NOW.replace(hour=17)))
    overdue = create_task(db, world.rep, TaskInput(title="Late", due_at=NOW - dt.timedelta(days=2)))
    create_task(db, world.rep, TaskInput(title="Later", due_at=NOW + dt.timedelta(days=3)))
    tenant = world.rep.tenant_id
    assert sweep_task_reminders(db, tenant, now=NOW) == {"due": 1, "overdue": 1}
    assert sweep_task_reminders(db, tenant, now=NOW + dt.timedelta(hours=3)) == {"due": 0, "overdue": 0}
    # the next day: the task due yesterday is overdue now (told once), the late one is not told again
    assert sweep_task_reminders(db, tenant, now=NOW + dt.timedelta(days=1)) == {"due": 0, "overdue": 1}
    with db.session(world.rep) as session:
        rows = list_notifications(session).items
    assert sorted((row.kind, row.entity_id) for row in rows) == sorted(
        [("task_due", due_today), ("task_overdue", overdue), ("task_overdue", due_today)])
    assert sweep_task_reminders(db, world.other_admin.tenant_id, now=NOW) == {"due": 0, "overdue": 0}


def blocked(db: Database, world: World, name: str) -> DuplicateCustomer:
    with pytest.raises(DuplicateCustomer) as caught:
        create_customer(db, world.rep_other_team, CustomerInput(name=name, owner_id=world.rep_other_team.user_id))
    return caught.value


def test_a_blocked_rep_learns_the_owner_but_no_field_and_asks_for_access(db: Database, world: World) -> None:
    name = unique("Harbour Freight ")
    customer_id = create_random_customer(db, world.rep, name=name, email="buyer@harbour.example")
    duplicate = blocked(db, world, name)
    assert duplicate.existing_id == 0 and duplicate.existing_name == "" and duplicate.params["owner"] == "Rita Rep"
    assert duplicate.record_id == customer_id and str(customer_id) not in str(duplicate)
    request_id = request_access(db, world.rep_other_team, name=name, reason="I met them at the fair")
    # the requester sees their request but nothing of the customer
    with db.session(world.rep_other_team) as session:
        mine = get_access_request(session, request_id)
        assert mine is not None and mine.customer_name is None and mine.requested_name == name
        assert session.get(Customer, customer_id) is None
        assert get_customer_profile(session, customer_id) is None
    # the owner and the owner's manager are told, with the reason
    for decider in (world.rep, world.manager):
        with db.session(decider) as session:
            [row] = list_notifications(session).items
            assert row.kind == "access_requested" and row.params["reason"] == "I met them at the fair"
            assert [r.id for r in pending_access_requests(session)] == [request_id]
    with db.session(world.rep_same_team) as session:
        assert get_access_request(session, request_id) is None
    with pytest.raises(ValidationFailed):
        request_access(db, world.rep_other_team, name=name)  # asked already


def test_only_the_owner_a_manager_or_an_admin_decides(db: Database, world: World) -> None:
    name = unique("Quay Logistics ")
    create_random_customer(db, world.rep, name=name)
    request_id = request_access(db, world.rep_other_team, name=name)
    for outsider in (world.rep_same_team, world.rep_other_team, world.analyst):
        with pytest.raises((AccessDenied, NotFound)):
            decide_access_request(db, outsider, request_id, approve=True)
    with pytest.raises(NotFound):
        decide_access_request(db, world.other_admin, request_id, approve=True)  # another tenant
    assert decide_access_request(db, world.manager, request_id, approve=False) == "declined"
    with pytest.raises(ValidationFailed):
        decide_access_request(db, world.rep, request_id, approve=True)  # decided already
    assert kinds_of(db, world.rep_other_team) == ["access_declined"]


def test_approval_transfers_the_customer_with_its_tasks_and_an_audit_row(db: Database, world: World) -> None:
    name = unique("Dock Supplies ")
    customer_id = create_random_customer(db, world.rep, name=name)
    task_id = create_task(db, world.rep, TaskInput(title="Visit", customer_id=customer_id))
    request_id = request_access(db, world.rep_other_team, name=name, reason="Existing contact")
    assert decide_access_request(db, world.rep, request_id, approve=True) == "approved"
    with db.session(world.rep_other_team) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.owner_id == world.rep_other_team.user_id
        assert customer.owner_since is not None
        [told] = list_notifications(session).items
        assert told.kind == "access_approved" and told.params["name"] == name
    with db.system_session("test: checks") as session:
        task = session.get(Task, task_id)
        assert task is not None and task.customer_owner_id == world.rep_other_team.user_id
        audit = session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "customer", AuditEvent.entity_id == customer_id, AuditEvent.action == "update")
        ).all()
        assert [(a.actor_id, a.changes["owner_id"]) for a in audit] == [
            (world.rep.user_id, [world.rep.user_id, world.rep_other_team.user_id])]
        decided = session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "access_request", AuditEvent.entity_id == request_id)).all()
        assert [a.action for a in decided] == ["create", "update"]
        assert session.scalar(select(func.count()).select_from(AccessRequest).where(
            AccessRequest.id == request_id, AccessRequest.decided_by_id == world.rep.user_id)) == 1
    with db.session(world.rep) as session:  # the former owner no longer sees it
        assert session.get(Customer, customer_id) is None


def test_tenants_are_kept_apart(db: Database, world: World) -> None:
    name = unique("Isolated ")
    create_random_customer(db, world.rep, name=name)
    with pytest.raises(NotFound):  # another tenant's customer is no duplicate there
        request_access(db, world.other_admin, name=name)
    create_task(db, world.manager, TaskInput(title="Tenant A", assignee_id=world.rep.user_id))
    with db.session(world.other_admin) as session:
        assert unread_count(session) == 0
        assert session.scalar(select(func.count()).select_from(Notification)) == 0


def test_the_pool_return_warning_reaches_the_owner_once(db: Database, world: World) -> None:
    from crm_core.services.pool import return_to_pool
    from tests.integration.test_pool import NOW as POOL_NOW
    from tests.integration.test_pool import east_rule, set_clock

    east_rule(db, world, idle_days=30, reminder_days=3)
    customer_id = create_random_customer(db, world.rep)
    set_clock(db, customer_id, silent_days=28)  # returns in two days
    assert return_to_pool(db, world.rep.tenant_id, now=POOL_NOW).reminded == 1
    return_to_pool(db, world.rep.tenant_id, now=POOL_NOW + dt.timedelta(hours=1))
    with db.session(world.rep) as session:
        rows = list_notifications(session).items
    assert [(row.kind, row.entity_id) for row in rows] == [("pool_return", customer_id)]


def test_the_sweep_and_the_robots_run_as_jobs(db: Database, world: World) -> None:
    from huey import MemoryHuey

    from crm_core.jobs.runner import execute_job
    from crm_core.jobs.service import submit_job
    from crm_core.queries.jobs import get_job

    queue = MemoryHuey("kestrel-test-notifications")
    create_task(db, world.rep, TaskInput(title="Late", due_at=NOW - dt.timedelta(days=2)))
    for kind, params, result in (
        ("task_reminders", {"as_of": NOW.isoformat()}, {"due": 0, "overdue": 1}),
        ("task_reminders", {"as_of": NOW.isoformat()}, {"due": 0, "overdue": 0}),
        ("notification_robots", {}, {"sent": 0, "retrying": 0, "failed": 0}),
    ):
        job_id = submit_job(db, world.admin, kind, params, queue=queue)
        execute_job(db, job_id, queue=queue)
        with db.session(world.admin) as session:
            job = get_job(session, job_id, queue=queue)
        assert (job.status, job.result) == ("succeeded", result)


def test_a_pending_request_follows_the_customer_to_its_new_owner(db: Database, world: World) -> None:
    """Who sees and decides a request is the customer's owner now, not the one it had when asked."""
    name = unique("Pier Traders ")
    customer_id = create_random_customer(db, world.rep, name=name)
    request_id = request_access(db, world.rep_other_team, name=name)
    bulk_reassign_owner(db, world.manager, [customer_id], world.rep_same_team.user_id)
    with db.session(world.rep) as session:  # the former owner: neither listed nor decidable
        assert pending_access_requests(session) == [] and get_access_request(session, request_id) is None
    with pytest.raises(NotFound):
        decide_access_request(db, world.rep, request_id, approve=True)
    with db.session(world.rep_same_team) as session:
        assert [row.id for row in pending_access_requests(session)] == [request_id]
    assert decide_access_request(db, world.rep_same_team, request_id, approve=True) == "approved"
    with db.session(world.rep_same_team) as session:  # decided under this owner: it stays in their history
        decided = get_access_request(session, request_id)
        assert decided is not None and decided.status == "approved"
    with db.system_session("test: checks") as session:
        customer = session.get(Customer, customer_id)
        request = session.get(AccessRequest, request_id)
        assert customer is not None and customer.owner_id == world.rep_other_team.user_id
        assert request is not None and request.owner_id == world.rep_same_team.user_id


def test_a_pending_request_on_a_merged_customer_goes_to_the_survivors_owner(db: Database, world: World) -> None:
    name = unique("Wharf Foods ")
    merged_id = create_random_customer(db, world.rep, name=name)
    survivor_id = create_random_customer(db, world.rep_same_team, name=unique("Wharf Foods Group "))
    request_id = request_access(db, world.rep_other_team, name=name)
    with db.system_session("test: versions") as session:
        found = dict(session.execute(select(Customer.id, Customer.version)
                                     .where(Customer.id.in_([survivor_id, merged_id]))).all())
    merge_customers(db, world.admin, survivor_id, merged_id, {}, Versions(found[survivor_id], found[merged_id]))
    with db.session(world.rep_same_team) as session:
        assert [row.id for row in pending_access_requests(session)] == [request_id]
    with db.session(world.rep) as session:
        assert pending_access_requests(session) == []
