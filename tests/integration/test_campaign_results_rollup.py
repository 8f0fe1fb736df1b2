"""The results rollup (decision 0051) on every database: what the page reads from ``campaign_daily`` and
``campaign_influence`` equals the live computation from the touches (a random story of several campaigns,
steps, kinds, days and owners), for the whole tenant, a manager and a rep; a period's days add up; a
recount replaces the rows (idempotent) and follows a customer changing hands; tenants stay apart."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.models import Campaign, Customer, Opportunity, PipelineStage
from crm_core.models.marketing import CampaignDaily, CampaignInfluence, CampaignResultsRun, CampaignStep, MarketingEvent
from crm_core.models.segments import CampaignMember
from crm_core.queries import campaign_results_live as live
from crm_core.queries.campaign_results import (
    CampaignResults,
    ResultsFilters,
    campaign_results,
    influenced_deals,
    iter_influenced_deals,
    results_as_of,
)
from crm_core.services.campaign_results_refresh import run_campaign_results_refresh
from tests.factories import World, build_world, create_random_customer

BASE = dt.datetime(2026, 3, 2, 0, 0)
KINDS = ("entered", "sent", "opened", "clicked", "replied", "task", "skipped", "bounced",
         "unsubscribed", "goal", "exited")
REASONS = ("no lawful basis recorded", "do not contact", "")


@dataclass(frozen=True)
class Story:
    campaigns: list[int]
    customers: list[int]


def build_story(db: Database, world: World, *, seed: int = 51) -> Story:
    """Three campaigns of two steps (and touches of the campaign itself), 12 customers of four owners,
    a few hundred touches over 20 days, deals open, won, lost and archived."""
    rng = random.Random(seed)
    owners = [world.rep, world.rep_same_team, world.rep_other_team, world.manager]
    customers = [create_random_customer(db, owners[index % 4]) for index in range(12)]
    with db.transaction(world.manager) as session:
        campaigns = [Campaign(name=f"Rollup {index}", status="active", attribution_days=window)
                     for index, window in enumerate((30, 7, 90))]
        session.add_all(campaigns)
        session.flush()
        steps: dict[int, list[int]] = {campaign.id: [] for campaign in campaigns}
        for campaign in campaigns:
            for position, kind in ((1, "email"), (2, "task")):
                step = CampaignStep(campaign_id=campaign.id, position=position, kind=kind, config={})
                session.add(step)
                session.flush()
                steps[campaign.id].append(step.id)
        campaign_ids = [campaign.id for campaign in campaigns]
    tenant_id = world.admin.tenant_id
    with db.system_transaction("test: campaigns ran") as session:
        members: dict[tuple[int, int], int] = {}
        for campaign_id in campaign_ids:
            for customer in rng.sample(customers, 8):
                member = CampaignMember(tenant_id=tenant_id, campaign_id=campaign_id, customer_id=customer,
                                        source="manual", state="active", enrolled_at=BASE)
                session.add(member)
                session.flush()
                members[(campaign_id, customer)] = member.id
        keys = sorted(members)
        for _ in range(400):
            campaign_id, customer = rng.choice(keys)
            kind = rng.choice(KINDS)
            step_id = rng.choice([*steps[campaign_id], None])
            at = BASE + dt.timedelta(days=rng.randrange(20), hours=rng.randrange(24), minutes=rng.randrange(60))
            session.add(MarketingEvent(tenant_id=tenant_id, campaign_id=campaign_id, step_id=step_id,
                                       member_id=members[(campaign_id, customer)], customer_id=customer, kind=kind,
                                       occurred_at=at, detail=rng.choice(REASONS) if kind == "skipped" else ""))
        stages = {kind: (stage_id, pipeline_id) for stage_id, pipeline_id, kind in session.execute(
            select(PipelineStage.id, PipelineStage.pipeline_id, PipelineStage.kind)
            .where(PipelineStage.tenant_id == tenant_id).order_by(PipelineStage.position.desc()))}
        owner_of = {row[0]: row[1] for row in session.execute(
            select(Customer.id, Customer.owner_id).where(Customer.id.in_(customers)))}
        for customer in customers:
            for _ in range(rng.randrange(3)):
                kind = rng.choice(("won", "won", "open", "lost"))
                created = BASE + dt.timedelta(days=rng.randrange(25), hours=rng.randrange(24))
                won = created + dt.timedelta(days=rng.randrange(15)) if kind == "won" else None
                stage_id, pipeline_id = stages[kind]
                owner = owner_of[customer] if rng.random() < 0.8 else world.rep_other_team.user_id
                session.add(Opportunity(
                    tenant_id=tenant_id, customer_id=customer, owner_id=owner, pipeline_id=pipeline_id,
                    stage_id=stage_id, name=f"Deal {rng.randrange(10**6)}",
                    amount=Decimal(rng.randrange(1, 10**6)) / 100, currency="CNY", created_at=created,
                    updated_at=created, closed_at=won or (created if kind == "lost" else None),
                    archived_at=created if rng.random() < 0.1 else None))
    return Story(campaign_ids, customers)


@pytest.fixture
def story(db: Database) -> tuple[World, Story]:
    world = build_world(db)
    built = build_story(db, world)
    run_campaign_results_refresh(db, world.admin.tenant_id)
    return world, built


def shape(results: CampaignResults) -> dict[str, object]:
    """Everything the page shows of the results, in comparable form."""
    return {
        "campaigns": [(row.campaign.id, row.figures.counts, row.figures.skipped_by_reason, row.credit)
                      for row in results.campaigns],
        "steps": [(step.campaign_id, step.step_id, step.position, step.figures.counts, step.figures.skipped_by_reason)
                  for step in results.steps],
        "totals": results.totals.counts,  # (over all campaigns the rollup also keeps the skip reasons)
        "deals": (results.influenced_deals, results.influenced_won_deals, results.won_revenue),
    }


def test_the_rollup_equals_the_live_computation_for_every_role_and_campaign(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, built = story
    actors: list[Actor] = [world.admin, world.manager, world.rep, world.rep_other_team]
    for actor in actors:
        for campaign_id in (None, *built.campaigns):
            filters = ResultsFilters(campaign_id=campaign_id)
            with db.session(actor) as session:
                rolled, expected = campaign_results(session, filters), live.campaign_results(session, filters)
                deals = sorted(iter_influenced_deals(session, filters), key=lambda row: (row.deal_id, row.campaign_id))
                expected_deals = sorted(live.iter_influenced_deals(session, filters),
                                        key=lambda row: (row.deal_id, row.campaign_id))
            if campaign_id is not None:  # the live page's totals of one campaign are that campaign's figures
                expected = CampaignResults(expected.currency, expected.campaigns, expected.steps,
                                           expected.campaigns[0].figures, expected.influenced_deals,
                                           expected.influenced_won_deals, expected.won_revenue)
            assert shape(rolled) == shape(expected), (actor.role, campaign_id)
            assert deals == expected_deals, (actor.role, campaign_id)
    with db.session(world.admin) as session:
        everything = campaign_results(session)
    assert everything.totals.reached > 0 and everything.won_revenue > 0 and len(everything.steps) >= 6


def test_deals_in_a_period_equal_the_live_ones_and_the_days_add_up(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, built = story
    middle = BASE + dt.timedelta(days=9)
    whole = ResultsFilters(since=BASE - dt.timedelta(days=1), until=BASE + dt.timedelta(days=40))
    halves = (ResultsFilters(since=whole.since, until=middle), ResultsFilters(since=middle, until=whole.until))
    with db.session(world.manager) as session:
        unbounded, bounded = campaign_results(session), campaign_results(session, whole)
        first, second = (campaign_results(session, half) for half in halves)
        for half in halves:
            rolled, expected = campaign_results(session, half), live.campaign_results(session, half)
            assert [row.credit for row in rolled.campaigns] == [row.credit for row in expected.campaigns]
            assert influenced_deals(session, half) == live.influenced_deals(session, half)
    assert shape(bounded)["steps"] == shape(unbounded)["steps"]
    for one, two, both in zip(first.steps, second.steps, unbounded.steps, strict=True):
        for kind, count in both.figures.counts.items():
            assert one.figures[kind] + two.figures[kind] == count  # each member on the day of their first touch


def test_a_recount_replaces_the_rows_and_follows_a_customer_changing_hands(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, built = story
    tenant_id = world.admin.tenant_id

    def rows() -> tuple[int, int, list[tuple[object, ...]]]:
        with db.system_session("test: rollup rows") as session:
            daily = session.scalar(select(func.count()).select_from(CampaignDaily)
                                   .where(CampaignDaily.tenant_id == tenant_id)) or 0
            influence = list(session.execute(
                select(CampaignInfluence.opportunity_id, CampaignInfluence.campaign_id, CampaignInfluence.linear_credit)
                .where(CampaignInfluence.tenant_id == tenant_id)
                .order_by(CampaignInfluence.opportunity_id, CampaignInfluence.campaign_id)))
            runs = session.scalar(select(func.count()).select_from(CampaignResultsRun)
                                  .where(CampaignResultsRun.tenant_id == tenant_id)) or 0
        return daily, runs, [tuple(row) for row in influence]

    before = rows()
    later = dt.datetime(2026, 12, 6, 8, 30)
    run_campaign_results_refresh(db, tenant_id, now=later)
    assert rows() == before and before[1] == 1  # the same rows, one run row
    with db.session(world.rep) as session:
        assert results_as_of(session).refreshed_at == later
        mine = campaign_results(session).totals.reached
    moved = next(customer for customer in built.customers[::4]
                 if customer in {row[0] for row in _touched(db, tenant_id)})  # a touched customer of the rep
    with db.system_transaction("test: the customer changes hands") as session:
        customer = session.get(Customer, moved)
        assert customer is not None
        customer.owner_id = world.rep_other_team.user_id
    with db.session(world.rep) as session:
        assert campaign_results(session).totals.reached == mine  # the rollup says what it counted
    run_campaign_results_refresh(db, tenant_id)
    with db.session(world.rep) as session:
        rolled, expected = campaign_results(session), live.campaign_results(session)
    assert rolled.totals.reached == mine - 1 and shape(rolled) == shape(expected)


def _touched(db: Database, tenant_id: int) -> list[tuple[int]]:
    with db.system_session("test: touched customers") as session:
        return [(row[0],) for row in session.execute(
            select(MarketingEvent.customer_id).where(MarketingEvent.tenant_id == tenant_id).distinct())]


def test_another_tenant_has_no_rollup_and_its_recount_leaves_the_first_alone(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, built = story
    run_campaign_results_refresh(db, world.other_admin.tenant_id)
    with db.session(world.other_admin) as session:
        results = campaign_results(session)
        assert list(iter_influenced_deals(session)) == []
        assert results_as_of(session).refreshed_at is not None
    assert results.campaigns == [] and results.totals.reached == 0 and results.influenced_deals == 0
    with db.session(world.admin) as session:
        assert campaign_results(session).totals.reached > 0


def test_delivered_counts_the_sends_that_did_not_bounce_and_a_late_bounce_takes_one_out(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, built = story
    tenant_id = world.admin.tenant_id
    with db.system_session("test: a delivered send") as session:
        send = session.scalars(select(MarketingEvent).where(
            MarketingEvent.tenant_id == tenant_id, MarketingEvent.kind == "sent", MarketingEvent.step_id.is_not(None),
            ~MarketingEvent.member_id.in_(select(MarketingEvent.member_id).where(
                MarketingEvent.tenant_id == tenant_id, MarketingEvent.kind == "bounced")))
            .order_by(MarketingEvent.id)).first()
        assert send is not None
        campaign_id, step_id, member_id, customer_id = send.campaign_id, send.step_id, send.member_id, send.customer_id
        sent_at = send.occurred_at
    filters = ResultsFilters(campaign_id=campaign_id)

    def delivered() -> tuple[int, int]:
        with db.session(world.admin) as session:
            results = campaign_results(session, filters)
            step = next(row for row in results.steps if row.step_id == step_id)
            assert shape(results)["steps"] == shape(live.campaign_results(session, filters))["steps"]
            return step.figures["delivered"], step.figures["sent"]

    before, sent = delivered()
    assert 0 < before <= sent
    with db.system_transaction("test: the DSN comes back a day later") as session:
        session.add(MarketingEvent(tenant_id=tenant_id, campaign_id=campaign_id, step_id=step_id, member_id=member_id,
                                   customer_id=customer_id, kind="bounced", occurred_at=sent_at + dt.timedelta(days=1),
                                   detail="550 5.1.1 no such mailbox"))
    run_campaign_results_refresh(db, tenant_id)
    assert delivered() == (before - 1, sent)  # still sent; no longer delivered


def test_a_period_of_whole_weeks_and_edge_days_sums_like_its_days(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, _built = story
    # BASE is a Monday: from the Wednesday before to the Thursday two weeks on = 2 full weeks and 5 + 3 edge days
    start = BASE - dt.timedelta(days=5)
    period = ResultsFilters(since=start, until=BASE + dt.timedelta(days=17, hours=12))
    days = [ResultsFilters(since=start + dt.timedelta(days=offset), until=start + dt.timedelta(days=offset + 1))
            for offset in range(23)]
    for actor in (world.admin, world.manager):
        with db.session(actor) as session:
            whole = campaign_results(session, period)
            parts = [campaign_results(session, day) for day in days]
        for step in whole.steps:
            for kind, count in step.figures.counts.items():
                assert sum(other.figures[kind] for part in parts for other in part.steps
                           if (other.campaign_id, other.step_id) == (step.campaign_id, step.step_id)) == count, \
                    (actor.role, step.step_id, kind)
        assert whole.totals.reached == sum(part.totals.reached for part in parts) > 0


def test_open_ended_periods_on_either_side_of_a_midweek_cut_add_up_to_all_days(db: Database, story) -> None:  # type: ignore[no-untyped-def]
    world, _built = story
    cut = BASE + dt.timedelta(days=9)  # a Wednesday at midnight: each side has an edge of days and open weeks
    with db.session(world.manager) as session:
        after, before = campaign_results(session, ResultsFilters(since=cut)), campaign_results(
            session, ResultsFilters(until=cut))
        everything = campaign_results(session)
    for step in everything.steps:
        for kind, count in step.figures.counts.items():
            assert sum(row.figures[kind] for result in (after, before) for row in result.steps
                       if (row.campaign_id, row.step_id) == (step.campaign_id, step.step_id)) == count, kind
    assert after.totals.reached + before.totals.reached == everything.totals.reached > 0
    assert sum(after.totals.counts.values()) > 0  # later first touches of some kinds fall after the cut
