"""Campaigns with sequences (issue 14, decisions 0046 and 0049): create and edit a campaign and its steps,
launch it, pause, resume and stop it, and stop one member.

Managers and admins only. Every edit of a campaign or its steps carries the campaign's version
(optimistic locking: a step edit bumps it too, so two editors of one sequence cannot both win) and is
audited by the session. A launch enrols the whole target in one ``INSERT … SELECT`` (a 100k-member
segment in a few seconds) and writes one audit row for the campaign, not one per member; each member's
``entered`` touch is written by the same kind of set-based statement.

Campaign states: ``planned`` (a draft: members wait as ``pending``), ``running``, ``paused`` (members
keep their place; nothing advances) and ``stopped`` (final: every unfinished member exits ``stopped``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from crm_core import bulk
from crm_core.access import Actor, visibility_clause
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, StaleRecord, ValidationFailed
from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.models import Base, Campaign, Contact, Customer, LifecycleStage, Role, utcnow
from crm_core.models.marketing import CampaignStep, EmailTemplate, MemberState, StepKind, TouchKind
from crm_core.models.segments import CampaignMember, Segment
from crm_core.rules import fields as field_rules
from crm_core.rules import sequences

PLANNED, RUNNING, PAUSED, STOPPED = "planned", "running", "paused", "stopped"
ENTRY_MODES = ("snapshot", "dynamic")
TARGET_KINDS = ("segment", "lifecycle")
FINISHED = (MemberState.COMPLETED.value, MemberState.GOAL.value, MemberState.EXITED.value)
Errors = dict[str, tuple[str, dict[str, Any]]]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _require_marketer(actor: Actor) -> None:
    if actor.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only a manager or admin may change campaigns")


@dataclass
class CampaignInput:
    """The campaign form."""

    name: str
    target_kind: str = "segment"
    segment_id: int | None = None
    lifecycle_stage: str | None = None
    entry_mode: str = "snapshot"
    allow_reentry: bool = False
    goal: dict[str, Any] | None = None
    exit_on: list[str] = field(default_factory=lambda: ["replied", "unsubscribed"])
    attribution_days: int = 90


def _campaign(session: Session, campaign_id: int, expected_version: int | None = None) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    if expected_version is not None and campaign.version != expected_version:
        raise StaleRecord("campaign", campaign_id, changed_at=campaign.updated_at)
    return campaign


def _form_problems(session: Session, form: CampaignInput) -> Errors:
    errors: Errors = {}
    name = form.name.strip()
    if not name:
        errors["name"] = ("validation.required", {})
    elif len(name) > 200:
        errors["name"] = ("validation.too_long", {"max": 200})
    elif (hidden := field_rules.hidden_characters(field_rules.Field("name"), name)) is not None:
        errors["name"] = hidden
    if form.target_kind not in TARGET_KINDS:
        errors["target_kind"] = ("validation.choice", {})
    elif form.target_kind == "segment":
        if form.segment_id is None or session.get(Segment, form.segment_id) is None:
            errors["segment_id"] = ("campaigns.error.segment", {})
    elif form.lifecycle_stage not in {stage.value for stage in LifecycleStage}:
        errors["lifecycle_stage"] = ("validation.choice", {})
    if form.entry_mode not in ENTRY_MODES:
        errors["entry_mode"] = ("validation.choice", {})
    if (problem := sequences.validate_goal(form.goal)) is not None:
        errors["goal"] = problem
    if any(rule not in sequences.EXIT_RULES for rule in form.exit_on):
        errors["exit_on"] = ("validation.choice", {})
    if not 1 <= form.attribution_days <= 365:
        errors["attribution_days"] = ("campaigns.error.days_range", {"min": 1, "max": 365})
    return errors


def save_campaign(db: Database, actor: Actor, form: CampaignInput, *, campaign_id: int | None = None,
                  expected_version: int | None = None) -> int:
    """Create or change a campaign; its target and entry mode are fixed once launched."""
    _require_marketer(actor)
    with db.transaction(actor) as session:
        errors = _form_problems(session, form)
        name = form.name.strip()
        clash = session.scalar(select(Campaign.id).where(Campaign.name == name))
        if "name" not in errors and clash is not None and clash != campaign_id:
            errors["name"] = ("campaigns.error.name_taken", {})
        campaign = None if campaign_id is None else _campaign(session, campaign_id, expected_version)
        if campaign is not None and campaign.status != PLANNED and (
                form.target_kind != campaign.target_kind or form.segment_id != campaign.segment_id
                or form.lifecycle_stage != campaign.lifecycle_stage or form.entry_mode != campaign.entry_mode):
            errors["target_kind"] = ("campaigns.error.target_fixed", {})
        if errors:
            raise ValidationFailed(errors)
        if campaign is None:
            campaign = Campaign(tenant_id=actor.tenant_id, status=PLANNED, created_by_id=actor.user_id,
                                channel="email")
            session.add(campaign)
        campaign.name = name
        campaign.target_kind = form.target_kind
        campaign.segment_id = form.segment_id if form.target_kind == "segment" else None
        campaign.lifecycle_stage = form.lifecycle_stage if form.target_kind == "lifecycle" else None
        campaign.entry_mode = form.entry_mode
        campaign.allow_reentry = form.allow_reentry
        campaign.goal = dict(form.goal) if form.goal else None
        campaign.exit_on = list(dict.fromkeys(form.exit_on))
        campaign.attribution_days = form.attribution_days
        session.flush()
        return campaign.id


# --- steps --------------------------------------------------------------------------------------


def machine_steps(session: Session, campaign_id: int) -> list[sequences.Step]:
    """The campaign's steps (archived ones included) as the machine reads them."""
    rows = session.scalars(select(CampaignStep).where(CampaignStep.campaign_id == campaign_id)
                           .order_by(CampaignStep.position, CampaignStep.id)).all()
    return [sequences.Step(row.id, row.position, row.kind, dict(row.config or {}), row.archived_at is not None)
            for row in rows]


def _template_ids(session: Session) -> list[int]:
    return list(session.scalars(select(EmailTemplate.id).where(EmailTemplate.archived_at.is_(None))))


def _touch(campaign: Campaign) -> None:
    """Bump the campaign's version: the sequence is part of it (optimistic locking of step edits)."""
    campaign.updated_at = utcnow()


def _renumber(session: Session, campaign_id: int, ordered: list[CampaignStep]) -> None:
    for index, step in enumerate(ordered, 1):
        if step.position != index * 10:
            step.position = index * 10


def _live(session: Session, campaign_id: int) -> list[CampaignStep]:
    return list(session.scalars(select(CampaignStep).where(
        CampaignStep.campaign_id == campaign_id, CampaignStep.archived_at.is_(None))
        .order_by(CampaignStep.position, CampaignStep.id)))


def _reevaluate_members_on(session: Session, campaign: Campaign, step_ids: list[int], now: dt.datetime) -> int:
    """Members in flight on the changed steps are looked at by the next tick (a new wait length, a removed
    step): their ``next_run_at`` becomes now."""
    if not step_ids or campaign.status not in (RUNNING, PAUSED):
        return 0
    result = session.execute(
        update(CampaignMember)
        .where(CampaignMember.tenant_id == campaign.tenant_id, CampaignMember.campaign_id == campaign.id,
               CampaignMember.state == MemberState.ACTIVE.value, CampaignMember.step_id.in_(step_ids))
        .values(next_run_at=func.coalesce(CampaignMember.step_entered_at, now))
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def save_step(db: Database, actor: Actor, campaign_id: int, kind: str, config: dict[str, Any], *,
              expected_version: int, step_id: int | None = None, after_step_id: int | None = None) -> int:
    """Add a step (at the end, or after ``after_step_id``) or change one's configuration."""
    _require_marketer(actor)
    with db.transaction(actor) as session:
        campaign = _campaign(session, campaign_id, expected_version)
        if campaign.status == STOPPED:
            raise ValidationFailed({"campaign": ("campaigns.error.stopped", {})})
        live = _live(session, campaign_id)
        ids = [step.id for step in live]
        problems = sequences.step_problems(kind, config, template_ids=_template_ids(session), step_ids=ids)
        if step_id is not None and step_id not in ids:
            raise NotFound("campaign step")
        if problems:
            raise ValidationFailed(problems)
        clean = _clean_config(kind, config)
        if step_id is None:
            step = CampaignStep(tenant_id=actor.tenant_id, campaign_id=campaign_id, kind=kind, config=clean,
                                position=0)
            session.add(step)
            index = ids.index(after_step_id) + 1 if after_step_id in ids else len(live)
            live.insert(index, step)
        else:
            step = next(item for item in live if item.id == step_id)
            if step.kind != kind:
                raise ValidationFailed({"kind": ("campaigns.error.kind_fixed", {})})
            step.config = clean
        _renumber(session, campaign_id, live)
        session.flush()
        _check_sequence(session, campaign_id)
        if step_id is not None:
            _reevaluate_members_on(session, campaign, [step_id], utcnow())
        _touch(campaign)
        session.flush()
        return step.id


def _clean_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    if kind == StepKind.EMAIL:
        return {"template_id": config["template_id"]}
    if kind == StepKind.TASK:
        return {"activity_kind": config["activity_kind"], "title": str(config["title"]).strip(),
                "due_days": int(config.get("due_days", 0))}
    if kind == StepKind.WAIT:
        return {"days": config["days"], "business_days": bool(config.get("business_days", False))}
    if kind == StepKind.BRANCH:
        return {"event": config["event"], "within_days": config["within_days"],
                "then_step": config.get("then_step"), "else_step": config.get("else_step")}
    goal = {"kind": config["kind"]}
    if config["kind"] == "lifecycle":
        goal["stage"] = config["stage"]
    return goal


def _check_sequence(session: Session, campaign_id: int) -> None:
    problems = sequences.sequence_problems(machine_steps(session, campaign_id), template_ids=_template_ids(session))
    if problems:
        raise ValidationFailed(problems)


def move_step(db: Database, actor: Actor, campaign_id: int, step_id: int, offset: int, *,
              expected_version: int) -> None:
    """Move a step up (-1) or down (+1); members on it stay on it (decision 0049)."""
    _require_marketer(actor)
    with db.transaction(actor) as session:
        campaign = _campaign(session, campaign_id, expected_version)
        live = _live(session, campaign_id)
        index = next((i for i, step in enumerate(live) if step.id == step_id), None)
        if index is None:
            raise NotFound("campaign step")
        target = max(0, min(len(live) - 1, index + offset))
        live.insert(target, live.pop(index))
        _renumber(session, campaign_id, live)
        session.flush()
        _check_sequence(session, campaign_id)
        _touch(campaign)


def remove_step(db: Database, actor: Actor, campaign_id: int, step_id: int, *, expected_version: int) -> int:
    """Remove a step: archived (its messages and touches keep it); its members move to the next live step at
    the next tick. Returns how many members were on it."""
    _require_marketer(actor)
    with db.transaction(actor) as session:
        campaign = _campaign(session, campaign_id, expected_version)
        step = session.get(CampaignStep, step_id)
        if step is None or step.campaign_id != campaign_id or step.archived_at is not None:
            raise NotFound("campaign step")
        now = utcnow()
        step.archived_at = now
        for other in _live(session, campaign_id):  # a branch pointing at it goes to "next" instead
            if other.kind == StepKind.BRANCH and step_id in (other.config.get("then_step"),
                                                             other.config.get("else_step")):
                other.config = {**other.config,
                                **{key: None for key in ("then_step", "else_step") if other.config.get(key) == step_id}}
        session.flush()
        moved = _reevaluate_members_on(session, campaign, [step_id], now)
        _touch(campaign)
        return moved


# --- enrolment ------------------------------------------------------------------------------------


def contact_for(customer_id: Any) -> Any:
    """The person a member writes to (decision 0046): the customer's primary contact with an email, else
    its first contact with one, else None (the customer's own address). A correlated scalar subquery."""
    contact = aliased(Contact)
    return (select(contact.id)
            .where(contact.tenant_id == Customer.tenant_id, contact.customer_id == customer_id,
                   contact.archived_at.is_(None), contact.email.is_not(None), contact.email != "")
            .order_by(contact.is_primary.desc(), contact.id).limit(1).correlate(Customer).scalar_subquery())


def target_clause(session: Session, campaign: Campaign, actor: Actor | None) -> ColumnElement[bool]:
    """Customers the campaign targets now (Core: the tenant, not archived, the segment or stage, and, for a
    user, what that user sees)."""
    from crm_core.queries.segments import compile_context, field_catalog, segment_clause
    from crm_core.rules.segments import validate_spec

    clauses: list[ColumnElement[bool]] = [Customer.tenant_id == campaign.tenant_id, Customer.archived_at.is_(None)]
    if campaign.target_kind == "lifecycle":
        clauses.append(Customer.lifecycle_stage == campaign.lifecycle_stage)
    elif campaign.target_kind == "segment" and campaign.segment_id is not None:
        segment = session.get(Segment, campaign.segment_id)
        if segment is None:
            raise NotFound("segment")
        catalog = field_catalog(session, tenant_id=campaign.tenant_id)
        spec, problems = validate_spec(segment.conditions, catalog)
        if spec is None:
            raise ValidationFailed({"segment_id": ("campaigns.error.segment_invalid", {})})
        clauses.append(segment_clause(spec, catalog, compile_context(session, tenant_id=campaign.tenant_id)))
    else:
        clauses.append(literal(False))
    if actor is not None and (visible := visibility_clause(actor, Customer)) is not None:
        clauses.append(visible)
    return and_(*clauses)


def first_step_id(session: Session, campaign_id: int) -> int | None:
    live = sequences.live_steps(machine_steps(session, campaign_id))
    return live[0].id if live else None


def member_start(session: Session, campaign_id: int, now: dt.datetime) -> dict[str, Any]:
    """The columns of a member enrolled now: in the sequence when the campaign runs, pending otherwise.
    For enrolments outside this module (segments, automation rules)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in (RUNNING, PAUSED):
        return {"state": MemberState.PENDING.value}
    return {"state": MemberState.ACTIVE.value, "step_id": first_step_id(session, campaign_id),
            "step_entered_at": now, "next_run_at": now, "cycle": 1}


def enrol_new(session: Session, campaign: Campaign, actor: Actor | None, now: dt.datetime, source: str) -> int:
    """``INSERT … SELECT`` every targeted customer not yet a member, active on the first step, with its
    ``entered`` touch (set-based); how many were enrolled."""
    members = _table("campaign_members")
    first = first_step_id(session, campaign.id)
    rows: Select[Any] = select(
        literal(campaign.tenant_id).label("tenant_id"), literal(campaign.id).label("campaign_id"),
        Customer.id.label("customer_id"), literal(source).label("source"),
        literal(actor.user_id if actor else None).label("enrolled_by_id"), literal(now).label("enrolled_at"),
        contact_for(Customer.id).label("contact_id"), literal(MemberState.ACTIVE.value).label("state"),
        literal(first).label("step_id"), literal(now).label("step_entered_at"), literal(now).label("next_run_at"),
        literal(1).label("cycle"), literal(now).label("created_at"), literal(now).label("updated_at"),
    ).where(target_clause(session, campaign, actor))
    columns = ["tenant_id", "campaign_id", "customer_id", "source", "enrolled_by_id", "enrolled_at", "contact_id",
               "state", "step_id", "step_entered_at", "next_run_at", "cycle", "created_at", "updated_at"]
    count = bulk.insert_new(session, members, columns, rows, ["tenant_id", "campaign_id", "customer_id"])
    entered_touches(session, campaign.id, now, tenant_id=campaign.tenant_id)
    return count


def entered_touches(session: Session, campaign_id: int, now: dt.datetime, *, tenant_id: int | None = None) -> None:
    """An ``entered`` touch for every active member of the campaign that has none for its cycle (set-based)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    tenant = tenant_id if tenant_id is not None else campaign.tenant_id
    member = _table("campaign_members").alias("m")
    events = _table("marketing_events")
    done = exists().where(events.c.tenant_id == tenant, events.c.member_id == member.c.id,
                          events.c.kind == TouchKind.ENTERED.value, events.c.cycle == member.c.cycle)
    rows = select(
        member.c.tenant_id, member.c.campaign_id, member.c.step_id, member.c.id, member.c.customer_id,
        member.c.contact_id, member.c.cycle, literal(TouchKind.ENTERED.value), literal(now), literal(""),
        literal(now), literal(now),
    ).where(member.c.tenant_id == tenant, member.c.campaign_id == campaign_id,
            member.c.state == MemberState.ACTIVE.value, ~done)
    session.execute(insert(events).from_select(
        ["tenant_id", "campaign_id", "step_id", "member_id", "customer_id", "contact_id", "cycle", "kind",
         "occurred_at", "detail", "created_at", "updated_at"], rows))


def contacts_for(session: Session, customer_ids: list[int], *, tenant_id: int | None = None) -> dict[int, int]:
    """Each customer's person to write to (:func:`contact_for`), for enrolments of a known list."""
    found: dict[int, int] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start:start + 500]
        statement = (select(Contact.customer_id, Contact.id, Contact.is_primary)
                     .where(Contact.customer_id.in_(chunk), Contact.archived_at.is_(None),
                            Contact.email.is_not(None), Contact.email != "")
                     .order_by(Contact.customer_id, Contact.is_primary.desc(), Contact.id))
        if tenant_id is not None:
            statement = statement.where(Contact.tenant_id == tenant_id)
        for customer_id, contact_id, _primary in session.execute(statement):
            found.setdefault(customer_id, contact_id)
    return found


def _audit(session: Session, actor: Actor, campaign: Campaign, action: str, changes: dict[str, Any],
           now: dt.datetime) -> None:
    session.execute(insert(_table("audit_events")).values(
        tenant_id=campaign.tenant_id, actor_id=actor.user_id, action=action, entity="campaign",
        entity_id=campaign.id, changes=changes, occurred_at=now, created_at=now, updated_at=now))


def _set_status(session: Session, campaign: Campaign, values: dict[str, Any], expected_version: int | None) -> None:
    """Change the campaign's state in Core (its one audit row is written by the caller)."""
    table = _table("campaigns")
    clause = [table.c.id == campaign.id, table.c.tenant_id == campaign.tenant_id]
    if expected_version is not None:
        clause.append(table.c.version == expected_version)
    changed = session.execute(update(table).where(*clause).values(
        {"updated_at": utcnow(), **values, "version": table.c.version + 1})).rowcount  # type: ignore[attr-defined]
    if not changed:
        raise StaleRecord("campaign", campaign.id, changed_at=campaign.updated_at)
    session.expire(campaign)


@dataclass(frozen=True)
class Launch:
    """What a launch did: members enrolled from the target, pending members started, seconds taken."""

    enrolled: int
    started: int
    seconds: float


def launch(db: Database, actor: Actor, campaign_id: int, *, expected_version: int | None = None,
           now: dt.datetime | None = None) -> Launch:
    """Start a planned campaign: enrol its target (what the launching user sees) in one statement, start the
    members enrolled beforehand, write one ``entered`` touch each and one audit row."""
    _require_marketer(actor)
    started_clock = time.perf_counter()
    moment = (now or utcnow()).replace(microsecond=0)
    with db.transaction(actor) as session:
        campaign = _campaign(session, campaign_id, expected_version)
        if campaign.status != PLANNED:
            raise ValidationFailed({"campaign": ("campaigns.error.not_planned", {})})
        steps = machine_steps(session, campaign_id)
        if not sequences.live_steps(steps):
            raise ValidationFailed({"steps": ("campaigns.error.no_steps", {})})
        _check_sequence(session, campaign_id)
        version = campaign.version
        first = first_step_id(session, campaign_id)
        pending = session.execute(
            update(_table("campaign_members"))
            .where(_table("campaign_members").c.tenant_id == campaign.tenant_id,
                   _table("campaign_members").c.campaign_id == campaign_id,
                   _table("campaign_members").c.state == MemberState.PENDING.value)
            .values(state=MemberState.ACTIVE.value, step_id=first, step_entered_at=moment, next_run_at=moment,
                    enrolled_at=moment, updated_at=moment)).rowcount  # type: ignore[attr-defined]
        enrolled = 0
        if campaign.target_kind in TARGET_KINDS:
            enrolled = enrol_new(session, campaign, actor, moment, _source(campaign))
        else:
            entered_touches(session, campaign_id, moment, tenant_id=campaign.tenant_id)
        _set_status(session, campaign, {"status": RUNNING, "launched_at": moment, "updated_at": moment}, version)
        _audit(session, actor, campaign, "launch",
               {"status": [PLANNED, RUNNING], "enrolled": [None, enrolled + int(pending or 0)]}, moment)
        _tick_soon(session, campaign.tenant_id)
        _RECOUNT.mark(session, campaign.tenant_id)  # the results page lists the new members without waiting 15 min
    return Launch(enrolled=enrolled, started=int(pending or 0), seconds=time.perf_counter() - started_clock)


def _tick_soon(session: Session, tenant_id: int) -> None:
    """The first steps run right after the commit (a worker's tick), not at the next minute's schedule."""
    from crm_core.marketing.engine import tick_after_commit  # the engine reads this module's rules

    tick_after_commit(session, tenant_id)


_RECOUNT = JobAfterCommit("campaign_results_refresh")


def _source(campaign: Campaign) -> str:
    if campaign.target_kind == "segment":
        return f"segment:{campaign.segment_id}"
    return f"lifecycle:{campaign.lifecycle_stage}"


def _change_state(db: Database, actor: Actor, campaign_id: int, allowed: tuple[str, ...], status: str,
                  column: str, expected_version: int | None) -> None:
    _require_marketer(actor)
    now = utcnow()
    with db.transaction(actor) as session:
        campaign = _campaign(session, campaign_id, expected_version)
        before = campaign.status
        if before not in allowed:
            raise ValidationFailed({"campaign": (f"campaigns.error.cannot_{status}", {})})
        tenant_id = campaign.tenant_id
        _set_status(session, campaign, {"status": status, column: now, "updated_at": now}, campaign.version)
        members = _table("campaign_members")
        if status == STOPPED:  # everyone unfinished exits, with that reason
            session.execute(update(members).where(
                members.c.tenant_id == tenant_id, members.c.campaign_id == campaign_id,
                members.c.state.in_([MemberState.ACTIVE.value, MemberState.PENDING.value]))
                .values(state=MemberState.EXITED.value, exit_reason="campaign_stopped", finished_at=now,
                        next_run_at=None, updated_at=now))
        elif status == RUNNING:  # resumed: what fell due while paused runs at the next tick
            session.execute(update(members).where(
                members.c.tenant_id == tenant_id, members.c.campaign_id == campaign_id,
                members.c.state == MemberState.ACTIVE.value, members.c.next_run_at < now)
                .values(next_run_at=now))
            _tick_soon(session, tenant_id)
        _audit(session, actor, campaign, status, {"status": [before, status]}, now)


def pause(db: Database, actor: Actor, campaign_id: int, *, expected_version: int | None = None) -> None:
    """Pause a running campaign: members keep their place, nothing advances or enrols."""
    _change_state(db, actor, campaign_id, (RUNNING,), PAUSED, "paused_at", expected_version)


def resume(db: Database, actor: Actor, campaign_id: int, *, expected_version: int | None = None) -> None:
    """Resume a paused campaign."""
    _change_state(db, actor, campaign_id, (PAUSED,), RUNNING, "paused_at", expected_version)


def stop(db: Database, actor: Actor, campaign_id: int, *, expected_version: int | None = None) -> None:
    """Stop a campaign for good: unfinished members exit (``campaign_stopped``)."""
    _change_state(db, actor, campaign_id, (PLANNED, RUNNING, PAUSED), STOPPED, "stopped_at", expected_version)


def stop_member(db: Database, actor: Actor, member_id: int) -> None:
    """The owner (or a manager/admin) stops one member: it exits ``stopped`` with an ``exited`` touch."""
    now = utcnow()
    with db.transaction(actor) as session:
        member = session.get(CampaignMember, member_id)  # a rep sees only their customers' members
        if member is None:
            raise NotFound("campaign member")
        customer = session.get(Customer, member.customer_id)
        is_owner = customer is not None and customer.owner_id == actor.user_id
        if not (is_owner or actor.role in (Role.ADMIN, Role.MANAGER)):
            raise AccessDenied("only the owner, a manager or an admin may stop a member")
        if member.state in FINISHED:
            return
        table = _table("campaign_members")
        session.execute(update(table).where(table.c.id == member.id, table.c.tenant_id == member.tenant_id)
                        .values(state=MemberState.EXITED.value, exit_reason="stopped", finished_at=now,
                                next_run_at=None, updated_at=now))
        session.execute(insert(_table("marketing_events")).values(
            tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=member.step_id, member_id=member.id,
            customer_id=member.customer_id, contact_id=member.contact_id, cycle=member.cycle,
            kind=TouchKind.EXITED.value, occurred_at=now, detail="stopped", created_at=now, updated_at=now))
        session.execute(insert(_table("audit_events")).values(
            tenant_id=member.tenant_id, actor_id=actor.user_id, action="update", entity="campaign_member",
            entity_id=member.id, changes={"state": [member.state, MemberState.EXITED.value]},
            occurred_at=now, created_at=now, updated_at=now))


def member_counts(session: Session, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Members per campaign and state (visible to the session), in one grouped query."""
    if not campaign_ids:
        return {}
    rows = session.execute(select(CampaignMember.campaign_id, CampaignMember.state, func.count())
                           .where(CampaignMember.campaign_id.in_(campaign_ids))
                           .group_by(CampaignMember.campaign_id, CampaignMember.state)).all()
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, count in rows:
        counts.setdefault(campaign_id, {})[state] = int(count)
    return counts
