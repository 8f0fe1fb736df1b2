"""Migration: the target holds exactly the source's data (see ``crm_core.migration``).

The frame has one row per compared figure: ``check`` (row_count, money_sum, checksum,
primary_key_unique, foreign_key_resolves), ``table``, ``tenant_id`` (-1 for tables without
one), ``column``, ``expected`` (the source's figure, or 0 for target-only checks) and
``actual`` (the target's). Every figure must match; one expectation per kind of check, so a
failure names the kind, and the rows it points at name the table and tenant.
"""

from __future__ import annotations

from typing import Any

CHECKS = ["row_count", "money_sum", "checksum", "primary_key_unique", "foreign_key_resolves"]


def expectations() -> list[Any]:
    """Source and target agree on every figure of each kind."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    return [
        gx.expectations.ExpectColumnPairValuesToBeEqual(
            column_A="expected",
            column_B="actual",
            row_condition=Column("check") == check,
            meta={"message_key": f"migration.check.{check}", "params": {"check": check}},
        )
        for check in CHECKS
    ]
