"""The Users page edits a user on the version it showed: a change saved meanwhile is named, nothing is lost."""

from __future__ import annotations

import re

import pytest

from crm_core.models import User
from crm_core.services.tenants import UserInput, create_user, update_user
from crm_ui.text import plain_line
from tests.factories import PASSWORD
from tests.pages.conftest import AppWorld, log_in, open_as


def test_an_admin_renames_a_user_and_a_change_made_meanwhile_is_not_overwritten(app_world: AppWorld) -> None:
    world = app_world.world
    app = log_in(world.admin.username)
    app.switch_page("pages/users.py").run()
    choice = next(s for s in app.selectbox if s.key == "users_edit_choice")
    rep_id = world.rep.user_id
    choice.set_value(rep_id).run()
    with app_world.db.system_session("test") as session:
        rep = session.get(User, rep_id)
        assert rep is not None
        version, full_name = rep.version, rep.full_name
    full_name_input = next(w for w in app.text_input if w.value == full_name)
    full_name_input.input("Rita Rep-Wang")
    # meanwhile another admin changes the same user
    update_user(app_world.db, world.admin, rep_id,
                UserInput(world.rep.username, full_name, "rep", email="rita@new.example",
                          team_id=min(world.rep.team_ids)),
                expected_version=version)
    next(b for b in app.button if b.label == "Save").click().run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("changed" in text.lower() for text in errors), errors
    with app_world.db.system_session("test") as session:
        rep = session.get(User, rep_id)
        assert rep is not None and rep.full_name == full_name and rep.email == "rita@new.example"
    assert any(w.value == "Rita Rep-Wang" for w in app.text_input)  # the admin's typing is kept

    # reloading shows the current version; the admin's next save goes through
    next(b for b in app.button if b.label == "Reload this user").click().run()
    next(w for w in app.text_input if w.value == full_name).input("Rita Rep-Wang")
    next(b for b in app.button if b.label == "Save").click().run()
    assert not app.error and not app.exception
    with app_world.db.system_session("test") as session:
        rep = session.get(User, rep_id)
        assert rep is not None and rep.full_name == "Rita Rep-Wang" and rep.email == "rita@new.example"
    # the save is confirmed where the admin is (a toast), not at the top of the page
    assert [toast.value for toast in app.toast] == [f'User "{world.rep.username}" saved.']
    assert not app.success




def li_lei(app_world: AppWorld) -> tuple[int, str]:
    """A rep whose name holds Markdown and HTML, last in the list (not the picker's first): id and name."""
    name = "Zhou **Li** <b>Lei</b> [x](javascript:alert(1))"
    return create_user(app_world.db, app_world.world.admin,
                       UserInput(username="li.lei", full_name=name, role="rep", password=PASSWORD)), name


@pytest.mark.parametrize(("language", "button", "role"), [("en", "Change this user", "Sales rep"),
                                                         ("zh-CN", "修改此用户", "销售代表")])
def test_on_a_phone_each_user_is_a_card_with_the_name_as_text_and_a_button_to_change_the_user(
    app_world: AppWorld, language: str, button: str, role: str
) -> None:
    """The phone's cards (the wide table's rows, which stays): the name as text, the facts in the user's
    language, and a "Change this user" button."""
    user_id, name = li_lei(app_world)
    app = open_as(app_world.world.admin.username, "pages/users.py", language)
    assert not app.exception
    assert name in list(app.dataframe[0].value.iloc[:, 1])  # the wide screen's table
    assert f"**{plain_line(name)}**" in [markdown.value for markdown in app.markdown]  # bold title, text inside
    facts = [re.sub(r"\\(.)", r"\1", caption.value) for caption in app.caption]  # markdown escapes undone
    assert any(fact.startswith(("Username: li.lei · ", "用户名：li.lei · ")) and role in fact for fact in facts)
    assert app.button(key=f"users_list_pick_{user_id}").label == button


def test_a_users_card_button_opens_that_user_in_the_edit_form(app_world: AppWorld) -> None:
    """On a phone the edit form (change, deactivate) is reached from the user's card, not the table's row.
    (In English: AppTest formats the page's other pickers outside the run, in English.)"""
    user_id, name = li_lei(app_world)
    app = open_as(app_world.world.admin.username, "pages/users.py")
    assert app.selectbox(key="users_edit_choice").value != user_id
    app.button(key=f"users_list_pick_{user_id}").click().run()
    assert not app.exception
    assert app.selectbox(key="users_edit_choice").value == user_id
    assert name in [box.value for box in app.text_input]  # the edit form holds this user
    assert [box.value for box in app.checkbox if box.label == "Active"] == [True]  # deactivating is one untick


def test_the_new_user_form_reads_in_one_order_on_a_phone_as_on_a_desktop(app_world: AppWorld) -> None:
    """Each pair of fields is a row of its own: on a phone, where columns stack, the form still reads username,
    full name, email, role, team, password (not the whole left column first)."""
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/users.py").run()
    form = next(block for block in app.get("form") if block.proto.form.form_id.startswith("users_create"))
    labels = [getattr(widget, "label", None) for kind in ("text_input", "selectbox") for widget in form.get(kind)]
    assert labels[:4] == ["Username *", "Full name *", "Email", "Password *"]
    assert labels[4:] == ["Role", "Team"]
    rows = [block for block in form.children.values() if block.type == "flex_container"]  # one row of two per pair
    assert len(rows) == 3
