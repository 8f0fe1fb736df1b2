"""The service dashboard in English and Chinese: a manager's figures after a case was resolved and
rated through its CSAT link, the charts, the per-agent table with the name as text, and how fresh
the figures are (all live, then earlier days as the service_daily job counted them)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Case, Customer, Role
from crm_core.services import csat, sla_settings
from crm_core.services.cases import CaseInput, add_case_reply, create_case, transition_case
from crm_core.services.service_daily import run_service_daily
from crm_ui.navigation import pages_for
from tests.pages.conftest import AppWorld, log_in
from tests.pages.test_service_pages import speak_chinese

KEY = "csat-page-test-key-0123456789abcdef"


def seed(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_CSAT_KEY", KEY)
    db, world = app_world.db, app_world.world
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support desk", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=480, next_response_minutes=480,
        resolution_minutes=1920))
    with db.system_session("test") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    done = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Invoice copy",
                                                assignee_id=world.rep.user_id, team_id=world.east_team_id))
    add_case_reply(db, world.rep, done, "Sent it again.")
    transition_case(db, world.rep, done, "resolved", expected_version=2)
    create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Still open", priority="normal",
                                         assignee_id=world.rep.user_id))
    with db.session(world.rep) as session:
        case = session.get(Case, done)
        assert case is not None
        token = csat.csat_link(case, "http://host").rsplit("/", 1)[1]
    csat.rate_case(db, token, "good")


def open_dashboard(username: str, language: str = "en"):  # type: ignore[no-untyped-def]
    app = log_in(username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
    app.switch_page("pages/service_dashboard.py")
    return app.run()


def test_the_manager_sees_the_figures_in_both_languages(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(app_world, monkeypatch)
    manager = app_world.world.manager
    app = open_dashboard(manager.username)
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Open cases"] == "1"
    assert metrics["CSAT % good"] == "100.0%"
    assert metrics["First response within SLA"] == "100.0%"
    agents = app.dataframe[0].value
    assert list(agents["Agent"]) == ["Rita Rep"] and list(agents["Resolved"]) == [1]
    # times and shares written out (an empty one as "—", never Streamlit's "None")
    assert agents["CSAT % good"][0] == "100.0%" and agents["Resolution p50"][0].endswith(" h")
    assert agents["First response p90"][0].endswith(" h")
    assert len(app.get("plotly_chart")) == 2
    assert "All figures are counted live." in [caption.value for caption in app.caption]  # no daily counts yet
    run_service_daily(app_world.db, manager.tenant_id)
    counted = open_dashboard(manager.username)
    assert any(caption.value.startswith("Today's figures are live; earlier days as counted at")
               for caption in counted.caption)
    assert {metric.label: metric.value for metric in counted.metric} == metrics  # today's case, counted live
    speak_chinese(app_world, manager.user_id, monkeypatch)
    chinese = open_dashboard(manager.username, "zh-CN")
    assert any(caption.value.startswith("今天的数据为实时数据") for caption in chinese.caption)
    assert not chinese.exception
    assert chinese.title[0].value == "服务仪表盘"
    labels = {metric.label: metric.value for metric in chinese.metric}
    assert labels["未结工单"] == "1" and labels["满意率"] == "100.0%"
    assert "客服" in chinese.dataframe[0].value.columns
    assert chinese.dataframe[0].value.iloc[0, 4].endswith("小时")


def test_only_managers_admins_and_analysts_have_the_page() -> None:
    holders = {role for role in Role if any(page.path == "pages/service_dashboard.py" for page in pages_for(role))}
    assert holders == {Role.ADMIN, Role.MANAGER, Role.ANALYST}
