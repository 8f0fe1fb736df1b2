"""The frame: login, lockout, navigation per role, language switch."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import User
from crm_core.services import auth
from crm_ui.context import LANG_STATE, SESSION_STARTED_STATE
from crm_ui.session_cookie import SET_PATH, TICKET_STATE, TICKETS
from tests.pages.conftest import AppWorld, log_in, new_app


def page_titles(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [title.value for title in app.title]


def test_the_login_page_asks_for_credentials_before_showing_anything(app_world: AppWorld) -> None:
    app = new_app()
    app.run()
    assert not app.exception
    assert "Customers" not in page_titles(app)
    assert {w.label for w in app.text_input} >= {"Username", "Password"}


def test_a_wrong_password_is_refused_with_a_message(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username, "wrong-password-1")
    assert not app.exception
    assert any("Wrong username or password" in e.value for e in app.error)
    assert "Customers" not in page_titles(app)


def test_five_failures_lock_the_account_in_the_database(app_world: AppWorld) -> None:
    username = app_world.world.rep.username
    app = new_app()
    for _ in range(5):
        app = log_in(username, "wrong-password-1", app)
    assert any("locked" in e.value for e in app.error)
    with app_world.db.system_session("test") as session:
        user = session.scalars(select(User).where(User.username == username)).one()
    assert user.locked_until is not None
    # the right password no longer works while locked, even in a new browser session
    app = log_in(username)
    assert "Customers" not in page_titles(app)
    assert any("locked" in e.value for e in app.error)


def test_a_rep_lands_on_the_dashboard_and_sees_no_admin_page(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    assert not app.exception
    assert page_titles(app) == ["Dashboard"]
    assert "Users & teams" not in str(app.sidebar)


def after_a_stopped_login_run(username: str, name: str | None = None, **frame_state: object):  # type: ignore[no-untyped-def]
    """The login page, then the state a run stopped right after the password check leaves: the authenticator's
    verdict, and of the frame's own keys only ``frame_state``."""
    app = new_app()
    app.run()
    app.session_state["authentication_status"] = True
    app.session_state["username"] = username
    if name is not None:
        app.session_state["name"] = name
    for key, value in frame_state.items():
        app.session_state[key] = value
    return app


def test_a_login_whose_bookkeeping_run_stopped_early_is_recorded_late_not_ended(app_world: AppWorld) -> None:
    """A password login whose callback never ran (the run stopped between the password check and the
    bookkeeping: a CI run showed "Your session has ended" right after Log in) is recorded on the next
    run; it is never ended as if it had been logged out elsewhere."""
    username = app_world.world.rep.username
    app = after_a_stopped_login_run(username, app_world.world.rep.full_name)  # none of the frame's own keys
    app.run()
    assert not app.exception
    assert page_titles(app) == ["Dashboard"]
    assert not any("session has ended" in info.value for info in app.info)
    with app_world.db.system_session("test") as session:
        user = session.scalars(select(User).where(User.username == username)).one()
    assert user.last_login_at is not None  # recorded, as a login through the callback is


def test_a_login_whose_run_stopped_before_the_cookie_ticket_still_gets_its_cookie(app_world: AppWorld) -> None:
    """The password was checked and recorded, but the run stopped before the frame issued the ticket whose
    image makes the host set the login cookie (a CI run: logged in, no cookie after 45 s, so a reload
    would have asked for the password again). The next run issues it."""
    username = app_world.world.rep.username
    app = after_a_stopped_login_run(username, app_world.world.rep.full_name, kestrel_password_login=True,
                                    **{SESSION_STARTED_STATE: auth.record_login(app_world.db, username)})
    app.run()
    assert not app.exception
    assert page_titles(app) == ["Dashboard"]
    ticket = app.session_state[TICKET_STATE]
    assert TICKETS.shown(ticket)
    shown = [element.proto.body for element in app.sidebar.children.values() if type(element).__name__ == "Html"]
    assert any(f"{SET_PATH}?ticket={ticket}" in body for body in shown)
    assert TICKETS.redeem(ticket) == username


def test_a_late_recorded_login_of_a_locked_account_is_refused(app_world: AppWorld) -> None:
    username = app_world.world.rep.username
    for _ in range(5):
        log_in(username, "wrong-password-1")
    app = after_a_stopped_login_run(username)
    app.run()
    assert "Dashboard" not in page_titles(app)
    assert any("locked" in error.value for error in app.error)


def test_an_admin_can_open_users_and_teams(app_world: AppWorld) -> None:
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/users.py").run()
    assert not app.exception
    assert page_titles(app) == ["Users & teams"]


def test_switching_to_chinese_translates_the_page_and_is_remembered(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    app.selectbox(key="kestrel_language_choice_en").select_index(1).run()
    assert page_titles(app) == ["仪表盘"]
    with app_world.db.system_session("test") as session:
        user = session.scalars(select(User).where(User.username == app_world.world.rep.username)).one()
    assert user.language == "zh-CN"


def test_switching_language_in_one_session_leaves_the_users_other_sessions_alone(app_world: AppWorld) -> None:
    username = app_world.world.rep.username
    desk, phone = log_in(username), log_in(username)
    assert page_titles(desk) == page_titles(phone) == ["Dashboard"]
    desk.selectbox(key="kestrel_language_choice_en").select_index(1).run()
    assert page_titles(desk) == ["仪表盘"]
    phone.run()  # the other session's next rerun (a click, a refresh of a fragment)
    assert page_titles(phone) == ["Dashboard"]
    assert phone.session_state[LANG_STATE] == "en"
    # the next login (a new session) starts in the preference saved by the switch
    assert page_titles(log_in(username)) == ["仪表盘"]


def test_a_language_picked_on_the_login_form_holds_and_becomes_the_preference(app_world: AppWorld) -> None:
    app = new_app()
    app.run()
    app.selectbox(key="kestrel_language_login_en").select_index(1).run()
    app = log_in(app_world.world.rep.username, app=app)
    assert page_titles(app) == ["仪表盘"]  # the stored preference (English) does not override it
    assert page_titles(log_in(app_world.world.rep.username)) == ["仪表盘"]  # nor the next login's language


def test_a_stale_value_of_the_login_forms_language_box_never_switches_the_session_back(app_world: AppWorld) -> None:
    """The rep's stored preference is 中文; the login form was shown in English. Its box (``_en``) is not the
    sidebar's (``_zh-CN``), so a rerun carrying the login box's "English" (a click racing the login's own reruns,
    seen in Chromium) cannot switch the session back."""
    from crm_core.services import auth

    auth.set_language(app_world.db, app_world.world.rep.username, "zh-CN")
    app = log_in(app_world.world.rep.username)
    assert page_titles(app) == ["仪表盘"]
    assert "kestrel_language_login_en" not in app.session_state  # the login form's box is gone with the form
    assert app.selectbox(key="kestrel_language_choice_zh-CN").value == "zh-CN"  # the sidebar's box of 中文
    with app_world.db.system_session("test") as session:
        user = session.scalars(select(User).where(User.username == app_world.world.rep.username)).one()
    assert user.language == "zh-CN"


def test_demo_mode_says_so_on_the_login_form_and_beside_every_page(app_world: AppWorld, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = new_app()
    app.run()
    assert not any("Demo mode" in w.value for w in app.warning)  # not in demo mode: no banner
    monkeypatch.setenv("CRM_DEMO_MODE", "1")
    app = new_app()
    app.run()
    assert any("Demo mode" in w.value for w in app.warning)
    app = log_in(app_world.world.rep.username)
    assert any("Demo mode" in c.value for c in app.sidebar.caption)


def test_a_database_behind_the_code_says_which_command_to_run_and_shows_no_file_menu(app_world: AppWorld) -> None:
    with app_world.db.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    app = new_app().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "The database schema is not up to date. Run this command, then reload the page:"]
    assert app.code[0].value == "python -m crm_core init"
    # before any role's menu exists Streamlit would list every file of pages/ in the sidebar
    assert any("[data-testid='stSidebar']{display:none}" in m.value for m in app.markdown)
    assert not app.text_input  # no login form on a schema the code cannot read
