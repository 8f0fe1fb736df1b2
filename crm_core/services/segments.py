"""Segment use cases: save, share, delete, record the size, and act on the members.

Conditions are validated by :func:`crm_core.rules.segments.validate_spec` before anything
is stored or run; a refused condition becomes :class:`ValidationFailed` with one entry per
condition (``conditions.<n>``). Bulk actions (tasks, campaign enrolment) are
all-or-nothing in one transaction, capped at :data:`MAX_BULK` members, and audited row by
row by the session (see :mod:`crm_core.access`).

Snapshots (size over time) are recorded when a segment is saved, when a user presses
"record size", and by ``python -m crm_core segments snapshot`` (meant for a daily cron);
each counts the members visible to the segment's owner at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import (
    AccessDenied,
    DomainError,
    NotFound,
    SegmentNameTaken,
    SegmentTooLarge,
    StaleRecord,
    ValidationFailed,
)
from crm_core.models import Campaign, Customer, Priority, Role, Task, Team, User, utcnow
from crm_core.models.segments import (
    CampaignMember,
    Segment,
    SegmentSharing,
    SegmentSnapshot,
)
from crm_core.queries.segments import count_segment, field_catalog, segment_member_ids
from crm_core.rules import fields as field_rules
from crm_core.rules.segments import SegmentSpec, validate_spec
from crm_core.services.campaigns import contacts_for, entered_touches, member_start

MAX_BULK = 5_000
Errors = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class SegmentInput:
    """The segment form: name, description, raw conditions and sharing."""

    name: str
    conditions: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    sharing: str = SegmentSharing.PRIVATE
    team_id: int | None = None


def validated_spec(session: Session, raw: Any, *, require_conditions: bool = False) -> SegmentSpec:
    """The normalised spec of ``raw`` for the session's tenant; raises ValidationFailed."""
    if hidden_text(raw):
        raise ValidationFailed({"conditions": ("imports.rule.hidden_characters", {"field": "conditions"})})
    spec, problems = validate_spec(raw, field_catalog(session), require_conditions=require_conditions)
    if spec is None:
        errors: Errors = {}
        for problem in problems:
            key = "conditions" if problem.index is None else f"conditions.{problem.index + 1}"
            errors.setdefault(key, (problem.key, problem.params))
        raise ValidationFailed(errors)
    return spec


def hidden_text(value: Any) -> bool:
    """Does any string in ``value`` (a condition tree) hold a control or text-direction character?

    PostgreSQL refuses NUL in any string, so a condition's value holding one failed the member count
    with a DataError instead of a refusal."""
    if isinstance(value, str):
        return field_rules.hidden_characters(field_rules.Field("conditions"), value) is not None
    if isinstance(value, dict):
        return any(hidden_text(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(hidden_text(item) for item in value)
    return False


def _validate_form(session: Session, actor: Actor, form: SegmentInput) -> tuple[Errors, SegmentSpec | None]:
    errors: Errors = {}
    name = form.name.strip()
    description = form.description.strip()
    if not name:
        errors["name"] = ("validation.required", {})
    elif len(name) > 120:
        errors["name"] = ("validation.too_long", {"max": 120})
    elif (hidden := field_rules.hidden_characters(field_rules.Field("name"), name)) is not None:
        errors["name"] = hidden  # NUL (refused by PostgreSQL), other controls, bidi overrides
    if len(description) > 500:
        errors["description"] = ("validation.too_long", {"max": 500})
    elif (hidden := field_rules.hidden_characters(field_rules.Field("description"), description)) is not None:
        errors["description"] = hidden
    if form.sharing not in SegmentSharing.ALL:
        errors["sharing"] = ("validation.choice", {})
    elif form.sharing == SegmentSharing.TEAM:
        if form.team_id is None or session.get(Team, form.team_id) is None:
            errors["team_id"] = ("segments.error.team_required", {})
        elif not actor.is_admin and form.team_id not in actor.team_ids:
            errors["team_id"] = ("segments.error.not_your_team", {})
    spec = None
    try:
        spec = validated_spec(session, form.conditions, require_conditions=True)
    except ValidationFailed as failed:
        errors.update(failed.errors)
    return errors, spec


def save_segment(
    db: Database,
    actor: Actor,
    form: SegmentInput,
    *,
    segment_id: int | None = None,
    expected_version: int | None = None,
) -> int:
    """Create (or, with ``segment_id``, update) a saved segment and record its size; returns its id."""
    with db.transaction(actor) as session:
        errors, spec = _validate_form(session, actor, form)
        if errors or spec is None:
            raise ValidationFailed(errors)
        name = form.name.strip()
        clash = session.execute(
            select(Segment.id).where(Segment.tenant_id == actor.tenant_id, Segment.name == name)
        ).scalar_one_or_none()
        if clash is None:
            # a same-named segment the actor cannot see still blocks the name
            with db.system_session("segment name check", tenant_id=actor.tenant_id) as check:
                clash = check.execute(
                    select(Segment.id).where(Segment.tenant_id == actor.tenant_id, Segment.name == name)
                ).scalar_one_or_none()
        if clash is not None and clash != segment_id:
            raise SegmentNameTaken(name=name)
        if segment_id is None:
            segment = Segment(owner_id=actor.user_id)
            session.add(segment)
        else:
            found = session.get(Segment, segment_id)
            if found is None:
                raise NotFound("segment")
            if expected_version is not None and found.version != expected_version:
                raise StaleRecord("segment", segment_id)
            segment = found
        segment.name = name
        segment.description = form.description.strip()
        segment.conditions = spec.as_dict()
        segment.sharing = form.sharing
        segment.team_id = form.team_id if form.sharing == SegmentSharing.TEAM else None
        session.flush()
        session.add(
            SegmentSnapshot(segment_id=segment.id, member_count=count_segment(session, spec), source="save")
        )
        return segment.id


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("segment")
    return segment


def delete_segment(db: Database, actor: Actor, segment_id: int) -> None:
    """Delete a saved segment and its size history (owner or admin)."""
    with db.transaction(actor) as session:
        segment = _segment(session, segment_id)
        for snapshot in session.scalars(select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment_id)):
            session.delete(snapshot)
        session.flush()
        session.delete(segment)


def record_snapshot(db: Database, actor: Actor, segment_id: int, *, source: str = "manual") -> int:
    """Count the segment now, store the size, and return it."""
    with db.transaction(actor) as session:
        segment = _segment(session, segment_id)
        spec = validated_spec(session, segment.conditions)
        count = count_segment(session, spec)
        session.add(SegmentSnapshot(segment_id=segment.id, member_count=count, source=source))
        return count


@dataclass(frozen=True)
class SnapshotRun:
    """What ``segments snapshot`` did: segments counted, and those skipped (owner inactive, conditions now invalid)."""

    counted: int
    skipped: int
    sizes: dict[int, int]


def snapshot_all_segments(
    db: Database, *, tenant_id: int | None = None, progress: Callable[[int, int], None] | None = None
) -> SnapshotRun:
    """Record the size of every saved segment (of one tenant or all), each in its owner's scope.

    ``progress(done, total)`` is called before each segment (a job's report; raising stops the run,
    the sizes recorded so far stay: each snapshot is a fact of its own).
    """
    from crm_core.services.auth import load_actor

    with db.system_session("segments snapshot") as session:
        statement = select(Segment.id, User.username).join(User, User.id == Segment.owner_id).order_by(Segment.id)
        if tenant_id is not None:
            statement = statement.where(Segment.tenant_id == tenant_id)
        segments = session.execute(statement).all()
    sizes: dict[int, int] = {}
    skipped = 0
    actors: dict[str, Actor | None] = {}
    for done, (segment_id, username) in enumerate(segments):
        if progress is not None:
            progress(done, len(segments))
        if username not in actors:
            actors[username] = load_actor(db, username)
        owner = actors[username]
        if owner is None:
            skipped += 1
            continue
        try:
            sizes[segment_id] = record_snapshot(db, owner, segment_id, source="cli")
        except DomainError:  # e.g. a condition on a custom field deleted since: counted as skipped
            skipped += 1
    return SnapshotRun(counted=len(sizes), skipped=skipped, sizes=sizes)


def _members_for_bulk(session: Session, raw: Any) -> list[int]:
    spec = validated_spec(session, raw, require_conditions=True)
    member_ids = segment_member_ids(session, spec, limit=MAX_BULK + 1)
    if len(member_ids) > MAX_BULK:
        raise SegmentTooLarge(count=count_segment(session, spec), max=MAX_BULK)
    return member_ids


@dataclass
class BulkTaskInput:
    """A task to create for every member: title ({name} is the customer's name), due date, priority, assignee."""

    title: str
    due_on: dt.date | None = None
    priority: str = Priority.NORMAL.value
    assignee_id: int | None = None  # None: each customer's owner (the actor for unowned ones)


def create_segment_tasks(db: Database, actor: Actor, conditions: dict[str, Any], form: BulkTaskInput) -> int:
    """One task per member, all or nothing; returns how many were created."""
    errors: Errors = {}
    title = form.title.strip()
    if not title:
        errors["title"] = ("validation.required", {})
    elif len(title) > 200:
        errors["title"] = ("validation.too_long", {"max": 200})
    if form.priority not in {priority.value for priority in Priority}:
        errors["priority"] = ("validation.choice", {})
    if errors:
        raise ValidationFailed(errors)
    if not actor.can_write:
        raise AccessDenied("this role cannot create tasks")
    with db.transaction(actor) as session:
        if form.assignee_id is not None:
            assignee = session.get(User, form.assignee_id)
            allowed = actor.is_admin or form.assignee_id in actor.visible_owner_ids or form.assignee_id == actor.user_id
            if assignee is None or not assignee.is_active or not allowed:
                raise ValidationFailed({"assignee_id": ("validation.choice", {})})
        member_ids = _members_for_bulk(session, conditions)
        due_at = dt.datetime.combine(form.due_on, dt.time(9, 0)) if form.due_on else None
        created = 0
        for start in range(0, len(member_ids), 500):
            chunk = member_ids[start : start + 500]
            rows = session.execute(select(Customer.id, Customer.name, Customer.owner_id).where(Customer.id.in_(chunk)))
            for customer_id, name, owner_id in rows:
                session.add(
                    Task(
                        title=title.replace("{name}", name)[:200],
                        assignee_id=form.assignee_id or owner_id or actor.user_id,
                        created_by_id=actor.user_id,
                        due_at=due_at,
                        priority=form.priority,
                        customer_id=customer_id,
                    )
                )
                created += 1
        session.flush()
        return created


@dataclass(frozen=True)
class Enrolment:
    """How many members a campaign enrolment added, and how many were enrolled already."""

    enrolled: int
    already: int


def enroll_segment_in_campaign(
    db: Database, actor: Actor, conditions: dict[str, Any], campaign_id: int, *, segment_id: int | None = None
) -> Enrolment:
    """Enrol every member in a campaign (managers and admins), all or nothing; members already in it stay."""
    if actor.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only a manager or admin may enrol customers in a campaign")
    with db.transaction(actor) as session:
        if session.get(Campaign, campaign_id) is None:
            raise NotFound("campaign")
        member_ids = _members_for_bulk(session, conditions)
        already: set[int] = set()
        for start in range(0, len(member_ids), 500):
            already |= set(
                session.scalars(
                    select(CampaignMember.customer_id).where(
                        CampaignMember.campaign_id == campaign_id,
                        CampaignMember.customer_id.in_(member_ids[start : start + 500]),
                    )
                )
            )
        source = f"segment:{segment_id}" if segment_id else "segment"
        now = utcnow().replace(microsecond=0)
        # in the sequence at once when the campaign runs, pending until its launch otherwise (decision 0049)
        begin = member_start(session, campaign_id, now)
        contacts = contacts_for(session, [customer_id for customer_id in member_ids if customer_id not in already])
        for customer_id in member_ids:
            if customer_id not in already:
                session.add(
                    CampaignMember(
                        campaign_id=campaign_id, customer_id=customer_id, source=source,
                        enrolled_by_id=actor.user_id, enrolled_at=now, contact_id=contacts.get(customer_id),
                        **begin,
                    )
                )
        session.flush()
        if begin["state"] == "active":
            entered_touches(session, campaign_id, now)
        return Enrolment(enrolled=len(member_ids) - len(already), already=len(already))

