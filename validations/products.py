"""Products: SKU and name required, SKU unique in the file and (when creating) in the database,
price a non-negative number, a known currency."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The products suite."""
    return [
        *rule.from_fields("products"),
        rule.between("unit_price", 0, 1_000_000_000),
        rule.unique_in_file("sku"),
        rule.not_taken("sku"),
        rule.matches_existing(),
    ]
