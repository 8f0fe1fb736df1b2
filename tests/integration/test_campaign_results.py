"""Campaign results on every database: the per-step members, skip reasons, the period, influenced deals and
credited revenue (against the rule's Python reference), a rep's and a manager's part, tenants apart, CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.exporting import to_csv
from crm_core.models import Campaign, Opportunity, PipelineStage
from crm_core.models.marketing import MarketingEvent
from crm_core.queries.campaign_results import (
    DEAL_CSV_COLUMNS,
    STEP_CSV_COLUMNS,
    ResultsFilters,
    campaign_choices,
    campaign_results,
    deal_csv_rows,
    influenced_deals,
    iter_influenced_deals,
    step_csv_rows,
)
from crm_core.rules.attribution import Deal, Touch, counting_pairs, credit
from tests.campaign_scene import BASE, DAY, NO_BASIS, Scene, build_scene
from tests.factories import World, build_world


@pytest.fixture
def scene(db: Database) -> tuple[World, Scene]:
    world = build_world(db)
    return world, build_scene(db, world)


def money(value: str) -> Decimal:
    return Decimal(value)


def test_each_step_counts_members_once_and_names_why_sends_were_skipped(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    with db.session(world.admin) as session:
        results = campaign_results(session, ResultsFilters(campaign_id=story.nurture))
    email = next(step for step in results.steps if step.step_id == story.email_step)
    assert [step.kind for step in results.steps] == ["email", "wait", "task", "goal"]
    assert email.label == "Spring hello" and email.position == 1
    figures = email.figures
    assert (figures["entered"], figures["sent"], figures["skipped"], figures["delivered"]) == (3, 2, 1, 2)
    assert (figures["opened"], figures["clicked"], figures["replied"]) == (2, 1, 1)  # a's two opens: one member
    assert (figures["unsubscribed"], figures["exited"], figures.reached) == (1, 1, 3)
    assert figures.skipped_by_reason == {NO_BASIS: 1}
    task = next(step for step in results.steps if step.step_id == story.task_step)
    assert task.label == "Call after the email" and task.figures["task"] == 2
    totals = results.campaigns[0].figures
    assert (totals["entered"], totals["opened"], totals["goal"], totals.reached) == (3, 2, 1, 3)
    assert results.totals.counts == totals.counts


def test_won_revenue_is_credited_first_last_and_linear_as_the_rule_says(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    with db.session(world.admin) as session:
        results = campaign_results(session)
        # the rule's Python reference over the same rows
        windows = {row[0]: row[1] for row in session.execute(select(Campaign.id, Campaign.attribution_days))}
        touches = [Touch(*row) for row in session.execute(
            select(MarketingEvent.campaign_id, MarketingEvent.customer_id, MarketingEvent.occurred_at)
            .where(MarketingEvent.kind.in_(("sent", "opened", "clicked", "replied", "task"))))]
        deals = [Deal(row[0], row[1], row[2], row[3] if row[5] == "won" else None, row[4]) for row in session.execute(
            select(Opportunity.id, Opportunity.customer_id, Opportunity.created_at, Opportunity.closed_at,
                   Opportunity.amount, PipelineStage.kind)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id))]
    expected = credit(counting_pairs(deals, touches, windows))
    by_campaign = {row.campaign.id: row.credit for row in results.campaigns}
    assert by_campaign[story.nurture].first_touch == money("1600.00") == expected[story.nurture].first_touch
    assert by_campaign[story.nurture].last_touch == money("600.00") == expected[story.nurture].last_touch
    assert by_campaign[story.nurture].linear == money("1100.00") == expected[story.nurture].linear
    assert (by_campaign[story.webinar].first_touch, by_campaign[story.webinar].last_touch,
            by_campaign[story.webinar].linear) == (money("0.00"), money("1000.00"), money("500.00"))
    assert by_campaign[story.nurture].influenced_deals == 3  # a's won deal, b's open one, c's won one
    assert (results.influenced_deals, results.influenced_won_deals, results.won_revenue) == (3, 2, money("1600.00"))


def test_a_rep_sees_only_their_customers_touches_and_deals(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    with db.session(world.rep) as session:
        results = campaign_results(session, ResultsFilters(campaign_id=story.nurture))
        rows = influenced_deals(session, ResultsFilters(campaign_id=story.nurture))
        total = len(rows)
    email = next(step for step in results.steps if step.step_id == story.email_step)
    assert (email.figures["entered"], email.figures["sent"], email.figures["skipped"], email.figures.reached) == (
        1, 1, 0, 1)
    assert email.figures.skipped_by_reason == {}
    nurture = results.campaigns[0].credit
    assert (nurture.first_touch, nurture.last_touch, nurture.linear) == (money("1000.00"), money("0.00"),
                                                                         money("500.00"))
    assert total == 1 and rows[0].deal_id == story.rep_deal and rows[0].customer_id == story.rep_customer
    with db.session(world.manager) as session:  # the east team: the rep's and the teammate's customers
        managed = campaign_results(session, ResultsFilters(campaign_id=story.nurture))
    assert managed.campaigns[0].figures["entered"] == 2 and managed.influenced_deals == 2


def test_another_tenant_sees_no_campaign_and_no_touch(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    with db.session(world.other_admin) as session:
        assert campaign_choices(session) == []
        results = campaign_results(session)
        forced = campaign_results(session, ResultsFilters(campaign_id=story.nurture))
        assert list(iter_influenced_deals(session)) == []
    assert results.campaigns == [] and results.steps == [] and results.totals.reached == 0
    assert forced.campaigns == [] and forced.influenced_deals == 0


def test_the_period_bounds_touches_and_the_deals_created_or_won_in_it(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    period = ResultsFilters(campaign_id=story.nurture, since=BASE + 2 * DAY, until=BASE + 100 * DAY)
    with db.session(world.admin) as session:
        results = campaign_results(session, period)
    by_step = {step.step_id: step.figures for step in results.steps}
    assert by_step[story.email_step].reached == 0 and by_step[story.task_step]["task"] == 2
    assert results.influenced_deals == 3  # all three deals were created (or won) within the period
    with db.session(world.admin) as session:
        later = campaign_results(session, ResultsFilters(campaign_id=story.nurture, since=BASE + 30 * DAY))
    assert later.influenced_deals == 1 and later.won_revenue == money("1000.00")  # a's deal, won on day 40


def test_the_csv_files_hold_the_steps_and_the_deals_with_formulas_defused(db: Database, scene) -> None:  # type: ignore[no-untyped-def]
    world, story = scene
    with db.transaction(world.manager) as session:
        campaign = session.get(Campaign, story.nurture)
        assert campaign is not None
        campaign.name = "=HYPERLINK(\"http://x\")"
    with db.session(world.admin) as session:
        results = campaign_results(session, ResultsFilters(campaign_id=story.nurture))
        steps = list(csv.reader(io.StringIO(to_csv(STEP_CSV_COLUMNS, step_csv_rows(results)).decode("utf-8-sig"))))
        deals = list(csv.reader(io.StringIO(to_csv(DEAL_CSV_COLUMNS, deal_csv_rows(
            iter_influenced_deals(session, ResultsFilters(campaign_id=story.nurture)))).decode("utf-8-sig"))))
    assert steps[0] == list(STEP_CSV_COLUMNS) and len(steps) == 5
    assert steps[1][0].startswith("'=") and steps[1][STEP_CSV_COLUMNS.index("skip_reasons")] == f"{NO_BASIS}: 1"
    assert len(deals) == 4 and {row[3] for row in deals[1:]} == {"'=HYPERLINK(\"http://x\")"}
    linear = sorted(Decimal(row[DEAL_CSV_COLUMNS.index("linear")]) for row in deals[1:])
    assert linear == [money("0.00"), money("500.00"), money("600.00")]
