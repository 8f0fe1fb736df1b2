"""The dry run of a campaign (issue 14): its sequence replayed over the last 90 days of real data, nothing
written. Everyone the target holds now enters at the window's start; each step is reached at the
offset its waits add up to (calendar days, or business days of the China calendar); a member leaves
the funnel at the first goal (a deal won, a lifecycle stage reached) or meeting in the window before
that offset. Email steps also count who would be skipped: no address, or no lawful basis in the
ledger (its latest entry is not a grant, or the address is on the do-not-contact list). A branch
cannot know how people would have reacted to mail never sent: its members follow its "else" way.
All counts are set-based SQL over the target (one statement per step).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound
from crm_core.models import Activity, ActivityType, Campaign, Contact, Customer, Opportunity, PipelineStage, utcnow
from crm_core.models.automation import LifecycleTransition
from crm_core.models.marketing import ANY_CHANNEL, ConsentAction, ConsentRecord, DoNotContact, StepKind
from crm_core.rules import sequences
from crm_core.rules.consent import SENDABLE_BASES
from crm_core.services import campaigns as campaign_service

WINDOW_DAYS = 90


@dataclass(frozen=True)
class FunnelStage:
    """One bar of the funnel: ``key`` is entered / step / goal / exited; ``step`` its number and kind."""

    key: str
    count: int
    step: int | None = None
    kind: str | None = None
    no_address: int = 0
    no_basis: int = 0


@dataclass(frozen=True)
class DryRun:
    since: dt.datetime
    stages: list[FunnelStage]


def _address() -> Any:
    contact = aliased(Contact)
    person = (select(contact.email_normalized)
              .where(contact.customer_id == Customer.id, contact.tenant_id == Customer.tenant_id,
                     contact.archived_at.is_(None), contact.email_normalized.is_not(None))
              .order_by(contact.is_primary.desc(), contact.id).limit(1).correlate(Customer).scalar_subquery())
    return func.coalesce(person, Customer.email_normalized)


def _lawful(tenant_id: int, address: Any) -> ColumnElement[bool]:
    """The address's latest email ledger entry is a grant on a sendable basis, and it is not blocked."""
    grant = aliased(ConsentRecord)
    later = aliased(ConsentRecord)
    return and_(
        exists().where(grant.tenant_id == tenant_id, grant.channel == "email", grant.address == address,
                       grant.action == ConsentAction.GRANT.value, grant.basis.in_(sorted(SENDABLE_BASES)),
                       ~exists().where(later.tenant_id == tenant_id, later.channel == "email",
                                       later.address == grant.address, later.recorded_at > grant.recorded_at)),
        ~exists().where(DoNotContact.tenant_id == tenant_id, DoNotContact.address == address,
                        DoNotContact.channel.in_(["email", ANY_CHANNEL])))


def _left_before(campaign: Campaign, tenant_id: int, since: dt.datetime, until: dt.datetime) -> ColumnElement[bool]:
    """The customer reached the campaign's goal or booked a meeting (an exit the campaign chose) in [since, until)."""
    clauses: list[ColumnElement[bool]] = []
    goal = sequences.goal_key(campaign.goal)
    if goal == "deal_won":
        clauses.append(exists().where(
            Opportunity.tenant_id == tenant_id, Opportunity.customer_id == Customer.id,
            Opportunity.stage_id == PipelineStage.id, PipelineStage.kind == "won",
            Opportunity.closed_at >= since, Opportunity.closed_at < until))
    elif goal is not None:
        clauses.append(exists().where(
            LifecycleTransition.tenant_id == tenant_id, LifecycleTransition.customer_id == Customer.id,
            LifecycleTransition.to_stage == goal.split(":", 1)[1],
            LifecycleTransition.occurred_at >= since, LifecycleTransition.occurred_at < until))
    if "meeting" in (campaign.exit_on or []):
        clauses.append(exists().where(
            Activity.tenant_id == tenant_id, Activity.customer_id == Customer.id,
            Activity.type == ActivityType.MEETING.value, Activity.occurred_at >= since, Activity.occurred_at < until))
    return or_(*clauses) if clauses else and_(Customer.id.is_(None))


def dry_run(db: Database, actor: Actor, campaign_id: int, *, now: dt.datetime | None = None) -> DryRun:
    """The funnel of the campaign replayed over the last 90 days, as the actor sees the target."""
    moment = now or utcnow()
    since = moment - dt.timedelta(days=WINDOW_DAYS)
    with db.session(actor) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("campaign")
        return _dry_run(session, actor, campaign, since, moment)


def _dry_run(session: Session, actor: Actor, campaign: Campaign, since: dt.datetime, now: dt.datetime) -> DryRun:
    tenant_id = campaign.tenant_id
    target = campaign_service.target_clause(session, campaign, actor)

    def count(*where: ColumnElement[bool]) -> int:
        return int(session.execute(select(func.count()).select_from(Customer).where(target, *where)).scalar() or 0)

    entered = count()
    stages = [FunnelStage("entered", entered)]
    steps = sequences.live_steps(campaign_service.machine_steps(session, campaign.id))
    at = since
    address = _address()
    for number, step in enumerate(steps, 1):
        if at > now:
            break
        staying = ~_left_before(campaign, tenant_id, since, at)
        reached = count(staying)
        no_address = no_basis = 0
        if step.kind == StepKind.EMAIL:
            no_address = count(staying, address.is_(None))
            no_basis = count(staying, address.is_not(None), ~_lawful(tenant_id, address))
        stages.append(FunnelStage("step", reached, number, step.kind, no_address, no_basis))
        if step.kind == StepKind.WAIT:
            at = sequences.wait_until(at, step.config)
        elif step.kind == StepKind.BRANCH:
            at = at + dt.timedelta(days=int(step.config.get("within_days") or 0))
    goal = count(_left_before(campaign, tenant_id, since, min(at, now) + dt.timedelta(seconds=1)))
    stages.append(FunnelStage("goal", goal))
    return DryRun(since=since, stages=stages)
