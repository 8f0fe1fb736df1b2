"""Files on a case: kept with their checked type and size, downloaded by whoever sees the case.

:func:`attach_files` keeps files on a case (each with an ``attachment`` row on its timeline);
:func:`crm_core.services.cases.add_case_reply` keeps a reply's or note's files on that history row,
and :mod:`crm_core.mail.inbound` a mail's. Every way in checks the files with
:func:`check_files` (the limits of :mod:`crm_core.rules.attachments`: size from
``CRM_ATTACHMENT_MAX_BYTES``, the type read from the bytes), all or nothing, and keeps them with
:func:`keep_files`: the bytes in the attachment store under their SHA-256, the metadata in
``case_attachments``. :func:`download_attachment` reads one back under the case's visibility rule
and audits the download (``download``, entity ``case_attachment``). :func:`remove_attachment` takes one
off its case — by whoever uploaded it while the case is open, or by a manager or admin
(:func:`crm_core.access.can_remove_case_file`) — with a ``file_removed`` row on the timeline and the
removed row's values in the audit trail; its bytes leave the store after the commit unless another row
of the tenant holds the same content (:func:`crm_core.attachment_store.remove_unreferenced`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access, attachment_store
from crm_core.access import Actor
from crm_core.config import attachment_max_bytes
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.jobs.after_commit import call_after_commit
from crm_core.models import AuditEvent, Case, CaseStatus, utcnow
from crm_core.models.service import CaseAttachment, CaseEvent, CaseEventKind
from crm_core.rules import attachments as rules


@dataclass(frozen=True)
class NewFile:
    """A file as it came in: the name the user or the mail gave it, and its bytes."""

    file_name: str
    data: bytes


@dataclass(frozen=True)
class CheckedFile:
    """A file the limits accept: its served name and the type read from its bytes."""

    file_name: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class AttachmentFile:
    """A downloaded attachment: the name to save it under, its type and bytes."""

    file_name: str
    content_type: str
    data: bytes


def check_file(new: NewFile, *, max_bytes: int | None = None) -> CheckedFile | tuple[str, dict[str, object]]:
    """The file with its sniffed type and safe name, or the (catalog key, params) of why it is refused."""
    problem = rules.file_problem(new.data, new.file_name, max_bytes=max_bytes or attachment_max_bytes())
    if problem is not None:
        return problem
    content_type = rules.sniff(new.data, new.file_name).content_type
    assert content_type is not None  # file_problem found none
    return CheckedFile(rules.safe_file_name(new.file_name, content_type), new.data, content_type)


def check_files(files: Sequence[NewFile], *, field: str = "files") -> list[CheckedFile]:
    """Every file checked; ValidationFailed on ``field`` naming the first refused one (or too many files)."""
    if len(files) > rules.MAX_FILES:
        raise ValidationFailed({field: ("case_files.error.too_many", {"max": rules.MAX_FILES})})
    checked: list[CheckedFile] = []
    for new in files:
        result = check_file(new)
        if not isinstance(result, CheckedFile):
            raise ValidationFailed({field: result})
        checked.append(result)
    return checked


def keep_files(session: Session, case: Case, files: Sequence[CheckedFile], *, event_id: int | None,
               source: str, uploaded_by_id: int | None) -> list[CaseAttachment]:
    """Store checked files' bytes and add their rows to ``case`` (in the caller's transaction)."""
    rows = []
    for checked in files:
        sha256 = attachment_store.store(case.tenant_id, checked.data)
        # a removal of the same bytes racing with this transaction cannot leave its rows without them
        call_after_commit(session, partial(attachment_store.ensure, case.tenant_id, checked.data))
        rows.append(CaseAttachment(tenant_id=case.tenant_id, case_id=case.id, event_id=event_id,
                                   file_name=checked.file_name, size=len(checked.data), sha256=sha256,
                                   content_type=checked.content_type, source=source,
                                   uploaded_by_id=uploaded_by_id))
    session.add_all(rows)
    return rows


def attach_files(db: Database, actor: Actor, case_id: int, files: Sequence[NewFile]) -> list[int]:
    """Keep ``files`` on a visible, not closed case, all or none; returns the attachments' ids."""
    with db.transaction(actor) as session:
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound("case")
        if not files:
            raise ValidationFailed({"files": ("validation.required", {})})
        checked = check_files(files)
        if case.status == CaseStatus.CLOSED.value:
            raise ValidationFailed({"files": ("cases.flow.closed_is_final", {})})
        now = utcnow()
        ids = []
        for one in checked:
            event = CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=now, kind=CaseEventKind.ATTACHMENT,
                              actor_id=actor.user_id, body=one.file_name)
            session.add(event)
            session.flush()
            rows = keep_files(session, case, [one], event_id=event.id, source="upload",
                              uploaded_by_id=actor.user_id)
            session.flush()
            ids.append(rows[0].id)
        return ids


def download_attachment(db: Database, actor: Actor, case_id: int, attachment_id: int) -> AttachmentFile:
    """One attachment of a case the actor sees (NotFound otherwise, or when its bytes are gone); audited."""
    with db.transaction(actor) as session:
        attachment = session.get(CaseAttachment, attachment_id)
        if attachment is None or attachment.case_id != case_id:
            raise NotFound("attachment")
        data = attachment_store.load(attachment.tenant_id, attachment.sha256)
        if data is None:
            raise NotFound("attachment")
        session.add(AuditEvent(tenant_id=actor.tenant_id, actor_id=actor.user_id, action="download",
                               entity="case_attachment", entity_id=attachment.id,
                               changes={"_case": [None, case_id], "file_name": [None, attachment.file_name]}))
        session.flush()
        return AttachmentFile(rules.safe_file_name(attachment.file_name, attachment.content_type),
                              attachment.content_type, data)


def remove_attachment(db: Database, actor: Actor, case_id: int, attachment_id: int) -> str:
    """Take a file off a case the actor sees (NotFound otherwise; AccessDenied unless they uploaded it and the case
    is not closed, or they are a manager or admin); returns its name. The bytes are deleted after the commit when
    no other row of the tenant names the same content."""
    with db.transaction(actor) as session:
        attachment = session.get(CaseAttachment, attachment_id)
        if attachment is None or attachment.case_id != case_id:
            raise NotFound("attachment")
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound("case")
        if not access.can_remove_case_file(actor, uploaded_by_id=attachment.uploaded_by_id,
                                           case_closed=case.status == CaseStatus.CLOSED.value):
            raise AccessDenied("a case's file is removed by whoever uploaded it, or by a manager or admin")
        tenant_id, sha256, file_name = attachment.tenant_id, attachment.sha256, attachment.file_name
        session.add(CaseEvent(tenant_id=tenant_id, case_id=case_id, at=utcnow(), kind=CaseEventKind.FILE_REMOVED,
                              actor_id=actor.user_id, body=file_name))
        session.delete(attachment)
        session.flush()

    def referenced() -> bool:
        with db.system_session("case file removal", tenant_id=tenant_id) as reading:
            return reading.scalar(select(CaseAttachment.id).where(
                CaseAttachment.tenant_id == tenant_id, CaseAttachment.sha256 == sha256).limit(1)) is not None

    attachment_store.remove_unreferenced(tenant_id, sha256, referenced)
    return file_name
