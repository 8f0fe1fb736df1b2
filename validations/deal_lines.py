"""A deal's product lines (one row per line, as Salesforce's "Opportunity Product"): the deal named by its
external ID must exist, products resolve by external ID, SKU or name, quantities positive and prices
non-negative (bounds from ``crm_core.rules.fields``)."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The deal lines suite."""
    return rule.from_fields("deal_lines")
