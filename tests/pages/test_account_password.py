"""My account: changing one's own password (the form; session ends are tested on every database in
tests/integration/test_login_sessions.py and across tabs in Chromium, tests/e2e/test_sessions.py)."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import User
from crm_core.services import auth
from crm_ui.context import SESSION_STARTED_STATE
from tests.factories import PASSWORD
from tests.pages.conftest import AppWorld, log_in

NEW_PASSWORD = "Brand-new-pass-42"


def test_changing_my_password_on_my_account_page(app_world: AppWorld) -> None:
    username = app_world.world.rep.username
    here = log_in(username)
    started = here.session_state[SESSION_STARTED_STATE]
    here.switch_page("pages/account.py").run()
    boxes = {w.label: w for w in here.text_input}
    # a wrong current password: refused, explained, nothing typed is lost
    boxes["Current password"].input("not-my-password-9")
    boxes["New password"].input(NEW_PASSWORD)
    boxes["New password again"].input(NEW_PASSWORD)
    next(b for b in here.button if b.label == "Change password").click().run()
    assert not here.exception
    assert any("not your current password" in e.value for e in here.error)
    assert {w.label: w.value for w in here.text_input}["New password"] == NEW_PASSWORD
    {w.label: w for w in here.text_input}["Current password"].input(PASSWORD)
    next(b for b in here.button if b.label == "Change password").click().run()
    assert not here.exception
    assert any("Password changed" in s.value for s in here.success)
    assert all(not w.value for w in here.text_input if "password" in w.label.lower())  # cleared once saved
    # this session's start moved past the cut-off: it stays signed in, the others end
    assert here.session_state[SESSION_STARTED_STATE] > started
    with app_world.db.system_session("test") as session:
        user = session.scalars(select(User).where(User.username == username)).one()
    assert auth.verify_password(NEW_PASSWORD, user.password_hash)
    assert user.sessions_valid_after is not None and user.sessions_valid_after > started
    assert auth.load_actor(app_world.db, username, session_started=here.session_state[SESSION_STARTED_STATE])
    assert auth.load_actor(app_world.db, username, session_started=started) is None
