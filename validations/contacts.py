"""Contacts: a name, a customer that resolves by name/email/external id, valid email and phone, and no new
contact is a duplicate the tenant's contact rules block."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The contacts suite."""
    return [
        *rule.from_fields("contacts"),
        rule.matches_existing(),
        rule.not_a_blocked_duplicate("imports.rule.contact_duplicate_blocked"),
    ]
