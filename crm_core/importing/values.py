"""Value mapping for enumerated columns: which values a file holds, and which of them need a mapping.

The wizard asks only about values the importer would not recognise by itself (the stored
value, its English or Chinese label, or a known synonym such as 潜客 or ``Won``).
"""

from __future__ import annotations

import unicodedata

from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.importing.fields import field_spec
from crm_core.importing.prepare import Resolver, choice_lookup
from crm_core.importing.reading import ImportFile, iter_chunks
from crm_core.rules.fields import ENUM, REFERENCE

MAX_DISTINCT = 60


def is_enumerated(entity: str, field: str) -> bool:
    """Does the field take its values from a fixed set (a choice, or a pipeline stage)?"""
    spec = field_spec(entity, field)
    return spec is not None and (spec.kind == ENUM or (spec.kind == REFERENCE and spec.target == "stage"))


def value_choices(session: Session, actor: Actor, entity: str, field: str) -> list[str]:
    """The values a field may hold: its choices, or the stage names of the default pipeline."""
    spec = field_spec(entity, field)
    if spec is None:
        return []
    if spec.kind == ENUM:
        return list(spec.choices)
    if spec.kind == REFERENCE and spec.target == "stage":
        resolver = Resolver(session, actor)
        resolver.stages()
        from sqlalchemy import select

        from crm_core.models import PipelineStage

        stage_ids = [stage_id for _, stage_id in resolver.stages().values()]
        if not stage_ids:
            return []
        return list(
            session.scalars(
                select(PipelineStage.name).where(PipelineStage.id.in_(stage_ids)).order_by(PipelineStage.position)
            )
        )
    return []


def distinct_values(file: ImportFile, column: str, *, limit: int = MAX_DISTINCT) -> list[str]:
    """Up to ``limit`` distinct non-blank values of a file column, in order of first appearance."""
    seen: dict[str, None] = {}
    for chunk in iter_chunks(file):
        for value in chunk[column].tolist():
            text = unicodedata.normalize("NFKC", str(value)).strip()
            if text and text not in seen:
                seen[text] = None
                if len(seen) >= limit:
                    return list(seen)
    return list(seen)


def unrecognised_values(entity: str, field: str, values: list[str], choices: list[str]) -> list[str]:
    """The values the importer would not map by itself."""
    spec = field_spec(entity, field)
    if spec is None:
        return []
    if spec.kind == ENUM:
        lookup = choice_lookup(spec)
        return [value for value in values if value.casefold() not in lookup]
    known = {choice.strip().casefold() for choice in choices}
    return [value for value in values if value.casefold() not in known]
