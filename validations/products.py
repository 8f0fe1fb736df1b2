"""Products: SKU and name required, SKU unique in the file and (when creating) in the database,
price a non-negative number, a known currency (bounds from ``crm_core.rules.fields``)."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The products suite."""
    return [
        *rule.from_fields("products"),
        rule.unique_in_file("sku"),
        rule.not_taken("sku"),
        rule.matches_existing(),
    ]
