"""Order totals: each line is quantity × unit price rounded to cents half-up; the total sums the lines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_core.services.orders import line_total, order_total
from crm_core.services.products import parse_money

D = Decimal


@pytest.mark.parametrize(
    ("quantity", "unit_price", "expected"),
    [
        (D("1"), D("19.99"), D("19.99")),
        (D("3"), D("19.99"), D("59.97")),
        (D("0.5"), D("0.15"), D("0.08")),  # 0.075 rounds half-up, not to even
        (D("0.5"), D("0.25"), D("0.13")),  # 0.125 -> 0.13
        (D("2.5"), D("0.01"), D("0.03")),
        (D("1000000"), D("0.10"), D("100000.00")),
        (D("1"), D("0"), D("0.00")),
    ],
)
def test_a_line_total_is_rounded_to_cents_half_up(quantity: Decimal, unit_price: Decimal, expected: Decimal) -> None:
    assert line_total(quantity, unit_price) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], D("0.00")),
        ([(D("3"), D("19.99")), (D("0.5"), D("0.15")), (D("7"), D("0.10"))], D("60.75")),
        ([(D("0.5"), D("0.15")), (D("0.5"), D("0.15"))], D("0.16")),  # rounded per line, then summed
    ],
)
def test_an_order_total_sums_rounded_lines(lines: list[tuple[Decimal, Decimal]], expected: Decimal) -> None:
    assert order_total(lines) == expected


@pytest.mark.parametrize(
    ("typed", "value", "error"),
    [
        ("1,200.50", D("1200.50"), None),
        ("１２００", D("1200.00"), None),  # full-width digits
        ("0", D("0.00"), None),
        ("¥30", D("30.00"), None),  # read as an import reads it
        ("", D("0.00"), None),
        ("-1", None, "imports.rule.range"),
        ("1.005", None, "imports.rule.decimals"),
        ("abc", None, "imports.rule.invalid_number"),
        ("NaN", None, "imports.rule.invalid_number"),
        ("1e13", None, "imports.rule.invalid_number"),
        ("1000000000000", None, "imports.rule.range"),  # more than Numeric(14, 2) holds
    ],
)
def test_money_input_is_parsed_or_explained(typed: str, value: Decimal | None, error: str | None) -> None:
    errors: dict = {}
    parsed = parse_money(typed, "price", errors)
    if error is None:
        assert errors == {} and parsed == value
    else:
        assert errors["price"][0] == error
