"""The campaign results page in English and Chinese: the figures of a campaign, its charts, the step table with
the skip reason, the credit per model, both CSV files, a manager's part only, and who has the page."""

from __future__ import annotations

import pytest

from crm_core.models import Role
from crm_ui.navigation import pages_for
from tests.campaign_scene import NO_BASIS, build_scene
from tests.pages.conftest import AppWorld, open_as
from tests.pages.job_helpers import isolated_queue, queued_job_ids, run_queued_jobs  # noqa: F401 - a fixture
from tests.pages.test_service_pages import speak_chinese

PAGE = "pages/campaign_results.py"


def test_an_admin_reads_all_campaigns_then_one_campaign_in_english(app_world: AppWorld) -> None:
    story = build_scene(app_world.db, app_world.world)
    app = open_as(app_world.world.admin.username, PAGE)
    assert not app.exception
    assert app.title[0].value == "Campaign results"
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Entered"] == "3" and metrics["Sent"] == "2" and metrics["Influenced deals"] == "3"
    assert metrics["Influenced deals won"] == "2"
    assert len(app.get("plotly_chart")) == 2  # the funnel and the credit per model
    credit = app.dataframe[1].value
    nurture = credit[credit["Campaign"] == "Spring nurture"].iloc[0]
    assert nurture["First touch"].endswith("1,600.00") and nurture["Linear"].endswith("1,100.00")
    downloads = {getattr(button, "label", None) for button in app.get("download_button")}
    assert downloads == {"Download the steps (CSV)", "Download the influenced deals (CSV)"}
    next(box for box in app.selectbox if box.label == "Campaign").set_value(story.nurture)
    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 3  # and the members each step reached
    steps = app.dataframe[0].value
    assert list(steps["Step"]) == ["1 · Email: Spring hello", "2 · Wait", "3 · Task: Call after the email",
                                   "4 · Goal"]
    assert steps["Why skipped"][0] == f"{NO_BASIS}: 1" and list(steps["Opened"]) == [2, 0, 0, 0]


def test_a_manager_sees_their_teams_part_in_chinese(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    build_scene(app_world.db, app_world.world)
    manager = app_world.world.manager
    speak_chinese(app_world, manager.user_id, monkeypatch)
    app = open_as(manager.username, PAGE, "zh-CN")
    assert not app.exception
    assert app.title[0].value == "营销效果"
    assert app.caption[0].value == "您所管理团队客户的营销触达和商机。"
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["进入"] == "2" and metrics["受影响商机"] == "2"  # the rep's and the teammate's customers
    assert "营销活动" in app.dataframe[0].value.columns
    deals = app.dataframe[2].value
    assert set(deals["客户"]) == {"Alpha 营销客户", "Beta Mate"}


def test_a_workspace_without_campaigns_says_so(app_world: AppWorld) -> None:
    app = open_as(app_world.world.analyst.username, PAGE)
    assert not app.exception
    assert [info.value for info in app.info] == ["There are no campaigns yet."]


def test_only_admins_managers_and_analysts_have_the_page() -> None:
    holders = {role for role in Role if any(page.path == PAGE for page in pages_for(role))}
    assert holders == {Role.ADMIN, Role.MANAGER, Role.ANALYST}


@pytest.mark.usefixtures("isolated_queue")
def test_the_refresh_button_queues_the_recount_and_the_page_then_shows_when_it_counted(app_world: AppWorld) -> None:
    build_scene(app_world.db, app_world.world, refresh=False)
    manager = app_world.world.manager
    app = open_as(manager.username, PAGE)
    assert not app.exception
    assert "The results have not been counted yet. Press “Refresh now”." in [info.value for info in app.info]
    assert {metric.label: metric.value for metric in app.metric}["Entered"] == "0"
    next(button for button in app.button if button.label == "Refresh now").click().run()
    assert not app.exception
    assert len(queued_job_ids(app_world.db)) == 1
    assert any(message.value.startswith("Recount queued (job ") for message in app.success)
    run_queued_jobs(app_world.db)
    app = open_as(manager.username, PAGE)
    assert not app.exception
    assert any(caption.value.startswith("Counts as of ") for caption in app.caption)
    assert {metric.label: metric.value for metric in app.metric}["Entered"] == "2"  # the manager's teams' part
    analyst = open_as(app_world.world.analyst.username, PAGE)
    assert not any(button.label == "Refresh now" for button in analyst.button)  # analysts read, they do not count
