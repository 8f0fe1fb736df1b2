"""Orders with lines (one row per line): order number and customer required, the lines of one order
name the same customer, a new order number is not taken, products resolve by name or SKU,
quantities positive and prices non-negative (bounds from ``crm_core.rules.fields``)."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The orders suite."""
    return [
        *rule.from_fields("orders"),
        rule.one_order_one_customer(),
        rule.order_total_fits(),
        rule.not_taken("order_number"),
        rule.matches_existing(),
    ]
