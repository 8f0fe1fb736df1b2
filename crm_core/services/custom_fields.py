"""Low-code fields: an admin defines custom fields per entity without code changes.

A definition (name, labels in English and Chinese, type, required, choices) makes the
field appear in the entity's form, grid columns, filters and exports; values live in the
entity's ``custom_fields`` JSON column keyed by the definition's ``name``. Only admins
write definitions (enforced by :mod:`crm_core.access`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import FieldDefinition
from crm_core.rules.contact_details import parse_tags
from crm_core.rules.custom_fields import FIELD_TYPES, valid_field_name
from crm_core.services.editing import check_version, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]
ENTITIES = ("customer",)
"""Entities whose table has a ``custom_fields`` column (contacts, orders … have none yet)."""


@dataclass
class FieldDefinitionInput:
    """The admin's form: ``choices`` is a comma-separated list for choice fields."""

    name: str
    label_en: str
    label_zh: str
    field_type: str = "text"
    required: bool = False
    choices: str | list[str] = field(default_factory=list)
    entity: str = "customer"
    position: int | None = None


def _validate(form: FieldDefinitionInput) -> tuple[Errors, list[str]]:
    errors: Errors = {}
    if not valid_field_name(form.name.strip()):
        errors["name"] = ("sales.field_name_invalid", {})
    for key in ("label_en", "label_zh"):
        value = getattr(form, key).strip()
        if not value:
            errors[key] = ("validation.required", {})
        elif len(value) > 120:
            errors[key] = ("validation.too_long", {"max": 120})
    if form.field_type not in FIELD_TYPES:
        errors["field_type"] = ("validation.choice", {})
    if form.entity not in ENTITIES:
        errors["entity"] = ("validation.choice", {})
    choices = parse_tags(form.choices) if form.field_type == "choice" else []
    if form.field_type == "choice" and not choices:
        errors["choices"] = ("sales.choices_needed", {})
    return errors, choices


def create_field(db: Database, actor: Actor, form: FieldDefinitionInput) -> int:
    """Define a new custom field; its name is fixed from then on (it keys stored values)."""
    errors, choices = _validate(form)
    with db.transaction(actor) as session:
        name = form.name.strip()
        taken = session.scalar(
            select(FieldDefinition.id).where(FieldDefinition.entity == form.entity, FieldDefinition.name == name)
        )
        if taken is not None:
            errors["name"] = ("sales.field_name_taken", {"name": name})
        if errors:
            raise ValidationFailed(errors)
        position = form.position
        if position is None:
            last = select(func.coalesce(func.max(FieldDefinition.position), 0)).where(
                FieldDefinition.entity == form.entity
            )
            position = int(session.scalar(last) or 0) + 1
        definition = FieldDefinition(
            tenant_id=actor.tenant_id, entity=form.entity, name=name, label_en=form.label_en.strip(),
            label_zh=form.label_zh.strip(), field_type=form.field_type, required=form.required,
            choices=choices, position=position,
        )
        session.add(definition)
        session.flush()
        return definition.id


def update_field(
    db: Database, actor: Actor, definition_id: int, form: FieldDefinitionInput, *, expected_version: int
) -> int:
    """Change labels, required, choices or position; the name and type stay (stored values depend on them)."""

    def work() -> int:
        with db.transaction(actor) as session:
            definition = session.get(FieldDefinition, definition_id)
            if definition is None:
                raise NotFound("field")
            check_version(session, definition, "field_definition", expected_version)
            form.name, form.entity, form.field_type = definition.name, definition.entity, definition.field_type
            errors, choices = _validate(form)
            if errors:
                raise ValidationFailed(errors)
            definition.label_en = form.label_en.strip()
            definition.label_zh = form.label_zh.strip()
            definition.required = form.required
            definition.choices = choices
            if form.position is not None:
                definition.position = form.position
            session.flush()
            return definition.version

    return translate_stale(db, actor, "field_definition", definition_id, work)


def delete_field(db: Database, actor: Actor, definition_id: int, *, expected_version: int) -> None:
    """Remove a definition: the field leaves forms, grids and exports; stored values stay in history."""

    def work() -> None:
        with db.transaction(actor) as session:
            definition = session.get(FieldDefinition, definition_id)
            if definition is None:
                raise NotFound("field")
            check_version(session, definition, "field_definition", expected_version)
            session.delete(definition)

    translate_stale(db, actor, "field_definition", definition_id, work)
