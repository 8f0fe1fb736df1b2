"""The customer pool (公海): its rules, claims, assignments, releases and the nightly return.

A pooled customer is an unowned customer of a team; the team's reps see it (``access.py``).
- ``claim_customers``: a rep takes customers from the pool, within the team rule's daily claim
  cap and cap on customers held, and not one that left them within the cooldown. The session is
  marked as a claim: any other way of making oneself the owner of a pooled customer is refused
  by ``access._check_pool_take``, so the caps hold for forms, bulk actions and the API alike.
- ``assign_from_pool``: a manager or admin gives pooled customers to a rep, beyond the caps.
- ``release_to_pool``: an owner (or their manager) gives a customer back; the cooldown starts.
- ``return_to_pool``: the nightly job. Set-based: one INSERT … SELECT writes the ledger rows of
  every customer due to return, one UPDATE unowns them, the audit rows follow in chunks; owners
  of customers about to return get a follow-up task and a notification ``reminder_days`` before.
Every change is in ``pool_events`` (the ledger the caps and the 360 read) and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, not_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm_core import access
from crm_core.access import Actor
from crm_core.bulk import driver_form, insert_rows
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, PoolRefused, ValidationFailed
from crm_core.i18n import t
from crm_core.models import Base, Customer, PipelineStage, Role, StageKind, Team, User, utcnow
from crm_core.models.pool import PoolEvent, PoolEventKind, PoolReturnReason, PoolRule
from crm_core.rules.pool import LIMITS, PoolTerms, check_terms, claim_problem, day_start
from crm_core.services.editing import check_version, translate_stale

SELECTION_LIMIT = 200
"""At most this many customers per claim or assignment (one transaction)."""
AUDIT_CHUNK = 5000

customers = Base.metadata.tables["customers"]
deals = Base.metadata.tables["opportunities"]
events = Base.metadata.tables["pool_events"]
users = Base.metadata.tables["users"]


@dataclass
class PoolRuleForm:
    """What an admin edits on the Pool page's rules tab (``team_id`` None: the tenant's default)."""

    team_id: int | None = None
    enabled: bool = True
    idle_days: int | None = 30
    no_deal_days: int | None = None
    protected_stage_ids: list[int] = field(default_factory=list)
    reminder_days: int | None = 3
    daily_claim_cap: int | None = 10
    held_cap: int | None = None
    cooldown_days: int | None = 30


def terms_of(rule: PoolRule) -> PoolTerms:
    return PoolTerms(idle_days=rule.idle_days, no_deal_days=rule.no_deal_days, reminder_days=rule.reminder_days,
                     daily_claim_cap=rule.daily_claim_cap, held_cap=rule.held_cap, cooldown_days=rule.cooldown_days)


def rules_by_team(session: Session, tenant_id: int) -> dict[int | None, PoolRule]:
    """The tenant's pool rules by team (None: the default)."""
    return {rule.team_id: rule for rule in session.scalars(select(PoolRule).where(PoolRule.tenant_id == tenant_id))}


def terms_for(rules: dict[int | None, PoolRule], team_id: int | None) -> PoolTerms | None:
    """The terms that govern ``team_id``'s pool: its own rule, else the default; None when off or absent."""
    rule = rules[team_id] if team_id in rules else rules.get(None)
    return terms_of(rule) if rule is not None and rule.enabled else None


# --- rules ---------------------------------------------------------------------------------


def save_pool_rule(db: Database, actor: Actor, form: PoolRuleForm, *, rule_id: int | None = None,
                   expected_version: int | None = None) -> int:
    """Create or change a pool rule (admins). One rule per team, and one default."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may change the pool's rules")
    values = {name: getattr(form, name) for name in LIMITS}
    errors = check_terms(values)

    def work() -> int:
        with db.transaction(actor) as session:
            if form.team_id is not None and session.get(Team, form.team_id) is None:
                errors["team_id"] = ("validation.choice", {})
            same_team = select(PoolRule.id).where(
                PoolRule.team_id.is_(None) if form.team_id is None else PoolRule.team_id == form.team_id)
            if rule_id is not None:
                same_team = same_team.where(PoolRule.id != rule_id)
            if session.scalar(same_team.limit(1)) is not None:
                errors["team_id"] = ("pool.rule.duplicate_team", {})
            stage_ids = sorted(set(form.protected_stage_ids))
            if stage_ids:
                open_stages = set(session.scalars(select(PipelineStage.id).where(
                    PipelineStage.id.in_(stage_ids), PipelineStage.kind == StageKind.OPEN.value)))
                if open_stages != set(stage_ids):
                    errors["protected_stage_ids"] = ("validation.choice", {})
            if errors:
                raise ValidationFailed(errors)
            if rule_id is None:
                rule = PoolRule(tenant_id=actor.tenant_id)
                session.add(rule)
            else:
                found = session.get(PoolRule, rule_id)
                if found is None:
                    raise NotFound("pool_rule")
                rule = found
                if expected_version is not None:
                    check_version(session, rule, "pool_rule", expected_version)
            rule.team_id = form.team_id
            rule.enabled = bool(form.enabled)
            for name, value in values.items():
                setattr(rule, name, value)
            rule.protected_stage_ids = stage_ids
            session.flush()
            return rule.id

    return translate_stale(db, actor, "pool_rule", rule_id or 0, work)


# --- claims, assignments, releases ----------------------------------------------------------


def _selection(customer_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(customer_ids))
    if not wanted:
        raise ValidationFailed({"selection": ("bulk.nothing_selected", {})})
    if len(wanted) > SELECTION_LIMIT:
        raise ValidationFailed({"selection": ("bulk.too_many", {"max": SELECTION_LIMIT})})
    return wanted


def _pooled(session: Session, wanted: list[int]) -> list[Customer]:
    """The selected customers, each in the pool (visible, unowned, not archived); else refused."""
    found = {customer.id: customer for customer in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}
    for customer_id in wanted:
        customer = found.get(customer_id)
        if customer is None:
            raise NotFound("customer")
        if customer.owner_id is not None or customer.archived_at is not None:
            raise PoolRefused("pool.error.not_in_pool", name=customer.name)
    return [found[customer_id] for customer_id in wanted]


def claim_counts(session: Session, actor: Actor, now: dt.datetime) -> tuple[int, int]:
    """(claims ``actor`` made today, customers ``actor`` owns), read as tables: the ledger and the customers,
    whatever the actor may see of them now (a claimed customer since returned still counts today)."""
    claimed_today = int(session.execute(select(func.count()).select_from(events).where(
        events.c.tenant_id == actor.tenant_id, events.c.user_id == actor.user_id,
        events.c.kind == PoolEventKind.CLAIMED, events.c.occurred_at >= day_start(now))).scalar() or 0)
    held = int(session.execute(select(func.count()).select_from(customers).where(
        customers.c.tenant_id == actor.tenant_id, customers.c.owner_id == actor.user_id,
        customers.c.archived_at.is_(None))).scalar() or 0)
    return claimed_today, held


def _check_claim(session: Session, actor: Actor, claimed: list[Customer], now: dt.datetime) -> None:
    """The team rules' caps and cooldown for a rep's claim (counted on the ledger, whatever the rep sees now)."""
    rules = rules_by_team(session, actor.tenant_id)
    tenant = events.c.tenant_id == actor.tenant_id
    claimed_today, held = claim_counts(session, actor, now)
    left_me = {row[0]: row[1] for row in session.execute(
        select(events.c.customer_id, func.max(events.c.occurred_at)).where(
            tenant, events.c.previous_owner_id == actor.user_id, events.c.kind.in_(PoolEventKind.LEFT_OWNER),
            events.c.customer_id.in_([customer.id for customer in claimed]))
        .group_by(events.c.customer_id))}
    by_team: dict[int | None, list[Customer]] = {}
    for customer in claimed:
        by_team.setdefault(customer.team_id, []).append(customer)
    for team_id, members in by_team.items():
        terms = terms_for(rules, team_id)
        if terms is None:
            continue
        cooling = [customer for customer in members if customer.id in left_me
                   and left_me[customer.id] > now - dt.timedelta(days=terms.cooldown_days)]
        problem = claim_problem(terms, claiming=len(claimed), claimed_today=claimed_today, held=held,
                                cooling=bool(cooling))
        if problem is not None:
            key, params = problem
            if cooling:
                until = left_me[cooling[0].id] + dt.timedelta(days=terms.cooldown_days)
                params = {**params, "name": cooling[0].name, "until": until.strftime("%Y-%m-%d")}
            raise PoolRefused(key, **params)


def _take(db: Database, actor: Actor, customer_ids: Sequence[int], owner_id: int, kind: str,
          now: dt.datetime | None) -> int:
    wanted = _selection(customer_ids)
    now = now or utcnow()
    try:
        with db.transaction(actor) as session:
            session.info[access.POOL_CLAIM_KEY] = True
            pooled = _pooled(session, wanted)
            if kind == PoolEventKind.CLAIMED and actor.role == Role.REP:
                _check_claim(session, actor, pooled, now)
            for customer in pooled:
                customer.owner_id = owner_id
                session.add(PoolEvent(tenant_id=actor.tenant_id, customer_id=customer.id, kind=kind, user_id=owner_id,
                                      actor_id=actor.user_id, occurred_at=now))
            session.flush()
    except StaleDataError:  # another claim took one of them first: nothing was taken
        raise PoolRefused("pool.error.taken") from None
    return len(wanted)


def claim_customers(db: Database, actor: Actor, customer_ids: Sequence[int], *, now: dt.datetime | None = None) -> int:
    """``actor`` takes the selected pooled customers (all or none); reps within their team rule's caps."""
    if not actor.can_write or actor.role == Role.ANALYST:
        raise AccessDenied("this role cannot claim customers")
    return _take(db, actor, customer_ids, actor.user_id, PoolEventKind.CLAIMED, now)


def assign_from_pool(db: Database, actor: Actor, customer_ids: Sequence[int], owner_id: int, *,
                     now: dt.datetime | None = None) -> int:
    """A manager or admin gives the selected pooled customers to ``owner_id`` (all or none), beyond the caps."""
    if actor.role not in (Role.MANAGER, Role.ADMIN):
        raise AccessDenied("only a manager or admin assigns from the pool")
    with db.session(actor) as session:
        owner = session.get(User, owner_id)
        if owner is None or not owner.is_active or owner.role not in (Role.REP.value, Role.MANAGER.value) \
                or not access.can_assign_owner(actor, owner_id):
            raise ValidationFailed({"owner_id": ("validation.choice", {})})
    return _take(db, actor, customer_ids, owner_id, PoolEventKind.ASSIGNED, now)


def release_to_pool(db: Database, actor: Actor, customer_id: int, *, expected_version: int,
                    note: str | None = None, now: dt.datetime | None = None) -> None:
    """Give an owned customer back to its team's pool; its previous owner's cooldown starts."""
    note = (note or "").strip() or None
    if note is not None and len(note) > 500:
        raise ValidationFailed({"note": ("validation.too_long", {"max": 500})})
    now = now or utcnow()

    def work() -> None:
        with db.transaction(actor) as session:
            customer = session.get(Customer, customer_id)
            if customer is None or customer.archived_at is not None:
                raise NotFound("customer")
            check_version(session, customer, "customer", expected_version)
            previous = customer.owner_id
            if previous is None:
                raise PoolRefused("pool.error.already_in_pool", name=customer.name)
            if actor.role == Role.REP and previous != actor.user_id:
                raise PoolRefused("pool.error.not_owned", name=customer.name)
            if customer.team_id is None:  # it lands in its previous owner's team's pool
                customer.team_id = session.scalar(select(User.team_id).where(User.id == previous))
            customer.owner_id = None
            session.add(PoolEvent(tenant_id=actor.tenant_id, customer_id=customer.id, kind=PoolEventKind.RELEASED,
                                  previous_owner_id=previous, actor_id=actor.user_id, note=note, occurred_at=now))
            session.flush()

    translate_stale(db, actor, "customer", customer_id, work)


# --- the nightly return ---------------------------------------------------------------------


@dataclass
class ReturnResult:
    """What one return run did for a tenant."""

    returned: int = 0
    reminded: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _owned_since() -> Any:
    return func.coalesce(customers.c.owner_since, customers.c.created_at)


def _idle_clock() -> Any:
    """Where a customer's silence starts: the later of its last contact and its owner's start."""
    owned = _owned_since()
    return case((and_(customers.c.last_contacted_at.is_not(None), customers.c.last_contacted_at > owned),
                 customers.c.last_contacted_at), else_=owned)


def _open_deal(tenant_id: int, *criteria: Any) -> Any:
    return exists().where(deals.c.tenant_id == tenant_id, deals.c.customer_id == customers.c.id,
                          deals.c.closed_at.is_(None), deals.c.archived_at.is_(None), *criteria)


def _due(tenant_id: int, rule: PoolRule, at: dt.datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(idle, no deal): the two reasons a customer of ``rule``'s scope is due to return at ``at``."""
    idle = _idle_clock() < at - dt.timedelta(days=rule.idle_days)
    if rule.no_deal_days is None:
        return idle, false()
    cutoff = at - dt.timedelta(days=rule.no_deal_days)
    no_deal = and_(_owned_since() < cutoff, ~_open_deal(tenant_id),
                   ~exists().where(deals.c.tenant_id == tenant_id, deals.c.customer_id == customers.c.id,
                                   deals.c.updated_at >= cutoff))
    return idle, no_deal


def _team() -> Any:
    """The customer's team, else its owner's: the pool it returns to (a rep's own customers carry no team)."""
    return func.coalesce(customers.c.team_id,
                         select(users.c.team_id).where(users.c.id == customers.c.owner_id).scalar_subquery())


def _scope(tenant_id: int, team_id: int | None, teams_with_rules: list[int]) -> list[ColumnElement[bool]]:
    c = customers.c
    base = [c.tenant_id == tenant_id, c.owner_id.is_not(None), c.archived_at.is_(None)]
    if team_id is not None:
        return [*base, _team() == team_id]
    return [*base, or_(_team().is_(None), _team().not_in(teams_with_rules))]


def return_to_pool(db: Database, tenant_id: int, *, now: dt.datetime | None = None) -> ReturnResult:
    """Return the tenant's customers that their team's rule says are due, and remind owners of those soon due.

    The customers due are found in one read; they are then returned ``RETURN_CHUNK`` at a time, each
    chunk its own transaction that checks the rule again (a customer followed up meanwhile stays), so a
    first run that returns half a million customers never holds the database's write lock for long.
    """
    started = time.perf_counter()
    now = now or utcnow()
    result = ReturnResult()
    with db.system_session("pool: customers due", tenant_id=tenant_id) as session:
        every_rule = rules_by_team(session, tenant_id)
        teams_with_rules = sorted(team_id for team_id in every_rule if team_id is not None)
        plans = [(rule, _rule_scope(tenant_id, team_id, rule, teams_with_rules))
                 for team_id, rule in every_rule.items() if rule.enabled]
        due: list[tuple[PoolRule, list[ColumnElement[bool]], list[int]]] = []
        for rule, scope in plans:
            idle, no_deal = _due(tenant_id, rule, now)
            ids = list(session.execute(select(customers.c.id).where(*scope, or_(idle, no_deal))
                                       .order_by(customers.c.id)).scalars())
            due.append((rule, scope, ids))
    for rule, scope, ids in due:
        for offset in range(0, len(ids), RETURN_CHUNK):
            returned = _return_chunk(db, tenant_id, rule, scope, ids[offset:offset + RETURN_CHUNK], now)
            result.returned += len(returned)
            for row in returned:
                result.by_reason[row.reason] = result.by_reason.get(row.reason, 0) + 1
    with db.system_transaction("pool: reminders", tenant_id=tenant_id) as session:
        reminders = _due_for_reminder(session, tenant_id, plans, now)
        if reminders:
            _remind(session, tenant_id, reminders, now)
        result.reminded = len(reminders)
    result.seconds = time.perf_counter() - started
    return result


RETURN_CHUNK = 20_000


def _rule_scope(tenant_id: int, team_id: int | None, rule: PoolRule,
                teams_with_rules: list[int]) -> list[ColumnElement[bool]]:
    scope = _scope(tenant_id, team_id, teams_with_rules)
    if rule.protected_stage_ids:
        scope.append(~_open_deal(tenant_id, deals.c.stage_id.in_(list(rule.protected_stage_ids))))
    return scope


def _return_chunk(db: Database, tenant_id: int, rule: PoolRule, scope: list[ColumnElement[bool]],
                  chunk: list[int], now: dt.datetime) -> Sequence[Any]:
    """Return the customers of ``chunk`` still due (checked again), in one transaction: ledger, owner, audit."""
    key = uuid.uuid4().hex
    idle, no_deal = _due(tenant_id, rule, now)
    reason = case((idle, PoolReturnReason.IDLE), else_=PoolReturnReason.NO_DEAL)
    with db.system_transaction("pool: return run", tenant_id=tenant_id) as session:
        connection = session.connection()
        connection.execute(events.insert().from_select(
            ["tenant_id", "customer_id", "kind", "previous_owner_id", "reason", "occurred_at", "run_key",
             "created_at", "updated_at"],
            select(customers.c.tenant_id, customers.c.id, literal(PoolEventKind.RETURNED), customers.c.owner_id,
                   reason, literal(now), literal(key), literal(now), literal(now))
            .where(customers.c.id.in_(chunk), *scope, or_(idle, no_deal)),
        ))
        returned = connection.execute(
            select(events.c.customer_id, events.c.previous_owner_id, events.c.reason)
            .where(events.c.tenant_id == tenant_id, events.c.run_key == key)
        ).all()
        if returned:
            this_run = customers.c.id.in_([row.customer_id for row in returned])
            # first the team (from the owner, still set: MySQL applies SET clauses left to right), then the owner
            connection.execute(update(customers).where(this_run, customers.c.team_id.is_(None)).values(team_id=_team()))
            connection.execute(update(customers).where(this_run).values(
                owner_id=None, owner_since=None, version=customers.c.version + 1, updated_at=now))
            _audit_returns(session, tenant_id, returned, now)
    return returned


def _due_for_reminder(session: Session, tenant_id: int, plans: list[tuple[PoolRule, list[ColumnElement[bool]]]],
                      now: dt.datetime) -> list[tuple[int, str, int, int | None, str, dt.datetime]]:
    """Owned customers that return within their rule's reminder days and whose owner was not told since the
    silence began: (id, name, owner, team, stage, the morning of the return day)."""
    reminders: list[tuple[int, str, int, int | None, str, dt.datetime]] = []
    for rule, scope in plans:
        if not rule.reminder_days:
            continue
        soon = now + dt.timedelta(days=rule.reminder_days)
        idle, no_deal = _due(tenant_id, rule, now)
        idle_soon, no_deal_soon = _due(tenant_id, rule, soon)
        reminded = exists().where(events.c.tenant_id == tenant_id, events.c.customer_id == customers.c.id,
                                  events.c.kind == PoolEventKind.REMINDED,
                                  events.c.user_id == customers.c.owner_id, events.c.occurred_at >= _idle_clock())
        rows = session.execute(
            select(customers.c.id, customers.c.name, customers.c.owner_id, customers.c.team_id,
                   customers.c.lifecycle_stage)
            .where(*scope, or_(idle_soon, no_deal_soon), not_(or_(idle, no_deal)), ~reminded)
        ).all()
        returns_at = soon.replace(hour=9, minute=0, second=0, microsecond=0)
        reminders.extend((row.id, row.name, row.owner_id, row.team_id, row.lifecycle_stage, returns_at)
                         for row in rows)
    return reminders


def _audit_returns(session: Session, tenant_id: int, returned: Sequence[Any], now: dt.datetime) -> None:
    """One audit row per returned customer (owner → nobody, with the rule's reason), in chunks."""
    audit_events = Base.metadata.tables["audit_events"]
    encode = driver_form(session, audit_events, "changes")
    columns = ("tenant_id", "actor_id", "action", "entity", "entity_id", "occurred_at", "created_at", "updated_at",
               "changes")
    for start in range(0, len(returned), AUDIT_CHUNK):
        rows = [
            (tenant_id, None, "update", "customer", row.customer_id, now, now, now,
             encode({"owner_id": (row.previous_owner_id, None), "_source": ("", f"pool return: {row.reason}")}))
            for row in returned[start:start + AUDIT_CHUNK]
        ]
        insert_rows(session, audit_events, rows, columns=columns, converted=("changes",))


def _remind(session: Session, tenant_id: int,
            reminders: list[tuple[int, str, int, int | None, str, dt.datetime]], now: dt.datetime) -> None:
    """A follow-up task for each owner whose customer returns soon, in the owner's language, and its ledger row."""
    from crm_core.services.followups import NewCustomer, _create_first_tasks

    owner_ids = sorted({owner for _, _, owner, _, _, _ in reminders})
    languages = {row[0]: row[1]
                 for row in session.execute(select(User.id, User.language).where(User.id.in_(owner_ids)))}
    items = []
    for customer_id, name, owner_id, team_id, stage, returns_at in reminders:
        title = t("pool.task.reminder", languages.get(owner_id, "en"), name=name, date=returns_at.strftime("%Y-%m-%d"))
        items.append(NewCustomer(name=name, owner_id=owner_id, team_id=team_id, lifecycle_stage=stage, fields={},
                                 id=customer_id, due_at=returns_at, follow_up_assignee=owner_id,
                                 follow_up_title=title[:200]))
    _create_first_tasks(session, None, tenant_id, items)
    from crm_core.services.notifications import Notice, notify_many

    notify_many(session, tenant_id=tenant_id, now=now, notices=[
        Notice(owner_id, "pool_return", {"name": name, "date": returns_at.strftime("%Y-%m-%d")}, "customer",
               customer_id, f"pool_return:{customer_id}:{returns_at.strftime('%Y-%m-%d')}")
        for customer_id, name, owner_id, _, _, returns_at in reminders
    ])
    insert_rows(session, events, [
        {"tenant_id": tenant_id, "customer_id": customer_id, "kind": PoolEventKind.REMINDED, "user_id": owner_id,
         "previous_owner_id": None, "actor_id": None, "reason": None, "note": None, "occurred_at": now,
         "run_key": None, "created_at": now, "updated_at": now}
        for customer_id, _, owner_id, _, _, _ in reminders
    ])
