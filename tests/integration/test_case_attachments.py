"""Files on a case, on every database: kept by content under the attachment store, typed from their bytes,
within the limits (all or nothing), downloaded by whoever sees the case (audited), and kept from the
customer's email (a refused one dropped with a note while the mail still becomes a case)."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core import attachment_store
from crm_core.config import attachments_dir
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.mail.inbound import receive_message
from crm_core.models import AuditEvent, Case
from crm_core.models.service import CaseAttachment, CaseEvent
from crm_core.services.case_attachments import (
    NewFile,
    attach_files,
    check_files,
    download_attachment,
    keep_files,
    remove_attachment,
)
from crm_core.services.cases import CaseInput, add_case_reply, close_case, create_case
from tests.factories import World, build_world, create_random_customer, customer_with_contact, tenant_slug

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
EXE = b"MZ\x90\x00" + b"\x00" * 60


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def case_id(db: Database, world: World) -> int:
    customer_id = create_random_customer(db, world.rep)
    return create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Scanner",
                                                assignee_id=world.rep.user_id))


def rows(db: Database, case_id: int) -> list[CaseAttachment]:
    with db.system_session("test") as session:
        found = list(session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id)
                                     .order_by(CaseAttachment.id)))
        session.expunge_all()
        return found


def test_a_file_is_kept_by_its_content_and_comes_back_as_it_was(db: Database, world: World, case_id: int) -> None:
    [attachment_id] = attach_files(db, world.rep, case_id, [NewFile("../../etc/报告\u202e.png", PNG)])
    [row] = rows(db, case_id)
    digest = hashlib.sha256(PNG).hexdigest()
    assert (row.id, row.file_name, row.size, row.sha256, row.content_type, row.source, row.uploaded_by_id) == (
        attachment_id, "报告.png", len(PNG), digest, "image/png", "upload", world.rep.user_id)
    stored = attachments_dir().resolve() / str(world.rep.tenant_id) / digest[:2] / digest
    assert stored.read_bytes() == PNG
    assert not list(attachments_dir().rglob("*报告*"))  # never under the user's name

    file = download_attachment(db, world.rep, case_id, attachment_id)
    assert (file.file_name, file.content_type, file.data) == ("报告.png", "image/png", PNG)
    with db.system_session("test") as session:
        [event] = session.scalars(select(CaseEvent).where(CaseEvent.id == row.event_id))
        downloads = list(session.scalars(select(AuditEvent.actor_id).where(
            AuditEvent.action == "download", AuditEvent.entity == "case_attachment",
            AuditEvent.entity_id == attachment_id)))
    assert (event.kind, event.body, event.case_id) == ("attachment", "报告.png", case_id)
    assert downloads == [world.rep.user_id]


def test_the_type_comes_from_the_bytes_and_the_served_name_agrees(db: Database, world: World,
                                                                   case_id: int) -> None:
    attach_files(db, world.rep, case_id, [NewFile("invoice.pdf.exe", PDF), NewFile("notes", "价格,数量\n1,2\n"
                                                                                     .encode("gb18030"))])
    assert [(row.file_name, row.content_type) for row in rows(db, case_id)] == [
        ("invoice.pdf.exe.pdf", "application/pdf"), ("notes.txt", "text/plain")]


@pytest.mark.parametrize(("name", "data", "key"), [
    ("setup.png", EXE, "case_files.error.executable"),
    ("page.txt", b"<!DOCTYPE html><script>alert(1)</script>", "case_files.error.markup"),
    ("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "case_files.error.markup"),
    ("empty.txt", b"", "case_files.error.empty"),
])
def test_a_refused_file_refuses_the_whole_upload(db: Database, world: World, case_id: int, name: str, data: bytes,
                                                 key: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        attach_files(db, world.rep, case_id, [NewFile("fine.png", PNG), NewFile(name, data)])
    assert refused.value.errors["files"][0] == key
    assert refused.value.errors["files"][1]["name"] == name
    assert rows(db, case_id) == []


def test_the_size_limit_is_configured(db: Database, world: World, case_id: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_ATTACHMENT_MAX_BYTES", str(len(PNG) - 1))
    with pytest.raises(ValidationFailed) as refused:
        attach_files(db, world.rep, case_id, [NewFile("big.png", PNG)])
    assert refused.value.errors["files"][0] == "case_files.error.too_large"
    with pytest.raises(ValidationFailed) as many:
        attach_files(db, world.rep, case_id, [NewFile(f"{number}.pdf", PDF) for number in range(11)])
    assert many.value.errors["files"] == ("case_files.error.too_many", {"max": 10})


def test_a_reply_carries_its_files_all_or_nothing(db: Database, world: World, case_id: int) -> None:
    with pytest.raises(ValidationFailed):
        add_case_reply(db, world.rep, case_id, "See the log", files=[NewFile("run.sh", b"#!/bin/sh\nrm -rf /\n")])
    with db.system_session("test") as session:
        assert session.scalar(select(CaseEvent.id).where(CaseEvent.case_id == case_id,
                                                         CaseEvent.kind == "reply")) is None
    event_id = add_case_reply(db, world.rep, case_id, "See the photo", internal=True,
                              files=[NewFile("photo.png", PNG)])
    [row] = rows(db, case_id)
    assert row.event_id == event_id


def test_who_sees_the_case_downloads_and_nobody_else(db: Database, world: World, case_id: int) -> None:
    [attachment_id] = attach_files(db, world.rep, case_id, [NewFile("photo.png", PNG)])
    assert download_attachment(db, world.analyst, case_id, attachment_id).data == PNG  # reads, and is audited
    assert download_attachment(db, world.manager, case_id, attachment_id).data == PNG
    for stranger in (world.rep_other_team, world.other_admin):
        with pytest.raises(NotFound):
            download_attachment(db, stranger, case_id, attachment_id)
    other = create_case(db, world.rep, CaseInput(customer_id=create_random_customer(db, world.rep), subject="Other"))
    with pytest.raises(NotFound):  # the right file through another case's address
        download_attachment(db, world.rep, other, attachment_id)
    with pytest.raises(AccessDenied):
        attach_files(db, world.analyst, case_id, [NewFile("photo.png", PNG)])
    with pytest.raises(NotFound):
        attach_files(db, world.rep_other_team, case_id, [NewFile("photo.png", PNG)])


def test_a_closed_case_keeps_its_files_and_takes_no_more(db: Database, world: World, case_id: int) -> None:
    attach_files(db, world.rep, case_id, [NewFile("photo.png", PNG)])
    with db.system_session("test") as session:
        case = session.get(Case, case_id)
        assert case is not None
        version = case.version
    close_case(db, world.rep, case_id, expected_version=version)
    with pytest.raises(ValidationFailed) as refused:
        attach_files(db, world.rep, case_id, [NewFile("more.png", PNG)])
    assert refused.value.errors["files"][0] == "cases.flow.closed_is_final"
    assert len(rows(db, case_id)) == 1


def test_bytes_changed_on_disk_are_not_served(db: Database, world: World, case_id: int) -> None:
    [attachment_id] = attach_files(db, world.rep, case_id, [NewFile("photo.png", PNG + b"tampered-test")])
    digest = hashlib.sha256(PNG + b"tampered-test").hexdigest()
    Path(attachments_dir().resolve() / str(world.rep.tenant_id) / digest[:2] / digest).write_bytes(PNG)
    with pytest.raises(NotFound):
        download_attachment(db, world.rep, case_id, attachment_id)
    assert attachment_store.load(world.rep.tenant_id, digest) is None


def test_an_emails_files_are_kept_and_a_refused_one_is_noted(db: Database, world: World) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    to = [f"support+{tenant_slug(db, world)}@example.test"]
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "li.lei@example.test", to[0], "Scanner error"
    email["Message-ID"] = "<files@example.test>"
    email.set_content("Photo and invoice attached.")
    email.add_attachment(PNG, maintype="application", subtype="octet-stream", filename="screen.png")
    email.add_attachment(PDF, maintype="application", subtype="pdf", filename="发票.pdf")
    email.add_attachment(EXE, maintype="image", subtype="png", filename="innocent.png")
    outcome = receive_message(db, email.as_bytes(), to)
    assert outcome.action == "created" and outcome.case_id is not None
    kept = rows(db, outcome.case_id)
    assert [(row.file_name, row.content_type, row.source) for row in kept] == [
        ("screen.png", "image/png", "mail"), ("发票.pdf", "application/pdf", "mail")]
    with db.system_session("test") as session:
        [note] = session.scalars(select(CaseEvent).where(CaseEvent.case_id == outcome.case_id,
                                                         CaseEvent.kind == "file_refused"))
    assert (note.body, note.to_value) == ("innocent.png", "case_files.error.executable")


# --- removing a file (decision 0052) ------------------------------------------------------------------

def stored_path(tenant_id: int, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return attachments_dir().resolve() / str(tenant_id) / digest[:2] / digest


def test_the_uploader_removes_their_file_its_bytes_leave_and_the_trail_keeps_its_name(
        db: Database, world: World, case_id: int) -> None:
    [attachment_id] = attach_files(db, world.rep, case_id, [NewFile("passport.png", PNG + b"remove-me")])
    assert stored_path(world.rep.tenant_id, PNG + b"remove-me").is_file()
    assert remove_attachment(db, world.rep, case_id, attachment_id) == "passport.png"
    assert rows(db, case_id) == []
    assert not stored_path(world.rep.tenant_id, PNG + b"remove-me").exists()
    assert not list(stored_path(world.rep.tenant_id, PNG + b"remove-me").parent.glob(".*"))  # nothing set aside
    with pytest.raises(NotFound):
        download_attachment(db, world.rep, case_id, attachment_id)
    with pytest.raises(NotFound):  # gone: a second removal finds nothing
        remove_attachment(db, world.rep, case_id, attachment_id)
    with db.system_session("test") as session:
        [event] = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                          CaseEvent.kind == "file_removed"))
        [audit] = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "delete", AuditEvent.entity == "case_attachment",
            AuditEvent.entity_id == attachment_id))
    assert (event.body, event.actor_id) == ("passport.png", world.rep.user_id)
    assert audit.actor_id == world.rep.user_id
    assert (audit.changes["file_name"], audit.changes["case_id"], audit.changes["uploaded_by_id"]) == (
        ["passport.png", None], [case_id, None], [world.rep.user_id, None])


def test_bytes_another_row_holds_stay_until_the_last_row_naming_them_goes(
        db: Database, world: World, case_id: int) -> None:
    other = create_case(db, world.rep, CaseInput(customer_id=create_random_customer(db, world.rep), subject="Other",
                                                 assignee_id=world.rep.user_id))
    [first] = attach_files(db, world.rep, case_id, [NewFile("same.pdf", PDF)])
    [second] = attach_files(db, world.rep, other, [NewFile("copy.pdf", PDF)])
    remove_attachment(db, world.rep, case_id, first)
    assert download_attachment(db, world.rep, other, second).data == PDF
    remove_attachment(db, world.rep, other, second)
    assert not stored_path(world.rep.tenant_id, PDF).exists()


@pytest.mark.parametrize(("remover", "closed", "allowed"), [
    ("rep", False, True),  # the uploader
    ("rep", True, False),  # ... not once the case is closed
    ("rep_same_team", False, False),  # works the case in the team's queue, did not upload it
    ("manager", False, True),
    ("manager", True, True),  # a manager takes a file off a closed case (a document sent by mistake)
    ("admin", True, True),
    ("analyst", False, False),
])
def test_who_may_remove_a_file(db: Database, world: World, remover: str, closed: bool, allowed: bool) -> None:
    case_id = create_case(db, world.rep, CaseInput(customer_id=create_random_customer(db, world.rep), subject="Queue",
                                                   assignee_id=world.rep.user_id, team_id=world.east_team_id))
    [attachment_id] = attach_files(db, world.rep, case_id, [NewFile("photo.png", PNG)])
    if closed:
        with db.system_session("test") as session:
            case = session.get(Case, case_id)
            assert case is not None
            version = case.version
        close_case(db, world.rep, case_id, expected_version=version)
    actor = getattr(world, remover)
    if allowed:
        remove_attachment(db, actor, case_id, attachment_id)
        assert rows(db, case_id) == []
    else:
        with pytest.raises(AccessDenied):
            remove_attachment(db, actor, case_id, attachment_id)
        assert [row.id for row in rows(db, case_id)] == [attachment_id]


def test_nobody_outside_the_case_removes_its_files_and_the_access_layer_refuses_a_direct_delete(
        db: Database, world: World, case_id: int) -> None:
    [attachment_id] = attach_files(db, world.manager, case_id, [NewFile("photo.png", PNG)])
    for stranger in (world.rep_other_team, world.other_admin):
        with pytest.raises(NotFound):
            remove_attachment(db, stranger, case_id, attachment_id)
    with pytest.raises(AccessDenied), db.transaction(world.rep) as session:  # the manager's file, not via the service
        row = session.get(CaseAttachment, attachment_id)
        assert row is not None
        session.delete(row)
    assert [row.id for row in rows(db, case_id)] == [attachment_id]


def test_a_file_of_the_customers_email_is_removed_by_a_manager_not_by_the_rep(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    from crm_core.services import contacts

    contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                                 email="li.lei@example.test"))
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "li.lei@example.test", "support@example.test", "ID card"
    email.set_content("My ID card, as asked.")
    email.add_attachment(PNG, maintype="image", subtype="png", filename="id-card.png")
    outcome = receive_message(db, email.as_bytes(), [f"support+{tenant_slug(db, world)}@example.test"])
    assert outcome.case_id is not None
    [row] = rows(db, outcome.case_id)
    with pytest.raises(AccessDenied):
        remove_attachment(db, world.rep, outcome.case_id, row.id)
    remove_attachment(db, world.manager, outcome.case_id, row.id)
    assert rows(db, outcome.case_id) == []


def test_a_removal_racing_with_a_new_copy_of_the_same_bytes_never_leaves_a_row_without_them(
        db: Database, world: World, case_id: int) -> None:
    path = stored_path(world.rep.tenant_id, PNG)
    # the removal set the file aside, then found a row naming it (committed meanwhile): the file goes back
    attachment_store.store(world.rep.tenant_id, PNG)
    answers = iter([False, True])
    assert attachment_store.remove_unreferenced(world.rep.tenant_id, hashlib.sha256(PNG).hexdigest(),
                                                lambda: next(answers)) is False
    assert path.read_bytes() == PNG and not list(path.parent.glob(".*"))
    # the removal deleted the file after a transaction stored it and before that transaction committed: the
    # keeping transaction stores the bytes again after its commit
    with db.transaction(world.rep) as session:
        case = session.get(Case, case_id)
        assert case is not None
        keep_files(session, case, check_files([NewFile("photo.png", PNG)]), event_id=None, source="upload",
                   uploaded_by_id=world.rep.user_id)
        path.unlink()
    assert path.read_bytes() == PNG
