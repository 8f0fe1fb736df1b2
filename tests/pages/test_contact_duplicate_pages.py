"""Contact duplicates (查重 per entity) on the customer 360's contact form, and the two sections of the
duplicate rules page, in English and 简体中文."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core.models import Contact, Customer
from crm_core.services.auth import set_language
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.duplicate_rules import duplicate_rules, save_duplicate_rules
from tests.pages.conftest import AppWorld, log_in


def customer_id(app_world: AppWorld, name: str) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalars(select(Customer.id).where(Customer.name == name)).one()


def contacts_with_email(app_world: AppWorld, email: str) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalar(select(func.count()).select_from(Contact).where(Contact.email_normalized == email)) or 0


def open_page(username: str, path: str, customer: int | None = None):  # type: ignore[no-untyped-def]
    app = log_in(username)
    app.switch_page(path)
    if customer is not None:
        app.query_params["customer_id"] = str(customer)
    return app.run()


def speak_chinese(app_world: AppWorld, username: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    set_language(app_world.db, username, "zh-CN")


def empty_input(app, label: str):  # type: ignore[no-untyped-def]
    """The contact form's field: the last empty one of that label (the customer's edit form comes first)."""
    return [w for w in app.text_input if w.label == label and w.value == ""][-1]


def click(app, label: str):  # type: ignore[no-untyped-def]
    next(b for b in app.button if b.label == label).click()
    return app.run()


def test_a_warned_contact_keeps_the_input_and_is_added_after_confirming(app_world: AppWorld) -> None:
    world = app_world.world
    create_contact(app_world.db, world.rep, ContactInput(customer_id(app_world, "Acme Trading"), "Wang Li",
                                                         email="wang.li@example.cn"))
    app = open_page(world.rep.username, "pages/customer_profile.py", customer_id(app_world, "张三科技有限公司"))
    empty_input(app, "Name *").input("王丽")
    empty_input(app, "Email").input("Wang.Li@Example.cn")
    app = click(app, "Add contact")
    assert not app.exception
    assert any("A contact with the same Email already exists: Wang Li at Acme Trading (customer owner: Rita Rep)"
               in w.value for w in app.warning)
    assert any("add anyway" in c.value for c in app.caption)
    assert any(w.label == "Name *" and w.value == "王丽" for w in app.text_input)  # the typed values stay
    assert contacts_with_email(app_world, "wang.li@example.cn") == 1
    confirm = next(c for c in app.checkbox if c.label == "Add anyway: this is a different person")
    confirm.check()
    app = click(app, "Add contact")
    assert not app.exception
    assert any("王丽" in s.value for s in app.success)
    assert contacts_with_email(app_world, "wang.li@example.cn") == 2


def test_a_blocked_rep_learns_only_the_owner_in_chinese_and_cannot_confirm(
    app_world: AppWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = app_world.world
    save_duplicate_rules(app_world.db, world.admin, {"email": "block"}, "contact")
    create_contact(app_world.db, world.rep_other_team, ContactInput(customer_id(app_world, "West Coast Ltd"),
                                                                    "Secret Person", email="secret@west.example"))
    speak_chinese(app_world, world.rep.username, monkeypatch)
    app = open_page(world.rep.username, "pages/customer_profile.py", customer_id(app_world, "Acme Trading"))
    empty_input(app, "名称 *").input("某人")
    empty_input(app, "邮箱").input("secret@west.example")
    app = click(app, "添加联系人")
    assert not app.exception
    assert any("Fay Faraway 负责的客户下已存在邮箱相同的联系人，您无权查看该客户。" in w.value for w in app.warning)
    assert all("Secret Person" not in w.value and "West Coast" not in w.value for w in app.warning)
    assert any("只有经理或管理员" in c.value for c in app.caption)
    assert not [c for c in app.checkbox if "仍然添加" in c.label]  # a rep cannot lift a block
    assert contacts_with_email(app_world, "secret@west.example") == 1


def test_a_manager_overrides_a_block_after_confirming(app_world: AppWorld) -> None:
    world = app_world.world
    save_duplicate_rules(app_world.db, world.admin, {"phone": "block"}, "contact")
    acme = customer_id(app_world, "Acme Trading")
    create_contact(app_world.db, world.rep, ContactInput(acme, "Phone Owner", phone="13900139000"))
    app = open_page(world.manager.username, "pages/customer_profile.py", acme)
    empty_input(app, "Name *").input("Second")
    empty_input(app, "Phone").input("+86 139 0013 9000")
    app = click(app, "Add contact")
    assert any("block adding another one" in w.value for w in app.warning)
    next(c for c in app.checkbox if c.label.startswith("Add anyway, overriding")).check()
    app = click(app, "Add contact")
    assert not app.exception and any("Second" in s.value for s in app.success)


def test_the_rules_page_has_a_section_per_entity_in_english(app_world: AppWorld) -> None:
    app = open_page(app_world.world.admin.username, "pages/duplicate_rules.py")
    assert not app.exception
    assert [h.value for h in app.subheader] == [
        "Customers", "Contacts (checked across every customer of the workspace)"]
    assert app.radio(key="duplicate_rules_contact_email").value == "warn"
    app.radio(key="duplicate_rules_contact_phone").set_value("block")
    app = click(app, "Save contact duplicate rules")
    assert any("Contact duplicate rules saved" in s.value for s in app.toast)
    assert duplicate_rules(app_world.db, app_world.world.admin, "contact") == {"email": "warn", "phone": "block"}
    assert duplicate_rules(app_world.db, app_world.world.admin)["phone"] == "warn"  # the customers' untouched


def test_the_rules_page_speaks_chinese_for_contacts(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.admin.username, monkeypatch)
    app = open_page(app_world.world.admin.username, "pages/duplicate_rules.py")
    assert [h.value for h in app.subheader] == ["客户", "联系人（在本工作区所有客户之间检查）"]
    app.radio(key="duplicate_rules_contact_email").set_value("off")
    app = click(app, "保存联系人查重规则")
    assert any("联系人查重规则已保存" in s.value for s in app.toast)
    assert duplicate_rules(app_world.db, app_world.world.admin, "contact")["email"] == "off"
