"""The province → city → district cascade on the customer form, the grid's province filter, a blocked
duplicate as a rep sees it, and the duplicate rules admin page, in English and 简体中文."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Customer
from crm_core.services.auth import set_language
from crm_core.services.duplicate_rules import duplicate_rules
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in

CODE = "91440300MA5F0A1B2N"  # registered in Shenzhen


def open_page(username: str, path: str):  # type: ignore[no-untyped-def]
    app = log_in(username)
    app.switch_page(path)
    return app.run()


def speak_chinese(app_world: AppWorld, username: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's language is 简体中文; AppTest formats widget values outside the script run, in the default one."""
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    set_language(app_world.db, username, "zh-CN")


def text_input(app, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in app.text_input if w.label == label)


def click(app, label: str):  # type: ignore[no-untyped-def]
    next(b for b in app.button if b.label == label).click()
    return app.run()


def test_the_cascade_offers_the_cities_of_the_chosen_province_and_the_codes_are_saved(app_world: AppWorld) -> None:
    app = open_page(app_world.world.rep.username, "pages/customers.py")
    assert app.selectbox(key="customers_region_0_city_").disabled  # no province yet
    app.selectbox(key="customers_region_0_province").set_value("440000").run()
    city = app.selectbox(key="customers_region_0_city_440000")
    assert "440300" in city.options[1:] or any("深圳市" in option for option in city.options)
    city.set_value("440300").run()
    district = app.selectbox(key="customers_region_0_district_440300")
    assert any("南山区" in option for option in district.options)
    district.set_value("440305").run()
    text_input(app, "Name *").input("深圳晨星科技有限公司")
    text_input(app, "Unified social credit code").input(CODE.lower())
    app = click(app, "Create customer")
    assert not app.exception and not app.error
    with app_world.db.system_session("test") as session:
        row = session.scalars(select(Customer).where(Customer.name == "深圳晨星科技有限公司")).one()
        assert (row.province_code, row.city_code, row.district_code, row.credit_code) == (
            "440000", "440300", "440305", CODE)
    # the grid's province filter, on the server
    app.selectbox(key="customers_province").set_value("440000").run()
    frame = app.dataframe[0].value
    assert list(frame[frame.columns[0]]) == ["深圳晨星科技有限公司"]


def test_a_credit_code_of_another_city_is_explained_in_chinese_and_the_input_is_kept(
    app_world: AppWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    speak_chinese(app_world, app_world.world.rep.username, monkeypatch)
    app = open_page(app_world.world.rep.username, "pages/customers.py")
    app.selectbox(key="customers_region_0_province").set_value("440000").run()
    app.selectbox(key="customers_region_0_city_440000").set_value("440100").run()  # 广州市
    text_input(app, "名称 *").input("晨星")
    text_input(app, "统一社会信用代码").input(CODE)
    app = click(app, "创建客户")
    errors = " ".join(e.value for e in app.error)
    assert "该信用代码的登记地区为 440300，与所选的 广东省 广州市 不符" in errors
    assert text_input(app, "统一社会信用代码").value == CODE
    assert app.selectbox(key="customers_region_0_city_440000").value == "440100"


def test_a_rep_blocked_by_a_colleagues_customer_learns_the_owner_and_cannot_override(app_world: AppWorld) -> None:
    create_random_customer(app_world.db, app_world.world.rep_other_team, name="深圳晨星科技有限公司 (secret)",
                           credit_code=CODE, email="ceo@secret.example")
    app = open_page(app_world.world.rep.username, "pages/customers.py")
    text_input(app, "Name *").input("晨星")
    text_input(app, "Unified social credit code").input(CODE)
    app = click(app, "Create customer")
    warning = " ".join(w.value for w in app.warning)
    assert "Fay Faraway" in warning and "block" in warning
    assert "secret" not in warning and "ceo@" not in warning  # nothing of the record itself
    assert not [c for c in app.checkbox if "anyway" in c.label]  # a rep has no override of a block
    assert any("only a manager or an admin" in c.value for c in app.caption)


def test_an_admin_sets_the_duplicate_rules_in_english(app_world: AppWorld) -> None:
    app = open_page(app_world.world.admin.username, "pages/duplicate_rules.py")
    assert app.title[0].value == "Duplicate rules"
    app.radio(key="duplicate_rules_name").set_value("block")
    app.radio(key="duplicate_rules_credit_code").set_value("off")
    app = click(app, "Save duplicate rules")
    assert any("saved" in s.value for s in app.toast)
    rules = duplicate_rules(app_world.db, app_world.world.admin)
    assert (rules["name"], rules["credit_code"], rules["email"]) == ("block", "off", "warn")


def test_the_duplicate_rules_page_speaks_chinese_and_is_for_admins_only(
    app_world: AppWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    speak_chinese(app_world, app_world.world.admin.username, monkeypatch)
    app = open_page(app_world.world.admin.username, "pages/duplicate_rules.py")
    assert app.title[0].value == "查重规则"
    assert app.radio(key="duplicate_rules_email").format_func("block") == "禁止"
    app.radio(key="duplicate_rules_email").set_value("block")
    app = click(app, "保存查重规则")
    assert any("查重规则已保存" in s.value for s in app.toast)
    assert duplicate_rules(app_world.db, app_world.world.admin)["email"] == "block"

    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    assert "pages/duplicate_rules.py" in [p.path for p in pages_for(Role.ADMIN)]
    assert "pages/duplicate_rules.py" not in [p.path for p in pages_for(Role.MANAGER)]


def test_the_profile_edit_keeps_the_codes_and_changes_the_cascade(app_world: AppWorld) -> None:
    with app_world.db.system_session("test") as session:
        target = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    app = log_in(app_world.world.rep.username)
    app.switch_page("pages/customer_profile.py")
    app.query_params["customer_id"] = str(target)
    app.run()
    prefix = f"profile_{target}"
    app.selectbox(key=f"{prefix}_region_0_province").set_value("330000").run()
    app.selectbox(key=f"{prefix}_region_0_city_330000").set_value("330100").run()
    text_input(app, "Unified social credit code").input("91330106MA2H00001E")
    app = click(app, "Save changes")
    assert not app.exception and not app.error
    assert any("浙江省 杭州市" in m.value for m in app.markdown)  # the details show the cascade's names
    with app_world.db.system_session("test") as session:
        saved = session.get(Customer, target)
        assert saved is not None
        assert (saved.province_code, saved.city_code, saved.credit_code) == ("330000", "330100", "91330106MA2H00001E")
        assert saved.email == "hello@acme.com"  # the rest as it was
