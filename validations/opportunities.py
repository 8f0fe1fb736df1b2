"""Opportunities (deals): name, a resolvable customer, owner and pipeline stage, an amount in range,
a probability in percent and a readable close date."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The opportunities suite."""
    return [
        *rule.from_fields("opportunities"),
        rule.between("amount", 0, 1_000_000_000_000),
        rule.between("probability", 0, 100),
        rule.matches_existing(),
    ]
