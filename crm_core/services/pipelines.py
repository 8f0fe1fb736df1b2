"""Pipeline configuration use cases (admins only): pipelines and their stages.

An admin creates, renames, removes pipelines, chooses the default one, and edits the stage
list of a pipeline in one all-or-nothing save: names, order, probability and kind
(open/won/lost). A stage that still holds deals cannot be removed or change kind (its deals'
``closed_at`` would no longer match); a pipeline with deals cannot be removed. Won stages
always weigh 100 %, lost stages 0 %. The access layer refuses these writes for non-admins
too (``ADMIN_ONLY_WRITES``); the early checks here only give a clearer message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, PipelineInUse, ValidationFailed
from crm_core.models import Opportunity, Pipeline, PipelineStage, StageKind
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.rules.pipeline import stage_order_problem
from crm_core.services.tenants import DEFAULT_STAGES_EN, DEFAULT_STAGES_ZH

Errors = dict[str, tuple[str, dict[str, object]]]
MAX_STAGES = 20


@dataclass
class StageInput:
    """One line of the stage editor; ``id`` None for a new stage. List order is stage order."""

    name: str
    probability: int
    kind: str = StageKind.OPEN.value
    id: int | None = None


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise AccessDenied("only an admin may configure pipelines")


def _check_name(session: Session, name: str, *, exclude_id: int | None = None) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ValidationFailed({"name": ("validation.required", {})})
    if len(cleaned) > 120:
        raise ValidationFailed({"name": ("validation.too_long", {"max": 120})})
    statement = select(func.count()).select_from(Pipeline).where(Pipeline.name == cleaned)
    if exclude_id is not None:
        statement = statement.where(Pipeline.id != exclude_id)
    if session.scalar(statement):
        raise ValidationFailed({"name": ("pipeline.name_taken", {"name": cleaned})})
    return cleaned


def default_stage_inputs(locale: str = "en") -> list[StageInput]:
    """The stages a new pipeline starts with (the same as the tenant's default pipeline)."""
    zh = locale.startswith("zh")
    return [
        StageInput(DEFAULT_STAGES_ZH[index] if zh else name, probability, kind.value)
        for index, (name, probability, kind) in enumerate(DEFAULT_STAGES_EN)
    ]


def create_pipeline(db: Database, actor: Actor, *, name: str, stages: list[StageInput] | None = None,
                    locale: str = "en") -> int:
    """Create a pipeline with ``stages`` (default: Lead → … → Won/Lost); returns its id."""
    _require_admin(actor)
    stage_list = stages if stages is not None else default_stage_inputs(locale)
    errors = validate_stages(stage_list)
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        pipeline = Pipeline(name=_check_name(session, name), is_default=False)
        session.add(pipeline)
        session.flush()
        for position, stage in enumerate(stage_list):
            session.add(_new_stage(pipeline.id, position, stage))
        session.flush()
        return pipeline.id


def rename_pipeline(db: Database, actor: Actor, pipeline_id: int, *, name: str) -> None:
    """Give a pipeline another (unique) name."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        pipeline = session.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound("pipeline")
        pipeline.name = _check_name(session, name, exclude_id=pipeline_id)


def set_default_pipeline(db: Database, actor: Actor, pipeline_id: int) -> None:
    """Make ``pipeline_id`` the one new deals and reports use by default."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        chosen = session.get(Pipeline, pipeline_id)
        if chosen is None:
            raise NotFound("pipeline")
        for pipeline in session.scalars(select(Pipeline)):
            pipeline.is_default = pipeline.id == pipeline_id


def delete_pipeline(db: Database, actor: Actor, pipeline_id: int) -> None:
    """Remove a pipeline that holds no deal and is not the default."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        pipeline = session.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound("pipeline")
        if pipeline.is_default:
            raise ValidationFailed({"pipeline_id": ("pipeline.cannot_delete_default", {})})
        deals = _deal_count(session, Opportunity.pipeline_id == pipeline_id)
        if deals:
            raise PipelineInUse(pipeline.name, deals)
        for stage in session.scalars(select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id)):
            session.delete(stage)
        session.flush()
        session.delete(pipeline)


def validate_stages(stages: list[StageInput]) -> Errors:
    """Field errors of a stage list (keys ``stages`` or ``stage.<n>``, n from 1)."""
    errors: Errors = {}
    if not stages:
        return {"stages": ("pipeline.needs_open_stage", {})}
    if len(stages) > MAX_STAGES:
        return {"stages": ("pipeline.too_many_stages", {"max": MAX_STAGES})}
    seen: set[str] = set()
    for number, stage in enumerate(stages, start=1):
        name = stage.name.strip()
        if not name:
            errors[f"stage.{number}"] = ("validation.required", {})
        elif len(name) > 120:
            errors[f"stage.{number}"] = ("validation.too_long", {"max": 120})
        elif name.casefold() in seen:
            errors[f"stage.{number}"] = ("pipeline.stage_name_repeated", {"name": name})
        seen.add(name.casefold())
        if stage.kind not in {kind.value for kind in StageKind}:
            errors[f"stage.{number}"] = ("validation.choice", {})
        elif stage.kind == StageKind.OPEN.value and not 0 <= stage.probability <= 100:
            errors[f"stage.{number}"] = ("deal.probability_range", {})
    if (problem := stage_order_problem([stage.kind for stage in stages])) is not None:
        errors["stages"] = (problem, {})
    return errors


def _new_stage(pipeline_id: int, position: int, stage: StageInput) -> PipelineStage:
    return PipelineStage(
        pipeline_id=pipeline_id,
        name=stage.name.strip(),
        position=position,
        probability=_probability(stage),
        kind=stage.kind,
    )


def _probability(stage: StageInput) -> int:
    if stage.kind == StageKind.WON.value:
        return 100
    if stage.kind == StageKind.LOST.value:
        return 0
    return int(stage.probability)


def _deal_count(session: Session, condition: object) -> int:
    return int(session.scalar(select(func.count()).select_from(Opportunity).where(condition)) or 0)  # type: ignore[arg-type]


def save_stages(db: Database, actor: Actor, pipeline_id: int, stages: list[StageInput]) -> None:
    """Replace the stage list of a pipeline in one transaction (order = list order).

    Existing stages (by id) are renamed, re-weighted and re-ordered; new ones added; missing
    ones removed. Raises ValidationFailed, or PipelineInUse for a removed or re-kinded stage
    that holds deals — nothing is saved then.
    """
    _require_admin(actor)
    errors = validate_stages(stages)
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        if session.get(Pipeline, pipeline_id) is None:
            raise NotFound("pipeline")
        existing = {
            stage.id: stage
            for stage in session.scalars(select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id))
        }
        kept_ids = {stage.id for stage in stages if stage.id is not None}
        if not kept_ids <= set(existing):
            raise ValidationFailed({"stages": ("validation.choice", {})})
        for stage_id, stage in existing.items():
            deals = 0
            if stage_id not in kept_ids:
                deals = _deal_count(session, Opportunity.stage_id == stage_id)
            else:
                wanted = next(item for item in stages if item.id == stage_id)
                if wanted.kind != stage.kind:
                    deals = _deal_count(session, Opportunity.stage_id == stage_id)
            if deals:
                raise PipelineInUse(stage.name, deals)
        # (pipeline_id, position) is unique: park every kept stage on a free position first
        for offset, stage in enumerate(existing.values()):
            stage.position = -1000 - offset
        session.flush()
        removed = [stage_id for stage_id in existing if stage_id not in kept_ids]
        if removed:
            # the stage history forgets a removed (empty) stage; the audit trail keeps the moves
            session.execute(
                update(OpportunityStageChange)
                .where(OpportunityStageChange.from_stage_id.in_(removed))
                .values(from_stage_id=None)
            )
            session.execute(delete(OpportunityStageChange).where(OpportunityStageChange.to_stage_id.in_(removed)))
            session.execute(
                update(Opportunity).where(Opportunity.lost_from_stage_id.in_(removed)).values(lost_from_stage_id=None)
            )
            for stage_id in removed:
                session.delete(existing[stage_id])
        session.flush()
        for position, item in enumerate(stages):
            if item.id is None:
                session.add(_new_stage(pipeline_id, position, item))
                continue
            stage = existing[item.id]
            stage.name = item.name.strip()
            stage.kind = item.kind
            stage.probability = _probability(item)
            stage.position = position
        session.flush()
