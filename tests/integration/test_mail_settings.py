"""A tenant's own SMTP settings on every database: the password encrypted under CRM_SECRET_KEY (refused
without one, never read back), admins only, case replies and the test message sent through them to a
local aiosmtpd sink by jobs, the environment's server otherwise (decision 0031, amendment)."""

from __future__ import annotations

import pytest
from huey import Huey, MemoryHuey
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.jobs.runner import execute_job
from crm_core.jobs.service import submit_job
from crm_core.mail.outbound import MailSettingsUnusable, tenant_mail_settings
from crm_core.models.jobs import JobStatus
from crm_core.models.mail import TenantMailSettings
from crm_core.models.service import CaseMessage
from crm_core.queries.jobs import JobView, get_job
from crm_core.queries.mail_settings import mail_settings_view
from crm_core.services import contacts
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.mail_settings import MailSettingsInput, request_test_mail, save_mail_route, save_mail_settings
from tests.factories import World, build_world, create_random_customer
from tests.hosting import free_port
from tests.mail_sink import Sink

KEY = "k" * 40
PASSWORD = "s3cret-pässword"


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def queue() -> Huey:
    return MemoryHuey("kestrel-test-mail-settings")


@pytest.fixture(autouse=True)
def no_environment_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRM_SMTP_HOST", "CRM_SMTP_PORT", "CRM_MAIL_FROM", "CRM_MAIL_DOMAIN", "CRM_SMTP_USER",
                 "CRM_SMTP_PASSWORD", "CRM_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def stored(db: Database, tenant_id: int) -> TenantMailSettings | None:
    with db.system_session("test") as session:
        row = session.scalar(select(TenantMailSettings).where(TenantMailSettings.tenant_id == tenant_id))
        session.expunge_all()
        return row


def sink_settings(port: int, **changes: object) -> MailSettingsInput:
    values: dict[str, object] = {"smtp_host": "127.0.0.1", "smtp_port": port, "from_address": "Help@Acme.example"}
    values.update(changes)
    return MailSettingsInput(**values)  # type: ignore[arg-type]


def job_of(db: Database, world: World, job_id: int, queue: Huey) -> JobView:
    execute_job(db, job_id, queue=queue)
    with db.session(world.admin) as session:
        return get_job(session, job_id, queue=queue)


def test_a_password_is_refused_without_a_key_and_nothing_is_saved(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.admin, sink_settings(2525, smtp_user="help", password=PASSWORD, starttls=True))
    assert refused.value.errors == {"password": ("mail.settings.no_key", {})}
    assert stored(db, world.admin.tenant_id) is None


def test_a_short_key_is_refused_too(db: Database, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", "short")
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.admin, sink_settings(2525, smtp_user="help", password=PASSWORD, starttls=True))
    assert refused.value.errors == {"password": ("mail.settings.short_key", {})}


def test_the_password_is_stored_encrypted_never_shown_and_kept_when_left_empty(
        db: Database, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", KEY)
    version = save_mail_settings(db, world.admin, sink_settings(587, smtp_user="help", password=PASSWORD,
                                                                 starttls=True))
    row = stored(db, world.admin.tenant_id)
    assert row is not None and row.smtp_password_encrypted and PASSWORD not in row.smtp_password_encrypted
    assert row.from_address == "help@acme.example"
    with db.session(world.admin) as session:
        view = mail_settings_view(session)
        assert view.has_password and PASSWORD not in repr(view)
        assert tenant_mail_settings(session, world.admin.tenant_id).password == PASSWORD  # type: ignore[union-attr]
    # an edit without a password keeps it; "" removes it
    version = save_mail_settings(db, world.admin, sink_settings(465, smtp_user="help", starttls=True),
                                 expected_version=version)
    with db.session(world.admin) as session:
        assert tenant_mail_settings(session, world.admin.tenant_id).password == PASSWORD  # type: ignore[union-attr]
    save_mail_settings(db, world.admin, sink_settings(465, password="", starttls=False), expected_version=version)
    row = stored(db, world.admin.tenant_id)
    assert row is not None and row.smtp_password_encrypted is None and row.smtp_port == 465


def test_a_login_without_starttls_and_half_a_server_are_refused(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.admin, sink_settings(25, smtp_user="help"))
    assert refused.value.errors == {"starttls": ("mail.settings.starttls_required", {})}
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.admin, MailSettingsInput(smtp_host="smtp.acme.example"))
    assert set(refused.value.errors) == {"from_address"}
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.admin, sink_settings(0, smtp_host="bad host"))
    assert set(refused.value.errors) == {"smtp_host", "smtp_port"}


@pytest.mark.parametrize("role", ["manager", "rep", "analyst"])
def test_only_an_admin_changes_the_mail_settings(db: Database, world: World, role: str, queue: Huey) -> None:
    actor = getattr(world, role)
    with pytest.raises(AccessDenied):
        save_mail_settings(db, actor, sink_settings(25))
    with pytest.raises(AccessDenied):
        save_mail_route(db, actor, address="support@", team_id=world.east_team_id)
    with pytest.raises(AccessDenied):
        request_test_mail(db, actor, "me@acme.example", queue=queue)
    assert stored(db, world.admin.tenant_id) is None


def test_a_route_needs_an_address(db: Database, world: World) -> None:
    for address in ("support", "a b@", "x@y@z", "x@not a domain"):
        with pytest.raises(ValidationFailed) as refused:
            save_mail_route(db, world.admin, address=address, team_id=world.east_team_id)
        assert refused.value.errors == {"address": ("mail.routes.bad_address", {})}


def test_case_replies_go_out_through_the_tenants_server(db: Database, world: World, queue: Huey,
                                                         sink: tuple[Sink, int]) -> None:
    keeper, port = sink
    save_mail_settings(db, world.admin, sink_settings(port))
    customer_id = create_random_customer(db, world.admin)
    contact_id = contacts.create_contact(db, world.admin, contacts.ContactInput(
        customer_id=customer_id, name="Li Lei", email="li.lei@example.test"))
    case_id = create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Printer",
                                                     contact_id=contact_id))
    add_case_reply(db, world.admin, case_id, "On it.")
    view = job_of(db, world, submit_job(db, world.admin, "case_mail_send", {}, queue=queue), queue)
    assert (view.status, view.result) == (JobStatus.SUCCEEDED, {"sent": 1, "failed": 0})
    [(mail_from, rcpt_tos, sent)] = keeper.messages
    assert (mail_from, rcpt_tos, sent["From"]) == ("help@acme.example", ["li.lei@example.test"], "help@acme.example")


def test_a_password_that_no_longer_decrypts_fails_the_reply_with_the_reason(
        db: Database, world: World, queue: Huey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SECRET_KEY", KEY)
    save_mail_settings(db, world.admin, sink_settings(free_port(), smtp_user="help", password=PASSWORD,
                                                       starttls=True))
    monkeypatch.setenv("CRM_SECRET_KEY", "another key of forty characters, not KEY")
    with db.session(world.admin) as session, pytest.raises(MailSettingsUnusable):
        tenant_mail_settings(session, world.admin.tenant_id)
    customer_id = create_random_customer(db, world.admin)
    contact_id = contacts.create_contact(db, world.admin, contacts.ContactInput(
        customer_id=customer_id, name="Li Lei", email="li.lei@example.test"))
    case_id = create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Printer",
                                                     contact_id=contact_id))
    add_case_reply(db, world.admin, case_id, "On it.")
    view = job_of(db, world, submit_job(db, world.admin, "case_mail_send", {}, queue=queue), queue)
    assert view.result == {"sent": 0, "failed": 1}
    with db.system_session("test") as session:
        error = session.scalar(select(CaseMessage.error).where(CaseMessage.case_id == case_id))
    assert error is not None and "cannot be decrypted" in error


def test_the_environments_server_is_used_when_the_tenant_has_none(
        db: Database, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SMTP_HOST", "mail.kestrel.example")
    monkeypatch.setenv("CRM_MAIL_FROM", "crm@kestrel.example")
    with db.session(world.admin) as session:
        settings = tenant_mail_settings(session, world.admin.tenant_id)
        assert settings is not None and (settings.host, settings.port) == ("mail.kestrel.example", 25)
        assert mail_settings_view(session).environment_host == "mail.kestrel.example:25"
    save_mail_settings(db, world.admin, MailSettingsInput(default_team_id=world.east_team_id))  # a queue only
    with db.session(world.admin) as session:
        settings = tenant_mail_settings(session, world.admin.tenant_id)
        assert settings is not None and settings.host == "mail.kestrel.example"


def test_the_test_message_is_sent_by_a_job_and_a_refusal_is_its_reason(
        db: Database, world: World, queue: Huey, sink: tuple[Sink, int]) -> None:
    keeper, port = sink
    nobody = request_test_mail(db, world.admin, "me@acme.example", queue=queue)
    view = job_of(db, world, nobody, queue)
    assert view.status == JobStatus.FAILED and view.error_key == "mail.test.failed"
    assert "not configured" in str(view.error_params["error"])
    save_mail_settings(db, world.admin, sink_settings(port))
    view = job_of(db, world, request_test_mail(db, world.admin, " Me@Acme.example ", queue=queue), queue)
    assert view.status == JobStatus.SUCCEEDED
    assert view.result == {"to": "me@acme.example", "host": "127.0.0.1", "port": port}
    [(_, rcpt_tos, sent)] = keeper.messages
    assert rcpt_tos == ["me@acme.example"] and sent["Subject"].startswith("Test message from Kestrel CRM")
    version = stored(db, world.admin.tenant_id).version  # type: ignore[union-attr]
    save_mail_settings(db, world.admin, sink_settings(free_port()), expected_version=version)  # nothing listens
    view = job_of(db, world, request_test_mail(db, world.admin, "me@acme.example", queue=queue), queue)
    assert view.status == JobStatus.FAILED and "ConnectionRefusedError" in str(view.error_params["error"])
    with pytest.raises(ValidationFailed):
        request_test_mail(db, world.admin, "not an address", queue=queue)


def test_another_tenants_team_is_no_queue_for_a_route_or_the_default(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        save_mail_route(db, world.other_admin, address="support@", team_id=world.east_team_id)
    assert refused.value.errors == {"team_id": ("validation.choice", {})}
    with pytest.raises(ValidationFailed) as refused:
        save_mail_settings(db, world.other_admin, MailSettingsInput(default_team_id=world.east_team_id))
    assert refused.value.errors == {"default_team_id": ("validation.choice", {})}
