"""The bell on every page, the notifications page (mark read, decide an access request) and the preferences
on My account, in English and Chinese; the create form's Request access under a blocked creation."""

from __future__ import annotations

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from crm_core.models import Customer
from crm_core.services.access_requests import request_access
from crm_core.services.notifications import preferences_of
from crm_core.services.tasks import TaskInput, create_task
from tests.pages.conftest import AppWorld, log_in


def links(app: AppTest) -> list[str]:
    return [getattr(link, "label", "") for link in app.get("page_link")]


def button(app: AppTest, label: str) -> object:
    return next(b for b in app.button if b.label == label)


def test_the_bell_counts_my_unread_and_the_page_marks_them_read(app_world: AppWorld) -> None:
    world = app_world.world
    create_task(app_world.db, world.manager, TaskInput(title="Call **Acme** now", assignee_id=world.rep.user_id))
    create_task(app_world.db, world.manager, TaskInput(title="Second", assignee_id=world.rep.user_id))
    app = log_in(world.rep.username)
    assert not app.exception
    assert "🔔 Notifications (2 unread)" in links(app)
    app.switch_page("pages/notifications.py").run()
    assert not app.exception
    texts = [m.value for m in app.markdown]
    # the title is user text: shown as written (escaped), never bold or HTML
    assert any("Call \\*\\*Acme\\*\\*" in text and "Mia Manager gave you a task" in text for text in texts)
    button(app, "Mark read").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert "🔔 Notifications (1 unread)" in links(log_in(world.rep.username))  # the frame's bell, on a new run
    button(app, "Mark all read").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert any("1 notifications marked read" in s.value for s in app.success)
    assert "🔔 Notifications" in links(log_in(world.rep.username))
    assert [b.label for b in app.button if b.label == "Mark read"] == []


def test_the_owner_approves_an_access_request_in_chinese(app_world: AppWorld) -> None:
    world = app_world.world
    request_access(app_world.db, world.rep_other_team, name="Acme Trading", reason="展会上认识")
    from crm_core.services.auth import set_language

    set_language(app_world.db, world.rep.username, "zh-CN")
    assert "🔔 通知（1 条未读）" in links(log_in(world.rep.username))  # AppTest keeps the sidebar of a first run only
    set_language(app_world.db, world.rep.username, "en")  # AppTest's dashboard box trips over a language
    app = log_in(world.rep.username)  # stored before login; the page switches to 中文 once open
    app.switch_page("pages/notifications.py").run()
    app.session_state["kestrel_lang"] = "zh-CN"
    app.run()
    app.switch_page("pages/notifications.py").run()
    assert not app.exception
    assert any("Fay Faraway 申请 Acme Trading" in m.value for m in app.markdown)
    button(app, "批准：转给申请人").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert any("该客户现在归 Fay Faraway" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        owner = session.scalar(select(Customer.owner_id).where(Customer.name == "Acme Trading"))
    assert owner == world.rep_other_team.user_id


def test_a_blocked_creation_offers_request_access(app_world: AppWorld) -> None:
    world = app_world.world
    app = log_in(world.rep_other_team.username)
    app.switch_page("pages/customers.py").run()
    name_box = next(w for w in app.text_input if w.label == "Name *")
    name_box.input("Acme Trading")
    button(app, "Create customer").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert any("Rita Rep" in w.value for w in app.warning)
    app.text_input(key="customers_access_reason").input("Met them at the fair")
    button(app, "Request access").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert any("Your request was sent" in s.value for s in app.success)
    owner = log_in(world.rep.username)
    assert "🔔 Notifications (1 unread)" in links(owner)


def test_my_preferences_are_saved_on_my_account(app_world: AppWorld) -> None:
    world = app_world.world
    app = log_in(world.rep.username)
    app.switch_page("pages/account.py").run()
    assert not app.exception
    app.checkbox(key="account_in_app_mention").uncheck()
    app.checkbox(key="account_robot_task_due").uncheck()
    button(app, "Save notification settings").click().run()  # type: ignore[attr-defined]
    assert not app.exception
    assert any("Notification settings saved" in s.value for s in app.success)
    with app_world.db.session(world.rep) as session:
        chosen = preferences_of(session)
    assert chosen["mention"] == (False, True) and chosen["task_due"] == (True, False)
    app.session_state["kestrel_lang"] = "zh-CN"
    app.run()
    assert "保存通知设置" in [b.label for b in app.button]
    assert app.checkbox(key="account_in_app_mention").value is False


def test_an_admin_sets_a_teams_dingtalk_robot_whose_secret_is_never_shown(app_world: AppWorld) -> None:
    from crm_core.models.notifications import TeamRobot
    from crm_core.services.webhooks import set_allow_private_targets

    world = app_world.world
    app = log_in(world.admin.username)
    app.switch_page("pages/users.py").run()
    app.selectbox(key="robot_team").set_value(world.east_team_id).run()
    boxes = {box.label: box for box in app.text_input}
    boxes["Webhook URL"].input("ftp://robot.example/send")
    next(b for b in app.button if b.label == "Save robot").click().run()
    assert not app.exception
    assert any("Webhook URL" in e.value for e in app.error)
    set_allow_private_targets(app_world.db, world.admin, True)
    platform = next(box for box in app.selectbox if box.label == "Robot")
    platform.set_value("dingtalk")
    boxes = {box.label: box for box in app.text_input}
    boxes["Webhook URL"].input("http://127.0.0.1:9/robot/send?access_token=t")
    boxes["Signing secret (DingTalk)"].input("SEC-never-shown")
    next(b for b in app.button if b.label == "Save robot").click().run()
    assert not app.exception
    assert any("Robot saved" in s.value for s in app.success)
    assert all(box.value != "SEC-never-shown" for box in app.text_input)
    with app_world.db.system_session("test") as session:
        robot = session.query(TeamRobot).one()
    assert (robot.platform, robot.signing_secret, robot.language) == ("dingtalk", "SEC-never-shown", "zh-CN")
