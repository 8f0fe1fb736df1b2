"""The merge dialog of the Customer 360 (issue 17), in English and Chinese: pick the duplicate, choose
the fields, see what moves, confirm, land on the survivor with a toast; reps get no dialog."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Contact, Customer
from crm_core.models.merges import Merge
from crm_core.services.contacts import ContactInput, create_contact
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in


def customer_id(app_world: AppWorld, name: str) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalars(select(Customer.id).where(Customer.name == name)).one()


def open_profile(username: str, customer: int, language: str = "en"):  # type: ignore[no-untyped-def]
    app = log_in(username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
    app.switch_page("pages/customer_profile.py")
    app.query_params["customer_id"] = str(customer)
    return app.run()


def widget(widgets, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in widgets if w.label == label)


def duplicate_of_acme(app_world: AppWorld) -> tuple[int, int]:
    world = app_world.world
    survivor = customer_id(app_world, "Acme Trading")
    duplicate = create_random_customer(app_world.db, world.rep_same_team, name="Acme Trading Co.", email="",
                                       phone="021 5555 0100", industry="**Retail**")
    create_contact(app_world.db, world.rep_same_team, ContactInput(duplicate, "Lin Mei"))
    return survivor, duplicate


def test_a_manager_merges_a_duplicate_choosing_fields_and_lands_on_the_survivor(app_world: AppWorld) -> None:
    survivor, duplicate = duplicate_of_acme(app_world)
    app = open_profile(app_world.world.manager.username, survivor)
    assert not app.exception
    assert any(e.label == "Merge a duplicate into this customer…" for e in app.expander)
    widget(app.text_input, "Find the duplicate").input("Acme")
    app.run()
    pick = widget(app.selectbox, "Duplicate to merge into this one")
    assert pick.options == ["Acme Trading Co. · Tom Teammate"]  # this customer itself is not offered
    pick.set_value(duplicate)
    app.run()
    assert not app.exception
    # a radio per differing field: this record's non-empty value by default, else the duplicate's
    name = widget(app.radio, "Name")
    assert name.value == "survivor"
    phone = widget(app.radio, "Phone")
    assert phone.value == "merged"
    industry = widget(app.radio, "Industry")
    assert industry.value == "merged"
    assert "\\*\\*Retail\\*\\*" in industry.options  # the duplicate's text shown as text, not bold Markdown
    name.set_value("merged")
    moves = next(frame.value for frame in app.dataframe if "Rows" in frame.value.columns)
    assert dict(zip(moves["What"], moves["Rows"], strict=True))["Contacts"] == 1
    next(b for b in app.button if b.label.startswith("Merge \"Acme Trading Co")).click()
    app.run()
    assert not app.exception
    assert any("was merged into" in toast.value for toast in app.toast)
    assert app.title[0].value == "Acme Trading Co\\."
    history = app.dataframe[-1].value
    assert "Merged · customer" in set(history["What"])
    with app_world.db.system_session("test") as session:
        kept, merged = session.get(Customer, survivor), session.get(Customer, duplicate)
        assert kept is not None and merged is not None
        assert (kept.name, kept.phone, kept.email) == ("Acme Trading Co.", "021 5555 0100", "hello@acme.com")
        assert merged.archived_at is not None
        assert session.scalars(select(Contact.customer_id).where(Contact.name == "Lin Mei")).one() == survivor


def test_the_dialog_speaks_chinese_and_merges_too(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # AppTest formats the options of every widget outside the script run, where session state is empty:
    # the page's translated select boxes would be formatted in English there, so the language is fixed
    monkeypatch.setattr("crm_ui.context.lang", lambda: "zh-CN")
    survivor, duplicate = duplicate_of_acme(app_world)
    app = open_profile(app_world.world.manager.username, survivor, "zh-CN")
    assert not app.exception
    assert any(e.label == "将重复客户合并到此客户…" for e in app.expander)
    widget(app.text_input, "查找重复客户").input("Acme")
    app.run()
    widget(app.selectbox, "要合并到此客户的重复客户").set_value(duplicate)
    app.run()
    assert widget(app.radio, "电话").value == "merged"
    moves = next(frame.value for frame in app.dataframe if "行数" in frame.value.columns)
    assert list(moves.columns) == ["内容", "行数"] and "联系人" in set(moves["内容"])
    next(b for b in app.button if b.label.startswith("将“Acme Trading Co")).click()
    app.run()
    assert not app.exception
    assert any("已合并到" in toast.value for toast in app.toast)
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(Merge.survivor_id).where(Merge.merged_id == duplicate)).one() == survivor


def test_a_change_made_meanwhile_is_not_overwritten(app_world: AppWorld) -> None:
    survivor, duplicate = duplicate_of_acme(app_world)
    app = open_profile(app_world.world.manager.username, survivor)
    widget(app.text_input, "Find the duplicate").input("Acme")
    app.run()
    widget(app.selectbox, "Duplicate to merge into this one").set_value(duplicate)
    app.run()
    with app_world.db.system_transaction("test: someone edits the duplicate") as session:
        edited = session.get(Customer, duplicate)
        assert edited is not None
        edited.region = "上海"
    next(b for b in app.button if b.label.startswith("Merge \"Acme Trading Co")).click()
    app.run()
    assert not app.exception
    assert any("changed this record" in error.value for error in app.error)
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(Merge)).all() == []


def test_a_rep_gets_no_merge_dialog(app_world: AppWorld) -> None:
    app = open_profile(app_world.world.rep.username, customer_id(app_world, "Acme Trading"))
    assert not app.exception
    assert all(not e.label.startswith("Merge") for e in app.expander)


def test_the_360_of_a_merged_customer_shows_the_survivor_with_a_notice(app_world: AppWorld) -> None:
    from crm_core.services.merging import Versions, merge_customers

    survivor, duplicate = duplicate_of_acme(app_world)
    with app_world.db.system_session("test") as session:
        versions = Versions(session.get(Customer, survivor).version,  # type: ignore[union-attr]
                            session.get(Customer, duplicate).version)  # type: ignore[union-attr]
    merge_customers(app_world.db, app_world.world.manager, survivor, duplicate, {}, versions)
    app = open_profile(app_world.world.manager.username, duplicate)
    assert not app.exception
    assert app.title[0].value == "Acme Trading"
    assert any(f"Customer #{duplicate} was merged into this one" in s.value for s in app.success)


def test_a_manager_merges_two_contacts_of_the_customer(app_world: AppWorld) -> None:
    world = app_world.world
    target = customer_id(app_world, "Acme Trading")
    kept = create_contact(app_world.db, world.rep, ContactInput(target, "Lin Mei", email="lin@acme.com"))
    duplicate = create_contact(app_world.db, world.rep, ContactInput(target, "Lin  Mei", phone="138 0013 8000"))
    app = open_profile(world.manager.username, target)
    widget(app.selectbox, "Contact to keep").set_value(kept)
    app.run()
    widget(app.selectbox, "Duplicate contact").set_value(duplicate)
    app.run()
    assert widget(app.radio, "Phone").value == "merged"
    next(b for b in app.button if b.label.startswith("Merge \"Lin")).click()
    app.run()
    assert not app.exception
    assert any("was merged into" in toast.value for toast in app.toast)
    with app_world.db.system_session("test") as session:
        survivor, merged = session.get(Contact, kept), session.get(Contact, duplicate)
        assert survivor is not None and merged is not None
        assert (survivor.phone, merged.archived_at is not None) == ("138 0013 8000", True)


def test_hostile_names_and_values_are_shown_as_text_in_the_dialog(app_world: AppWorld) -> None:
    from tests.pages.test_hostile_text import HOSTILE, active_markup, set_by_sql

    world = app_world.world
    survivor = customer_id(app_world, "Acme Trading")
    duplicate = create_random_customer(app_world.db, world.rep_same_team, name="Acme dup")
    for column in ("name", "industry", "region", "source", "external_id"):
        set_by_sql(app_world.db, "customers", column, duplicate, HOSTILE)
    set_by_sql(app_world.db, "users", "full_name", world.rep_same_team.user_id, HOSTILE)
    app = open_profile(world.manager.username, survivor)
    widget(app.text_input, "Find the duplicate").input("Acme")
    app.run()
    widget(app.selectbox, "Duplicate to merge into this one").set_value(duplicate)
    app.run()
    assert not app.exception
    assert len(app.radio) >= 5  # the hostile values are on the radios, the confirm button and the captions
    assert active_markup(app) == []
