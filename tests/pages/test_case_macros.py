"""Macros: the picker on the case page fills the reply with the case's values (en and zh-CN, hostile
values kept as text), and the Macros page — a manager's and an admin's, not a rep's — saves one and explains
a bad one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.mail.outbound import send_queued_mail
from crm_core.models import Customer
from crm_core.services import contacts
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.macros import save_macro
from crm_ui.text import plain_line
from tests.pages.conftest import AppWorld, log_in
from tests.pages.test_service_pages import open_case, speak_chinese

# a value that looks like a variable stays as typed (markup is refused by the contact rules)
HOSTILE = "Li Lei {agent_name}"


def seed(app_world: AppWorld) -> int:
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    contact_id = contacts.create_contact(db, world.admin, contacts.ContactInput(customer_id=customer_id,
                                                                                name=HOSTILE))
    save_macro(db, world.admin, name="Greeting", language="en",
               body="Dear {contact_name}, about case #{case_number} for {customer_name}. {agent_name}")
    save_macro(db, world.admin, name="问候", language="zh-CN",
               body="{contact_name}您好，工单 #{case_number}。{agent_name}")
    return create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer", contact_id=contact_id,
                                                assignee_id=world.rep.user_id))


def test_the_macro_picker_fills_the_reply_in_english(app_world: AppWorld) -> None:
    case_id = seed(app_world)
    app = open_case(app_world.world.rep.username, case_id)
    assert not app.exception
    picker = app.selectbox(key=f"case_macro_{case_id}")
    assert picker.options == ["Greeting"]  # only the reader's language
    app.button(key=f"case_macro_use_{case_id}").click()
    app = app.run()
    assert app.text_area(key=f"case_reply_body_{case_id}").value == (
        f"Dear {HOSTILE}, about case #{case_id} for Acme Trading. Rita Rep")


def test_the_macro_picker_fills_the_reply_in_chinese(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    case_id = seed(app_world)
    app = open_case(app_world.world.rep.username, case_id)
    assert not app.exception
    assert app.selectbox(key=f"case_macro_{case_id}").options == ["问候"]
    use = app.button(key=f"case_macro_use_{case_id}")
    assert use.label == "使用快捷回复"
    use.click()
    app = app.run()
    assert app.text_area(key=f"case_reply_body_{case_id}").value == f"{HOSTILE}您好，工单 #{case_id}。Rita Rep"


def page_titles(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [title.value for title in app.title]


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_a_manager_or_admin_saves_a_macro_and_an_unknown_variable_is_explained(app_world: AppWorld,
                                                                                role: str) -> None:
    app = log_in(getattr(app_world.world, role).username)
    app.switch_page("pages/macros.py")
    app = app.run()
    assert not app.exception and page_titles(app) == ["Macros"]
    form_inputs = [box for box in app.text_input if box.label == "Name"]
    form_inputs[-1].input("Bad")
    [body] = [area for area in app.text_area if area.label == "Text"]
    body.input("Hi {customer}")
    next(button for button in app.button if button.label == "Save macro").click()
    app = app.run()
    assert any("Unknown variable: customer" in error.value for error in app.error)
    [body] = [area for area in app.text_area if area.label == "Text"]
    assert body.value == "Hi {customer}"
    body.input("Hi {contact_name}")
    next(button for button in app.button if button.label == "Save macro").click()
    app = app.run()
    assert not app.exception
    assert any("Macro saved." in message.value for message in app.success)


def test_a_rep_has_no_macros_page_and_the_sla_settings_no_macros_tab(app_world: AppWorld) -> None:
    from crm_ui.navigation import pages_for

    world = app_world.world
    assert "pages/macros.py" not in [spec.path for spec in pages_for(world.rep.role)]
    app = log_in(world.rep.username)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in the rep's menu
        app.switch_page("pages/macros.py")
    app = log_in(world.admin.username)
    app.switch_page("pages/sla_settings.py")
    app = app.run()
    assert "Macros" not in [tab.label for tab in app.tabs]


def test_the_case_page_shows_a_failed_reply_email_with_its_error(app_world: AppWorld) -> None:
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    contact_id = contacts.create_contact(db, world.admin, contacts.ContactInput(
        customer_id=customer_id, name="Li Lei", email="li@example.test"))
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer", contact_id=contact_id,
                                                   assignee_id=world.rep.user_id))
    add_case_reply(db, world.rep, case_id, "On it.")
    assert send_queued_mail(db, world.rep.tenant_id, None) == {"sent": 0, "failed": 1}
    app = open_case(world.rep.username, case_id)
    assert not app.exception
    assert "Emails" in [header.value for header in app.subheader]
    # the address and the error are escaped data (shown as typed, never as links or markup)
    [warning] = [w.value for w in app.warning if plain_line("li@example.test") in w.value]
    assert warning.startswith("Sent to") and "failed (attempt 1)" in warning and "not configured" in warning
