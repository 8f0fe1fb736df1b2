"""The customer-tier rule, pure: the best tier reached wins, a pin in force wins over orders, and what a
tier may be saved as."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_core.rules.customer_tiers import (
    BASIS_DEFAULT,
    BASIS_ORDERS,
    BASIS_PINNED,
    TierChoice,
    TierRule,
    best_first,
    choose_tier,
    pin_in_force,
    qualifying_tier,
    tier_problems,
)

SILVER = TierRule(1, "silver", 1, Decimal("10000"), 12)
GOLD = TierRule(2, "gold", 2, Decimal("100000"), 12)
PLATINUM = TierRule(3, "platinum", 3, Decimal("500000"), 6)  # a shorter window: recent spending only
TIERS = [SILVER, PLATINUM, GOLD]


@pytest.mark.parametrize(("totals", "expected"), [
    ({}, None),
    ({12: Decimal("9999.99"), 6: Decimal("9999.99")}, None),
    ({12: Decimal("10000"), 6: Decimal("0")}, SILVER),  # the threshold itself qualifies
    ({12: Decimal("123456"), 6: Decimal("0")}, GOLD),
    ({12: Decimal("600000"), 6: Decimal("499999.99")}, GOLD),  # much, but not within platinum's 6 months
    ({12: Decimal("600000"), 6: Decimal("500000")}, PLATINUM),
])
def test_the_best_tier_whose_threshold_its_own_window_reaches(totals: dict[int, Decimal],
                                                              expected: TierRule | None) -> None:
    assert qualifying_tier(TIERS, totals) == expected


def test_tiers_are_tried_by_rank_then_threshold_then_id() -> None:
    twin = TierRule(4, "gold-b", 2, Decimal("200000"), 12)
    assert [rule.code for rule in best_first([SILVER, GOLD, twin, PLATINUM])] == ["platinum", "gold-b", "gold",
                                                                                  "silver"]


@pytest.mark.parametrize(("until", "today", "in_force"), [
    (None, dt.date(2030, 1, 1), True),
    (dt.date(2026, 12, 31), dt.date(2026, 12, 31), True),  # the last day is inclusive
    (dt.date(2026, 12, 31), dt.date(2027, 1, 1), False),
])
def test_a_pin_holds_through_its_last_day(until: dt.date | None, today: dt.date, in_force: bool) -> None:
    assert pin_in_force(until, today) is in_force


STANDING = TierChoice(1, BASIS_ORDERS, Decimal("12000"), Decimal("10000"), 12)


@pytest.mark.parametrize(("pin", "standing", "expected"), [
    (None, None, (None, BASIS_DEFAULT)),
    (None, STANDING, (1, BASIS_ORDERS)),
    ((3, dt.date(2026, 12, 31)), STANDING, (3, BASIS_PINNED)),
    ((3, dt.date(2026, 11, 30)), STANDING, (1, BASIS_ORDERS)),  # expired: the orders decide again
    ((3, None), None, (3, BASIS_PINNED)),
])
def test_a_pin_in_force_wins_over_the_orders(pin: tuple[int, dt.date | None] | None, standing: TierChoice | None,
                                             expected: tuple[int | None, str]) -> None:
    chosen = choose_tier(pin=pin, standing=standing, today=dt.date(2026, 12, 5))
    assert (chosen.tier_id, chosen.basis) == expected


GOOD = {"code": "gold", "name_en": "Gold", "name_zh": "金牌", "rank": 2, "min_order_total": Decimal("100000"),
        "months": 12}


@pytest.mark.parametrize(("change", "field", "key"), [
    ({"code": "Gold"}, "code", "tiers.bad_code"),
    ({"code": "1gold"}, "code", "tiers.bad_code"),
    ({"code": ""}, "code", "tiers.bad_code"),
    ({"name_en": " "}, "name_en", "validation.required"),
    ({"name_zh": "金\u202e牌"}, "name_zh", "imports.rule.hidden_characters"),
    ({"rank": 0}, "rank", "tiers.bad_rank"),
    ({"min_order_total": Decimal("0")}, "min_order_total", "tiers.bad_threshold"),
    ({"min_order_total": Decimal("1.001")}, "min_order_total", "tiers.bad_threshold"),
    ({"min_order_total": "lots"}, "min_order_total", "tiers.bad_threshold"),
    ({"months": 61}, "months", "tiers.bad_months"),
])
def test_a_tier_that_cannot_be_saved_names_its_field(change: dict[str, object], field: str, key: str) -> None:
    problems = tier_problems(**{**GOOD, **change})  # type: ignore[arg-type]
    assert set(problems) == {field} and problems[field][0] == key


def test_a_good_tier_has_no_problem() -> None:
    assert tier_problems(**GOOD) == {}  # type: ignore[arg-type]
