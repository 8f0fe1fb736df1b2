"""The Customer pool page and the 360's pool section, through the real app (AppTest): an admin sets a rule
(a bad one is explained and the input kept), a rep sees their standing and the pool, claims from the 360,
gives a customer back, and reads its pool history; in 中文 too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from crm_core.models import Customer
from crm_core.models.pool import PoolRule
from crm_core.services.auth import set_language
from crm_core.services.pool import PoolRuleForm, return_to_pool, save_pool_rule
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, field_labels, log_in


def open_page(username: str, path: str, customer: int | None = None) -> Any:
    app = log_in(username)
    app.switch_page(path)
    if customer is not None:
        app.query_params["customer_id"] = str(customer)
    return app.run()


def click(app: Any, label: str) -> Any:
    next(b for b in app.button if b.label == label).click()
    return app.run()


def returned_customer(app_world: AppWorld, name: str) -> int:
    """A customer of the rep, silent for 60 days, returned to the east pool by the nightly run."""
    world = app_world.world
    save_pool_rule(app_world.db, world.admin, PoolRuleForm(team_id=world.east_team_id, idle_days=30,
                                                           daily_claim_cap=5))
    customer_id = create_random_customer(app_world.db, world.rep, name=name)
    long_ago = dt.datetime.now() - dt.timedelta(days=60)
    with app_world.db.system_transaction("test: silent") as session:
        session.execute(update(Customer).where(Customer.id == customer_id).values(
            last_contacted_at=long_ago, owner_since=long_ago, created_at=long_ago))
    assert return_to_pool(app_world.db, world.admin.tenant_id).returned == 1
    return customer_id


def owner(app_world: AppWorld, customer_id: int) -> int | None:
    with app_world.db.system_session("test") as session:
        return session.scalar(select(Customer.owner_id).where(Customer.id == customer_id))


def test_an_admin_saves_a_pool_rule_and_a_bad_one_is_explained_with_the_input_kept(app_world: AppWorld) -> None:
    app = open_page(app_world.world.admin.username, "pages/pool.py")
    assert not app.exception and app.title[0].value == "Customer pool"
    idle = next(n for n in app.number_input if n.label == "Return after days without follow-up")
    reminder = next(n for n in app.number_input if n.label == "Remind the owner days before")
    idle.set_value(5)
    reminder.set_value(7)
    app = click(app, "Save rule")
    assert any("before the return" in error.value for error in app.error)
    assert next(n for n in app.number_input if n.label == "Remind the owner days before").value == 7
    next(n for n in app.number_input if n.label == "Remind the owner days before").set_value(2)
    app = click(app, "Save rule")
    assert not app.exception and not app.error
    assert any("Pool rule saved" in success.value for success in app.success)
    with app_world.db.system_session("test") as session:
        rule = session.scalars(select(PoolRule)).one()
    assert (rule.team_id, rule.idle_days, rule.reminder_days) == (None, 5, 2)
    # each pair of fields is a row of its own: a phone stacks them in this, the desktop's, reading order
    assert field_labels(app.get("form")[0])[:4] == [
        "Team", "Enabled", "Return after days without follow-up", "Return after days without an open deal"]


def test_a_rep_sees_the_pool_claims_from_the_360_and_gives_a_customer_back(app_world: AppWorld) -> None:
    world = app_world.world
    pooled = returned_customer(app_world, "杭州回收测试有限公司")
    app = open_page(world.rep_same_team.username, "pages/pool.py")
    assert not app.exception
    assert [metric.value for metric in app.metric][:2] == ["0 / 5", "0 / ∞"]
    assert "杭州回收测试有限公司" in list(app.dataframe[0].value["Name"])
    assert not any(b.label == "Assign 0" for b in app.button)  # assigning is for managers

    app = open_page(world.rep_same_team.username, "pages/customer_profile.py", pooled)
    app = click(app, "Claim this customer")
    assert not app.exception and owner(app_world, pooled) == world.rep_same_team.user_id

    next(t for t in app.text_input if t.label == "Why (optional)").input("Wrong region")
    app = click(app, "Give “杭州回收测试有限公司” back to the pool")
    assert not app.exception and owner(app_world, pooled) is None
    history = app.dataframe[-2].value  # the pool's ledger, above the audit trail
    assert list(history["What"]) == ["Given back", "Claimed", "Returned to the pool · no follow-up"]
    assert "Wrong region" in list(history["Why (optional)"])


def test_the_previous_owner_is_told_when_they_may_claim_again(app_world: AppWorld) -> None:
    world = app_world.world
    pooled = returned_customer(app_world, "Cooldown Ltd")
    app = open_page(world.rep.username, "pages/customer_profile.py", pooled)
    app = click(app, "Claim this customer")
    assert any("left you less than 30 days ago" in error.value for error in app.error)
    assert owner(app_world, pooled) is None


def test_the_pool_page_speaks_chinese(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    world = app_world.world
    returned_customer(app_world, "北京公海客户")
    set_language(app_world.db, world.manager.username, "zh-CN")
    app = open_page(world.manager.username, "pages/pool.py")
    assert not app.exception and app.title[0].value == "公海客户"
    assert "北京公海客户" in list(app.dataframe[0].value["名称"])
    assert any(b.label == "领取 0 个" for b in app.button) and any(b.label == "分配 0 个" for b in app.button)


def test_a_manager_narrows_the_pool_with_the_grids_filters(app_world: AppWorld) -> None:
    world = app_world.world
    returned_customer(app_world, "Filtered Pool Ltd")
    app = open_page(world.admin.username, "pages/pool.py")
    assert "Filtered Pool Ltd" in list(app.dataframe[0].value["Name"])
    next(box for box in app.selectbox if box.label == "Team").set_value(world.west_team_id)
    app.run()
    assert not app.exception and any("The pool is empty" in info.value for info in app.info)
    next(box for box in app.selectbox if box.label == "Team").set_value(world.east_team_id)
    app.run()
    assert list(app.dataframe[0].value["Name"]) == ["Filtered Pool Ltd"]
