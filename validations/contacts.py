"""Contacts: a name, a customer that resolves by name/email/external id, valid email and phone."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The contacts suite."""
    return [*rule.from_fields("contacts"), rule.matches_existing()]
