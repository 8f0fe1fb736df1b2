"""Campaigns page in en and zh-CN: a manager creates a campaign, adds a step, dry-runs and launches it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from crm_core.models import Campaign
from crm_core.models.marketing import CampaignStep, EmailTemplate
from crm_core.services.segments import SegmentInput, save_segment
from tests.pages.conftest import AppWorld, log_in


@pytest.mark.parametrize(("language", "title", "save", "launch"), [
    ("en", "Campaigns", "Save campaign", "Launch"), ("zh-CN", "营销活动", "保存活动", "启动")])
def test_a_manager_builds_and_launches_a_campaign(app_world: AppWorld, language: str, title: str, save: str,
                                                  launch: str) -> None:
    world = app_world.world
    db = app_world.db
    save_segment(db, world.manager, SegmentInput(
        name="Everyone", sharing="tenant",
        conditions={"match": "all", "conditions": [{"field": "name", "op": "contains", "value": "a"}]}))
    with db.transaction(world.manager) as session:
        session.add(EmailTemplate(name="Hello", language="en", subject="Hi", body="Hello <b>{{ contact.name }}</b>"))
    app = log_in(world.manager.username)
    app.session_state["kestrel_lang"] = language
    app.session_state["kestrel_lang_chosen"] = True
    app.switch_page("pages/campaigns.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == title
    app.text_input(key="campaigns_name").input("<b>Spring</b> nurture")
    app.selectbox(key="campaigns_segment").select_index(1)
    next(b for b in app.button if b.label == save).click().run()
    assert not app.exception, app.exception
    with db.session(world.manager) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.name == "<b>Spring</b> nurture"
    app.button(key="campaigns_add").click().run()
    assert not app.exception, app.exception
    with db.session(world.manager) as session:
        assert session.scalars(select(CampaignStep)).one().kind == "email"
    app.button(key="campaigns_dry").click().run()
    assert not app.exception, app.exception
    assert len(app.get("plotly_chart")) == 1
    # each stage's reach is split into who goes on and who would be skipped, and why, in the page's language
    from crm_core.marketing.dry_run import dry_run

    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    with db.session(world.manager) as session:
        campaign_id = session.scalars(select(Campaign.id)).one()
    expected = dry_run(db, world.manager, campaign_id).stages
    names = {"en": ["Reached (not skipped)", "Skipped: no address", "Skipped: no lawful basis"],
             "zh-CN": ["到达（未跳过）", "跳过：无地址", "跳过：无合法依据"]}[language]
    assert [trace["name"] for trace in spec["data"]] == names
    for index, stage in enumerate(expected):
        assert [trace["x"][index] for trace in spec["data"]] == [
            stage.count - stage.no_address - stage.no_basis, stage.no_address, stage.no_basis]
    assert sum(stage.no_address + stage.no_basis for stage in expected) > 0  # the world has someone to skip
    app.checkbox(key="campaigns_confirm").check().run()
    assert len(app.get("plotly_chart")) == 1  # ticking "I am sure" keeps the dry run in view
    next(b for b in app.button if b.label == launch).click().run()
    assert not app.exception, app.exception
    assert app.get("plotly_chart") == []  # the campaign changed: its old dry run is gone
    with db.session(world.manager) as session:
        assert session.scalars(select(Campaign)).one().status == "running"
    members = app.dataframe[-1].value  # each member's step as the sequence numbers it, in the page's language
    assert set(members[members.columns[2]]) == {"1. Send email" if language == "en" else "1. 发送邮件"}


def test_a_rep_cannot_open_the_page(app_world: AppWorld) -> None:
    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    assert "campaigns" not in {page.url_path for page in pages_for(Role.REP)}
    assert "campaigns" in {page.url_path for page in pages_for(Role.MANAGER)}


def test_editing_a_campaign_starts_from_its_own_values(app_world: AppWorld) -> None:
    db, world = app_world.db, app_world.world
    with db.transaction(world.manager) as session:
        nurture = Campaign(name="Win back", status="planned", target_kind="lifecycle", lifecycle_stage="churned",
                           entry_mode="dynamic", goal={"kind": "deal_won"}, exit_on=["replied"])
        other = Campaign(name="Newsletter", status="planned", target_kind="lifecycle", lifecycle_stage="customer")
        session.add_all([nurture, other])
        session.flush()
        ids = (nurture.id, other.id)
    app = log_in(world.manager.username)
    app.switch_page("pages/campaigns.py").run()
    app.selectbox(key="campaigns_choice").set_value(ids[0]).run()
    assert not app.exception, app.exception
    assert app.text_input(key=f"campaigns_{ids[0]}_name").value == "Win back"
    assert app.selectbox(key=f"campaigns_{ids[0]}_stage").value == "churned"
    assert app.radio(key=f"campaigns_{ids[0]}_mode").value == "dynamic"
    assert app.selectbox(key=f"campaigns_{ids[0]}_goal").value == "deal_won"
    app.selectbox(key="campaigns_choice").set_value(ids[1]).run()  # another campaign: its own values
    assert app.text_input(key=f"campaigns_{ids[1]}_name").value == "Newsletter"
    assert app.selectbox(key=f"campaigns_{ids[1]}_stage").value == "customer"
