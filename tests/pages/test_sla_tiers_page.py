"""The SLA settings' Tiers tab and the case's SLA panel naming the tier and why, in English and Chinese."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.models import Customer
from crm_core.models.service import SlaPolicy
from crm_core.models.service_tiers import CustomerTier, CustomerTierPin
from crm_core.services import customer_tiers as tiers
from crm_core.services import sla_settings
from crm_core.services.cases import CaseInput, create_case
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from tests.pages.conftest import AppWorld
from tests.pages.test_service_pages import open_case, open_settings, speak_chinese


def acme(app_world: AppWorld) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()


def test_an_admin_defines_a_tier_pins_a_customer_and_gives_the_tier_a_policy(app_world: AppWorld) -> None:
    db, world = app_world.db, app_world.world
    sla_settings.save_calendar(db, world.admin, name="Support desk", time_zone="UTC",
                               hours={str(day): [["09:00", "18:00"]] for day in range(1, 6)})
    app = open_settings(app_world)
    assert not app.exception
    assert any(info.value.startswith("No tiers yet") for info in app.info)
    app.text_input(key="sla_settings_tier_new_code").input("gold")
    app.text_input(key="sla_settings_tier_new_name_en").input("Gold")
    app.text_input(key="sla_settings_tier_new_name_zh").input("金牌")
    app.text_input(key="sla_settings_tier_new_threshold").input("100,000")
    next(b for b in app.button if b.label == "Save the tier").click()
    app = app.run()
    assert not app.exception
    assert any(s.value.startswith("Tier saved") for s in app.toast)
    assert any("job" in info.value for info in app.info)  # the refresh job was started
    frame = next(frame.value for frame in app.dataframe if "Code" in frame.value.columns)
    assert list(frame["Code"]) == ["gold"] and list(frame["Over the last (months)"]) == [12]
    with db.system_session("test") as session:
        tier = session.scalars(select(CustomerTier)).one()
        assert (tier.name_zh, tier.min_order_total) == ("金牌", Decimal("100000.00"))

    app.text_input(key="sla_settings_pin_search").input("Acme").run()
    next(b for b in app.button if b.label == "Save the pin").click()
    app = app.run()
    assert any(s.value.startswith("Pin saved") for s in app.toast)
    pins = next(frame.value for frame in app.dataframe if "Until" in frame.value.columns)
    assert list(pins["Customer"]) == ["Acme Trading"] and list(pins["Until"]) == ["No end"]
    with db.system_session("test") as session:
        assert session.scalars(select(CustomerTierPin.customer_id)).one() == acme(app_world)

    app.selectbox(key="sla_settings_policy_tier").set_value(tier.id).run()
    assert any(caption.value.startswith("This tier has no policy") for caption in app.caption)
    app.checkbox(key=f"sla_settings_reassign_{tier.id}_urgent").check()
    next(b for b in app.button if b.label == "Save the policy").click()
    app = app.run()
    assert not app.exception
    policies = next(frame.value for frame in app.dataframe if "Reassign on breach" in frame.value.columns)
    assert list(policies["Tier"]) == ["Gold"] and list(policies["Reassign on breach"]) == ["Yes"]
    with db.system_session("test") as session:
        policy = session.scalars(select(SlaPolicy)).one()
        assert (policy.tier_id, policy.priority, policy.reassign_on_breach) == (tier.id, "urgent", True)


def test_a_bad_tier_is_explained_in_chinese_and_the_input_kept(
        app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.admin.user_id, monkeypatch)
    app = open_settings(app_world)
    assert not app.exception
    app.text_input(key="sla_settings_tier_new_code").input("Gold!")
    app.text_input(key="sla_settings_tier_new_name_en").input("Gold")
    app.text_input(key="sla_settings_tier_new_name_zh").input("金牌")
    app.text_input(key="sla_settings_tier_new_threshold").input("很多")
    next(b for b in app.button if b.label == "保存等级").click()
    app = app.run()
    errors = " ".join(error.value for error in app.error)
    assert "小写字母" in errors and "大于零" in errors
    assert app.text_input(key="sla_settings_tier_new_name_zh").value == "金牌"


def gold_case(app_world: AppWorld) -> int:
    """A normal case of Acme Trading, whose ¥123,456 of orders make it gold."""
    db, world = app_world.db, app_world.world
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support desk", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    gold = tiers.save_tier(db, world.admin, tiers.TierInput(code="gold", name_en="Gold", name_zh="金牌", rank=2,
                                                           min_order_total="100000"))
    sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=30, next_response_minutes=30,
        resolution_minutes=240, tier_id=gold))
    product = create_product(db, world.manager, ProductInput("GOLD-1", "Licence", "123456"))
    create_order(db, world.admin, OrderInput(acme(app_world), [OrderLineInput(product, 1)]))
    tiers.run_tier_refresh(db, world.admin.tenant_id)
    return create_case(db, world.rep, CaseInput(customer_id=acme(app_world), subject="Gold customer"))


def test_the_case_panel_says_which_tier_and_why(app_world: AppWorld) -> None:
    case_id = gold_case(app_world)
    app = open_case(app_world.world.rep.username, case_id)
    assert not app.exception
    panel = " ".join(caption.value for caption in app.caption)
    assert "Tier Gold: orders ¥123,456.00 in the last 12 months ≥ ¥100,000.00" in panel


def test_the_case_panel_says_which_tier_and_why_in_chinese(app_world: AppWorld,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    case_id = gold_case(app_world)
    app = open_case(app_world.world.rep.username, case_id)
    assert not app.exception
    panel = " ".join(caption.value for caption in app.caption)
    assert "等级 金牌：近 12 个月订单 ¥123,456.00 ≥ ¥100,000.00" in panel
