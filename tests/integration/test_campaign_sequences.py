"""Campaign sequences on every database (decision 0049): launch (snapshot and dynamic), the tick walking
members through email, task, wait, branch and goal, exits, exactly-once under a repeated tick, re-entry,
roles and tenants apart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied, StaleRecord, ValidationFailed
from crm_core.marketing.engine import marketing_tick
from crm_core.models import Activity, AuditEvent, Campaign, Customer, Task
from crm_core.models.automation import LifecycleTransition
from crm_core.models.marketing import (
    ConsentAction,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    ProofKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.services import campaigns
from crm_core.services.consent import record_in
from crm_core.services.segments import SegmentInput, enroll_segment_in_campaign, save_segment
from tests.factories import World, build_world, create_random_customer

T0 = dt.datetime(2026, 12, 1, 1, 0)  # a Tuesday, 09:00 in Beijing


@pytest.fixture
def world(db: Database, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.cn")
    monkeypatch.setenv("CRM_MAIL_FROM", "marketing@example.cn")
    return build_world(db)


def _template(db: Database, world: World, name: str = "Hello") -> int:
    with db.transaction(world.manager) as session:
        template = EmailTemplate(name=name, language="en", subject="Hello {{ customer.name }}",
                                 body="Hi {{ contact.name }}. Unsubscribe: {{ links.unsubscribe }}")
        session.add(template)
        session.flush()
        return template.id


def _campaign(db: Database, world: World, *, tag: str, entry_mode: str = "snapshot", reentry: bool = False,
              goal: dict[str, str] | None = None, exit_on: list[str] | None = None) -> int:
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": tag}]}
    segment_id = save_segment(db, world.manager, SegmentInput(name=f"Seg {tag}", conditions=conditions,
                                                              sharing="tenant"))
    return campaigns.save_campaign(db, world.manager, campaigns.CampaignInput(
        name=f"Campaign {tag}", segment_id=segment_id, entry_mode=entry_mode, allow_reentry=reentry, goal=goal,
        exit_on=exit_on if exit_on is not None else ["replied", "unsubscribed", "meeting"]))


def _version(db: Database, world: World, campaign_id: int) -> int:
    with db.session(world.manager) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.version


def _step(db: Database, world: World, campaign_id: int, kind: str, config: dict[str, object]) -> int:
    return campaigns.save_step(db, world.manager, campaign_id, kind, config,
                               expected_version=_version(db, world, campaign_id))


def _members(db: Database, world: World, campaign_id: int) -> dict[int, CampaignMember]:
    with db.session(world.admin) as session:
        rows = session.scalars(select(CampaignMember).where(CampaignMember.campaign_id == campaign_id)).all()
        session.expunge_all()
        return {row.customer_id: row for row in rows}


def _count(db: Database, world: World, model: type, *where: object) -> int:
    with db.session(world.admin) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def test_a_sequence_runs_email_wait_task_and_completes_once(db: Database, world: World) -> None:
    template_id = _template(db, world)
    customer_ids = [create_random_customer(db, world.rep, tags="nurture", email=f"c{n}@example.cn")
                    for n in range(3)]
    create_random_customer(db, world.rep, tags="other")
    campaign_id = _campaign(db, world, tag="nurture")
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    _step(db, world, campaign_id, "wait", {"days": 2, "business_days": True})
    _step(db, world, campaign_id, "task", {"activity_kind": "call", "title": "Call them", "due_days": 1})
    launched = campaigns.launch(db, world.manager, campaign_id, now=T0)
    assert launched.enrolled == 3
    assert _count(db, world, AuditEvent, AuditEvent.entity == "campaign", AuditEvent.action == "launch") == 1
    assert _count(db, world, MarketingEvent, MarketingEvent.kind == "entered",
                  MarketingEvent.campaign_id == campaign_id) == 3
    first = marketing_tick(db, world.admin.tenant_id, now=T0)
    assert (first.emails, first.advanced) == (3, 3)
    again = marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=1))
    assert again.advanced == 0  # waiting: nothing runs twice
    assert _count(db, world, MarketingMessage, MarketingMessage.campaign_id == campaign_id) == 3
    members = _members(db, world, campaign_id)
    # two business days after Tuesday 09:00 Beijing: Thursday 09:00
    assert {member.next_run_at for member in members.values()} == {dt.datetime(2026, 12, 3, 1, 0)}
    done = marketing_tick(db, world.admin.tenant_id, now=dt.datetime(2026, 12, 3, 1, 0))
    assert done.tasks == 3 and done.finished == {"completed": 3}
    assert marketing_tick(db, world.admin.tenant_id, now=dt.datetime(2026, 12, 3, 1, 1)).advanced == 0
    assert _count(db, world, Task, Task.customer_id.in_(customer_ids), Task.title == "Call them") == 3
    with db.session(world.rep) as session:  # the rep sees the task on their list
        assert session.scalar(select(func.count()).select_from(Task).where(
            Task.assignee_id == world.rep.user_id, Task.title == "Call them")) == 3
    assert {member.state for member in _members(db, world, campaign_id).values()} == {"completed"}


def test_branch_goal_and_exits(db: Database, world: World) -> None:
    template_id = _template(db, world)
    opened_id = create_random_customer(db, world.rep, tags="br", email="o@example.cn")
    silent_id = create_random_customer(db, world.rep, tags="br", email="s@example.cn")
    replied_id = create_random_customer(db, world.rep, tags="br", email="r@example.cn")
    meeting_id = create_random_customer(db, world.rep, tags="br", email="m@example.cn")
    campaign_id = _campaign(db, world, tag="br", goal={"kind": "lifecycle", "stage": "customer"})
    first_mail = _step(db, world, campaign_id, "email", {"template_id": template_id})
    branch = _step(db, world, campaign_id, "branch", {"event": "opened", "within_days": 3})
    then_mail = _step(db, world, campaign_id, "email", {"template_id": template_id})
    goal_step = _step(db, world, campaign_id, "goal", {"kind": "deal_won"})
    with pytest.raises(ValidationFailed) as refused:  # a branch cannot go backwards
        campaigns.save_step(db, world.manager, campaign_id, "branch",
                            {"event": "opened", "within_days": 3, "then_step": first_mail, "else_step": goal_step},
                            step_id=branch, expected_version=_version(db, world, campaign_id))
    assert "steps.2.then_step" in refused.value.errors
    campaigns.save_step(db, world.manager, campaign_id, "branch",
                        {"event": "opened", "within_days": 3, "then_step": then_mail, "else_step": goal_step},
                        step_id=branch, expected_version=_version(db, world, campaign_id))
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    marketing_tick(db, world.admin.tenant_id, now=T0)
    members = _members(db, world, campaign_id)
    assert {member.step_id for member in members.values()} == {branch}
    with db.system_transaction("test: touches") as session:
        for customer_id, kind in ((opened_id, "opened"), (replied_id, "replied")):
            member = members[customer_id]
            session.add(MarketingEvent(tenant_id=member.tenant_id, campaign_id=campaign_id, member_id=member.id,
                                       customer_id=customer_id, cycle=1, kind=kind,
                                       occurred_at=T0 + dt.timedelta(hours=1)))
        session.add(Activity(tenant_id=world.rep.tenant_id, customer_id=meeting_id, type="meeting",
                             summary="booked", occurred_at=T0 + dt.timedelta(hours=2),
                             created_at=T0 + dt.timedelta(hours=2)))
        session.add(LifecycleTransition(tenant_id=world.rep.tenant_id, customer_id=silent_id, to_stage="intent",
                                        from_stage="prospect", occurred_at=T0 + dt.timedelta(hours=3)))
    later = T0 + dt.timedelta(hours=4)
    marketing_tick(db, world.admin.tenant_id, now=later)
    members = _members(db, world, campaign_id)
    assert members[opened_id].state == "active" and members[opened_id].step_id == goal_step or (
        members[opened_id].state == "completed")
    assert _count(db, world, MarketingMessage, MarketingMessage.member_id == members[opened_id].id) == 2
    assert (members[replied_id].state, members[replied_id].exit_reason) == ("exited", "replied")
    assert (members[meeting_id].state, members[meeting_id].exit_reason) == ("exited", "meeting")
    assert members[silent_id].state == "active" and members[silent_id].step_id == branch
    # the window closes without an open: the silent one goes to the goal step; not won, so completes
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=3, minutes=1))
    assert _members(db, world, campaign_id)[silent_id].state == "completed"
    assert _count(db, world, MarketingMessage, MarketingMessage.member_id == members[silent_id].id) == 1


def test_the_campaign_goal_and_an_unsubscribe_end_a_waiting_member(db: Database, world: World) -> None:
    template_id = _template(db, world)
    won_id = create_random_customer(db, world.rep, tags="goal", email="w@example.cn")
    leaving_id = create_random_customer(db, world.rep, tags="goal", email="leave@example.cn")
    campaign_id = _campaign(db, world, tag="goal", goal={"kind": "lifecycle", "stage": "customer"})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    _step(db, world, campaign_id, "wait", {"days": 7})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    marketing_tick(db, world.admin.tenant_id, now=T0)
    with db.system_transaction("test") as session:
        session.add(LifecycleTransition(tenant_id=world.rep.tenant_id, customer_id=won_id, to_stage="customer",
                                        from_stage="intent", occurred_at=T0 + dt.timedelta(days=1)))
        record_in(session, channel="email", address="leave@example.cn", action=ConsentAction.WITHDRAW,
                  proof_kind=ProofKind.UNSUBSCRIBE, customer_id=leaving_id, tenant_id=world.rep.tenant_id,
                  now=T0 + dt.timedelta(days=1))
    tick = marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=1, minutes=1))
    members = _members(db, world, campaign_id)
    # the unsubscribe ends the member at the next tick, inside its 7-day wait
    assert (members[leaving_id].state, members[leaving_id].exit_reason) == ("exited", "unsubscribed")
    assert tick.finished == {"exited": 1}
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=7, minutes=1))
    members = _members(db, world, campaign_id)
    assert members[won_id].state == "goal"  # checked before the second email
    assert _count(db, world, MarketingMessage, MarketingMessage.campaign_id == campaign_id) == 2
    assert _count(db, world, MarketingEvent, MarketingEvent.kind == "goal",
                  MarketingEvent.campaign_id == campaign_id) == 1


def test_dynamic_entry_reentry_pause_stop_and_a_manual_stop(db: Database, world: World) -> None:
    template_id = _template(db, world)
    first_id = create_random_customer(db, world.rep, tags="dyn", email="a@example.cn")
    campaign_id = _campaign(db, world, tag="dyn", entry_mode="dynamic", reentry=True)
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    marketing_tick(db, world.admin.tenant_id, now=T0)
    late_id = create_random_customer(db, world.rep, tags="dyn", email="b@example.cn")
    tick = marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=1))
    assert tick.enrolled == 1 and tick.emails == 1
    # re-entry: a finished member seen outside the segment and then back in it enters again
    with db.system_transaction("test") as session:
        session.get(Customer, first_id).tags = ",x,"  # type: ignore[union-attr]
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=2))
    with db.system_transaction("test") as session:
        session.get(Customer, first_id).tags = ",dyn,"  # type: ignore[union-attr]
    tick = marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=3))
    assert tick.reentered == 1
    member = _members(db, world, campaign_id)[first_id]
    assert member.cycle == 2 and _count(db, world, MarketingMessage, MarketingMessage.member_id == member.id) == 2
    campaigns.pause(db, world.manager, campaign_id)
    newcomer = create_random_customer(db, world.rep, tags="dyn", email="c@example.cn")
    assert marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=4)).enrolled == 0
    campaigns.resume(db, world.manager, campaign_id)
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=5))
    assert _members(db, world, campaign_id)[newcomer].state == "completed"
    with pytest.raises(AccessDenied):
        campaigns.pause(db, world.rep, campaign_id)
    with pytest.raises(StaleRecord):
        campaigns.pause(db, world.manager, campaign_id, expected_version=1)
    campaigns.stop(db, world.manager, campaign_id)
    assert late_id in _members(db, world, campaign_id)


def test_reentry_off_and_manual_stop_and_scoping(db: Database, world: World) -> None:
    template_id = _template(db, world)
    mine = create_random_customer(db, world.rep, tags="scope", email="mine@example.cn")
    theirs = create_random_customer(db, world.rep_other_team, tags="scope", email="theirs@example.cn")
    other_tenant = create_random_customer(db, world.other_admin, tags="scope", email="x@example.cn")
    campaign_id = _campaign(db, world, tag="scope", entry_mode="dynamic")
    _step(db, world, campaign_id, "wait", {"days": 1})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    campaigns.launch(db, world.admin, campaign_id, now=T0)
    members = _members(db, world, campaign_id)
    assert set(members) == {mine, theirs} and other_tenant not in members
    with db.session(world.rep) as session:  # a rep sees only their customers' members
        assert set(session.scalars(select(CampaignMember.customer_id))) == {mine}
    with pytest.raises(Exception):  # noqa: B017,PT011 - not theirs: not found
        campaigns.stop_member(db, world.rep, members[theirs].id)
    campaigns.stop_member(db, world.rep, members[mine].id)
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=1))
    assert _members(db, world, campaign_id)[mine].exit_reason == "stopped"
    assert _count(db, world, MarketingMessage, MarketingMessage.member_id == members[mine].id) == 0
    # re-entry off: leaving and coming back does not start again
    with db.system_transaction("test") as session:
        session.get(Customer, theirs).tags = ""  # type: ignore[union-attr]
    marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=1, minutes=1))
    with db.system_transaction("test") as session:
        session.get(Customer, theirs).tags = ",scope,"  # type: ignore[union-attr]
    assert marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(days=1, minutes=2)).reentered == 0
    assert marketing_tick(db, world.other_admin.tenant_id, now=T0 + dt.timedelta(days=2)).advanced == 0


def test_enrolment_by_segment_action_starts_a_running_campaign(db: Database, world: World) -> None:
    template_id = _template(db, world)
    campaign_id = _campaign(db, world, tag="seg")
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    customer_id = create_random_customer(db, world.rep, tags="late", email="late@example.cn")
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "late"}]}
    enroll_segment_in_campaign(db, world.manager, conditions, campaign_id)
    member = _members(db, world, campaign_id)[customer_id]
    assert member.state == "active" and member.step_id is not None
    assert marketing_tick(db, world.admin.tenant_id).emails == 1


def test_live_edit_removed_step_moves_members_on(db: Database, world: World) -> None:
    template_id = _template(db, world)
    customer_id = create_random_customer(db, world.rep, tags="edit", email="e@example.cn")
    campaign_id = _campaign(db, world, tag="edit")
    wait = _step(db, world, campaign_id, "wait", {"days": 5})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    marketing_tick(db, world.admin.tenant_id, now=T0)
    _step(db, world, campaign_id, "email", {"template_id": template_id})  # appended: will run
    moved = campaigns.remove_step(db, world.manager, campaign_id, wait,
                                  expected_version=_version(db, world, campaign_id))
    assert moved == 1
    tick = marketing_tick(db, world.admin.tenant_id, now=T0 + dt.timedelta(minutes=1))
    assert tick.emails == 2 and _members(db, world, campaign_id)[customer_id].state == "completed"


def test_the_dry_run_counts_entrants_skips_and_goals_without_writing(db: Database, world: World) -> None:
    from crm_core.marketing.dry_run import dry_run

    template_id = _template(db, world)
    granted = create_random_customer(db, world.rep, tags="dry", email="yes@example.cn")
    create_random_customer(db, world.rep, tags="dry", email="nobasis@example.cn")
    create_random_customer(db, world.rep, tags="dry")  # no address
    campaign_id = _campaign(db, world, tag="dry", goal={"kind": "lifecycle", "stage": "customer"})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    _step(db, world, campaign_id, "wait", {"days": 30})
    _step(db, world, campaign_id, "email", {"template_id": template_id})
    now = utc_now = dt.datetime(2026, 12, 1)
    with db.system_transaction("test") as session:
        record_in(session, channel="email", address="yes@example.cn", action=ConsentAction.GRANT, basis="consent",
                  proof_kind=ProofKind.FORM, tenant_id=world.rep.tenant_id, now=now - dt.timedelta(days=100))
        session.add(LifecycleTransition(tenant_id=world.rep.tenant_id, customer_id=granted, to_stage="customer",
                                        from_stage="intent", occurred_at=utc_now - dt.timedelta(days=80)))
    result = dry_run(db, world.manager, campaign_id, now=now)
    funnel = [(stage.key, stage.count, stage.no_address, stage.no_basis) for stage in result.stages]
    assert funnel == [("entered", 3, 0, 0), ("step", 3, 1, 1), ("step", 3, 0, 0), ("step", 2, 1, 1), ("goal", 1, 0, 0)]
    assert _count(db, world, CampaignMember, CampaignMember.campaign_id == campaign_id) == 0


def test_a_launch_asks_the_worker_for_a_tick_and_a_results_count_once_it_commits(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crm_core.jobs import queue as job_queue
    from crm_core.models.jobs import Job

    for name in ("CRM_JOBS_INLINE", "CRM_REDIS_URL", "CRM_JOBS_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_JOBS_PATH", str(tmp_path / "queue.db"))
    monkeypatch.setattr(job_queue, "_queue", None)  # this test's queue file, not an earlier test's
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.cn")
    db = sqlite_db
    world = build_world(db)
    create_random_customer(db, world.rep, tags="launch", email="first@example.cn")
    campaign_id = _campaign(db, world, tag="launch")
    _step(db, world, campaign_id, "email", {"template_id": _template(db, world)})

    def queued() -> list[str]:
        with db.system_session("test: queued jobs") as session:
            return sorted(session.scalars(select(Job.kind).where(Job.status == "queued")))

    assert queued() == []  # saving a campaign and its steps asks for nothing
    campaigns.launch(db, world.manager, campaign_id, now=T0)
    assert queued() == ["campaign_results_refresh", "marketing_tick"]
    assert job_queue.get_queue().pending_count() == 2  # on the queue a worker reads, not only recorded
