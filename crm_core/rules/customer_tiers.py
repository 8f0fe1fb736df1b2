"""Customer tiers for SLA entitlements, pure: which tier a customer's orders reach, and whether an
admin's pin wins.

A tier's rule: the customer's confirmed and fulfilled orders (not archived) dated within the last
``months`` months add up to at least ``min_order_total``. Tiers are tried best first (highest
``rank``; on a tie the higher threshold, then the lower id) and the first reached is the customer's;
none reached means the default policies. An admin's pin wins while in force (``until`` is the last
day, inclusive; no date: for good).

The set-based refresh (:func:`crm_core.services.customer_tiers.refresh_customer_tiers`) writes the
same choice as one SQL ``CASE`` over :func:`best_first`; an integration test checks that it agrees
with :func:`qualifying_tier`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.rules.fields import free_text_problem

BASIS_ORDERS, BASIS_PINNED, BASIS_DEFAULT = "orders", "pinned", "default"
MONTHS_MAX = 60
THRESHOLD_MAX = Decimal("999999999999.99")  # Numeric(14, 2)
_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

Problem = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class TierRule:
    """A tier as the rule needs it."""

    tier_id: int
    code: str
    rank: int
    min_order_total: Decimal
    months: int


@dataclass(frozen=True)
class TierChoice:
    """The tier a customer has now, and why: their orders reached it, an admin pinned it, or neither."""

    tier_id: int | None
    basis: str
    order_total: Decimal | None = None
    threshold: Decimal | None = None
    months: int | None = None
    pinned_until: dt.date | None = None
    as_of: dt.datetime | None = None


DEFAULT = TierChoice(None, BASIS_DEFAULT)


def best_first(rules: Sequence[TierRule]) -> list[TierRule]:
    """The order tiers are tried in: highest rank, then the higher threshold, then the lower id."""
    return sorted(rules, key=lambda rule: (-rule.rank, -rule.min_order_total, rule.tier_id))


def qualifying_tier(rules: Sequence[TierRule], totals_by_months: Mapping[int, Decimal]) -> TierRule | None:
    """The best tier whose threshold the order total over its own window reaches (None: the default)."""
    for rule in best_first(rules):
        if totals_by_months.get(rule.months, Decimal("0")) >= rule.min_order_total:
            return rule
    return None


def pin_in_force(until: dt.date | None, today: dt.date) -> bool:
    """A pin holds through its last day ``until`` (inclusive); without one it holds for good."""
    return until is None or until >= today


def choose_tier(*, pin: tuple[int, dt.date | None] | None, standing: TierChoice | None,
                today: dt.date) -> TierChoice:
    """A pin in force wins over the standing the orders reached; neither: the default policies."""
    if pin is not None and pin_in_force(pin[1], today):
        return TierChoice(pin[0], BASIS_PINNED, pinned_until=pin[1])
    return standing if standing is not None else DEFAULT


def tier_problems(*, code: str, name_en: str, name_zh: str, rank: Any, min_order_total: Any,
                  months: Any) -> dict[str, Problem]:
    """Why a tier cannot be saved, per field (empty when it can): catalog keys with parameters."""
    problems: dict[str, Problem] = {}
    if not _CODE.match(code or ""):
        problems["code"] = ("tiers.bad_code", {})
    for name, value in (("name_en", name_en), ("name_zh", name_zh)):
        if not (value or "").strip():
            problems[name] = ("validation.required", {})
        elif (problem := free_text_problem(name, value, 120)) is not None:
            problems[name] = problem
    if not isinstance(rank, int) or not 1 <= rank <= 100:
        problems["rank"] = ("tiers.bad_rank", {"max": 100})
    try:
        threshold = Decimal(str(min_order_total))
    except (InvalidOperation, ValueError):
        threshold = Decimal("-1")
    if not threshold.is_finite() or not Decimal("0.01") <= threshold <= THRESHOLD_MAX \
            or threshold != threshold.quantize(Decimal("0.01")):
        problems["min_order_total"] = ("tiers.bad_threshold", {})
    if not isinstance(months, int) or not 1 <= months <= MONTHS_MAX:
        problems["months"] = ("tiers.bad_months", {"max": MONTHS_MAX})
    return problems
