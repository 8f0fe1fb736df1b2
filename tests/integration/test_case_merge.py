"""Merging a duplicate case into the case that lives on, on every database: what moves, what stays, what
is refused (nothing changed then), who may, and where the customer's later mail lands."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, MergeRefused, NotFound, StaleRecord
from crm_core.mail.inbound import receive_message
from crm_core.models import AuditEvent, Case
from crm_core.models.merges import Merge
from crm_core.models.service import CaseAttachment, CaseEvent, CaseMessage, CaseSla
from crm_core.services import contacts, sla_settings
from crm_core.services.case_attachments import NewFile, attach_files
from crm_core.services.case_merging import merge_cases
from crm_core.services.cases import CaseInput, add_case_reply, close_case, create_case
from crm_core.services.merging import Versions
from tests.factories import World, build_world, create_random_customer, customer_with_contact, tenant_slug

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def with_policies(db: Database, world: World) -> None:
    """SLA policies on an always-open UTC calendar: every case runs clocks."""
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Desk", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    for priority in ("urgent", "high", "normal", "low"):
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=60, next_response_minutes=60,
            resolution_minutes=480))


def new_case(db: Database, actor: Actor, customer_id: int, subject: str, contact_id: int | None = None) -> int:
    return create_case(db, actor, CaseInput(customer_id=customer_id, subject=subject, assignee_id=actor.user_id,
                                            contact_id=contact_id))


def version(db: Database, case_id: int) -> int:
    with db.system_session("test") as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.version


def versions(db: Database, survivor_id: int, merged_id: int) -> Versions:
    return Versions(version(db, survivor_id), version(db, merged_id))


def loaded(db: Database, case_id: int) -> Case:
    with db.system_session("test") as session:
        case = session.get(Case, case_id)
        assert case is not None
        session.expunge(case)
        return case


def kinds(db: Database, case_id: int) -> list[str]:
    with db.system_session("test") as session:
        return list(session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)
                                    .order_by(CaseEvent.id)))


def test_merging_moves_the_conversation_closes_the_duplicate_and_stops_its_clocks(db: Database,
                                                                                   world: World) -> None:
    with_policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    contact_id = contacts.create_contact(db, world.rep, contacts.ContactInput(
        customer_id=customer_id, name="Li Lei", email="li.lei@example.test"))
    survivor = new_case(db, world.rep, customer_id, "Scanner does not pair", contact_id)
    duplicate = new_case(db, world.rep, customer_id, "Scanner still broken", contact_id)
    add_case_reply(db, world.rep, duplicate, "Have you tried pairing mode?")
    add_case_reply(db, world.rep, duplicate, "Customer is a VIP", internal=True)
    [attachment_id] = attach_files(db, world.rep, duplicate, [NewFile("error.png", PNG)])
    with db.system_session("test") as session:
        assert session.scalar(select(CaseSla.next_due_at).where(CaseSla.case_id == duplicate)) is not None
        messages = list(session.scalars(select(CaseMessage.id).where(CaseMessage.case_id == duplicate)))

    result = merge_cases(db, world.rep, survivor, duplicate, versions(db, survivor, duplicate))

    merged = loaded(db, duplicate)
    assert (merged.status, merged.merged_into_id) == ("closed", survivor)
    assert merged.resolved_at is not None
    assert kinds(db, duplicate) == ["opened", "status", "assignee", "merged", "status"]
    assert kinds(db, survivor)[-1] == "merged_from"
    assert kinds(db, survivor).count("reply") == 1 and kinds(db, survivor).count("note") == 1
    with db.system_session("test") as session:
        assert session.scalar(select(CaseSla.next_due_at).where(CaseSla.case_id == duplicate)) is None
        assert session.scalar(select(CaseSla.next_due_at).where(CaseSla.case_id == survivor)) is not None
        moved_messages = list(session.scalars(select(CaseMessage.id).where(CaseMessage.case_id == survivor)))
        attachment = session.get(CaseAttachment, attachment_id)
        assert attachment is not None and attachment.case_id == survivor
        ledger = session.scalars(select(Merge).where(Merge.entity == "case", Merge.merged_id == duplicate)).one()
        merge_audits = set(session.scalars(select(AuditEvent.entity_id).where(
            AuditEvent.action == "merge", AuditEvent.entity == "case")))
        moved_audits = session.scalar(select(AuditEvent.id).where(
            AuditEvent.entity == "case_attachment", AuditEvent.entity_id == attachment_id,
            AuditEvent.action == "update"))
    assert len(messages) == 1 and sorted(moved_messages) == sorted(messages)  # the public reply's email
    assert (ledger.survivor_id, ledger.actor_id, ledger.id) == (survivor, world.rep.user_id, result.merge_id)
    assert result.moved == ledger.moved == {"case_events.case_id": 3, "case_messages.case_id": 1,
                                            "case_attachments.case_id": 1}
    assert merge_audits == {survivor, duplicate}
    assert moved_audits is not None
    assert result.survivor_version == version(db, survivor) > 1


def test_nothing_changes_when_the_merge_is_refused(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    other_customer = create_random_customer(db, world.rep)
    survivor = new_case(db, world.rep, customer_id, "A")
    duplicate = new_case(db, world.rep, customer_id, "B")
    stranger = new_case(db, world.rep, other_customer, "C")
    with pytest.raises(MergeRefused) as same:
        merge_cases(db, world.rep, survivor, survivor, versions(db, survivor, survivor))
    with pytest.raises(MergeRefused) as other:
        merge_cases(db, world.rep, survivor, stranger, versions(db, survivor, stranger))
    with pytest.raises(StaleRecord):
        merge_cases(db, world.rep, survivor, duplicate, Versions(version(db, survivor), version(db, duplicate) + 1))
    closed = new_case(db, world.rep, customer_id, "D")
    close_case(db, world.rep, closed, expected_version=version(db, closed))
    with pytest.raises(MergeRefused) as into_closed:
        merge_cases(db, world.rep, closed, duplicate, versions(db, closed, duplicate))
    assert (same.value.message_key, other.value.message_key, into_closed.value.message_key) == (
        "merge.error.same_record", "case_merge.error.other_customer", "case_merge.error.survivor_closed")
    assert loaded(db, duplicate).merged_into_id is None and loaded(db, duplicate).status == "open"
    assert kinds(db, survivor) == ["opened", "status", "assignee"]


def test_a_merged_case_cannot_be_merged_again_nor_take_in_another(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    first, second, third = (new_case(db, world.rep, customer_id, subject) for subject in ("A", "B", "C"))
    merge_cases(db, world.rep, first, second, versions(db, first, second))
    with pytest.raises(MergeRefused) as again:
        merge_cases(db, world.rep, third, second, versions(db, third, second))
    with pytest.raises(MergeRefused) as chain:
        merge_cases(db, world.rep, second, third, versions(db, second, third))
    assert (again.value.message_key, chain.value.message_key) == ("merge.error.already_merged",
                                                                  "merge.error.survivor_merged")


def test_cases_merged_into_the_duplicate_follow_it_to_the_survivor(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    first, second, third = (new_case(db, world.rep, customer_id, subject) for subject in ("A", "B", "C"))
    merge_cases(db, world.rep, second, first, versions(db, second, first))
    result = merge_cases(db, world.rep, third, second, versions(db, third, second))
    assert loaded(db, first).merged_into_id == third  # one hop, never a chain
    assert result.moved["cases.merged_into_id"] == 1
    assert kinds(db, third).count("merged_from") == 2


def test_only_who_may_change_both_cases_merges_them(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    survivor = new_case(db, world.rep, customer_id, "A")
    duplicate = new_case(db, world.rep, customer_id, "B")
    with pytest.raises(NotFound):  # another team's rep does not see the rep's customer
        merge_cases(db, world.rep_other_team, survivor, duplicate, versions(db, survivor, duplicate))
    with pytest.raises(NotFound):  # another tenant
        merge_cases(db, world.other_admin, survivor, duplicate, versions(db, survivor, duplicate))
    with pytest.raises(AccessDenied):  # an analyst sees both and changes neither
        merge_cases(db, world.analyst, survivor, duplicate, versions(db, survivor, duplicate))
    assert loaded(db, duplicate).merged_into_id is None
    merge_cases(db, world.manager, survivor, duplicate, versions(db, survivor, duplicate))
    assert loaded(db, duplicate).merged_into_id == survivor


def mail(subject: str, message_id: str, **headers: str) -> bytes:
    email = EmailMessage()
    email["From"] = "li.lei@example.test"
    email["To"] = "support@example.test"
    email["Subject"] = subject
    email["Message-ID"] = message_id
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content("About my scanner.")
    return email.as_bytes()


def test_the_customers_answer_to_the_duplicates_thread_lands_on_the_survivor(db: Database, world: World) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    to = [f"support+{tenant_slug(db, world)}@example.test"]
    survivor = receive_message(db, mail("Scanner", "<a1@example.test>"), to).case_id
    duplicate = receive_message(db, mail("Scanner again", "<b1@example.test>"), to).case_id
    assert survivor is not None and duplicate is not None and survivor != duplicate
    merge_cases(db, world.admin, survivor, duplicate, versions(db, survivor, duplicate))

    by_header = receive_message(db, mail("Re: Scanner again", "<b2@example.test>", In_Reply_To="<b1@example.test>",
                                         References="<b1@example.test>"), to)
    by_tag = receive_message(db, mail(f"Re: [#CASE-{duplicate}] Scanner again", "<b3@example.test>"), to)
    assert (by_header.action, by_header.case_id) == ("threaded", survivor)
    assert (by_tag.action, by_tag.case_id) == ("threaded", survivor)
    assert kinds(db, duplicate).count("inbound") == 0
    assert kinds(db, survivor).count("inbound") == 2
