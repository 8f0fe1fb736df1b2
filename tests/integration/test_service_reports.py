"""The service dashboard's figures on every database, against hand-computed expectations on a
small world frozen on Wednesday 11 March 2026 12:00 UTC, and scoped by the actor's access; the
daily counts of the service_daily job give the same figures as the live count, also after a change."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Case
from crm_core.models.service import CaseRating, CaseSla, ServiceDaily
from crm_core.queries.service_reports import BacklogCell, ServiceDashboard, service_dashboard
from crm_core.services import sla_settings
from crm_core.services.service_daily import run_service_daily
from tests.factories import World, build_world, create_random_customer

NOW = dt.datetime(2026, 3, 11, 12, 0)
SINCE, UNTIL = dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 12)
H = dt.timedelta(hours=1)


def at(day: int, hour: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


@pytest.fixture
def world(db: Database) -> World:
    world = build_world(db)
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    policy_id = sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=120, next_response_minutes=120,
        resolution_minutes=1440, warn_percent=75, manager_after_minutes=30))
    customer_id = create_random_customer(db, world.rep)
    rep, mate, far = world.rep.user_id, world.rep_same_team.user_id, world.rep_other_team.user_id
    east, west = world.east_team_id, world.west_team_id
    # (assignee, team, status, priority, opened, responded, resolved, sla (fr met, fr due, res met, res due), rating)
    cases = [
        (rep, east, "resolved", "high", at(2), at(2, 1), at(2, 10), (at(2, 1), None, at(2, 10), None), ("good", at(3))),
        (rep, east, "resolved", "normal", at(3), at(3, 3), at(3, 20), (at(3, 3), at(3, 2), at(3, 20), None),
         ("bad", at(4))),
        (mate, east, "closed", "normal", at(4), at(4, 2), at(5, 6), (at(4, 2), None, at(5, 6), at(5)),
         ("good", at(6))),
        (far, west, "resolved", "low", at(5), at(5, 5), at(6, 16), (at(5, 5), None, at(6, 16), None), None),
        (rep, east, "open", "urgent", at(11), None, None, (None, at(11, 1), None, at(12)), None),
        (far, west, "pending", "normal", at(7), at(7, 4), None, (at(7, 4), None, None, at(20)), None),
        (rep, east, "resolved", "normal", at(20, 0, 2), at(20, 1, 2), at(21, 0, 2),
         (at(20, 1, 2), None, at(21, 0, 2), None), None),
        (None, None, "open", "low", at(1, 0, 2), None, None, None, None),
    ]
    with db.system_transaction("test world") as session:
        for assignee, team, status, priority, opened, responded, resolved, sla, rating in cases:
            case = Case(tenant_id=world.admin.tenant_id, customer_id=customer_id, assignee_id=assignee, team_id=team,
                        status=status, priority=priority, subject="Case", opened_at=opened,
                        first_responded_at=responded, resolved_at=resolved)
            session.add(case)
            session.flush()
            if sla is not None:
                session.add(CaseSla(tenant_id=case.tenant_id, case_id=case.id, policy_id=policy_id,
                                    calendar_id=calendar_id, paused_seconds=0, escalation_level=0,
                                    first_response_met_at=sla[0], first_response_due_at=sla[1],
                                    resolution_met_at=sla[2], resolution_due_at=sla[3],
                                    next_due_at=None if resolved is not None else min(
                                        due for due in (sla[1] if sla[0] is None else None, sla[3]) if due)))
            if rating is not None:
                session.add(CaseRating(tenant_id=case.tenant_id, case_id=case.id, score=rating[0], rated_at=rating[1]))
    return world


def figures(db: Database, actor: object) -> ServiceDashboard:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return service_dashboard(session, since=SINCE, until=UNTIL, now=NOW, weeks=3)


def test_the_dashboard_figures_match_the_hand_computed_ones(db: Database, world: World) -> None:
    result = figures(db, world.manager)
    assert result.backlog == [BacklogCell("urgent", "lt_1d", 1), BacklogCell("normal", "3_7d", 1),
                              BacklogCell("low", "ge_7d", 1)]
    assert [(row.metric, row.measured, row.attained) for row in result.attainment] == [
        ("first_response", 6, 4), ("resolution", 4, 3)]
    overall = result.overall
    assert overall.resolved == 4
    assert overall.first_response_hours == {50: pytest.approx(3), 90: pytest.approx(5)}
    assert overall.resolution_hours == {50: pytest.approx(20), 90: pytest.approx(40)}
    assert (overall.ratings, overall.good) == (3, 2)
    agents = {figure.name: figure for figure in result.agents}
    assert set(agents) == {"Rita Rep", "Tom Teammate", "Fay Faraway"}  # the unassigned case has no figure
    rita, fay = agents["Rita Rep"], agents["Fay Faraway"]
    assert (rita.resolved, rita.ratings, rita.good, rita.csat_percent) == (2, 2, 1, 50)
    assert rita.first_response_hours == {50: pytest.approx(1), 90: pytest.approx(3)}
    assert rita.resolution_hours == {50: pytest.approx(10), 90: pytest.approx(20)}
    assert fay.first_response_hours == {50: pytest.approx(4), 90: pytest.approx(5)}
    assert (fay.resolved, fay.ratings, fay.csat_percent) == (1, 0, None)
    teams = {figure.name: figure for figure in result.teams}
    assert teams["East"].resolved == 3 and (teams["East"].ratings, teams["East"].good) == (3, 2)
    assert teams["East"].first_response_hours == {50: pytest.approx(2), 90: pytest.approx(3)}
    assert teams["East"].resolution_hours == {50: pytest.approx(20), 90: pytest.approx(30)}
    assert [(week.week_start, week.opened, week.resolved, week.ratings, week.good) for week in result.weeks] == [
        (dt.date(2026, 2, 23), 0, 0, 0, 0), (dt.date(2026, 3, 2), 5, 4, 3, 2), (dt.date(2026, 3, 9), 1, 0, 0, 0)]


def test_the_dashboard_is_scoped_by_the_actors_access(db: Database, world: World) -> None:
    far = figures(db, world.rep_other_team)  # the west team's rep: only the west queue's cases
    assert far.backlog == [BacklogCell("normal", "3_7d", 1)]
    assert [(row.metric, row.measured, row.attained) for row in far.attainment] == [
        ("first_response", 2, 2), ("resolution", 1, 1)]
    assert {figure.name for figure in far.agents} == {"Fay Faraway"}
    assert far.overall.resolved == 1 and far.overall.ratings == 0
    other = figures(db, world.other_admin)  # another tenant sees nothing of this one
    assert other.backlog == [] and other.overall.resolved == 0 and other.agents == []
    assert all(week.opened == 0 for week in other.weeks)
    analyst = figures(db, world.analyst)
    assert analyst.overall.resolved == 4 and len(analyst.backlog) == 3


def test_the_queue_pages_by_sla_due_through_the_index_in_the_coalesced_order(db: Database, world: World) -> None:
    from sqlalchemy import func, select

    from crm_core.queries.cases import NO_DUE, CaseFilters, list_cases

    with db.session(world.admin) as session:  # what the ORDER BY COALESCE(next_due_at, NO_DUE), id gave
        expected = list(session.scalars(
            select(Case.id).outerjoin(CaseSla, CaseSla.case_id == Case.id).where(Case.status != "closed")
            .order_by(func.coalesce(CaseSla.next_due_at, NO_DUE), Case.id)))
        seen, after = [], None
        while True:
            page = list_cases(session, filters=CaseFilters(), sort="sla_due", descending=False, per_page=2,
                              after=after)
            seen += [row.id for row in page.items]
            if not page.has_next:
                break
            after = page.next_position
    assert len(expected) == 7 and seen == expected


def counted(db: Database, actor: object, *, rollups: bool = True) -> ServiceDashboard:
    """The dashboard without its freshness fields, to compare what the daily counts give with the live figures."""
    return replace(figures(db, actor) if rollups else live_figures(db, actor), counted_at=None, live_since=None)


def live_figures(db: Database, actor: object) -> ServiceDashboard:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return service_dashboard(session, since=SINCE, until=UNTIL, now=NOW, weeks=3, rollups=False)


def test_the_daily_counts_give_the_live_figures_to_every_actor(db: Database, world: World) -> None:
    assert figures(db, world.manager).counted_at is None  # nothing counted yet: all live
    result = run_service_daily(db, world.admin.tenant_id, now=NOW)
    assert (result.first_day, result.end_day) == (dt.date(2025, 12, 1), dt.date(2026, 3, 11)) and result.rows > 0
    with_counts = figures(db, world.manager)
    assert with_counts.counted_at == NOW and with_counts.live_since == dt.datetime(2026, 3, 11)
    for actor in (world.manager, world.rep, world.rep_other_team, world.analyst, world.other_admin):
        assert counted(db, actor) == counted(db, actor, rollups=False)
    with db.session(world.rep_other_team) as session:  # the rows follow the case rule: the west rep's slice only
        assert {row.assignee_id for row in session.scalars(select(ServiceDaily))} == {world.rep_other_team.user_id}


def test_a_change_to_an_earlier_day_shows_after_the_recount_and_todays_at_once(db: Database, world: World) -> None:
    run_service_daily(db, world.admin.tenant_id, now=NOW)
    with db.system_transaction("test change") as session:  # Rita's first case goes to the west team's rep
        case = session.scalars(select(Case).where(Case.opened_at == at(2))).one()
        case.assignee_id, case.team_id = world.rep_other_team.user_id, world.west_team_id
        today = session.scalars(select(Case).where(Case.opened_at == at(11))).one()
        today.first_responded_at = NOW - H  # answered today: a live figure
    before = counted(db, world.manager)
    live = counted(db, world.manager, rollups=False)
    assert before != live
    assert {agent.name: agent.resolved for agent in before.agents}["Rita Rep"] == 2  # as counted
    assert {agent.name: agent.resolved for agent in live.agents}["Rita Rep"] == 1
    assert before.overall.first_response_hours[90] == pytest.approx(11)  # today's answer counts at once
    run_service_daily(db, world.admin.tenant_id, now=NOW)
    for actor in (world.manager, world.rep_other_team, world.analyst):
        assert counted(db, actor) == counted(db, actor, rollups=False)
