"""Macros and case emails on every database: who may manage macros, tenants apart, rendering for a case,
and a rep's public reply queueing its email under the case's access rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.jobs.service import ensure_schedule
from crm_core.mail.outbound import KIND as SEND_KIND
from crm_core.models.jobs import JobSchedule
from crm_core.queries.cases import case_emails
from crm_core.queries.macros import list_macros, macro_for_case
from crm_core.services import contacts
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.macros import delete_macro, save_macro
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_admins_and_managers_manage_macros_and_reps_may_not(db: Database, world: World) -> None:
    macro_id = save_macro(db, world.manager, name="Hello", language="en", body="Hi {contact_name}")
    save_macro(db, world.admin, name="Hello", language="en", body="Hello {contact_name}.", macro_id=macro_id,
               expected_version=1)
    with pytest.raises(AccessDenied):
        save_macro(db, world.rep, name="Mine", language="en", body="Hi")
    with pytest.raises(ValidationFailed) as clash:
        save_macro(db, world.admin, name="Hello", language="en", body="Again")
    assert clash.value.errors["name"][0] == "macros.name_taken"
    save_macro(db, world.admin, name="Hello", language="zh-CN", body="您好")  # the same name in another language
    with pytest.raises(ValidationFailed) as unknown:
        save_macro(db, world.admin, name="Bad", language="en", body="{customer.name}")
    assert unknown.value.errors["body"][0] == "macros.unknown_variable"
    with db.session(world.rep) as session:
        assert [(m.name, m.language, m.body) for m in list_macros(session)] == [
            ("Hello", "en", "Hello {contact_name}."), ("Hello", "zh-CN", "您好")]
        assert [m.language for m in list_macros(session, language="zh-CN")] == ["zh-CN"]
    with db.session(world.other_admin) as session:
        assert list_macros(session) == []
    with pytest.raises(AccessDenied):
        delete_macro(db, world.rep, macro_id)
    delete_macro(db, world.admin, macro_id)
    with db.session(world.admin) as session:
        assert [m.language for m in list_macros(session)] == ["zh-CN"]


@pytest.mark.parametrize("role", ["rep", "rep_other_team", "analyst"])
def test_a_rep_or_analyst_is_refused_before_the_macro_is_checked(db: Database, world: World, role: str) -> None:
    macro_id = save_macro(db, world.manager, name="Hello", language="en", body="Hi {contact_name}")
    actor = getattr(world, role)
    with pytest.raises(AccessDenied):  # not "unknown variable": the input of whom may not write is not judged
        save_macro(db, actor, name="", language="xx", body="{nope}")
    with pytest.raises(AccessDenied):
        save_macro(db, actor, name="Hello", language="en", body="Changed", macro_id=macro_id, expected_version=1)
    with pytest.raises(AccessDenied):
        delete_macro(db, actor, macro_id)
    with db.session(world.admin) as session:
        assert [(m.name, m.body, m.version) for m in list_macros(session)] == [("Hello", "Hi {contact_name}", 1)]


def test_a_manager_keeps_their_tenants_macros_only(db: Database, world: World) -> None:
    theirs = save_macro(db, world.other_admin, name="Hello", language="en", body="Hi")
    ours = save_macro(db, world.admin, name="Hello", language="en", body="Hi {customer_name}")
    save_macro(db, world.manager, name="Hello", language="en", body="Hello {customer_name}", macro_id=ours,
               expected_version=1)
    with pytest.raises(NotFound):
        delete_macro(db, world.manager, theirs)
    with pytest.raises(NotFound):
        save_macro(db, world.manager, name="Taken over", language="en", body="Mine now", macro_id=theirs,
                   expected_version=1)
    delete_macro(db, world.manager, ours)
    with db.session(world.admin) as session:
        assert list_macros(session) == []
    with db.session(world.other_admin) as session:
        assert [(m.name, m.body) for m in list_macros(session)] == [("Hello", "Hi")]


def test_a_macro_renders_with_the_case_values_for_the_agent(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Acme Trading")
    contact_id = contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id,
                                                                              name="Li Lei", email="li@example.test"))
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer", contact_id=contact_id))
    macro_id = save_macro(db, world.admin, name="Hello", language="en",
                          body="Dear {contact_name} of {customer_name}, case {case_number}. {agent_name}")
    with db.session(world.rep) as session:
        assert macro_for_case(session, world.rep, macro_id, case_id) == (
            f"Dear Li Lei of Acme Trading, case {case_id}. Rita Rep")
    with db.session(world.rep_other_team) as session:  # a case they may not see renders nothing
        assert macro_for_case(session, world.rep_other_team, macro_id, case_id) is None


def test_a_reps_public_reply_queues_its_email_and_only_their_side_sees_it(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    contact_id = contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id,
                                                                              name="Li Lei", email="Li@Example.test"))
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer", contact_id=contact_id))
    add_case_reply(db, world.rep, case_id, "On it.")
    add_case_reply(db, world.rep, case_id, "note", internal=True)
    with db.session(world.rep) as session:
        [email] = case_emails(session, case_id)
    assert (email.direction, email.address, email.status) == ("out", "li@example.test", "queued")
    with db.session(world.rep_other_team) as session:
        assert case_emails(session, case_id) == []
    with db.session(world.other_admin) as session:
        assert case_emails(session, case_id) == []


def test_the_send_schedule_is_added_once(db: Database, world: World) -> None:
    for _ in range(2):
        with db.system_transaction("test") as session:
            ensure_schedule(session, world.admin.tenant_id, SEND_KIND)
    with db.system_session("test") as session:
        kinds = session.scalars(select(JobSchedule.kind).where(JobSchedule.tenant_id == world.admin.tenant_id,
                                                               JobSchedule.kind == "case_mail_send")).all()
    assert kinds == ["case_mail_send"]
