"""Data-quality checks on the live database: each one a SQL query for the rows that break a rule.

Pattern: specification as query. Every check is a ``select`` of ``(tenant_id, id, label)`` for
the violating rows; :func:`measure` turns it into a count per tenant (``GROUP BY tenant_id``,
in SQL) and up to :data:`EXAMPLES` examples per failing tenant. Run in a session scoped to an
actor (the Data quality page), :mod:`crm_core.access` limits every entity to the actor's
tenant; in a system session (``python -m crm_core check``) the grouping keeps tenants apart.
Which checks make up a suite, and the expectation each must meet, live in ``validations/db_*.py``.

Orphans are checked *within the tenant*: a contact pointing at another tenant's customer is as
broken as one pointing at nothing (and the database's own foreign keys cannot see it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, String, and_, cast, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from crm_core.models import (
    Activity,
    Case,
    Contact,
    Customer,
    LifecycleStage,
    Opportunity,
    Order,
    OrderLine,
    OrderStatus,
    PipelineStage,
    StageKind,
    Task,
    User,
)
from crm_core.models.merges import Merge
from crm_core.models.pipeline import OpportunityLine, OpportunityStageChange

EXAMPLES = 5
# A deal above this (or below zero) is a typo or a unit mix-up, not a sale: Numeric(14, 2) allows 10^12.
MAX_DEAL_AMOUNT = Decimal(1000000000)

ViolationQuery = Select[int, int, str]
Violations = Callable[[], ViolationQuery]


@dataclass(frozen=True)
class CheckDefinition:
    """One rule: its name (also its catalog key ``quality.check.<name>``) and its violations query."""

    name: str
    entity: str  # what an example is: customer, deal, order …
    violations: Violations


@dataclass
class CheckMeasure:
    """How many rows of one tenant break one rule, and a few of them."""

    check: str
    entity: str
    tenant_id: int
    violations: int
    examples: list[dict[str, Any]] = field(default_factory=list)


# --- the rules ---------------------------------------------------------------------


def _sold() -> Any:
    """Customer has bought: a non-cancelled order or a won deal (time-independent part of the lifecycle rules)."""
    ordered = exists().where(
        Order.customer_id == Customer.id,
        Order.tenant_id == Customer.tenant_id,
        Order.status != OrderStatus.CANCELLED.value,
    )
    won = exists().where(
        Opportunity.customer_id == Customer.id,
        Opportunity.tenant_id == Customer.tenant_id,
        Opportunity.stage_id == PipelineStage.id,
        PipelineStage.kind == StageKind.WON.value,
    )
    return or_(ordered, won)


def customers_without_owner() -> ViolationQuery:
    """Active customers nobody is responsible for: no owner and not parked on a team.

    An unowned customer with a team is a lead in that team's pool (its reps see and work
    it, and assignment rules hand such leads out), so it is not a data-quality failure.
    """
    return select(Customer.tenant_id, Customer.id, Customer.name.label("label")).where(
        Customer.owner_id.is_(None), Customer.team_id.is_(None), Customer.archived_at.is_(None)
    )


def customers_owned_by_inactive_users() -> ViolationQuery:
    """Active customers whose owner can no longer log in."""
    return (
        select(Customer.tenant_id, Customer.id, Customer.name.label("label"))
        .join(User, User.id == Customer.owner_id)
        .where(User.is_active.is_(False), Customer.archived_at.is_(None))
    )


def _duplicates(column: Any) -> ViolationQuery:
    twin = aliased(Customer)
    has_twin = exists().where(
        twin.tenant_id == Customer.tenant_id,
        getattr(twin, column.key) == column,
        twin.id != Customer.id,
        twin.archived_at.is_(None),
    )
    return select(
        Customer.tenant_id, Customer.id, (Customer.name + literal(" · ") + column).label("label")
    ).where(column.is_not(None), column != "", Customer.archived_at.is_(None), has_twin)


def duplicate_emails() -> ViolationQuery:
    """Active customers sharing a normalised email with another active customer."""
    return _duplicates(Customer.email_normalized)


def duplicate_phones() -> ViolationQuery:
    """Active customers sharing a normalised phone number with another active customer."""
    return _duplicates(Customer.phone_normalized)


def buyers_marked_as_prospects() -> ViolationQuery:
    """Customers with an order or a won deal still marked prospect or intent."""
    return select(
        Customer.tenant_id, Customer.id, (Customer.name + literal(" · ") + Customer.lifecycle_stage).label("label")
    ).where(
        Customer.lifecycle_stage.in_([LifecycleStage.PROSPECT.value, LifecycleStage.INTENT.value]), _sold()
    )


def customers_without_a_sale() -> ViolationQuery:
    """Customers marked customer or churned that never bought anything."""
    return select(
        Customer.tenant_id, Customer.id, (Customer.name + literal(" · ") + Customer.lifecycle_stage).label("label")
    ).where(
        Customer.lifecycle_stage.in_([LifecycleStage.CUSTOMER.value, LifecycleStage.CHURNED.value]), ~_sold()
    )


def deal_amounts_out_of_range() -> ViolationQuery:
    """Deals with a negative amount or one above :data:`MAX_DEAL_AMOUNT`."""
    return select(
        Opportunity.tenant_id, Opportunity.id,
        (Opportunity.name + literal(" · ") + cast(Opportunity.amount, String(40))).label("label"),
    ).where(or_(Opportunity.amount < 0, Opportunity.amount > MAX_DEAL_AMOUNT))


def deals_in_a_stage_of_another_pipeline() -> ViolationQuery:
    """Deals whose stage belongs to a different pipeline than the deal."""
    return (
        select(Opportunity.tenant_id, Opportunity.id, Opportunity.name.label("label"))
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(or_(PipelineStage.pipeline_id != Opportunity.pipeline_id,
                   PipelineStage.tenant_id != Opportunity.tenant_id))
    )


def closed_deals_without_close_date() -> ViolationQuery:
    """Won or lost deals with no ``closed_at``."""
    return (
        select(Opportunity.tenant_id, Opportunity.id, Opportunity.name.label("label"))
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(PipelineStage.kind.in_([StageKind.WON.value, StageKind.LOST.value]), Opportunity.closed_at.is_(None))
    )


def lost_deals_disagreeing_with_their_history() -> ViolationQuery:
    """Lost deals whose ``lost_from_stage_id`` is not the stage their latest move into the lost stage came from.

    The column is a copy of the history that the funnel reads (migration 0011); the deal
    service keeps both in step, so a difference means a write that went around it.
    """
    changes = OpportunityStageChange.__table__
    from_history = (
        select(changes.c.from_stage_id)
        .where(
            changes.c.tenant_id == Opportunity.tenant_id,
            changes.c.opportunity_id == Opportunity.id,
            changes.c.to_stage_id == Opportunity.stage_id,
        )
        .order_by(changes.c.id.desc())
        .limit(1)
        .correlate(Opportunity)
        .scalar_subquery()
    )
    return (
        select(Opportunity.tenant_id, Opportunity.id, Opportunity.name.label("label"))
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(
            PipelineStage.kind == StageKind.LOST.value, Opportunity.lost_from_stage_id.is_distinct_from(from_history)
        )
    )


def order_totals_not_matching_lines() -> ViolationQuery:
    """Orders whose total differs from the sum of their lines by more than the lines' rounding.

    The order service (and the import) rounds each line to the cent, half-up, before adding
    (``services.orders.line_total``): 1.5 × 33.33 is 50.00, not 49.995. So each line may
    move the total by up to half a cent from the exact product sum; more than that is a total
    that does not come from its lines. (Compared with the exact sum rather than rounded in SQL:
    SQLite computes these products in floating point, where 49.995 may round down.)
    """
    lines = (
        select(
            OrderLine.order_id.label("order_id"),
            OrderLine.tenant_id.label("tenant_id"),
            func.sum(OrderLine.quantity * OrderLine.unit_price).label("lines_total"),
            func.count().label("lines"),
        )
        .group_by(OrderLine.order_id, OrderLine.tenant_id)
        .subquery()
    )
    return (
        select(Order.tenant_id, Order.id, Order.order_number.label("label"))
        .join(lines, and_(lines.c.order_id == Order.id, lines.c.tenant_id == Order.tenant_id))
        .where(
            func.abs(Order.total_amount - lines.c.lines_total) > lines.c.lines * Decimal("0.005") + Decimal("0.0001")
        )
    )


def deal_amounts_not_matching_lines() -> ViolationQuery:
    """Deals with product lines whose amount is not the sum of their line totals (decision 0045: a deal with
    lines is worth their sum; each stored line total is already rounded to the cent, so the sum is exact)."""
    lines = (
        select(
            OpportunityLine.opportunity_id.label("opportunity_id"),
            OpportunityLine.tenant_id.label("tenant_id"),
            func.sum(OpportunityLine.line_total).label("lines_total"),
        )
        .group_by(OpportunityLine.opportunity_id, OpportunityLine.tenant_id)
        .subquery()
    )
    return (
        select(Opportunity.tenant_id, Opportunity.id, Opportunity.name.label("label"))
        .join(lines, and_(lines.c.opportunity_id == Opportunity.id, lines.c.tenant_id == Opportunity.tenant_id))
        .where(func.abs(Opportunity.amount - lines.c.lines_total) > Decimal("0.001"))
    )


def order_lines_with_bad_quantity_or_price() -> ViolationQuery:
    """Order lines with a quantity of zero or less, or a negative unit price."""
    return (
        select(OrderLine.tenant_id, OrderLine.id, Order.order_number.label("label"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(or_(OrderLine.quantity <= 0, OrderLine.unit_price < 0))
    )


def _orphans(model: Any, label: Any, *, optional: bool = False) -> ViolationQuery:
    parent = aliased(Customer)
    resolves = exists().where(parent.id == model.customer_id, parent.tenant_id == model.tenant_id)
    condition = ~resolves if not optional else and_(model.customer_id.is_not(None), ~resolves)
    return select(model.tenant_id, model.id, label.label("label")).where(condition)


def orphaned_contacts() -> ViolationQuery:
    """Contacts whose customer is missing from their tenant."""
    return _orphans(Contact, Contact.name)


def orphaned_deals() -> ViolationQuery:
    """Deals whose customer is missing from their tenant."""
    return _orphans(Opportunity, Opportunity.name)


def orphaned_orders() -> ViolationQuery:
    """Orders whose customer is missing from their tenant."""
    return _orphans(Order, Order.order_number)


def orphaned_activities() -> ViolationQuery:
    """Activities whose customer is missing from their tenant."""
    return _orphans(Activity, func.substr(Activity.summary, 1, 60))


def orphaned_cases() -> ViolationQuery:
    """Cases whose customer is missing from their tenant."""
    return _orphans(Case, Case.subject)


def orphaned_tasks() -> ViolationQuery:
    """Tasks that name a customer missing from their tenant."""
    return _orphans(Task, Task.title, optional=True)


def orphaned_order_lines() -> ViolationQuery:
    """Order lines whose order is missing from their tenant."""
    parent = aliased(Order)
    resolves = exists().where(parent.id == OrderLine.order_id, parent.tenant_id == OrderLine.tenant_id)
    return select(OrderLine.tenant_id, OrderLine.id, cast(OrderLine.order_id, String(40)).label("label")).where(
        ~resolves
    )


def rows_on_merged_records() -> ViolationQuery:
    """Rows still pointing at a customer or contact that was merged away (a merge moves every one of them).

    Every referencing column is taken from the metadata (``queries.merges.references_to``), as the
    merge does; the label names the table and column. Each part selects through its mapped class, so the
    session's tenant criteria reach every table of the union (decision 0057)."""
    from crm_core.models import Base
    from crm_core.queries.merges import TABLE_OF, references_to

    mapped = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}
    parts = [
        select(mapped[reference.table].tenant_id, mapped[reference.table].id,
               literal(reference.key).label("label")).where(
            exists().where(Merge.tenant_id == mapped[reference.table].tenant_id, Merge.entity == entity,
                           Merge.merged_id == reference.column),
            *reference.where,
        )
        for entity, table_name in TABLE_OF.items()
        for reference in references_to(table_name)
    ]
    rows = union_all(*parts).subquery("on_merged")
    return select(rows.c.tenant_id, rows.c.id, rows.c.label)


def owners_outside_the_tenant() -> ViolationQuery:
    """Customers owned by a user of another tenant (or a deleted user)."""
    owner = aliased(User)
    resolves = exists().where(owner.id == Customer.owner_id, owner.tenant_id == Customer.tenant_id)
    return select(Customer.tenant_id, Customer.id, Customer.name.label("label")).where(
        Customer.owner_id.is_not(None), ~resolves
    )


CHECKS: dict[str, CheckDefinition] = {
    check.name: check
    for check in [
        CheckDefinition("customers_without_owner", "customer", customers_without_owner),
        CheckDefinition("customers_owned_by_inactive_users", "customer", customers_owned_by_inactive_users),
        CheckDefinition("duplicate_emails", "customer", duplicate_emails),
        CheckDefinition("duplicate_phones", "customer", duplicate_phones),
        CheckDefinition("buyers_marked_as_prospects", "customer", buyers_marked_as_prospects),
        CheckDefinition("customers_without_a_sale", "customer", customers_without_a_sale),
        CheckDefinition("deal_amounts_out_of_range", "deal", deal_amounts_out_of_range),
        CheckDefinition("deals_in_a_stage_of_another_pipeline", "deal", deals_in_a_stage_of_another_pipeline),
        CheckDefinition("closed_deals_without_close_date", "deal", closed_deals_without_close_date),
        CheckDefinition(
            "lost_deals_disagreeing_with_their_history", "deal", lost_deals_disagreeing_with_their_history
        ),
        CheckDefinition("deal_amounts_not_matching_lines", "deal", deal_amounts_not_matching_lines),
        CheckDefinition("order_totals_not_matching_lines", "order", order_totals_not_matching_lines),
        CheckDefinition("order_lines_with_bad_quantity_or_price", "order_line", order_lines_with_bad_quantity_or_price),
        CheckDefinition("orphaned_contacts", "contact", orphaned_contacts),
        CheckDefinition("orphaned_deals", "deal", orphaned_deals),
        CheckDefinition("orphaned_orders", "order", orphaned_orders),
        CheckDefinition("orphaned_activities", "activity", orphaned_activities),
        CheckDefinition("orphaned_cases", "case", orphaned_cases),
        CheckDefinition("orphaned_tasks", "task", orphaned_tasks),
        CheckDefinition("orphaned_order_lines", "order_line", orphaned_order_lines),
        CheckDefinition("owners_outside_the_tenant", "customer", owners_outside_the_tenant),
        CheckDefinition("rows_on_merged_records", "record", rows_on_merged_records),
    ]
}


# --- measuring ---------------------------------------------------------------------


def measure(session: Session, check: CheckDefinition, tenant_id: int | None = None) -> dict[int, CheckMeasure]:
    """Violations of ``check`` per tenant visible to ``session`` (``tenant_id``'s only, when given), with up to
    :data:`EXAMPLES` examples each."""
    violations = check.violations().subquery()
    statement = select(violations.c.tenant_id, func.count()).group_by(violations.c.tenant_id)
    if tenant_id is not None:
        statement = statement.where(violations.c.tenant_id == tenant_id)
    counts = session.execute(statement).all()
    measures: dict[int, CheckMeasure] = {}
    for found_tenant_id, count in counts:
        examples = session.execute(
            select(violations.c.id, violations.c.label)
            .where(violations.c.tenant_id == found_tenant_id)
            .order_by(violations.c.id)
            .limit(EXAMPLES)
        ).all()
        measures[int(found_tenant_id)] = CheckMeasure(
            check.name, check.entity, int(found_tenant_id), int(count),
            [{"id": int(row.id), "label": "" if row.label is None else str(row.label)} for row in examples],
        )
    return measures
