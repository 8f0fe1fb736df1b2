"""Lifecycle engine: the rules of :mod:`crm_core.rules.lifecycle`, run set-based in SQL.

:func:`refresh_lifecycle` classifies the customers of one tenant (all, or the ones just
touched) with one ``INSERT … SELECT`` into ``lifecycle_transitions`` for every customer
whose stage changes, then one ``UPDATE`` of ``customers`` from those rows: nothing is
loaded into Python row by row, so the bulk refresh of a million customers stays a few
statements. It runs on the caller's connection, inside the caller's transaction: writes
(activities, deals, orders) call it before they commit, so the stage is never stale.

Manual overrides (:func:`override_lifecycle_stage`) need a reason and hold while the rules
keep computing what they computed when the override was set; the first rule event that
changes that computation releases the override and the computed stage applies.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    case,
    delete,
    event,
    exists,
    false,
    func,
    insert,
    inspect,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from crm_core.access import ACTOR_KEY, Actor
from crm_core.bulk import insert_rows
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import (
    Base,
    Customer,
    LifecycleStage,
    OrderStatus,
    StageKind,
    Tenant,
    utcnow,
)
from crm_core.models.automation import (
    LifecycleOverride,
    LifecycleTransition,
    TransitionSource,
)
from crm_core.rules.lifecycle import RULES, STAGE_OF_REASON, churn_cutoff

CHUNK = 5000
STAGES = tuple(stage.value for stage in LifecycleStage)

customers = Base.metadata.tables["customers"]
opportunities = Base.metadata.tables["opportunities"]
orders = Base.metadata.tables["orders"]
activities = Base.metadata.tables["activities"]
transitions = Base.metadata.tables["lifecycle_transitions"]
overrides = Base.metadata.tables["lifecycle_overrides"]


@dataclass
class RefreshResult:
    """What one refresh did: transitions written, overrides released, and (bulk runs) the stage counts."""

    tenant_id: int
    transitions: int = 0
    overrides_released: int = 0
    stage_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _stage_ids(connection: Connection, tenant_id: int, kind: StageKind) -> list[int]:
    table = Base.metadata.tables["pipeline_stages"]
    return list(
        connection.scalars(select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.kind == kind.value))
    )


def _rule_conditions(
    connection: Connection, tenant_id: int, as_of: dt.datetime, customer_ids: Sequence[int] | None = None
) -> dict[str, ColumnElement[bool]]:
    """The facts the rules look at, as SQL conditions on a row of ``customers``.

    Each fact is ``customers.id IN (one uncorrelated SELECT of customer ids)``: the database
    computes each set once per statement (a hash or an ephemeral index), never once per
    customer, so no planner can turn it into a scan per row (without statistics SQLite would
    otherwise pick a covering index on (tenant, date) for a correlated EXISTS and scan the
    tenant's orders for every customer). ``customer_ids`` narrows every set for the per-write
    refresh of a few customers.
    """
    tenants = Base.metadata.tables["tenants"]
    window = connection.scalar(select(tenants.c.churn_window_days).where(tenants.c.id == tenant_id))
    cutoff = churn_cutoff(as_of, int(window or 180))
    won_ids = _stage_ids(connection, tenant_id, StageKind.WON)
    open_ids = _stage_ids(connection, tenant_id, StageKind.OPEN)
    o, r, a = opportunities.c, orders.c, activities.c

    def narrowed(customer_column: Any, *conditions: ColumnElement[bool]) -> Select[Any]:
        statement = select(customer_column).where(*conditions)
        if customer_ids is not None:
            statement = statement.where(customer_column.in_(list(customer_ids)))
        return statement

    def deals(stage_ids: list[int], *extra: ColumnElement[bool]) -> Select[Any]:
        return narrowed(
            o.customer_id, o.tenant_id == tenant_id,
            o.stage_id.in_(stage_ids) if stage_ids else false(), o.archived_at.is_(None), *extra,
        )

    def counted_orders(*extra: ColumnElement[bool]) -> Select[Any]:
        return narrowed(
            r.customer_id, r.tenant_id == tenant_id, r.status != OrderStatus.CANCELLED.value,
            r.archived_at.is_(None), *extra,
        )

    c = customers.c
    recent_sale = c.id.in_(
        union_all(
            deals(won_ids, func.coalesce(o.closed_at, o.updated_at) >= cutoff),
            counted_orders(r.ordered_at >= cutoff),
        )
    )
    bought = c.id.in_(union_all(deals(won_ids), counted_orders()))
    active = c.id.in_(narrowed(a.customer_id, a.tenant_id == tenant_id, a.occurred_at >= cutoff))
    return {"recent_sale": recent_sale, "bought": bought, "active": active, "open_deal": c.id.in_(deals(open_ids))}


def _classification(conditions: dict[str, ColumnElement[bool]], outcome: dict[str, str]) -> ColumnElement[str]:
    # Nested so that "bought" is probed once: prospects (most customers) cost five index probes.
    return case(
        (conditions["recent_sale"], outcome["recent_sale"]),
        (conditions["bought"], case((conditions["active"], outcome["active_buyer"]), else_=outcome["lapsed_buyer"])),
        (conditions["open_deal"], outcome["open_deal"]),
        else_=outcome["no_signal"],
    )


def reason_expression(
    connection: Connection, tenant_id: int, as_of: dt.datetime, customer_ids: Sequence[int] | None = None
) -> ColumnElement[str]:
    """SQL CASE giving each row of ``customers`` its rule code (see rules.lifecycle), for ``tenant_id``."""
    conditions = _rule_conditions(connection, tenant_id, as_of, customer_ids)
    return _classification(conditions, {reason: reason for reason, _ in RULES})


def stage_expression(
    connection: Connection, tenant_id: int, as_of: dt.datetime, customer_ids: Sequence[int] | None = None
) -> ColumnElement[str]:
    """SQL CASE giving each row of ``customers`` its lifecycle stage.

    Separate from :func:`reason_expression` on purpose: comparing the stored stage with this
    CASE evaluates each EXISTS at most once per customer, whereas mapping the reason code to a
    stage would make the database re-evaluate the whole reason CASE once per code.
    """
    conditions = _rule_conditions(connection, tenant_id, as_of, customer_ids)
    return _classification(conditions, {reason: stage.value for reason, stage in RULES})


def refresh_lifecycle(
    session: Session,
    tenant_id: int,
    customer_ids: Sequence[int] | None = None,
    *,
    as_of: dt.datetime | None = None,
    count_stages: bool = False,
) -> RefreshResult:
    """Reclassify the customers of ``tenant_id`` (all when ``customer_ids`` is None), set-based.

    Runs inside the caller's transaction. Stage changes are written to
    ``lifecycle_transitions`` (source ``rule``, reason = the rule code) and to the customer
    (its ``version`` moves, so an edit form opened before sees the change).
    """
    started = time.perf_counter()
    session.flush()
    connection = session.connection()
    now = utcnow()
    as_of = as_of or now
    result = RefreshResult(tenant_id)
    if customer_ids is None:
        id_chunks: list[list[int] | None] = [None]
    else:
        unique_ids = sorted(set(customer_ids))
        id_chunks = [unique_ids[start:start + CHUNK] for start in range(0, len(unique_ids), CHUNK)]
        if not id_chunks:
            return result
    changed_ids: set[int] = set()
    for chunk in id_chunks:
        reason = reason_expression(connection, tenant_id, as_of, chunk)
        stage = stage_expression(connection, tenant_id, as_of, chunk)
        scope: list[ColumnElement[bool]] = [customers.c.tenant_id == tenant_id]
        if chunk is not None:
            scope.append(customers.c.id.in_(chunk))
        result.overrides_released += _apply_overrides(connection, tenant_id, scope, reason, now)
        key = uuid.uuid4().hex
        classified = (
            select(customers.c.id, customers.c.lifecycle_stage, stage.label("stage"), reason.label("reason"))
            .where(
                *scope,
                ~exists().where(overrides.c.tenant_id == tenant_id, overrides.c.customer_id == customers.c.id),
            )
            .subquery("classified")
        )
        # the reason is computed for the changed rows only: the WHERE compares stages
        new_stage = classified.c.stage
        connection.execute(
            insert(transitions).from_select(
                ["tenant_id", "customer_id", "occurred_at", "from_stage", "to_stage", "source", "reason",
                 "refresh_key", "created_at", "updated_at"],
                select(
                    literal(tenant_id), classified.c.id, literal(now), classified.c.lifecycle_stage, new_stage,
                    literal(TransitionSource.RULE), classified.c.reason, literal(key), literal(now), literal(now),
                ).where(classified.c.lifecycle_stage != new_stage),
            )
        )
        # counted rather than taken from rowcount, which drivers report unevenly for INSERT … SELECT
        written = int(
            connection.scalar(
                select(func.count()).select_from(transitions)
                .where(transitions.c.tenant_id == tenant_id, transitions.c.refresh_key == key)
            ) or 0
        )
        if written:
            result.transitions += written
            _apply_transitions(connection, tenant_id, key, now)
            if chunk is not None:
                changed_ids.update(
                    connection.scalars(
                        select(transitions.c.customer_id).where(
                            transitions.c.tenant_id == tenant_id, transitions.c.refresh_key == key
                        )
                    )
                )
    _expire_customers(session, None if customer_ids is None else changed_ids)
    if count_stages:
        result.stage_counts = stage_counts(connection, tenant_id)
    result.seconds = time.perf_counter() - started
    return result


def _apply_transitions(connection: Connection, tenant_id: int, key: str, now: dt.datetime) -> None:
    """Move the customers to the stages of the transitions just written under ``key``.

    One UPDATE per target stage, each over a primary-key list: no correlated lookup per row.
    The tenant is fixed by the transitions' own filter.
    """
    t = transitions.c
    for stage in STAGES:
        moved = select(t.customer_id).where(t.tenant_id == tenant_id, t.refresh_key == key, t.to_stage == stage)
        connection.execute(
            update(customers)
            .where(customers.c.tenant_id == tenant_id, customers.c.id.in_(moved))
            .values(lifecycle_stage=stage, version=customers.c.version + 1, updated_at=now)
        )


def _apply_overrides(
    connection: Connection,
    tenant_id: int,
    scope: list[ColumnElement[bool]],
    reason: ColumnElement[str],
    now: dt.datetime,
) -> int:
    """Release the overrides whose rule stage no longer holds; returns how many."""
    rows = connection.execute(
        select(overrides.c.id, overrides.c.customer_id, overrides.c.rule_stage, customers.c.lifecycle_stage,
               reason.label("reason"))
        .join(customers, customers.c.id == overrides.c.customer_id)
        .where(overrides.c.tenant_id == tenant_id, *scope)
    ).all()
    released = 0
    for row in rows:
        computed = STAGE_OF_REASON[row.reason]
        if computed == row.rule_stage:
            continue
        released += 1
        connection.execute(delete(overrides).where(overrides.c.id == row.id))
        if computed != row.lifecycle_stage:
            key = uuid.uuid4().hex
            connection.execute(
                insert(transitions).values(
                    tenant_id=tenant_id, customer_id=row.customer_id, occurred_at=now, from_stage=row.lifecycle_stage,
                    to_stage=computed, source=TransitionSource.RULE, reason=row.reason, refresh_key=key,
                    created_at=now, updated_at=now,
                )
            )
            _apply_transitions(connection, tenant_id, key, now)
    return released


def _expire_customers(session: Session, customer_ids: set[int] | None) -> None:
    """Loaded Customer objects must reload the stage and version written behind the ORM's back."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and (customer_ids is None or obj.id in customer_ids):
            session.expire(obj)


def stage_counts(connection: Connection | Session, tenant_id: int) -> dict[str, int]:
    """Customers per lifecycle stage (archived excluded), every stage present."""
    rows = connection.execute(
        select(customers.c.lifecycle_stage, func.count())
        .where(customers.c.tenant_id == tenant_id, customers.c.archived_at.is_(None))
        .group_by(customers.c.lifecycle_stage)
    ).all()
    counts = {stage: 0 for stage in STAGES}
    for stage, count in rows:
        counts[stage] = int(count)
    return counts


def computed_reason(session: Session, tenant_id: int, customer_id: int, *, as_of: dt.datetime | None = None) -> str:
    """The rule code the rules give one customer now (ignoring any override)."""
    connection = session.connection()
    reason = reason_expression(connection, tenant_id, as_of or utcnow(), [customer_id])
    value = connection.scalar(
        select(reason).where(customers.c.tenant_id == tenant_id, customers.c.id == customer_id)
    )
    return str(value or "no_signal")


def record_initial_stages(session: Session, tenant_id: int, stages: dict[int, str], *, reason: str = "created") -> None:
    """First transitions (from nothing) for new customers; a stage other than the rules' holds as an override.

    A new customer has no deals, orders or activities yet, so the rules say ``prospect``;
    a stage typed in the form or imported from another system is kept as an override
    (reason ``created``) until a rule event changes the computation.
    """
    if not stages:
        return
    now = utcnow()
    prospect = LifecycleStage.PROSPECT.value
    # through the bulk writer, as tuples: the importer records 100,000 of these in one run
    insert_rows(
        session,
        transitions,
        [
            (tenant_id, customer_id, now, None, stage,
             TransitionSource.RULE if stage == prospect else TransitionSource.MANUAL,
             "no_signal" if stage == prospect else reason, now, now)
            for customer_id, stage in stages.items()
        ],
        columns=("tenant_id", "customer_id", "occurred_at", "from_stage", "to_stage", "source", "reason",
                 "created_at", "updated_at"),
    )
    held = [
        (tenant_id, customer_id, stage, prospect, reason, now, now, now)
        for customer_id, stage in stages.items()
        if stage != prospect
    ]
    insert_rows(
        session,
        overrides,
        held,
        columns=("tenant_id", "customer_id", "stage", "rule_stage", "reason", "set_at", "created_at", "updated_at"),
    )


MANUAL_REASON_KEY = "crm_lifecycle_reason"
# the reason recorded when a stage is edited in a form that asks for none (customer edit, bulk edit)
EDITED_BY_HAND = "manual_edit"


def _hold_manual_stage(
    session: Session, *, tenant_id: int, customer_id: int, old_stage: str | None, stage: str, reason: str,
    actor_id: int | None,
) -> None:
    """Record a stage set by hand: a transition, and an override the rules respect until their result changes."""
    rule_stage = STAGE_OF_REASON[computed_reason(session, tenant_id, customer_id)]
    with session.no_autoflush:
        existing = session.scalars(
            select(LifecycleOverride).where(
                LifecycleOverride.tenant_id == tenant_id, LifecycleOverride.customer_id == customer_id
            )
        ).first()
    if existing is None:
        existing = LifecycleOverride(tenant_id=tenant_id, customer_id=customer_id)
        session.add(existing)
    existing.stage = stage
    existing.rule_stage = rule_stage
    existing.reason = reason
    existing.set_by_id = actor_id
    existing.set_at = utcnow()
    if old_stage != stage:
        session.add(
            LifecycleTransition(
                tenant_id=tenant_id, customer_id=customer_id, from_stage=old_stage, to_stage=stage,
                source=TransitionSource.MANUAL, reason=reason, actor_id=actor_id,
            )
        )


@event.listens_for(Session, "before_flush")
def _stage_edited_by_hand(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Any ORM change of a customer's stage (the edit form, a bulk edit, an import update) is a manual
    override: recorded with its reason, so the next refresh does not silently undo it. The engine's
    own writes go through Core statements and never pass here."""
    actor = session.info.get(ACTOR_KEY)
    for obj in list(session.dirty):
        if not isinstance(obj, Customer):
            continue
        history = inspect(obj).attrs.lifecycle_stage.history
        if not history.has_changes() or not history.deleted:
            continue
        old_stage, new_stage = history.deleted[0], obj.lifecycle_stage
        if old_stage == new_stage:
            continue
        reason = str(session.info.get(MANUAL_REASON_KEY) or EDITED_BY_HAND)
        _hold_manual_stage(
            session, tenant_id=obj.tenant_id, customer_id=obj.id, old_stage=old_stage, stage=new_stage,
            reason=reason, actor_id=actor.user_id if actor is not None else None,
        )


def override_lifecycle_stage(db: Database, actor: Actor, customer_id: int, *, stage: str, reason: str) -> None:
    """Set a customer's stage by hand; it holds until a rule event changes what the rules compute.

    Raises ValidationFailed (unknown stage, no reason), NotFound or AccessDenied.
    """
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if stage not in STAGES:
        errors["lifecycle_stage"] = ("validation.choice", {})
    if not reason.strip():
        errors["reason"] = ("followups.lifecycle.reason_required", {})
    elif len(reason.strip()) > 500:
        errors["reason"] = ("validation.too_long", {"max": 500})
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        session.info[MANUAL_REASON_KEY] = reason.strip()
        try:
            if customer.lifecycle_stage == stage:
                # the same stage, confirmed by hand: it now holds with this reason
                _hold_manual_stage(session, tenant_id=actor.tenant_id, customer_id=customer_id, old_stage=stage,
                                   stage=stage, reason=reason.strip(), actor_id=actor.user_id)
            customer.lifecycle_stage = stage  # checked and audited by the session like any edit
            session.flush()
        finally:
            session.info.pop(MANUAL_REASON_KEY, None)


def refresh_all_tenants(db: Database, *, as_of: dt.datetime | None = None) -> list[RefreshResult]:
    """The bulk refresh behind ``python -m crm_core lifecycle refresh``: one transaction per tenant."""
    with db.system_session("lifecycle refresh: list tenants") as session:
        tenant_ids = list(session.scalars(select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)))
    results = []
    for tenant_id in tenant_ids:
        with db.system_transaction("lifecycle refresh") as session:
            results.append(refresh_lifecycle(session, tenant_id, as_of=as_of, count_stages=True))
    return results
