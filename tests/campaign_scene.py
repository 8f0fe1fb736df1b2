"""A small marketing story for tests of the results, the page and the timeline: two campaigns, touches on
three customers of three reps, and three deals (decision 0050's cases: first, last and linear differ).

The touches are written as the sequence engine, the sender and tracking write them (a system
transaction adding ``marketing_events`` rows); the campaigns and steps as a manager's edits would be.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Campaign, Opportunity, PipelineStage
from crm_core.models.marketing import CampaignStep, EmailTemplate, MarketingEvent
from crm_core.models.segments import CampaignMember
from crm_core.services.campaign_results_refresh import run_campaign_results_refresh
from tests.factories import World, create_random_customer

BASE = dt.datetime(2026, 6, 1, 9, 0)
DAY = dt.timedelta(days=1)
NO_BASIS = "no lawful basis recorded"


@dataclass(frozen=True)
class Scene:
    nurture: int  # campaign 1: 90-day window; email, wait, task, goal
    webinar: int  # campaign 2: 30-day window; one email
    email_step: int
    task_step: int
    rep_customer: int  # "a": the rep's, a won deal of 1,000.00 touched by both campaigns
    mate_customer: int  # "b": the teammate's, an open deal
    far_customer: int  # "c": the other team's rep's, a won deal of 600.00
    rep_deal: int


def build_scene(db: Database, world: World, *, refresh: bool = True) -> Scene:
    """The story; returns its ids. ``refresh``: then count the results rollup, as the job would (decision 0051)."""
    a = create_random_customer(db, world.rep, name="Alpha 营销客户")
    b = create_random_customer(db, world.rep_same_team, name="Beta Mate")
    c = create_random_customer(db, world.rep_other_team, name="Gamma Far")
    with db.transaction(world.manager) as session:
        template = EmailTemplate(name="Spring hello", language="en", subject="Hello {{ contact.name }}",
                                 body="Spring is here.")
        nurture = Campaign(name="Spring nurture", status="running", attribution_days=90)
        webinar = Campaign(name="网络研讨会", status="running", attribution_days=30)
        session.add_all([template, nurture, webinar])
        session.flush()
        steps = [CampaignStep(campaign_id=nurture.id, position=1, kind="email", config={"template_id": template.id}),
                 CampaignStep(campaign_id=nurture.id, position=2, kind="wait",
                              config={"days": 2, "business_days": False}),
                 CampaignStep(campaign_id=nurture.id, position=3, kind="task",
                              config={"activity_kind": "call", "title": "Call after the email", "due_days": 2}),
                 CampaignStep(campaign_id=nurture.id, position=4, kind="goal", config={"kind": "deal_won"}),
                 CampaignStep(campaign_id=webinar.id, position=1, kind="email", config={"template_id": template.id})]
        session.add_all(steps)
        session.flush()
        ids = (nurture.id, webinar.id, steps[0].id, steps[2].id, steps[3].id, steps[4].id)
    nurture_id, webinar_id, email_step, task_step, goal_step, webinar_step = ids
    with db.system_transaction("test: a campaign ran") as session:
        tenant_id = world.admin.tenant_id
        members = {}
        for campaign, customer in ((nurture_id, a), (nurture_id, b), (nurture_id, c), (webinar_id, a)):
            member = CampaignMember(tenant_id=tenant_id, campaign_id=campaign, customer_id=customer, source="manual",
                                    state="active", enrolled_at=BASE)
            session.add(member)
            session.flush()
            members[(campaign, customer)] = member.id

        def touch(campaign: int, step: int | None, customer: int, kind: str, at: dt.datetime, detail: str = "") -> None:
            session.add(MarketingEvent(tenant_id=tenant_id, campaign_id=campaign, step_id=step,
                                       member_id=members[(campaign, customer)], customer_id=customer, kind=kind,
                                       occurred_at=at, detail=detail))

        for customer in (a, b, c):
            touch(nurture_id, email_step, customer, "entered", BASE)
        for customer in (a, b):
            touch(nurture_id, email_step, customer, "sent", BASE)
            touch(nurture_id, email_step, customer, "opened", BASE + dt.timedelta(hours=1))
        touch(nurture_id, email_step, c, "skipped", BASE, NO_BASIS)
        touch(nurture_id, email_step, a, "opened", BASE + dt.timedelta(hours=2))  # a second open: one member
        touch(nurture_id, email_step, a, "clicked", BASE + dt.timedelta(hours=2), "https://example.com/offer")
        touch(nurture_id, email_step, a, "replied", BASE + dt.timedelta(hours=3))
        touch(nurture_id, email_step, b, "unsubscribed", BASE + dt.timedelta(hours=4))
        touch(nurture_id, email_step, b, "exited", BASE + dt.timedelta(hours=4), "unsubscribed")
        for customer in (a, c):
            touch(nurture_id, task_step, customer, "task", BASE + 3 * DAY)
        touch(nurture_id, goal_step, a, "goal", BASE + 40 * DAY)
        touch(webinar_id, None, a, "entered", BASE + 30 * DAY)
        touch(webinar_id, webinar_step, a, "sent", BASE + 35 * DAY)
        touch(webinar_id, webinar_step, a, "opened", BASE + 36 * DAY)
        stages = {kind: (stage_id, pipeline_id) for stage_id, pipeline_id, kind in session.execute(
            select(PipelineStage.id, PipelineStage.pipeline_id, PipelineStage.kind)
            .where(PipelineStage.tenant_id == tenant_id).order_by(PipelineStage.position.desc()))}

        def deal(customer: int, owner: int, kind: str, amount: str, created: dt.datetime,
                 won: dt.datetime | None) -> int:
            stage_id, pipeline_id = stages[kind]
            row = Opportunity(tenant_id=tenant_id, customer_id=customer, owner_id=owner, pipeline_id=pipeline_id,
                              stage_id=stage_id, name=f"Deal of {customer}", amount=Decimal(amount), currency="CNY",
                              created_at=created, updated_at=created, closed_at=won)
            session.add(row)
            session.flush()
            return row.id

        rep_deal = deal(a, world.rep.user_id, "won", "1000.00", BASE + 10 * DAY, BASE + 40 * DAY)
        deal(b, world.rep_same_team.user_id, "open", "250.00", BASE + 20 * DAY, None)
        deal(c, world.rep_other_team.user_id, "won", "600.00", BASE + 5 * DAY, BASE + 6 * DAY)
        deal(c, world.rep_other_team.user_id, "won", "50.00", BASE + 200 * DAY, BASE + 201 * DAY)  # too late
    if refresh:
        run_campaign_results_refresh(db, world.admin.tenant_id)
    return Scene(nurture_id, webinar_id, email_step, task_step, a, b, c, rep_deal)
