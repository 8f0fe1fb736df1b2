"""AppTests of the dashboard, pipeline board, funnel and pipelines admin pages."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.models import Opportunity, PipelineStage
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage, update_opportunity
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in


@pytest.fixture
def deals(app_world: AppWorld) -> dict[str, int]:
    """Three deals of the rep (one won), one of the far rep."""
    db, world = app_world.db, app_world.world
    rep_customer = create_random_customer(db, world.rep, name="Kestrel Foods 红隼食品")
    far_customer = create_random_customer(db, world.rep_other_team, name="Far Away Inc")
    with db.session(world.admin) as session:
        stages = {stage.name: stage.id for stage in session.scalars(select(PipelineStage))}
    ids = {
        "pilot": create_opportunity(db, world.rep, OpportunityInput(customer_id=rep_customer, name="Pilot 试点",
                                                                    amount="10000")),
        "rollout": create_opportunity(db, world.rep, OpportunityInput(
            customer_id=rep_customer, name="Rollout", amount="50000", stage_id=stages["Negotiation"],
            expected_close_date=dt.date.today())),
        "renewal": create_opportunity(db, world.rep, OpportunityInput(customer_id=rep_customer, name="Renewal",
                                                                      amount="8000")),
        "far": create_opportunity(db, world.rep_other_team, OpportunityInput(customer_id=far_customer,
                                                                             name="Far deal", amount="99000")),
    }
    move_stage(db, world.rep, ids["renewal"], stages["Won"], expected_version=1)
    return ids


def texts(app) -> str:  # type: ignore[no-untyped-def]
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption] + [m.value for m in app.metric]
    parts += [m.label for m in app.metric]
    return "\n".join(str(part) for part in parts)


def metric(app, label: str) -> str:  # type: ignore[no-untyped-def]
    return next(m.value for m in app.metric if m.label == label)


def test_the_dashboard_is_the_landing_page_and_shows_a_reps_own_figures(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    app = log_in(app_world.world.rep.username)
    assert not app.exception
    assert [title.value for title in app.title] == ["Dashboard"]
    assert metric(app, "Open pipeline") == "¥60.00K"  # Pilot + Rollout; the far rep's 99,000 is not theirs
    assert metric(app, "Weighted forecast") == "¥38.50K"  # 10,000 × 10 % + 50,000 × 75 %
    assert metric(app, "Won this month") == "¥8,000"
    closing = app.dataframe[-1].value
    assert list(closing[closing.columns[0]]) == ["Rollout"]


def test_the_admins_dashboard_covers_the_workspace_in_chinese(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = log_in(app_world.world.admin.username)
    app.selectbox(key="dashboard_period@en").select("year").run()
    assert metric(app, "Won this year") == "¥8,000"
    app = log_in(app_world.world.admin.username)
    app.selectbox(key="kestrel_language_choice").select_index(1).run()
    assert not app.exception
    assert [title.value for title in app.title] == ["仪表盘"]
    assert metric(app, "在途商机金额") == "¥15.90万"
    assert metric(app, "本月赢单") == "¥8,000"


def test_the_dashboard_script_runs_in_under_a_second(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = log_in(app_world.world.manager.username)
    started = time.perf_counter()
    app.run()
    assert not app.exception
    assert time.perf_counter() - started < 1.0


def open_board(username: str):  # type: ignore[no-untyped-def]
    app = log_in(username)
    app.switch_page("pages/pipeline.py").run()
    assert not app.exception
    return app


def test_a_rep_sees_only_their_deals_on_the_board(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    body = texts(app)
    assert "Pilot 试点" in body and "Rollout" in body and "Renewal" in body
    assert "Far deal" not in body
    assert "1 deals · ¥10,000.00 · weighted ¥1,000.00 (10%)" in body


def test_moving_a_card_to_lost_needs_a_reason_then_moves_it(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    deal_id = deals["pilot"]
    app.selectbox(key=f"pipeline_target_{deal_id}").select_index(4).run()  # Qualified, Proposal, Negotiation, Won, Lost
    app.button(key=f"pipeline_move_{deal_id}").click().run()
    assert any("Say why the deal was lost" in e.value for e in app.error)
    app.text_input(key=f"pipeline_reason_{deal_id}").input("价格太高").run()
    app.button(key=f"pipeline_move_{deal_id}").click().run()
    assert not app.exception
    assert any("moved to Lost" in s.value for s in app.success)
    with app_world.db.session(app_world.world.admin) as session:
        deal = session.get(Opportunity, deal_id)
        assert deal is not None and deal.lost_reason == "价格太高" and deal.closed_at is not None


def test_a_won_card_offers_only_reopening(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    options = app.selectbox(key=f"pipeline_target_{deals['renewal']}").options
    assert options == ["Lead", "Qualified", "Proposal", "Negotiation"]


def test_editing_a_deal_someone_else_saved_keeps_the_input_and_offers_reload(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    db, world = app_world.db, app_world.world
    app = open_board(world.rep.username)
    app.button(key=f"pipeline_edit_{deals['pilot']}").click().run()
    amount = next(w for w in app.text_input if w.label == "Amount *")
    amount.input("12345")
    # meanwhile the manager saves the deal
    with db.session(world.admin) as session:
        deal = session.get(Opportunity, deals["pilot"])
        assert deal is not None
        customer_id = deal.customer_id
    update_opportunity(db, world.manager, deals["pilot"],
                       OpportunityInput(customer_id=customer_id, name="Pilot 试点", amount="11000"), expected_version=1)
    next(b for b in app.button if b.label == "Save deal").click().run()
    assert any("Mia Manager changed this record" in e.value for e in app.error)
    assert next(w for w in app.text_input if w.label == "Amount *").value == "12345"
    with db.session(world.admin) as session:
        assert session.get(Opportunity, deals["pilot"]).amount == Decimal("11000.00")  # type: ignore[union-attr]
    app.button(key="pipeline_reload").click().run()
    assert next(w for w in app.text_input if w.label == "Amount *").value == "11000.00"


def test_a_rep_creates_a_deal_from_the_board(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    app.text_input(key="pipeline_customer_search").input("红隼食品").run()
    next(w for w in app.text_input if w.label == "Deal *").input("Expansion 扩容")
    next(w for w in app.text_input if w.label == "Amount *").input("-5")
    next(b for b in app.button if b.label == "Create deal").click().run()
    assert any("Amount must be between 0 and 999999999999.99" in e.value for e in app.error)  # the field rule
    next(w for w in app.text_input if w.label == "Amount *").input("20,000")
    next(b for b in app.button if b.label == "Create deal").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any('Deal "Expansion 扩容" created.' in s.value for s in app.success)
    with app_world.db.session(app_world.world.admin) as session:
        created = session.scalars(select(Opportunity).where(Opportunity.name == "Expansion 扩容")).one()
    assert created.amount == Decimal("20000.00") and created.owner_id == app_world.world.rep.user_id


def test_an_analyst_reads_the_board_without_stage_menus(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.analyst.username)
    assert "Far deal" in texts(app)
    assert not [b for b in app.button if b.key and b.key.startswith("pipeline_edit_")]


def test_the_funnel_page_shows_the_rates_and_filters_by_owner(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/funnel.py").run()
    assert not app.exception
    assert metric(app, "Deals") == "4"
    assert metric(app, "Win rate") == "100.0%"
    assert metric(app, "Average deal size (won)") == "¥8,000"
    table = app.dataframe[0].value
    assert list(table["Reached"]) == [4, 2, 2, 2, 1]
    owner = app.selectbox(key="funnel_owner@en")
    owner.select(app_world.world.rep_other_team.user_id).run()
    assert metric(app, "Deals") == "1"


def test_the_pipelines_admin_page_saves_a_new_stage(app_world: AppWorld) -> None:
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/pipelines_admin.py").run()
    assert not app.exception
    next(w for w in app.text_input if w.label == "Pipeline name *").input("Renewals")
    next(b for b in app.button if b.label == "Create pipeline").click().run()
    assert any('Pipeline "Renewals" created' in s.value for s in app.success)


def test_a_rep_cannot_open_the_pipelines_admin_page(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    assert "Pipelines & stages" not in str(app.sidebar)


def test_deal_cards_show_the_win_score_once_the_scorer_has_run(app_world: AppWorld, deals: dict[str, int]) -> None:
    from crm_core.scoring import runner

    tenant_id = app_world.world.rep.tenant_id
    assert "Win score" not in texts(open_board(app_world.world.rep.username))
    runner.train(app_world.db, tenant_id, "deal_win")  # one closed deal: falls back to stage probability
    runner.apply(app_world.db, tenant_id, "deal_win")
    body = texts(open_board(app_world.world.rep.username))
    assert "🎯 Win score 10%" in body  # the pilot, in Lead (10%)
    assert "🎯 Win score 75%" in body  # the rollout, in Negotiation (75%)
