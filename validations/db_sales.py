"""Database suite — sales: deal amounts in range (and the sum of their lines), stages of the deal's pipeline, orders
adding up."""

from __future__ import annotations

from typing import Any

from validations._database import no_violations

CHECKS = [
    "deal_amounts_out_of_range",
    "deals_in_a_stage_of_another_pipeline",
    "closed_deals_without_close_date",
    "lost_deals_disagreeing_with_their_history",
    "deal_amounts_not_matching_lines",
    "order_totals_not_matching_lines",
    "order_lines_with_bad_quantity_or_price",
]


def expectations() -> list[Any]:
    """No tenant has a deal, order or order line breaking any of :data:`CHECKS`."""
    return no_violations(CHECKS)
