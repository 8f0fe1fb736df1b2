"""Database suite — integrity: no orphaned rows (every reference resolves inside its own tenant)."""

from __future__ import annotations

from typing import Any

from validations._database import no_violations

CHECKS = [
    "orphaned_contacts",
    "orphaned_deals",
    "orphaned_orders",
    "orphaned_order_lines",
    "orphaned_activities",
    "orphaned_cases",
    "orphaned_tasks",
    "rows_on_merged_records",
]


def expectations() -> list[Any]:
    """No tenant has a row pointing at a customer or order that is not in the tenant."""
    return no_violations(CHECKS)
