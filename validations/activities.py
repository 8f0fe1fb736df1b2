"""Activities (follow-up records): a resolvable customer, a known type, a readable time, plain text."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The activities suite."""
    return rule.from_fields("activities")
