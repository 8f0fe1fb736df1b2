"""Merge a duplicate case into the case that lives on (the customer wrote twice about one problem).

:func:`merge_cases` runs in ONE transaction under the actor's scope:

1. both cases load through the scoped session (another tenant's, or one the actor may not work:
   NotFound), and the access rules check both writes at the flush (an analyst: AccessDenied);
2. refused with :class:`MergeRefused` (nothing changed): a case into itself, a duplicate merged
   before, a survivor that was itself merged (no chains), a closed survivor, two customers' cases;
   both at the versions the agent saw (StaleRecord otherwise);
3. the duplicate's conversation moves to the survivor: its replies, notes, customer emails and file
   rows of the history (:data:`MOVED_KINDS`), its ``case_messages`` (so a customer's later answer to
   the old thread lands on the survivor) and its attachments; its own flow (opened, status,
   priority, assignee) stays with it, so the survivor's SLA clocks still count from its own start;
4. the duplicate is closed with ``merged_into_id`` and a ``merged`` row on its timeline, the survivor
   gets a ``merged_from`` row; cases merged into the duplicate before now point at the survivor
   (one hop, never a chain); both cases' SLA clocks are computed again (the duplicate's stop);
5. the ``merges`` ledger keeps who merged what (entity ``case``, at most once per duplicate: a
   unique key), each moved row is audited as an update, and both cases get a ``merge`` audit row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import MergeRefused, NotFound
from crm_core.models import Case, CaseStatus, utcnow
from crm_core.models.merges import Merge, MergeEntity
from crm_core.models.service import CaseAttachment, CaseEvent, CaseEventKind, CaseMessage
from crm_core.services.cases import _record, _set_status
from crm_core.services.editing import check_version, translate_stale
from crm_core.services.merging import Versions, audit_merge
from crm_core.services.sla import recompute_case_sla

MOVED_KINDS = (CaseEventKind.REPLY, CaseEventKind.NOTE, CaseEventKind.INBOUND, CaseEventKind.ATTACHMENT,
               CaseEventKind.FILE_REFUSED, CaseEventKind.FILE_REMOVED, CaseEventKind.MERGED_FROM)
"""The history rows that are the case's conversation, and move with it; the rest is the duplicate's own flow."""


@dataclass(frozen=True)
class CaseMergeResult:
    """What a case merge did: the ledger row, the survivor's new version and the rows moved per table."""

    merge_id: int
    survivor_id: int
    survivor_version: int
    moved: dict[str, int]


def merge_cases(db: Database, actor: Actor, survivor_id: int, merged_id: int,
                expected_versions: Versions) -> CaseMergeResult:
    """Merge case ``merged_id`` into ``survivor_id``; raises NotFound, AccessDenied, MergeRefused or
    StaleRecord, and then nothing has changed."""
    if survivor_id == merged_id:
        raise MergeRefused("merge.error.same_record")
    return translate_stale(db, actor, "case", survivor_id,
                           lambda: _merge(db, actor, survivor_id, merged_id, expected_versions))


def _merge(db: Database, actor: Actor, survivor_id: int, merged_id: int, versions: Versions) -> CaseMergeResult:
    with db.transaction(actor) as session:
        survivor, merged = session.get(Case, survivor_id), session.get(Case, merged_id)
        if survivor is None or merged is None:
            raise NotFound("case")
        _check_mergeable(survivor, merged)
        check_version(session, survivor, "case", versions.survivor)
        check_version(session, merged, "case", versions.merged)
        now = utcnow()
        ledger = Merge(tenant_id=actor.tenant_id, entity=MergeEntity.CASE, merged_id=merged.id,
                       survivor_id=survivor.id, actor_id=actor.user_id, merged_at=now, field_choices={}, moved={})
        session.add(ledger)
        moved = _move_conversation(session, survivor, merged)
        earlier = list(session.scalars(select(Case).where(Case.merged_into_id == merged.id)))
        for case in earlier:  # merged into the duplicate before: now into the survivor, one hop
            case.merged_into_id = survivor.id
        if earlier:
            moved["cases.merged_into_id"] = len(earlier)
        _record(session, merged, actor, CaseEventKind.MERGED, None, survivor.id, at=now)
        _record(session, survivor, actor, CaseEventKind.MERGED_FROM, merged.id, None, at=now)
        if merged.status != CaseStatus.CLOSED.value:
            _record(session, merged, actor, CaseEventKind.STATUS, merged.status, CaseStatus.CLOSED.value, at=now)
            _set_status(merged, CaseStatus.CLOSED.value, now)
        merged.merged_into_id = survivor.id
        survivor.updated_at = now  # a new version: a form open on the survivor sees the merge
        session.flush()  # both writes are checked by the access rules here
        recompute_case_sla(session, merged, now=now)
        recompute_case_sla(session, survivor, now=now)
        ledger.moved = moved
        audit_merge(session, actor, MergeEntity.CASE, survivor.id, merged.id, ledger.id, {}, now)
        session.flush()
        return CaseMergeResult(merge_id=ledger.id, survivor_id=survivor.id, survivor_version=survivor.version,
                               moved=moved)


def _check_mergeable(survivor: Case, merged: Case) -> None:
    if merged.merged_into_id is not None:
        raise MergeRefused("merge.error.already_merged")
    if survivor.merged_into_id is not None:
        raise MergeRefused("merge.error.survivor_merged")
    if survivor.customer_id != merged.customer_id:
        raise MergeRefused("case_merge.error.other_customer")
    if survivor.status == CaseStatus.CLOSED.value:
        raise MergeRefused("case_merge.error.survivor_closed")


def _move_conversation(session: Session, survivor: Case, merged: Case) -> dict[str, int]:
    """Point the duplicate's conversation rows at the survivor (through the ORM: each checked and audited)."""
    moved: dict[str, int] = {}
    statements = (
        ("case_events.case_id", select(CaseEvent).where(CaseEvent.case_id == merged.id,
                                                         CaseEvent.kind.in_(MOVED_KINDS))),
        ("case_messages.case_id", select(CaseMessage).where(CaseMessage.case_id == merged.id)),
        ("case_attachments.case_id", select(CaseAttachment).where(CaseAttachment.case_id == merged.id)),
    )
    for key, statement in statements:
        rows = list(session.scalars(statement))
        for row in rows:
            row.case_id = survivor.id
        if rows:
            moved[key] = len(rows)
    return moved
