"""The sequence engine (decisions 0046, 0049): the ``marketing_tick`` job, every minute per tenant.

One tick, as the system for one tenant:

1. dynamic campaigns enrol the customers that qualify now (one ``INSERT … SELECT``); with re-entry
   allowed, a finished member seen outside the target and then back in it enters again (``cycle + 1``);
2. due members (active, ``next_run_at <= now``, or unsubscribed since: they exit at once) advance, at
   most ``batch`` of them per tick, oldest first, each in its own transaction with its row locked:
   :func:`crm_core.rules.sequences.advance` says what to do and this module does it (queue the email,
   create the owner's task, record goal, exit and completion touches). The outbox's unique key and the
   task's touch make a repeated or concurrent tick do nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.jobs.context import JobContext, job_kind
from crm_core.marketing import sender
from crm_core.models import (
    Activity,
    ActivityType,
    Base,
    Campaign,
    Customer,
    Opportunity,
    PipelineStage,
    Priority,
    Role,
    StageKind,
    Task,
    TaskStatus,
    utcnow,
)
from crm_core.models.automation import LifecycleTransition
from crm_core.models.marketing import (
    ANY_CHANNEL,
    CampaignStep,
    ConsentAction,
    ConsentRecord,
    DoNotContact,
    MarketingEvent,
    MemberState,
    TouchKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.rules import sequences
from crm_core.services import campaigns as campaign_service
from crm_core.services.consent import send_decision

LOG = logging.getLogger("kestrel.marketing")
BATCH = 500
FINISHED = campaign_service.FINISHED
NO_REENTRY_AFTER = ("unsubscribed", "stopped", "campaign_stopped")  # people who said no are not re-enrolled


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclass
class TickResult:
    """What one tick did for a tenant."""

    enrolled: int = 0
    reentered: int = 0
    advanced: int = 0
    emails: int = 0
    tasks: int = 0
    finished: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def marketing_tick(db: Database, tenant_id: int, *, now: dt.datetime | None = None, batch: int = BATCH) -> TickResult:
    """Enrol, then advance the due members of the tenant's running campaigns."""
    clock = time.perf_counter()
    moment = (now or utcnow()).replace(microsecond=0)
    result = TickResult()
    with db.system_session("marketing tick", tenant_id=tenant_id) as session:
        running = session.scalars(select(Campaign).where(Campaign.tenant_id == tenant_id,
                                                         Campaign.status == campaign_service.RUNNING)).all()
        dynamic = [campaign.id for campaign in running if campaign.entry_mode == "dynamic"]
    for campaign_id in dynamic:
        with db.system_transaction(f"marketing tick: enrol campaign #{campaign_id}", tenant_id=tenant_id) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != campaign_service.RUNNING:
                continue
            result.enrolled += campaign_service.enrol_new(session, campaign, None, moment,
                                                          f"dynamic:{campaign.target_kind}")
            if campaign.allow_reentry:
                result.reentered += _reenter(session, campaign, moment)
    for member_id in _due_members(db, tenant_id, moment, batch):
        with db.system_transaction(f"marketing tick: member #{member_id}", tenant_id=tenant_id) as session:
            _advance_member(session, tenant_id, member_id, moment, result)
    result.seconds = time.perf_counter() - clock
    return result


def _reenter(session: Session, campaign: Campaign, now: dt.datetime) -> int:
    """Finished members seen outside the target are marked (``next_run_at``, unused once finished); marked
    ones back in the target start again at the first step with ``cycle + 1``."""
    members = _table("campaign_members")
    qualifying = select(Customer.id).where(campaign_service.target_clause(session, campaign, None))
    finished = and_(members.c.tenant_id == campaign.tenant_id, members.c.campaign_id == campaign.id,
                    members.c.state.in_(FINISHED),
                    or_(members.c.exit_reason.is_(None), members.c.exit_reason.not_in(NO_REENTRY_AFTER)))
    session.execute(update(members).where(finished, members.c.next_run_at.is_(None),
                                          members.c.customer_id.not_in(qualifying)).values(next_run_at=now))
    first = campaign_service.first_step_id(session, campaign.id)
    count = session.execute(update(members).where(
        finished, members.c.next_run_at.is_not(None), members.c.customer_id.in_(qualifying)).values(
        state=MemberState.ACTIVE.value, cycle=members.c.cycle + 1, step_id=first, step_entered_at=now,
        next_run_at=now, enrolled_at=now, finished_at=None, exit_reason=None, updated_at=now)).rowcount  # type: ignore[attr-defined]
    if count:
        campaign_service.entered_touches(session, campaign.id, now, tenant_id=campaign.tenant_id)
    return int(count or 0)


def unsubscribed_clause(tenant_id: int, members: Any) -> Any:
    """A member whose person unsubscribed in this cycle (the touch), withdrew email consent since it entered,
    or is on the do-not-contact list (Core, correlated on ``members``)."""
    events = _table("marketing_events")
    consent = _table("consent_records")
    blocked = _table("do_not_contact")
    contacts = _table("contacts")
    customers = _table("customers")
    address = func.coalesce(
        select(contacts.c.email_normalized)
        .where(contacts.c.tenant_id == tenant_id, contacts.c.id == members.c.contact_id)
        .correlate(members).scalar_subquery(),
        select(customers.c.email_normalized)
        .where(customers.c.tenant_id == tenant_id, customers.c.id == members.c.customer_id)
        .correlate(members).scalar_subquery())
    return or_(
        exists().where(events.c.tenant_id == tenant_id, events.c.member_id == members.c.id,
                       events.c.cycle == members.c.cycle, events.c.kind == TouchKind.UNSUBSCRIBED.value),
        exists().where(consent.c.tenant_id == tenant_id, consent.c.channel == "email",
                       consent.c.action == ConsentAction.WITHDRAW.value, consent.c.address == address,
                       consent.c.recorded_at >= members.c.enrolled_at),
        exists().where(blocked.c.tenant_id == tenant_id, blocked.c.channel.in_(["email", ANY_CHANNEL]),
                       blocked.c.address == address),
    )


def _due_members(db: Database, tenant_id: int, now: dt.datetime, batch: int) -> list[int]:
    members = _table("campaign_members")
    campaigns = _table("campaigns")
    with db.system_session("marketing tick: due", tenant_id=tenant_id) as session:
        statement = (
            select(members.c.id)
            .join(campaigns, campaigns.c.id == members.c.campaign_id)
            .where(members.c.tenant_id == tenant_id, campaigns.c.tenant_id == tenant_id,
                   campaigns.c.status == campaign_service.RUNNING, members.c.state == MemberState.ACTIVE.value,
                   or_(members.c.next_run_at <= now, unsubscribed_clause(tenant_id, members)))
            .order_by(members.c.next_run_at, members.c.id).limit(batch))
        return list(session.scalars(statement))


def member_facts(session: Session, tenant_id: int, member: CampaignMember,
                 goal_keys: set[str]) -> tuple[sequences.Facts, list[sequences.Event]]:
    """The exit rules' facts and the branch events of one member since its cycle began."""
    since = member.enrolled_at
    touches = set(session.scalars(select(MarketingEvent.kind).where(
        MarketingEvent.tenant_id == tenant_id, MarketingEvent.member_id == member.id,
        MarketingEvent.cycle == member.cycle)))
    _customer, _contact, address = sender.recipient(session, member)
    decision = send_decision(session, tenant_id, "email", address) if address else None
    said_no = decision is not None and decision.reason.startswith(("blocked:withdrawn", "blocked:do_not_contact"))
    withdrawn_since = session.scalar(select(func.count()).select_from(ConsentRecord).where(
        ConsentRecord.tenant_id == tenant_id, ConsentRecord.channel == "email", ConsentRecord.address == address,
        ConsentRecord.action == ConsentAction.WITHDRAW.value, ConsentRecord.recorded_at >= since)) if address else 0
    blocked = bool(address) and session.scalar(select(func.count()).select_from(DoNotContact).where(
        DoNotContact.tenant_id == tenant_id, DoNotContact.address == address,
        DoNotContact.channel.in_(["email", ANY_CHANNEL]))) or 0
    goals: set[str] = set()
    if "deal_won" in goal_keys and session.scalar(
            select(func.count()).select_from(Opportunity)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
            .where(Opportunity.tenant_id == tenant_id, Opportunity.customer_id == member.customer_id,
                   PipelineStage.kind == StageKind.WON.value, Opportunity.closed_at >= since)):
        goals.add("deal_won")
    transitions = session.execute(select(LifecycleTransition.to_stage, LifecycleTransition.occurred_at).where(
        LifecycleTransition.tenant_id == tenant_id, LifecycleTransition.customer_id == member.customer_id,
        LifecycleTransition.occurred_at >= since)).all()
    goals |= {f"lifecycle:{stage}" for stage, _at in transitions if f"lifecycle:{stage}" in goal_keys}
    meeting = bool(session.scalar(select(func.count()).select_from(Activity).where(
        Activity.tenant_id == tenant_id, Activity.customer_id == member.customer_id,
        Activity.type == ActivityType.MEETING.value, Activity.created_at >= since)))
    facts = sequences.Facts(
        stopped=member.exit_reason == "stopped",
        unsubscribed=TouchKind.UNSUBSCRIBED.value in touches or (said_no and bool(withdrawn_since)) or bool(blocked),
        goals=frozenset(goals), replied=TouchKind.REPLIED.value in touches, meeting=meeting)
    events = [sequences.Event(kind, at) for kind, at in session.execute(select(MarketingEvent.kind,
              MarketingEvent.occurred_at).where(
        MarketingEvent.tenant_id == tenant_id, MarketingEvent.member_id == member.id,
        MarketingEvent.cycle == member.cycle,
        MarketingEvent.kind.in_([TouchKind.OPENED.value, TouchKind.CLICKED.value, TouchKind.REPLIED.value])))]
    events += [sequences.Event("stage_changed", at) for _stage, at in transitions]
    events += [sequences.Event("deal_created", at) for at in session.scalars(select(Opportunity.created_at).where(
        Opportunity.tenant_id == tenant_id, Opportunity.customer_id == member.customer_id,
        Opportunity.created_at >= since))]
    return facts, events


def _advance_member(session: Session, tenant_id: int, member_id: int, now: dt.datetime, result: TickResult) -> None:
    member = session.scalars(select(CampaignMember).where(CampaignMember.id == member_id,
                                                          CampaignMember.tenant_id == tenant_id)
                             .with_for_update()).first()
    if member is None or member.state != MemberState.ACTIVE.value:
        return  # another tick took it first
    campaign = session.get(Campaign, member.campaign_id)
    if campaign is None or campaign.status != campaign_service.RUNNING:
        return
    steps = campaign_service.machine_steps(session, campaign.id)
    goal_keys = {key for key in [sequences.goal_key(campaign.goal),
                                 *(sequences.goal_key(step.config) for step in steps if step.kind == "goal")] if key}
    facts, events = member_facts(session, tenant_id, member, goal_keys)
    if member.next_run_at is not None and member.next_run_at > now and not facts.unsubscribed:
        return  # not due (a concurrent tick moved it)
    place = sequences.Place(member.state, member.step_id, member.step_entered_at, member.enrolled_at, member.cycle)
    outcome = sequences.advance(steps, place, events, facts, now, exit_on=campaign.exit_on or (),
                                goal=campaign.goal)
    by_id = {step.id: step for step in session.scalars(select(CampaignStep).where(
        CampaignStep.tenant_id == tenant_id, CampaignStep.campaign_id == campaign.id))}
    queued = False
    for action in outcome.actions:
        step = by_id.get(action.step_id) if action.step_id is not None else None
        if action.kind == "email" and step is not None:
            sender.queue_email(session, member, step, now=now)
            result.emails += 1
            queued = True
        elif action.kind == "task" and step is not None:
            result.tasks += _owner_task(session, member, step, now)
        elif action.kind in ("goal", "exit", "complete"):
            kind = {"goal": TouchKind.GOAL, "exit": TouchKind.EXITED, "complete": TouchKind.COMPLETED}[action.kind]
            session.add(MarketingEvent(
                tenant_id=tenant_id, campaign_id=campaign.id, step_id=action.step_id or member.step_id,
                member_id=member.id, customer_id=member.customer_id, contact_id=member.contact_id,
                cycle=member.cycle, kind=kind.value, occurred_at=now, detail=action.detail))
    member.state = outcome.state
    member.step_id = outcome.step_id if outcome.step_id is not None else member.step_id
    member.step_entered_at = outcome.step_entered_at
    member.next_run_at = outcome.next_run_at
    if outcome.finished:
        member.finished_at = now
        member.exit_reason = outcome.exit_reason
        result.finished[outcome.state] = result.finished.get(outcome.state, 0) + 1
    result.advanced += 1
    session.flush()
    if queued:
        sender.send_after_commit(session, tenant_id)


def _owner_task(session: Session, member: CampaignMember, step: CampaignStep, now: dt.datetime) -> int:
    """The customer's owner's task of a task step, once per member, step and cycle (its ``task`` touch)."""
    done = session.scalar(select(func.count()).select_from(MarketingEvent).where(
        MarketingEvent.tenant_id == member.tenant_id, MarketingEvent.member_id == member.id,
        MarketingEvent.step_id == step.id, MarketingEvent.cycle == member.cycle,
        MarketingEvent.kind == TouchKind.TASK.value))
    if done:
        return 0
    customer = session.get(Customer, member.customer_id)
    config = step.config or {}
    due = (now + dt.timedelta(days=int(config.get("due_days", 0)))).replace(hour=9, minute=0, second=0)
    if due < now:
        due = now
    task = Task(tenant_id=member.tenant_id, title=str(config.get("title", ""))[:200],
                assignee_id=customer.owner_id if customer is not None else None, due_at=due,
                status=TaskStatus.OPEN.value, priority=Priority.NORMAL.value, customer_id=member.customer_id)
    session.add(task)
    session.flush()
    session.add(MarketingEvent(
        tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=step.id, member_id=member.id,
        customer_id=member.customer_id, contact_id=member.contact_id, cycle=member.cycle,
        kind=TouchKind.TASK.value, occurred_at=now, detail=f"task#{task.id}:{config.get('activity_kind', '')}"))
    return 1


_TICK = JobAfterCommit("marketing_tick")  # its default schedule runs it every minute anyway


def tick_after_commit(session: Session, tenant_id: int) -> None:
    """Run a tick for ``tenant_id`` once ``session`` commits."""
    _TICK.mark(session, tenant_id)


@job_kind("marketing_tick", roles=frozenset({Role.ADMIN}), schedulable=True, default_schedule=("*", "*", "*"))
def marketing_tick_job(ctx: JobContext) -> dict[str, Any]:
    """Advance the tenant's campaign sequences (every minute): enrol dynamic targets, run due steps."""
    ctx.progress(0, 1, "jobs.progress.marketing_tick")
    as_of = ctx.params.get("as_of")
    result = marketing_tick(ctx.db, ctx.tenant_id,
                            now=dt.datetime.fromisoformat(as_of).replace(tzinfo=None) if as_of else None)
    ctx.progress(1, 1)
    return {"enrolled": result.enrolled, "reentered": result.reentered, "advanced": result.advanced,
            "emails": result.emails, "tasks": result.tasks, "finished": result.finished,
            "seconds": round(result.seconds, 3)}
