"""Saved mapping templates and the import run history.

Read side (``list_import_runs``, ``list_templates``) takes a session; write side
(``save_template``, ``delete_template``) opens its own transaction like every service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.importing.fields import ENTITIES
from crm_core.importing.mapping import ImportMapping
from crm_core.models import ImportRun, Role, User
from crm_core.models.quality import ImportMappingTemplate
from crm_core.queries.paging import Page


@dataclass(frozen=True)
class ImportRunRow:
    """One line of the run history."""

    id: int
    entity: str
    file_name: str
    user_name: str | None
    status: str
    mode: str
    policy: str
    rows_read: int
    created: int
    updated: int
    skipped: int
    rejected: int
    created_at: dt.datetime
    finished_at: dt.datetime | None
    validation_result: dict[str, Any]


def list_import_runs(session: Session, *, page: int = 1, per_page: int = 20) -> Page[ImportRunRow]:
    """The newest import runs the session's actor may see (admins: all of the tenant)."""
    page = max(1, page)
    rows = session.execute(
        select(ImportRun, User.full_name)
        .outerjoin(User, User.id == ImportRun.user_id)
        .order_by(ImportRun.created_at.desc(), ImportRun.id.desc())
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    ).all()
    items = [
        ImportRunRow(
            id=run.id,
            entity=run.entity,
            file_name=run.file_name,
            user_name=name,
            status=run.status,
            mode=run.mode,
            policy=run.policy,
            rows_read=run.rows_read,
            created=run.created_count,
            updated=run.updated_count,
            skipped=run.skipped_count,
            rejected=run.rejected_count,
            created_at=run.created_at,
            finished_at=run.finished_at,
            validation_result=run.validation_result or {},
        )
        for run, name in rows[:per_page]
    ]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def list_templates(session: Session, entity: str | None = None) -> list[tuple[int, str, str, ImportMapping]]:
    """Saved templates as (id, name, entity, mapping), by name."""
    statement = select(ImportMappingTemplate).order_by(ImportMappingTemplate.entity, ImportMappingTemplate.name)
    if entity:
        statement = statement.where(ImportMappingTemplate.entity == entity)
    return [(row.id, row.name, row.entity, ImportMapping.from_dict(row.mapping)) for row in session.scalars(statement)]


def save_template(db: Database, actor: Actor, *, name: str, entity: str, mapping: ImportMapping) -> int:
    """Save (or replace, by name) a mapping template for ``entity``."""
    cleaned = name.strip()
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not cleaned:
        errors["name"] = ("validation.required", {})
    elif len(cleaned) > 120:
        errors["name"] = ("validation.too_long", {"max": 120})
    if entity not in ENTITIES:
        errors["entity"] = ("validation.choice", {})
    if actor.role not in (Role.ADMIN, Role.MANAGER):
        from crm_core.errors import AccessDenied

        raise AccessDenied("only admins and managers keep import templates")
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        existing = session.scalars(
            select(ImportMappingTemplate).where(
                ImportMappingTemplate.entity == entity, ImportMappingTemplate.name == cleaned
            )
        ).one_or_none()
        if existing is None:
            existing = ImportMappingTemplate(name=cleaned, entity=entity, created_by_id=actor.user_id)
            session.add(existing)
        existing.mapping = mapping.as_dict()
        session.flush()
        return existing.id


def delete_template(db: Database, actor: Actor, template_id: int) -> None:
    """Remove a saved template."""
    with db.transaction(actor) as session:
        template = session.get(ImportMappingTemplate, template_id)
        if template is None:
            raise NotFound("import template")
        session.delete(template)
