"""Deal (opportunity) use cases: create, edit, move through the pipeline (and undo a move), archive.

Each opens its own transaction for the acting user; tenant and ownership rules and the audit
trail come from the session (:mod:`crm_core.access`). Stage rules are the pure functions of
:mod:`crm_core.rules.pipeline`. Every stage change also writes an
``opportunity_stage_changes`` row in the same transaction. Edits use optimistic locking:
the caller passes the ``version`` it loaded and gets :class:`StaleRecord` (naming who saved
in between, and when) instead of overwriting someone else's change. A valid deal is what
:data:`crm_core.rules.fields.OPPORTUNITY` says, as for an import of opportunities.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, StageTransitionRefused, ValidationFailed
from crm_core.models import (
    Customer,
    Opportunity,
    Pipeline,
    PipelineStage,
    StageKind,
    Tenant,
    User,
    utcnow,
)
from crm_core.models.pipeline import OpportunityLine, OpportunityStageChange
from crm_core.rules import fields
from crm_core.rules import pipeline as rules
from crm_core.rules.fields import clean_text
from crm_core.services.customers import stale_record_error
from crm_core.services.deal_lines import lines_amount
from crm_core.services.editing import checked_external_id
from crm_core.services.lifecycle import refresh_lifecycle

Errors = dict[str, tuple[str, dict[str, Any]]]
T = TypeVar("T")


@dataclass(kw_only=True)
class OpportunityInput:
    """The fields of the deal form, as the user typed them.

    ``pipeline_id`` None means the tenant's default pipeline, ``stage_id`` None its first open
    stage (on create) or the current stage (on update), ``owner_id`` None the acting user,
    ``currency`` empty the tenant's default currency, ``probability`` None the stage's.
    ``lost_reason`` (required), ``won_reason`` (optional) and ``closed_on`` matter only when the form moves
    the deal to a lost/won stage.
    """

    customer_id: int
    name: str
    amount: Decimal | str | int | float = Decimal(0)
    currency: str = ""
    pipeline_id: int | None = None
    stage_id: int | None = None
    owner_id: int | None = None
    probability: int | None = None
    expected_close_date: dt.date | None = None
    lost_reason: str = ""
    closed_on: dt.date | None = None
    won_reason: str = ""
    external_id: str | None = None  # the old system's ID (unique per tenant); None: left as it is


def _parse_amount(raw: Decimal | str | float | None, errors: Errors) -> Decimal:
    amount, problem = fields.read_decimal(fields.OPPORTUNITY["amount"], raw)
    if problem is not None:
        errors["amount"] = problem
        return Decimal(0)
    return (amount or Decimal(0)).quantize(Decimal("0.01"))


def _stage_info(stage: PipelineStage) -> rules.StageInfo:
    return rules.StageInfo(stage.id, stage.pipeline_id, stage.position, stage.kind, stage.probability)


def _pipeline_stages(session: Session, pipeline_id: int) -> list[PipelineStage]:
    return list(
        session.scalars(
            select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id).order_by(PipelineStage.position)
        )
    )


def _resolve_pipeline(session: Session, pipeline_id: int | None, errors: Errors) -> Pipeline | None:
    if pipeline_id is None:
        pipeline = session.scalars(
            select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.id).limit(1)
        ).first()
    else:
        pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None:
        errors["pipeline_id"] = ("validation.choice", {})
    return pipeline


def _validate_common(session: Session, actor: Actor, form: OpportunityInput, errors: Errors) -> tuple[Decimal, str]:
    typed_currency = (clean_text(form.currency) or "").upper() or None
    values: dict[str, Any] = {"name": clean_text(form.name), "currency": typed_currency}
    if form.probability is not None:
        values["probability"] = form.probability
    errors.update(fields.check_values(fields.OPPORTUNITY, values))
    amount = _parse_amount(form.amount, errors)
    currency = typed_currency or session.scalars(select(Tenant.default_currency)).first() or "CNY"
    owner_id = form.owner_id if form.owner_id is not None else actor.user_id
    owner = session.get(User, owner_id)
    if owner is None or not owner.is_active:
        errors["owner_id"] = ("validation.choice", {})
    return amount, currency


def _record_move(session: Session, actor: Actor, deal: Opportunity, from_stage_id: int | None) -> None:
    session.add(
        OpportunityStageChange(
            opportunity_id=deal.id,
            from_stage_id=from_stage_id,
            to_stage_id=deal.stage_id,
            changed_by_id=actor.user_id,
            changed_at=utcnow(),
        )
    )


def _apply_stage(
    deal: Opportunity,
    current: PipelineStage | None,
    target: PipelineStage,
    *,
    lost_reason: str | None,
    closed_on: dt.date | None,
    now: dt.datetime,
    errors: Errors,
    won_reason: str | None = None,
) -> None:
    """Move ``deal`` to ``target`` (checking the transition table and closing rules)."""
    if current is not None and not rules.transition_allowed(_stage_info(current), _stage_info(target)):
        raise StageTransitionRefused(current.name, target.name)
    created_on = (deal.created_at or now).date()
    for field_name, key in rules.closing_problems(
        target.kind, lost_reason=lost_reason, closed_on=closed_on, created_on=created_on, today=now.date()
    ).items():
        errors[field_name] = (key, {})
    reason = clean_text(lost_reason) if target.kind == StageKind.LOST.value else None
    if reason is not None and "lost_reason" not in errors:
        # free text like any other (its length is a closing rule: it matters only once the deal is lost)
        lost_rule = fields.OPPORTUNITY["lost_reason"]
        if (problem := fields.markup(lost_rule, reason) or fields.hidden_characters(lost_rule, reason)
                or fields.formula(lost_rule, reason)) is not None:
            errors["lost_reason"] = problem
    won = clean_text(won_reason) if target.kind == StageKind.WON.value else None
    if won:
        won_rule = fields.OPPORTUNITY["won_reason"]
        if len(won) > rules.LOST_REASON_MAX:
            errors["won_reason"] = ("deal.won_reason_too_long", {})
        elif (problem := fields.markup(won_rule, won) or fields.hidden_characters(won_rule, won)
              or fields.formula(won_rule, won)) is not None:
            errors["won_reason"] = problem
    if errors:
        return
    columns = rules.stage_columns(
        _stage_info(target), from_stage_id=None if current is None else current.id,
        lost_reason=lost_reason, won_reason=won, closed_on=closed_on, now=now,
    )
    for name, value in columns.items():
        setattr(deal, name, value)


def create_opportunity(db: Database, actor: Actor, form: OpportunityInput) -> int:
    """Create a deal for a visible customer; raises ValidationFailed, AccessDenied or NotFound."""
    now = utcnow()
    with db.transaction(actor) as session:
        errors: Errors = {}
        customer = session.get(Customer, form.customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        amount, currency = _validate_common(session, actor, form, errors)
        pipeline = _resolve_pipeline(session, form.pipeline_id, errors)
        target: PipelineStage | None = None
        if pipeline is not None:
            stages = _pipeline_stages(session, pipeline.id)
            if form.stage_id is None:
                first = rules.first_open_stage([_stage_info(stage) for stage in stages])
                target = next((stage for stage in stages if first and stage.id == first.id), None)
            else:
                target = next((stage for stage in stages if stage.id == form.stage_id), None)
            if target is None:
                errors["stage_id"] = ("validation.choice", {})
        external_id = checked_external_id(session, actor, Opportunity, form.external_id, errors)
        problem = rules.expected_close_problem(form.expected_close_date, today=now.date(), is_new=True)
        if target is not None and target.kind == StageKind.OPEN.value and problem:
            errors["expected_close_date"] = (problem, {})
        if errors:
            raise ValidationFailed(errors)
        assert pipeline is not None and target is not None
        deal = Opportunity(
            customer_id=customer.id,
            owner_id=form.owner_id if form.owner_id is not None else actor.user_id,
            pipeline_id=pipeline.id,
            name=clean_text(form.name) or "",
            amount=amount,
            currency=currency,
            probability=form.probability,
            expected_close_date=form.expected_close_date,
            external_id=external_id,
            created_at=now,
        )
        _apply_stage(deal, None, target, lost_reason=form.lost_reason, closed_on=form.closed_on, now=now, errors=errors,
                     won_reason=form.won_reason)
        if errors:
            raise ValidationFailed(errors)
        session.add(deal)
        session.flush()
        _record_move(session, actor, deal, None)
        session.flush()
        refresh_lifecycle(session, actor.tenant_id, [deal.customer_id])
        return deal.id


def _locked(db: Database, actor: Actor, opportunity_id: int, work: Callable[[], T]) -> T:
    try:
        return work()
    except StaleDataError:
        # another writer committed between our read and our UPDATE
        with db.session(actor) as session:
            raise stale_record_error(session, "opportunity", opportunity_id) from None


def _load_for_edit(session: Session, opportunity_id: int, expected_version: int) -> Opportunity:
    deal = session.get(Opportunity, opportunity_id)
    if deal is None or deal.archived_at is not None:
        raise NotFound("opportunity")
    if deal.version != expected_version:
        raise stale_record_error(session, "opportunity", opportunity_id)
    return deal


def update_opportunity(
    db: Database, actor: Actor, opportunity_id: int, form: OpportunityInput, *, expected_version: int
) -> int:
    """Save an edit of the deal form made on ``expected_version``; returns the new version.

    Raises StaleRecord when someone saved since, StageTransitionRefused for a stage change the
    pipeline does not allow, ValidationFailed, AccessDenied or NotFound. The pipeline cannot
    change on edit (stages differ between pipelines).
    """

    def work() -> int:
        now = utcnow()
        with db.transaction(actor) as session:
            deal = _load_for_edit(session, opportunity_id, expected_version)
            errors: Errors = {}
            amount, currency = _validate_common(session, actor, form, errors)
            if form.customer_id != deal.customer_id:
                customer = session.get(Customer, form.customer_id)
                if customer is None or customer.archived_at is not None:
                    errors["customer_id"] = ("validation.choice", {})
            if form.pipeline_id is not None and form.pipeline_id != deal.pipeline_id:
                errors["pipeline_id"] = ("deal.pipeline_fixed", {})
            current = session.get(PipelineStage, deal.stage_id)
            target = current
            if form.stage_id is not None and form.stage_id != deal.stage_id:
                target = session.get(PipelineStage, form.stage_id)
                if target is None or target.pipeline_id != deal.pipeline_id:
                    errors["stage_id"] = ("validation.choice", {})
                    target = current
            if target is not None and target.kind == StageKind.OPEN.value:
                problem = rules.expected_close_problem(
                    form.expected_close_date, today=now.date(), created_on=deal.created_at.date()
                )
                if problem and form.expected_close_date != deal.expected_close_date:
                    errors["expected_close_date"] = (problem, {})
            if form.external_id is not None:
                deal.external_id = checked_external_id(session, actor, Opportunity, form.external_id, errors,
                                                       exclude_id=opportunity_id)
            if errors:
                raise ValidationFailed(errors)
            assert current is not None and target is not None
            touched_customers = {deal.customer_id, form.customer_id}
            deal.customer_id = form.customer_id
            deal.name = clean_text(form.name) or ""  # required: checked above
            # a deal with product lines is worth their sum (decision 0045): the typed amount applies to one without
            totals = list(session.scalars(select(OpportunityLine.line_total).where(
                OpportunityLine.opportunity_id == deal.id)))
            deal.amount = lines_amount(totals) if totals else amount
            deal.currency = currency
            deal.owner_id = form.owner_id if form.owner_id is not None else deal.owner_id
            deal.probability = form.probability
            deal.expected_close_date = form.expected_close_date
            if target.id != current.id:
                _apply_stage(
                    deal, current, target, lost_reason=form.lost_reason, closed_on=form.closed_on,
                    now=now, errors=errors, won_reason=form.won_reason,
                )
                if errors:
                    raise ValidationFailed(errors)
                _record_move(session, actor, deal, current.id)
            elif target.kind == StageKind.LOST.value and form.lost_reason.strip():
                deal.lost_reason = form.lost_reason.strip()[: rules.LOST_REASON_MAX]
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, sorted(touched_customers))
            return deal.version

    return _locked(db, actor, opportunity_id, work)


def move_stage(
    db: Database,
    actor: Actor,
    opportunity_id: int,
    stage_id: int,
    *,
    expected_version: int,
    lost_reason: str | None = None,
    closed_on: dt.date | None = None,
    won_reason: str | None = None,
) -> int:
    """Move a deal to another stage of its pipeline (the board's card menu); returns the new version.

    Only allowed transitions; lost needs a reason; won/lost set ``closed_at`` (``closed_on``
    or now), reopening clears it. Raises StageTransitionRefused, ValidationFailed, StaleRecord,
    AccessDenied or NotFound.
    """

    def work() -> int:
        now = utcnow()
        with db.transaction(actor) as session:
            deal = _load_for_edit(session, opportunity_id, expected_version)
            current = session.get(PipelineStage, deal.stage_id)
            target = session.get(PipelineStage, stage_id)
            if target is None or current is None or target.pipeline_id != deal.pipeline_id:
                raise ValidationFailed({"stage_id": ("validation.choice", {})})
            errors: Errors = {}
            _apply_stage(deal, current, target, lost_reason=lost_reason, closed_on=closed_on, now=now, errors=errors,
                         won_reason=won_reason)
            if errors:
                raise ValidationFailed(errors)
            _record_move(session, actor, deal, current.id)
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, [deal.customer_id])
            return deal.version

    return _locked(db, actor, opportunity_id, work)


def undo_stage_move(
    db: Database,
    actor: Actor,
    opportunity_id: int,
    *,
    expected_version: int,
    lost_reason: str | None = None,
    closed_on: dt.date | None = None,
) -> int:
    """Move a deal back to the stage its latest move (made by ``actor``) took it from; returns the new version.

    ``expected_version`` is the version that move returned: when anyone saved the deal since
    (another move, an edit), nothing is undone and :class:`StaleRecord` names who and when —
    undoing would silently overwrite their change. The way back passes the same transition
    and closing rules as any move (going back to lost needs its reason again: pass the one
    the deal had) and is recorded in the stage history and the audit trail like any move.
    Raises ValidationFailed (``undo``: nothing of the actor's to undo), StageTransitionRefused,
    StaleRecord, AccessDenied or NotFound.
    """

    def work() -> int:
        now = utcnow()
        with db.transaction(actor) as session:
            deal = _load_for_edit(session, opportunity_id, expected_version)
            last = session.scalars(
                select(OpportunityStageChange)
                .where(OpportunityStageChange.opportunity_id == deal.id)
                .order_by(OpportunityStageChange.changed_at.desc(), OpportunityStageChange.id.desc())
                .limit(1)
            ).first()
            if (
                last is None or last.from_stage_id is None or last.changed_by_id != actor.user_id
                or last.to_stage_id != deal.stage_id
            ):
                raise ValidationFailed({"undo": ("board.undo_nothing", {})})
            current = session.get(PipelineStage, deal.stage_id)
            target = session.get(PipelineStage, last.from_stage_id)
            if current is None or target is None or target.pipeline_id != deal.pipeline_id:
                raise ValidationFailed({"undo": ("board.undo_nothing", {})})
            errors: Errors = {}
            _apply_stage(deal, current, target, lost_reason=lost_reason, closed_on=closed_on, now=now, errors=errors)
            if errors:
                raise ValidationFailed(errors)
            _record_move(session, actor, deal, current.id)
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, [deal.customer_id])
            return deal.version

    return _locked(db, actor, opportunity_id, work)


def archive_opportunity(db: Database, actor: Actor, opportunity_id: int, *, expected_version: int) -> int:
    """Take a deal out of every list and report (it stays in the audit trail); returns the new version."""

    def work() -> int:
        with db.transaction(actor) as session:
            deal = _load_for_edit(session, opportunity_id, expected_version)
            deal.archived_at = utcnow()
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, [deal.customer_id])
            return deal.version

    return _locked(db, actor, opportunity_id, work)


def restore_opportunity(db: Database, actor: Actor, opportunity_id: int, *, expected_version: int) -> int:
    """Bring an archived deal back, when it is still at the version the caller saw; returns the new version."""

    def work() -> int:
        with db.transaction(actor) as session:
            deal = session.get(Opportunity, opportunity_id)
            if deal is None:
                raise NotFound("opportunity")
            if deal.version != expected_version:
                raise stale_record_error(session, "opportunity", opportunity_id)
            deal.archived_at = None
            session.flush()
            refresh_lifecycle(session, actor.tenant_id, [deal.customer_id])
            return deal.version

    return _locked(db, actor, opportunity_id, work)
