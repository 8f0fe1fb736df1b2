"""The Mail page (admins): the SMTP form refuses a password without an encryption key and keeps the input,
stores it encrypted and never shows it back; the test message runs as a job whose result the page reports;
inbound routes are added and removed (decision 0031, amendment)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models.mail import MailRoute, TenantMailSettings
from crm_ui.text import plain_line
from tests.mail_sink import Sink
from tests.pages.conftest import AppWorld, log_in
from tests.pages.job_helpers import isolated_queue, run_queued_jobs

pytestmark = pytest.mark.usefixtures("isolated_queue")
__all__ = ["isolated_queue"]  # a fixture, used through pytestmark
PASSWORD = "s3cret-app-password"


@pytest.fixture(autouse=True)
def no_environment_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRM_SMTP_HOST", "CRM_MAIL_FROM", "CRM_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def open_mail(app_world: AppWorld, language: str = "en"):  # type: ignore[no-untyped-def]
    app = log_in(app_world.world.admin.username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
    app.switch_page("pages/mail_settings.py")
    return app.run()


def fill_server(app, port: int, *, password: str = "") -> None:  # type: ignore[no-untyped-def]
    app.text_input(key="mail_settings_host").input("127.0.0.1")
    app.number_input(key="mail_settings_port").set_value(port)
    app.text_input(key="mail_settings_from").input("help@acme.example")
    if password:
        app.text_input(key="mail_settings_user").input("help")
        app.text_input(key="mail_settings_password").input(password)
        app.checkbox(key="mail_settings_starttls").check()


def save(app):  # type: ignore[no-untyped-def]
    next(button for button in app.button if button.label in ("Save mail settings", "保存邮件设置")).click()
    return app.run()


def test_a_password_without_a_key_is_refused_in_chinese_and_the_input_kept(
        app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_mail(app_world, "zh-CN")
    assert not app.exception and [title.value for title in app.title] == ["邮件"]
    fill_server(app, 2525, password=PASSWORD)
    app = save(app)
    assert any("无法保存密码" in error.value and "CRM_SECRET_KEY" in error.value for error in app.error)
    assert app.text_input(key="mail_settings_host").value == "127.0.0.1"
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(TenantMailSettings.id)) is None


def test_the_password_is_saved_encrypted_and_never_shown_back(app_world: AppWorld,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", "p" * 40)
    app = open_mail(app_world)
    fill_server(app, 2525, password=PASSWORD)
    app = save(app)
    assert not app.exception and any("Mail settings saved." in message.value for message in app.toast)
    password_box = app.text_input(key="mail_settings_password")
    assert password_box.value == "" and "A password is stored" in (password_box.help or "")
    assert PASSWORD not in str([element.value for element in app.text_input])
    with app_world.db.system_session("test") as session:
        token = session.scalar(select(TenantMailSettings.smtp_password_encrypted))
    assert token and PASSWORD not in token


def test_the_test_message_runs_as_a_job_and_the_page_reports_it(app_world: AppWorld,
                                                                 sink: tuple[Sink, int]) -> None:
    keeper, port = sink
    app = open_mail(app_world)
    assert [caption.value for caption in app.caption if "none is configured" in caption.value]
    fill_server(app, port)
    app = save(app)
    app.text_input(key="mail_settings_test_to").input("not an address")
    next(button for button in app.button if button.label == "Send test mail").click()
    app = app.run()
    assert any("Send a test message to" in error.value and "Not a valid email address" in error.value
               for error in app.error)
    app.text_input(key="mail_settings_test_to").input("me@acme.example")
    next(button for button in app.button if button.label == "Send test mail").click()
    app = app.run()
    assert not app.exception and keeper.messages == []  # the page only queued it
    assert len(run_queued_jobs(app_world.db)) == 1
    app = app.run()
    sent = f"Test message sent to {plain_line('me@acme.example')} through {plain_line('127.0.0.1')}:{port}"
    assert any(message.value.startswith(sent) for message in app.success)
    [(_, rcpt_tos, _message)] = keeper.messages
    assert rcpt_tos == ["me@acme.example"]


def test_an_admin_routes_an_address_to_a_team_and_removes_it(app_world: AppWorld) -> None:
    app = open_mail(app_world)
    app.text_input(key="mail_settings_route_address").input("nonsense")
    next(button for button in app.button if button.label == "Save route").click()
    app = app.run()
    assert any("Write an address" in error.value for error in app.error)
    app.text_input(key="mail_settings_route_address").input("Billing@")
    app.selectbox(key="mail_settings_route_team").select_index(0)
    next(button for button in app.button if button.label == "Save route").click()
    app = app.run()
    assert any("Route saved." in message.value for message in app.toast)
    with app_world.db.system_session("test") as session:
        assert list(session.scalars(select(MailRoute.address))) == ["billing@"]
    app.button(key="mail_settings_route_delete").click()
    app = app.run()
    assert any("Route deleted." in message.value for message in app.toast)
    with app_world.db.system_session("test") as session:
        assert list(session.scalars(select(MailRoute.address))) == []


@pytest.mark.parametrize(("language", "message"), [
    ("en", "Only a server on this machine"), ("zh-CN", "只有本机上的服务器"),
])
def test_the_mailbox_form_refuses_clear_text_to_another_machine_and_saves_an_encrypted_password(
        app_world: AppWorld, monkeypatch: pytest.MonkeyPatch, language: str, message: str) -> None:
    from crm_core.models.jobs import JobSchedule
    from crm_core.models.mail import MailInbox

    monkeypatch.setenv("CRM_SECRET_KEY", "k" * 40)
    app = open_mail(app_world, language)
    app.checkbox(key="mail_inbox_enabled").check()
    app.text_input(key="mail_inbox_host").input("imap.acme.example")
    app.selectbox(key="mail_inbox_security").set_value("none")
    app.text_input(key="mail_inbox_user").input("support@acme.example")
    app.text_input(key="mail_inbox_password").input(PASSWORD)
    next(button for button in app.button if button.label in ("Save mailbox", "保存邮箱")).click()
    app = app.run()
    assert any(message in error.value for error in app.error)
    assert app.text_input(key="mail_inbox_host").value == "imap.acme.example"  # the input is kept
    app.selectbox(key="mail_inbox_security").set_value("tls")
    next(button for button in app.button if button.label in ("Save mailbox", "保存邮箱")).click()
    app = app.run()
    assert not app.exception and not app.error
    with app_world.db.system_session("test") as session:
        inbox = session.scalar(select(MailInbox))
        schedule = session.scalar(select(JobSchedule.enabled).where(JobSchedule.kind == "mail_fetch"))
    assert inbox is not None and (inbox.host, inbox.security, inbox.port) == ("imap.acme.example", "tls", 993)
    assert inbox.password_encrypted and PASSWORD not in inbox.password_encrypted
    assert schedule is True
    assert PASSWORD not in str(app.text_input(key="mail_inbox_password").value)
    assert [button.label for button in app.button if button.key == "mail_inbox_fetch"]  # read it now, on demand
