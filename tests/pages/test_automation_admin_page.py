"""Automation admin page: defaults listed, an invalid rule refused with the input kept, assignment rules saved."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models.automation import AssignmentRule, AutomationRule
from tests.pages.conftest import AppWorld, log_in


def open_page(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/automation_admin.py")
    return app.run()


def click(app, label: str, index: int = 0):  # type: ignore[no-untyped-def]
    [b for b in app.button if b.label == label][index].click()
    return app.run()


def test_an_admin_sees_the_default_stage_rules(app_world: AppWorld) -> None:
    app = open_page(log_in(app_world.world.admin.username))
    assert not app.exception
    # a card per rule (no table that scrolls sideways): its name, then "When: …" and "Then: …" as text
    shown = [m.value.replace("\\", "") for m in app.markdown]  # the markdown escapes of user text, undone
    assert "**Intent: no activity for 7 days → task to owner**" in shown
    assert any(line.startswith("When: ") and "no activity for 7 days" in line for line in shown)
    assert any(line.startswith("Then: task “Win back {name}”") for line in shown)


def test_an_invalid_stage_rule_is_refused_and_the_input_kept(app_world: AppWorld) -> None:
    app = open_page(log_in(app_world.world.admin.username))
    app.text_input(key="automation_admin_rule_0_name").input("Chase quotes").run()
    app.text_input(key="automation_admin_rule_0_task_title").input("Call {customer}").run()
    app = click(app, "Save rule")
    assert not app.exception
    assert any("The only placeholder allowed is {name}" in e.value for e in app.error)
    assert app.text_input(key="automation_admin_rule_0_name").value == "Chase quotes"
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(AutomationRule).where(AutomationRule.name == "Chase quotes")).first() is None
    app.text_input(key="automation_admin_rule_0_task_title").input("Call {name} about the quote").run()
    app = click(app, "Save rule")
    assert any("Chase quotes" in s.value for s in app.toast)
    with app_world.db.system_session("test") as session:
        rule = session.scalars(select(AutomationRule).where(AutomationRule.name == "Chase quotes")).one()
        assert (rule.stage, rule.trigger, rule.threshold) == ("intent", "no_activity", 7)


def test_an_admin_saves_a_region_assignment_rule(app_world: AppWorld) -> None:
    world = app_world.world
    app = open_page(log_in(world.admin.username))
    app.text_input(key="automation_admin_assignment_0_name").input("华东 leads → East").run()
    app.selectbox(key="automation_admin_assignment_0_field_0").set_value("region").run()
    app.text_input(key="automation_admin_assignment_0_value_0").input("华东").run()
    app.selectbox(key="automation_admin_assignment_0_team").set_value(world.east_team_id).run()
    app.selectbox(key="automation_admin_assignment_0_method").set_value("least_busy").run()
    app = click(app, "Save rule", index=1)
    assert not app.exception
    with app_world.db.system_session("test") as session:
        rule = session.scalars(select(AssignmentRule)).one()
        assert rule.conditions == [{"field": "region", "op": "equals", "value": "华东"}]
        assert (rule.team_id, rule.method) == (world.east_team_id, "least_busy")


def test_the_page_is_not_in_a_managers_navigation(app_world: AppWorld) -> None:
    app = log_in(app_world.world.manager.username)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/automation_admin.py")
