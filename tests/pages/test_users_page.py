"""The Users page edits a user on the version it showed: a change saved meanwhile is named, nothing is lost."""

from __future__ import annotations

from crm_core.models import User
from crm_core.services.tenants import UserInput, update_user
from tests.pages.conftest import AppWorld, log_in


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

