"""Customers: required name, email and phone formats, kind and lifecycle stage from their value
sets, the owner must resolve, external ids unique in the file, and updates must match; a credit
code passes its check character, and no new customer is a duplicate the tenant's rules block."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule


def expectations() -> list[Any]:
    """The customers suite, over the importer's prepared frame (see ``validations._rules``)."""
    return [
        *rule.from_fields("customers"),
        rule.unique_in_file("external_id"),
        rule.matches_existing(),
        rule.custom_values_fit(),
        rule.custom_required(),
        rule.credit_code_valid(),
        rule.not_a_blocked_duplicate(),
    ]
