"""Customer tiers for SLA entitlements: the admin defines tiers and pins a tier on a customer; a job
refreshes every customer's standing from their orders in set-based statements; a new case reads
its customer's tier (:func:`customer_tier`) and keeps it with the reason (``case_entitlements``).

The refresh (:func:`refresh_customer_tiers`) is one DELETE and one INSERT … SELECT per tenant, of the
standings that changed only: the customers' confirmed and fulfilled orders summed per tier window in one
grouped scan of the tenant's orders, the best tier reached picked by a ``CASE`` in
:func:`crm_core.rules.customer_tiers.best_first` order — no row per customer passes through Python.
It runs nightly (``customer_tier_refresh``) and after an admin changes the tiers. A booked, edited or
archived order (the form, the API, an import or its revert, a customer merge) asks for its customers'
standings after its commit (:func:`orders_changed`): the same job for those customers only, seconds later,
so a customer's first big order counts for the next case they open (decision 0052). Tier and pin writes
are admin-only and audited (:data:`crm_core.access.ADMIN_ONLY_WRITES`); the standings are derived data,
kept by the job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import cast

from sqlalchemy import Subquery, Table, case, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.jobs.after_commit import AfterCommitIds
from crm_core.models import Customer, Order, OrderStatus, utcnow
from crm_core.models.service_tiers import CustomerTier, CustomerTierPin, CustomerTierStanding
from crm_core.queries.reports import shift_months
from crm_core.rules.customer_tiers import (
    BASIS_ORDERS,
    TierChoice,
    TierRule,
    best_first,
    choose_tier,
    tier_problems,
)
from crm_core.rules.fields import clean_text
from crm_core.services.editing import check_version, translate_stale

LOG = logging.getLogger("kestrel.customer_tiers")
TIERS_MAX = 50  # a handful in practice; the API lists them in one page
COUNTED_STATUSES = (OrderStatus.CONFIRMED.value, OrderStatus.FULFILLED.value)
"""The orders a tier counts: booked and delivered sales (drafts and cancelled ones never)."""


@dataclass(kw_only=True)
class TierInput:
    """A tier as the settings form holds it."""

    code: str
    name_en: str
    name_zh: str
    rank: int
    min_order_total: Decimal | str
    months: int = 12


def _threshold(value: Decimal | str) -> Decimal | str:
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return str(value)


def save_tier(db: Database, actor: Actor, form: TierInput, *, tier_id: int | None = None,
              expected_version: int | None = None) -> int:
    """Create a tier or change one (``expected_version`` guards an edit); returns its id."""
    code = (form.code or "").strip().lower()
    name_en, name_zh = clean_text(form.name_en) or "", clean_text(form.name_zh) or ""
    threshold = _threshold(form.min_order_total)
    errors = tier_problems(code=code, name_en=name_en, name_zh=name_zh, rank=form.rank,
                           min_order_total=threshold, months=form.months)
    if errors:
        raise ValidationFailed(errors)

    def work() -> int:
        with db.transaction(actor) as session:
            taken = session.scalar(select(CustomerTier.id).where(CustomerTier.code == code))
            if taken is not None and taken != tier_id:
                raise ValidationFailed({"code": ("tiers.code_taken", {"code": code})})
            if tier_id is None:
                if (session.scalar(select(func.count()).select_from(CustomerTier)) or 0) >= TIERS_MAX:
                    raise ValidationFailed({"code": ("tiers.too_many", {"max": TIERS_MAX})})
                tier = CustomerTier(tenant_id=actor.tenant_id)
                session.add(tier)
            else:
                found = session.get(CustomerTier, tier_id)
                if found is None:
                    raise NotFound("tier")
                check_version(session, found, "customer_tier", expected_version or 0)
                tier = found
            tier.code, tier.name_en, tier.name_zh = code, name_en, name_zh
            tier.rank, tier.min_order_total, tier.months = form.rank, Decimal(threshold), form.months
            session.flush()
            return tier.id

    return work() if tier_id is None else translate_stale(db, actor, "customer_tier", tier_id, work)


def pin_customer_tier(db: Database, actor: Actor, customer_id: int, tier_id: int | None,
                      until: dt.date | None = None) -> None:
    """Pin ``tier_id`` on a customer until ``until`` (inclusive; None: for good); ``tier_id`` None unpins."""
    with db.transaction(actor) as session:
        if session.get(Customer, customer_id) is None:
            raise NotFound("customer")
        if tier_id is not None and session.get(CustomerTier, tier_id) is None:
            raise ValidationFailed({"tier_id": ("validation.choice", {})})
        if until is not None and until < utcnow().date():
            raise ValidationFailed({"until": ("tiers.until_past", {})})
        pin = session.scalar(select(CustomerTierPin).where(CustomerTierPin.customer_id == customer_id))
        if tier_id is None:
            if pin is not None:
                session.delete(pin)
            return
        if pin is None:
            pin = CustomerTierPin(tenant_id=actor.tenant_id, customer_id=customer_id)
            session.add(pin)
        pin.tier_id, pin.until = tier_id, until


# --- reading a customer's tier --------------------------------------------------------


def tier_rules(session: Session, tenant_id: int) -> list[TierRule]:
    """The tenant's tiers as the rule needs them."""
    rows = session.execute(select(CustomerTier.id, CustomerTier.code, CustomerTier.rank,
                                  CustomerTier.min_order_total, CustomerTier.months)
                           .where(CustomerTier.tenant_id == tenant_id)).all()
    return [TierRule(tier_id, code, rank, Decimal(threshold), months)
            for tier_id, code, rank, threshold, months in rows]


def customer_tier(session: Session, tenant_id: int, customer_id: int, *, today: dt.date) -> TierChoice:
    """The customer's tier now: a pin in force, else the standing of the last refresh, else the default."""
    pin_row = session.execute(select(CustomerTierPin.tier_id, CustomerTierPin.until).where(
        CustomerTierPin.tenant_id == tenant_id, CustomerTierPin.customer_id == customer_id)).first()
    standing_row = session.execute(
        select(CustomerTierStanding.tier_id, CustomerTierStanding.order_total, CustomerTier.min_order_total,
               CustomerTier.months, CustomerTier.refreshed_at, CustomerTierStanding.computed_at)
        .join(CustomerTier, CustomerTier.id == CustomerTierStanding.tier_id)
        .where(CustomerTierStanding.tenant_id == tenant_id, CustomerTierStanding.customer_id == customer_id)).first()
    standing = None
    if standing_row is not None:
        tier_id, total, threshold, months, refreshed_at, computed_at = standing_row
        # held since the later of: the last whole refresh, and this customer's own (after an order of theirs)
        as_of = max(filter(None, (refreshed_at, computed_at)), default=None)
        standing = TierChoice(tier_id, BASIS_ORDERS, Decimal(total), Decimal(threshold), months, as_of=as_of)
    return choose_tier(pin=(pin_row[0], pin_row[1]) if pin_row is not None else None, standing=standing,
                       today=today)


# --- the set-based refresh ------------------------------------------------------------


@dataclass(frozen=True)
class TierRefresh:
    """What one refresh wrote: customers per tier id, and how long it took."""

    customers: dict[int, int]
    seconds: float


def _computed(tenant_id: int, rules: list[TierRule], now: dt.datetime,
              customer_ids: Sequence[int] | None = None) -> Subquery:
    """(customer_id, tier_id, order_total) of every customer (of ``customer_ids`` when given) whose orders reach a
    tier: one grouped scan of the tenant's counted orders, a SUM per distinct window, the first tier reached in
    ``rules`` order by a CASE."""
    orders = cast(Table, Order.__table__)
    windows = {months: shift_months(now, -months) for months in sorted({rule.months for rule in rules})}
    only = [orders.c.customer_id.in_(customer_ids)] if customer_ids is not None else []
    totals = select(orders.c.customer_id, *(
        func.sum(case((orders.c.ordered_at >= start, orders.c.total_amount), else_=0)).label(f"m{months}")
        for months, start in windows.items()
    )).where(
        orders.c.tenant_id == tenant_id, orders.c.status.in_(COUNTED_STATUSES), orders.c.archived_at.is_(None),
        orders.c.ordered_at >= min(windows.values()), orders.c.ordered_at <= now, *only,
    ).group_by(orders.c.customer_id).subquery("totals")
    reached = [(totals.c[f"m{rule.months}"] >= rule.min_order_total, rule) for rule in rules]
    tier = case(*((condition, literal(rule.tier_id)) for condition, rule in reached), else_=None)
    total = case(*((condition, totals.c[f"m{rule.months}"]) for condition, rule in reached), else_=None)
    return (select(totals.c.customer_id.label("customer_id"), tier.label("tier_id"), total.label("order_total"))
            .where(tier.is_not(None)).subquery("computed"))


def refresh_customer_tiers(session: Session, tenant_id: int, *, now: dt.datetime | None = None,
                           customer_ids: Sequence[int] | None = None) -> TierRefresh:
    """Bring the tenant's standings (of ``customer_ids`` only, when given) in line with their orders, set-based,
    in the caller's transaction; the counts returned are of the same customers.

    Only what changed is written: one DELETE of the standings that no longer hold (tier or total moved, or
    no tier reached), one INSERT … SELECT of those missing — a night moves few customers' totals, and every
    row written costs its index and foreign-key checks. After a whole refresh the tiers' ``refreshed_at`` says
    when all held; a refresh of some customers leaves it (their rows' ``computed_at`` say when they changed).
    """
    started = time.perf_counter()
    now = now or utcnow()
    standings = cast(Table, CustomerTierStanding.__table__)
    scope = [standings.c.tenant_id == tenant_id]
    if customer_ids is not None:
        customer_ids = sorted(set(customer_ids))
        scope.append(standings.c.customer_id.in_(customer_ids))
    rules = best_first(tier_rules(session, tenant_id))
    if not rules:
        session.execute(delete(standings).where(*scope))
    else:
        computed = _computed(tenant_id, rules, now, customer_ids)
        holds = exists().where(computed.c.customer_id == standings.c.customer_id,
                               computed.c.tier_id == standings.c.tier_id,
                               computed.c.order_total == standings.c.order_total)
        session.execute(delete(standings).where(*scope, ~holds))
        present = exists().where(standings.c.tenant_id == tenant_id, standings.c.customer_id == computed.c.customer_id)
        rows = select(literal(tenant_id), literal(now), literal(now), computed.c.customer_id, computed.c.tier_id,
                      computed.c.order_total, literal(now)).where(~present)
        session.execute(insert(standings).from_select(
            ["tenant_id", "created_at", "updated_at", "customer_id", "tier_id", "order_total", "computed_at"], rows))
        if customer_ids is None:
            tiers = cast(Table, CustomerTier.__table__)
            session.execute(update(tiers).where(tiers.c.tenant_id == tenant_id).values(refreshed_at=now))
    counts = session.execute(select(standings.c.tier_id, func.count()).where(*scope)
                             .group_by(standings.c.tier_id)).all()
    return TierRefresh({int(tier_id): int(count) for tier_id, count in counts}, time.perf_counter() - started)


def run_tier_refresh(db: Database, tenant_id: int, *, now: dt.datetime | None = None,
                     customer_ids: Sequence[int] | None = None) -> TierRefresh:
    """The refresh in its own system transaction (the job and the CLI call this)."""
    with db.system_transaction("customer tier refresh", tenant_id=tenant_id) as session:
        return refresh_customer_tiers(session, tenant_id, now=now, customer_ids=customer_ids)


# --- a prompt refresh after orders change ------------------------------------------------

PROMPT_CUSTOMERS_MAX = 1000
"""More customers than this at once (a large import): the job refreshes the whole tenant, as each night."""


def orders_changed(session: Session, tenant_id: int, customer_ids: Iterable[int]) -> None:
    """After ``session`` commits, ask for these customers' standings to be recomputed (their orders changed): the
    ``customer_tier_refresh`` job for them alone, when the tenant has tiers. Nothing is asked after a rollback."""
    _PROMPT.mark(session, tenant_id, customer_ids)


def _request_prompt_refresh(db: Database, tenant_id: int, customer_ids: frozenset[int]) -> None:
    from crm_core.jobs.service import submit_system_job

    if not customer_ids:
        return
    try:
        with db.system_session("customer tiers: any") as session:
            if session.scalar(select(CustomerTier.id).where(CustomerTier.tenant_id == tenant_id).limit(1)) is None:
                return  # no tiers: every customer has the default policies, nothing to compute
        params = ({} if len(customer_ids) > PROMPT_CUSTOMERS_MAX
                  else {"customer_ids": sorted(customer_ids)})
        submit_system_job(db, tenant_id, "customer_tier_refresh", params)
    except Exception:  # the orders are committed; the nightly refresh brings the standings in line
        LOG.exception("could not queue a customer tier refresh for tenant %s", tenant_id)


_PROMPT = AfterCommitIds("kestrel_customer_tiers", _request_prompt_refresh)
