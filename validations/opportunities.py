"""Opportunities (deals): name, a resolvable customer, owner and pipeline stage, an amount in range,
a probability in percent and a readable close date (bounds from ``crm_core.rules.fields``)."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The opportunities suite."""
    return [
        *rule.from_fields("opportunities"),
        rule.matches_existing(),
    ]
