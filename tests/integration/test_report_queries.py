"""Funnel, board and dashboard figures against hand-computed expectations, on every database.

The fixture (default pipeline Lead 10 % → Qualified 25 % → Proposal 50 % → Negotiation 75 %
→ Won / Lost), amounts in CNY:

====  ===========  ======  =================  ==================================
deal  owner        amount  stage now          path
====  ===========  ======  =================  ==================================
d1    rep          1000    Lead
d2    rep          2000    Lead (hand 50 %)
d3    mate         3000    Qualified
d4    far (West)   4000    Proposal           expected close next month
d5    rep          5000    Negotiation        expected close today
d6    rep          6000    Won                created 10 days before closing
d7    far (West)   7000    Won                created 20 days before closing
d8    rep          8000    Lost               Lead → Proposal → Lost
d9    mate         9000    Lost               Lead → Lost
====  ===========  ======  =================  ==================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.models import Customer, Opportunity, Order, OrderLine, PipelineStage, Product, Task, utcnow
from crm_core.queries.deals import DealFilters, iter_deal_export, load_board
from crm_core.queries.reports import ReportFilters, comparison_window, dashboard, funnel
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage
from tests.factories import World, build_world, create_random_customer


@dataclass
class Fixture:
    world: World
    deals: dict[str, int]
    stages: dict[str, int]
    product_id: int
    customers: int


def _deal(db: Database, actor: Actor, customer_id: int, amount: str, **fields: object) -> int:
    return create_opportunity(
        db, actor, OpportunityInput(customer_id=customer_id, name=f"Deal {amount}", amount=amount, **fields)  # type: ignore[arg-type]
    )


@pytest.fixture
def fixture(db: Database) -> Fixture:
    world = build_world(db)
    today = utcnow().date()
    rep_customer = create_random_customer(db, world.rep)
    mate_customer = create_random_customer(db, world.rep_same_team)
    far_customer = create_random_customer(db, world.rep_other_team)
    with db.session(world.admin) as session:
        stages = {stage.name: stage.id for stage in session.scalars(select(PipelineStage))}
    next_month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    deals = {
        "d1": _deal(db, world.rep, rep_customer, "1000"),
        "d2": _deal(db, world.rep, rep_customer, "2000", probability=50),
        "d3": _deal(db, world.rep_same_team, mate_customer, "3000", stage_id=stages["Qualified"]),
        "d4": _deal(db, world.rep_other_team, far_customer, "4000", stage_id=stages["Proposal"],
                    expected_close_date=next_month),
        "d5": _deal(db, world.rep, rep_customer, "5000", stage_id=stages["Negotiation"], expected_close_date=today),
        "d6": _deal(db, world.rep, rep_customer, "6000"),
        "d7": _deal(db, world.rep_other_team, far_customer, "7000"),
        "d8": _deal(db, world.rep, rep_customer, "8000"),
        "d9": _deal(db, world.rep_same_team, mate_customer, "9000"),
    }
    move_stage(db, world.rep, deals["d6"], stages["Won"], expected_version=1)
    move_stage(db, world.rep_other_team, deals["d7"], stages["Won"], expected_version=1)
    version = move_stage(db, world.rep, deals["d8"], stages["Proposal"], expected_version=1)
    move_stage(db, world.rep, deals["d8"], stages["Lost"], expected_version=version, lost_reason="price")
    move_stage(db, world.rep_same_team, deals["d9"], stages["Lost"], expected_version=1, lost_reason="no budget")
    now = utcnow()
    with db.system_transaction("test fixture") as session:
        for name, days in (("d6", 10), ("d7", 20)):
            deal = session.get(Opportunity, deals[name])
            assert deal is not None and deal.closed_at is not None
            deal.created_at = deal.closed_at - dt.timedelta(days=days)
        product = Product(tenant_id=world.admin.tenant_id, sku="KX-1", name="Kestrel Pro", unit_price=Decimal("6000"))
        session.add(product)
        session.flush()
        this_month = now.replace(day=1, hour=12)
        two_months_ago = (this_month - dt.timedelta(days=40)).replace(day=1)
        won_order = Order(tenant_id=world.admin.tenant_id, customer_id=rep_customer, opportunity_id=deals["d6"],
                          owner_id=world.rep.user_id, order_number="SO-1", status="confirmed",
                          ordered_at=this_month, total_amount=Decimal("1000"))
        session.add_all([
            won_order,
            Order(tenant_id=world.admin.tenant_id, customer_id=rep_customer, owner_id=world.rep.user_id,
                  order_number="SO-2", status="cancelled", ordered_at=this_month, total_amount=Decimal("500")),
            Order(tenant_id=world.admin.tenant_id, customer_id=far_customer, owner_id=world.rep_other_team.user_id,
                  order_number="SO-3", status="fulfilled", ordered_at=two_months_ago, total_amount=Decimal("2000")),
        ])
        session.flush()
        session.add(OrderLine(tenant_id=world.admin.tenant_id, order_id=won_order.id, product_id=product.id,
                              quantity=Decimal("1"), unit_price=Decimal("1000")))
        session.add_all([
            Task(tenant_id=world.admin.tenant_id, title="overdue", assignee_id=world.rep.user_id,
                 due_at=now - dt.timedelta(days=2), status="open"),
            Task(tenant_id=world.admin.tenant_id, title="later", assignee_id=world.rep.user_id,
                 due_at=now + dt.timedelta(days=2), status="open"),
            Task(tenant_id=world.admin.tenant_id, title="done", assignee_id=world.rep.user_id,
                 due_at=now - dt.timedelta(days=2), status="done"),
            Task(tenant_id=world.admin.tenant_id, title="far overdue", assignee_id=world.rep_other_team.user_id,
                 due_at=now - dt.timedelta(days=1), status="open"),
        ])
        product_id = product.id
    return Fixture(world, deals, stages, product_id, customers=3)


def steps(result) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    return {step.stage.name: (step.count, step.reached) for step in result.steps}


def test_the_admins_funnel_counts_reached_stages_and_conversions(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.admin) as session:
        result = funnel(session)
    assert result is not None
    assert steps(result) == {
        "Lead": (2, 9), "Qualified": (1, 6), "Proposal": (1, 5), "Negotiation": (1, 3), "Won": (2, 2),
    }
    conversions = [step.conversion_to_next for step in result.steps]
    assert conversions[:4] == pytest.approx([6 / 9, 5 / 6, 3 / 5, 2 / 3])
    assert conversions[4] is None
    assert (result.total_count, result.total_amount) == (9, Decimal("45000.00"))
    assert (result.open_count, result.open_amount) == (5, Decimal("15000.00"))
    assert result.weighted_amount == Decimal("7600.00")  # 100 + 1000 (hand 50 %) + 750 + 2000 + 3750
    assert (result.won_count, result.won_amount) == (2, Decimal("13000.00"))
    assert (result.lost_count, result.lost_amount) == (2, Decimal("17000.00"))
    assert result.win_rate == pytest.approx(0.5)
    assert result.average_deal_size == Decimal("6500.00")
    assert result.average_cycle_days == pytest.approx(15.0, abs=0.01)
    assert result.lost_by_stage == {fixture.stages["Proposal"]: 1, fixture.stages["Lead"]: 1}


def test_a_reps_funnel_holds_only_their_own_deals(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.rep) as session:
        result = funnel(session)
    assert result is not None
    assert steps(result) == {
        "Lead": (2, 5), "Qualified": (0, 3), "Proposal": (0, 3), "Negotiation": (1, 2), "Won": (1, 1),
    }
    assert result.win_rate == pytest.approx(0.5)
    assert result.total_amount == Decimal("22000.00")  # d1 d2 d5 d6 d8


def test_the_managers_funnel_holds_the_east_teams_deals(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.manager) as session:
        result = funnel(session)
    assert result is not None
    assert result.total_count == 7  # everything but far's d4 and d7
    assert (result.won_count, result.lost_count) == (1, 2)


def test_funnel_filters_by_team_owner_product_and_creation_date(db: Database, fixture: Fixture) -> None:
    world = fixture.world
    with db.session(world.admin) as session:
        west = funnel(session, filters=ReportFilters(team_id=world.west_team_id))
        mine = funnel(session, filters=ReportFilters(owner_id=world.rep_same_team.user_id))
        product = funnel(session, filters=ReportFilters(product_id=fixture.product_id))
        future = funnel(session, filters=ReportFilters(since=utcnow().date() + dt.timedelta(days=1)))
        recent = funnel(session, filters=ReportFilters(since=utcnow().date() - dt.timedelta(days=5)))
    assert west is not None and mine is not None and product is not None and future is not None and recent is not None
    assert (west.total_count, west.total_amount) == (2, Decimal("11000.00"))
    assert (mine.total_count, mine.lost_count) == (2, 1)
    assert (product.total_count, product.won_count, product.won_amount) == (1, 1, Decimal("6000.00"))
    assert future.total_count == 0 and future.win_rate is None and future.average_cycle_days is None
    assert recent.total_count == 7  # d6 and d7 were created 10 and 20 days ago


def test_the_funnel_matches_hand_written_sql(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.admin) as session:
        result = funnel(session)
        raw: dict[str, int] = dict(
            session.execute(
                text(
                    "SELECT s.name, COUNT(o.id) FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
                    "WHERE o.tenant_id = :tenant AND o.archived_at IS NULL GROUP BY s.name"
                ),
                {"tenant": fixture.world.admin.tenant_id},
            ).all()
        )
    assert result is not None
    assert {step.stage.name: step.count for step in result.steps if step.count} == {
        name: count for name, count in raw.items() if name not in ("Lost",)
    }
    assert result.lost_count == raw["Lost"]


def test_the_board_columns_sum_and_weigh_each_stage(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.admin) as session:
        board = load_board(session, per_page=1)
    assert board is not None
    columns = {c.stage.name: (c.count, c.amount, c.weighted_amount) for c in board.columns}
    assert columns == {
        "Lead": (2, Decimal("3000.00"), Decimal("1100.00")),
        "Qualified": (1, Decimal("3000.00"), Decimal("750.00")),
        "Proposal": (1, Decimal("4000.00"), Decimal("2000.00")),
        "Negotiation": (1, Decimal("5000.00"), Decimal("3750.00")),
        "Won": (2, Decimal("13000.00"), Decimal("13000.00")),
        "Lost": (2, Decimal("17000.00"), Decimal("0.00")),
    }
    lead = board.cards[fixture.stages["Lead"]]
    assert [card.amount for card in lead.items] == [Decimal("2000.00")] and lead.has_next and lead.total == 2
    assert board.weighted_amount == Decimal("7600.00")


def test_a_rep_never_sees_another_reps_deal_on_the_board_or_in_an_export(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.rep) as session:
        board = load_board(session, per_page=50)
        assert board is not None
        exported = list(iter_deal_export(session, pipeline=board.pipeline, filters=DealFilters()))
    ids = {card.id for page in board.cards.values() for card in page.items}
    mine = {fixture.deals[name] for name in ("d1", "d2", "d5", "d6", "d8")}
    assert ids == mine
    assert {row[0] for row in exported} == mine
    assert sum(column.count for column in board.columns) == 5


def test_the_admins_dashboard_figures(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.admin) as session:
        figures = dashboard(session)
    assert (figures.open_count, figures.open_amount) == (5, Decimal("15000.00"))
    assert figures.weighted_forecast == Decimal("7600.00")
    assert (figures.won_count, figures.won_amount) == (2, Decimal("13000.00"))
    assert (figures.previous_won_count, figures.previous_won_amount) == (0, Decimal("0.00"))
    assert figures.new_customers == fixture.customers
    assert figures.overdue_tasks == 2
    assert figures.revenue_by_month[-1].amount == Decimal("1000.00")  # the cancelled order does not count
    assert figures.revenue_by_month[-1].orders == 1
    assert sum(month.amount for month in figures.revenue_by_month) == Decimal("3000.00")
    assert len(figures.revenue_by_month) == 12
    assert [(r.owner_name, r.won_count, r.won_amount, r.lost_count) for r in figures.leaderboard] == [
        ("Fay Faraway", 1, Decimal("7000.00"), 0),
        ("Rita Rep", 1, Decimal("6000.00"), 1),
        ("Tom Teammate", 0, Decimal("0.00"), 1),
    ]
    assert (figures.closing_count, figures.closing_amount) == (1, Decimal("5000.00"))
    assert [deal.id for deal in figures.closing_deals] == [fixture.deals["d5"]]


def test_a_reps_dashboard_shows_their_own_numbers(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.rep) as session:
        figures = dashboard(session)
        raw_open = session.execute(
            text(
                "SELECT COUNT(*), SUM(o.amount) FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
                "WHERE o.tenant_id = :tenant AND o.owner_id = :owner AND s.kind = 'open' AND o.archived_at IS NULL"
            ),
            {"tenant": fixture.world.rep.tenant_id, "owner": fixture.world.rep.user_id},
        ).one()
    raw_open_amount = Decimal(str(raw_open[1])).quantize(Decimal("0.01"))
    assert (figures.open_count, figures.open_amount) == (raw_open[0], raw_open_amount)
    assert figures.open_count == 3
    assert figures.weighted_forecast == Decimal("4850.00")  # 100 + 1000 + 3750
    assert (figures.won_count, figures.won_amount) == (1, Decimal("6000.00"))
    assert figures.new_customers == 1
    assert figures.overdue_tasks == 1
    assert [r.owner_name for r in figures.leaderboard] == ["Rita Rep"]


def test_a_board_search_matches_deal_names_and_customers_within_scope(db: Database, fixture: Fixture) -> None:
    with db.session(fixture.world.admin) as session:
        by_name = load_board(session, filters=DealFilters(search="Deal 1000"))
        far_customer = session.get(Opportunity, fixture.deals["d7"]).customer_id  # type: ignore[union-attr]
        customer_name = session.scalars(select(Customer.name).where(Customer.id == far_customer)).one()
        by_customer = load_board(session, filters=DealFilters(search=customer_name))
    with db.session(fixture.world.rep) as session:
        hidden = load_board(session, filters=DealFilters(search=customer_name))
    assert by_name is not None and by_customer is not None and hidden is not None
    assert {card.id for page in by_name.cards.values() for card in page.items} == {fixture.deals["d1"]}
    assert {card.id for page in by_customer.cards.values() for card in page.items} == {
        fixture.deals["d4"], fixture.deals["d7"]
    }
    assert sum(column.count for column in hidden.columns) == 0 and not by_customer.search_truncated


def test_a_lost_deal_remembers_the_stage_its_history_says_it_was_lost_from(db: Database, fixture: Fixture) -> None:
    """opportunities.lost_from_stage_id is a copy of the latest move into the lost stage (migration 0011)."""
    with db.system_session("check") as session:
        rows = session.execute(text(
            "SELECT o.id, o.lost_from_stage_id, s.kind, (SELECT h.from_stage_id FROM opportunity_stage_changes h"
            " WHERE h.opportunity_id = o.id AND h.to_stage_id = o.stage_id ORDER BY h.id DESC LIMIT 1)"
            " FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id"
        )).all()
    lost = {row[0]: row[1] for row in rows if row[2] == "lost"}
    assert lost == {row[0]: row[3] for row in rows if row[2] == "lost"}
    assert sorted(lost.values()) == sorted([fixture.stages["Proposal"], fixture.stages["Lead"]])
    assert all(row[1] is None for row in rows if row[2] != "lost")


# --- like-for-like comparisons ---------------------------------------------------------------

def _at(text_value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_value)


@pytest.mark.parametrize(
    ("now", "period", "current", "previous"),
    [
        # on the 2nd, month to date against the 1st and 2nd of last month (to the same hour)
        ("2026-12-02 10:00", "month", ("2026-12-01 00:00", "2026-12-02 10:00"),
         ("2026-11-01 00:00", "2026-11-02 10:00")),
        # the 31st: the shorter month before is compared whole, never into this month
        ("2026-03-31 18:30", "month", ("2026-03-01 00:00", "2026-03-31 18:30"),
         ("2026-02-01 00:00", "2026-02-28 18:30")),
        ("2026-01-15 08:00", "month", ("2026-01-01 00:00", "2026-01-15 08:00"),
         ("2025-12-01 00:00", "2025-12-15 08:00")),
        # the 45th day of a quarter against the same stretch of the quarter before
        ("2026-11-14 09:00", "quarter", ("2026-10-01 00:00", "2026-11-14 09:00"),
         ("2026-07-01 00:00", "2026-08-14 09:00")),
        ("2028-02-29 12:00", "year", ("2028-01-01 00:00", "2028-02-29 12:00"),
         ("2027-01-01 00:00", "2027-02-28 12:00")),
    ],
)
def test_a_period_to_date_is_compared_with_the_same_days_of_the_period_before(
    now: str, period: str, current: tuple[str, str], previous: tuple[str, str]
) -> None:
    moment = _at(now)
    window = comparison_window(moment.date(), period, now=moment)
    assert (window.start, window.cutoff) == (_at(current[0]), _at(current[1]))
    assert (window.previous_start, window.previous_cutoff) == (_at(previous[0]), _at(previous[1]))


def test_a_report_for_a_past_day_covers_that_whole_day_and_the_same_day_before() -> None:
    window = comparison_window(dt.date(2026, 12, 2), "month", now=_at("2026-12-20 10:00"))
    assert window.cutoff == _at("2026-12-03 00:00") and window.last_day == dt.date(2026, 12, 2)
    assert window.previous_cutoff == _at("2026-11-03 00:00") and window.previous_last_day == dt.date(2026, 11, 2)


def test_on_the_second_of_a_month_won_deals_and_new_customers_compare_like_for_like(
    db: Database, fixture: Fixture
) -> None:
    """The old comparison took the whole previous month: 13,000 won on the 20th read as '−100%'."""
    now = _at("2026-12-02 10:00")
    moments = {"d6": _at("2026-11-01 09:00"), "d7": _at("2026-11-20 09:00")}  # same days / later in November
    with db.system_transaction("test: closing dates") as session:
        for name, closed_at in moments.items():
            deal = session.get(Opportunity, fixture.deals[name])
            assert deal is not None
            deal.closed_at = closed_at
        customers = list(session.scalars(select(Customer).order_by(Customer.id)))
        customers[0].created_at = _at("2026-12-01 08:00")
        customers[1].created_at = _at("2026-11-02 09:59")  # inside the same stretch of November
        customers[2].created_at = _at("2026-11-02 10:00")  # at the cutoff: outside
    with db.session(fixture.world.admin) as session:
        figures = dashboard(session, now=now)
        raw = session.execute(
            text("SELECT COUNT(*), SUM(o.amount) FROM opportunities o JOIN pipeline_stages s ON s.id = o.stage_id "
                 "WHERE o.tenant_id = :tenant AND s.kind = 'won' AND o.archived_at IS NULL "
                 "AND o.closed_at >= :start AND o.closed_at < :cutoff"),
            {"tenant": fixture.world.admin.tenant_id, "start": _at("2026-11-01 00:00"),
             "cutoff": _at("2026-11-02 10:00")},
        ).one()
    assert (figures.won_count, figures.won_amount) == (0, Decimal("0.00"))
    assert (figures.previous_won_count, figures.previous_won_amount) == (1, Decimal("6000.00"))
    assert (figures.previous_won_count, figures.previous_won_amount) == (raw[0], Decimal(str(raw[1])))
    assert (figures.new_customers, figures.previous_new_customers) == (1, 1)
    assert figures.as_dict()["compared"] == {
        "current": ["2026-12-01T00:00:00", "2026-12-02T10:00:00"],
        "previous": ["2026-11-01T00:00:00", "2026-11-02T10:00:00"],
    }
