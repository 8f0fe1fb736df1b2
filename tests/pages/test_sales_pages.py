"""AppTests of the dashboard, funnel and pipelines admin pages (the board: test_pipeline_board.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from crm_core.models import PipelineStage
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from tests.conftest import sent_statements
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in, open_as
from tests.pages.job_helpers import isolated_queue, queued_job_ids, run_queued_jobs  # noqa: F401 - a fixture
from tests.pages.test_service_pages import speak_chinese


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
    assert metric(app, "Open pipeline") == "¥60.0K"  # Pilot + Rollout; the far rep's 99,000 is not theirs
    assert metric(app, "Weighted forecast") == "¥38.5K"  # 10,000 × 10 % + 50,000 × 75 %
    assert metric(app, "Won this month") == "¥8,000"
    closing = app.dataframe[-1].value
    assert list(closing[closing.columns[0]]) == ["Rollout"]


def test_the_admins_dashboard_covers_the_workspace_in_chinese(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = log_in(app_world.world.admin.username)
    app.selectbox(key="dashboard_period@en").select("year").run()
    assert metric(app, "Won this year") == "¥8,000"
    app = log_in(app_world.world.admin.username)
    app.selectbox(key="kestrel_language_choice_en").select_index(1).run()
    assert not app.exception
    assert [title.value for title in app.title] == ["仪表盘"]
    assert metric(app, "在途商机金额") == "¥15.9万"
    assert metric(app, "本月赢单") == "¥8,000"


def test_the_revenue_trend_is_a_plotly_bar_per_month_with_the_money_in_the_users_language(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    db, world = app_world.db, app_world.world
    customer = create_random_customer(db, world.rep, name="Trend Buyer")
    product = create_product(db, world.admin, ProductInput(sku="", name="Trend kit", unit_price="1234.50"))
    create_order(db, world.rep, OrderInput(customer_id=customer, lines=[OrderLineInput(product, quantity=2)]))
    app = log_in(world.rep.username)
    assert not app.exception
    charts = app.get("plotly_chart")
    assert len(charts) == 1  # one library for every chart: no Altair loaded for this one
    bars = json.loads(charts[0].proto.spec)["data"][0]
    month = dt.date.today().strftime("%Y-%m")
    assert bars["x"][-1] == month and bars["y"][-1] == 2469.0
    assert bars["customdata"][-1] == ["¥2,469.00", "Orders: 1"]
    axis = json.loads(charts[0].proto.spec)["layout"]["yaxis"]
    assert axis["ticktext"] == ["¥0", "¥1,000", "¥2,000", "¥3,000"]  # money, not plotly's "2k"
    assert axis["range"] == [0, 3150.0]  # the top tick and some headroom above the tallest bar
    app.selectbox(key="kestrel_language_choice_en").select_index(1).run()
    bars = json.loads(app.get("plotly_chart")[0].proto.spec)["data"][0]
    assert bars["customdata"][-1] == ["¥2,469.00", "订单：1 笔"]


def test_a_dashboard_rerun_sends_as_many_statements_for_ten_times_the_deals(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    """Every figure is one aggregate in SQL: more deals and customers never mean more round trips.

    How fast that is at 1M customers is ``python -m benchmarks pages`` / ``reports``, not a timed test."""
    db, world = app_world.db, app_world.world
    app = log_in(world.manager.username)
    with sent_statements() as before:
        app.run()
    assert not app.exception
    pipeline_before = metric(app, "Open pipeline")
    with db.session(world.admin) as session:
        won = session.scalars(select(PipelineStage.id).where(PipelineStage.name == "Won")).one()
    for number in range(10):
        customer_id = create_random_customer(db, world.rep, name=f"Scale customer {number}")
        deal = create_opportunity(db, world.rep, OpportunityInput(customer_id=customer_id, name=f"Deal {number}",
                                                                  amount=str(1000 + number)))
        if number % 2:
            move_stage(db, world.rep, deal, won, expected_version=1)
    with sent_statements() as after:
        app.run()
    assert not app.exception
    assert metric(app, "Open pipeline") != pipeline_before  # the new deals are counted ...
    assert before and len(after) == len(before), "\n".join(sql for sql, _ in after)  # ... by the same statements


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
    assert any('Pipeline "Renewals" created' in s.value for s in app.toast)


def test_a_rep_cannot_open_the_pipelines_admin_page(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    assert "Pipelines & stages" not in str(app.sidebar)


@pytest.mark.usefixtures("isolated_queue")
def test_the_pages_say_how_fresh_their_figures_are_and_a_manager_can_recount(
    app_world: AppWorld, deals: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live until the sales rollup first counts; then "as counted at …", with the same figures; "Refresh now"
    queues the recount for managers and admins, never for reps."""
    db, world = app_world.db, app_world.world
    manager = world.manager
    app = open_as(manager.username, "pages/dashboard.py")
    assert not app.exception
    assert "All figures are counted live." in [caption.value for caption in app.caption]
    live_metrics = {metric.label: metric.value for metric in app.metric}
    next(button for button in app.button if button.label == "Refresh now").click().run()
    assert not app.exception
    assert any(message.value.startswith("Recount queued (job ") for message in app.success)
    assert len(queued_job_ids(db)) == 1
    run_queued_jobs(db)
    for page in ("pages/dashboard.py", "pages/funnel.py"):
        counted = open_as(manager.username, page)
        assert not counted.exception
        assert any(caption.value.startswith("Figures as counted at ")
                   for caption in counted.caption), page
    counted = open_as(manager.username, "pages/dashboard.py")
    assert {metric.label: metric.value for metric in counted.metric} == live_metrics
    rep = open_as(world.rep.username, "pages/funnel.py")
    assert not any(button.label == "Refresh now" for button in rep.button)
    speak_chinese(app_world, manager.user_id, monkeypatch)
    chinese = open_as(manager.username, "pages/dashboard.py", "zh-CN")
    assert any(caption.value.startswith("数据按 ") for caption in chinese.caption)
    assert any(button.label == "立即刷新" for button in chinese.button)
