"""Database suite — customers: ownership, duplicates, and lifecycle stages consistent with sales."""

from __future__ import annotations

from typing import Any

from validations._database import no_violations

CHECKS = [
    "customers_without_owner",
    "customers_owned_by_inactive_users",
    "owners_outside_the_tenant",
    "duplicate_emails",
    "duplicate_phones",
    "buyers_marked_as_prospects",
    "customers_without_a_sale",
]


def expectations() -> list[Any]:
    """No tenant has a customer breaking any of :data:`CHECKS`."""
    return no_violations(CHECKS)
