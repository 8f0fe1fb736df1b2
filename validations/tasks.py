"""Tasks: a title, an assignee and customer that resolve, a readable due date, known status and priority."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The tasks suite."""
    return [*rule.from_fields("tasks"), rule.matches_existing()]
