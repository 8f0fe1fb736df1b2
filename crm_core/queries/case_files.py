"""Read side of a case's files and merges: the attachments the case page lists, and the cases an agent may
merge into the one they are looking at (the merge picker). Scoped by the session like every case read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from crm_core.models import Case, User
from crm_core.models.service import CaseAttachment
from crm_core.rules.fields import search_text

CANDIDATE_LIMIT = 50


@dataclass(frozen=True)
class AttachmentRow:
    """One file of a case as the case page and the API list it."""

    id: int
    case_id: int
    event_id: int | None
    file_name: str
    size: int
    content_type: str
    sha256: str
    source: str
    uploaded_by_id: int | None
    uploaded_by: str | None
    created_at: dt.datetime


def case_attachments(session: Session, case_id: int, *, limit: int = 200) -> list[AttachmentRow]:
    """The newest ``limit`` files of a visible case, newest first (empty when it is not visible)."""
    uploader = aliased(User)
    rows = session.execute(
        select(CaseAttachment.id, CaseAttachment.case_id, CaseAttachment.event_id, CaseAttachment.file_name,
               CaseAttachment.size, CaseAttachment.content_type, CaseAttachment.sha256, CaseAttachment.source,
               CaseAttachment.uploaded_by_id, uploader.full_name.label("uploaded_by"), CaseAttachment.created_at)
        .outerjoin(uploader, uploader.id == CaseAttachment.uploaded_by_id)
        .where(CaseAttachment.case_id == case_id)
        .order_by(CaseAttachment.id.desc()).limit(limit)).all()
    return [AttachmentRow(**row._asdict()) for row in rows]


@dataclass(frozen=True)
class MergeCandidate:
    """A case that could be merged into the one on screen: same customer, not merged itself."""

    id: int
    subject: str
    status: str
    opened_at: dt.datetime
    version: int


def merge_candidates(session: Session, case_id: int, *, search: str = "",
                     limit: int = CANDIDATE_LIMIT) -> list[MergeCandidate]:
    """The visible cases of case ``case_id``'s customer, other than it and not merged, newest first; ``search``
    matches a case number or the subject. Empty when case ``case_id`` is not visible."""
    case = session.get(Case, case_id)
    if case is None:
        return []
    statement = select(Case.id, Case.subject, Case.status, Case.opened_at, Case.version).where(
        Case.customer_id == case.customer_id, Case.id != case.id, Case.merged_into_id.is_(None))
    wanted = search_text(search).lstrip("#")
    if wanted.isdecimal():
        statement = statement.where(Case.id == int(wanted[:12]))
    elif wanted:
        statement = statement.where(Case.subject.contains(wanted, autoescape=True))
    rows = session.execute(statement.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit)).all()
    return [MergeCandidate(*row) for row in rows]
