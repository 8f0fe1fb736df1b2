"""Customers: required name, formats of email and phone, value sets, references and uniqueness."""

from __future__ import annotations

from typing import Any

from validations import _rules as rule

KINDS = ["company", "person"]
LIFECYCLE_STAGES = ["prospect", "intent", "customer", "churned"]


def expectations() -> list[Any]:
    """The customers suite, over the importer's prepared frame (see ``validations._rules``)."""
    return [
        rule.required("name"),
        rule.max_length("name", 200),
        *rule.plain_text("name"),
        rule.one_of("kind", KINDS),
        rule.one_of("lifecycle_stage", LIFECYCLE_STAGES),
        rule.email("email"),
        rule.max_length("email", 254),
        rule.phone("phone"),
        rule.resolves("owner", "owner"),
        *[rule.max_length(column, 80) for column in ("industry", "region", "source", "external_id")],
        *[expectation for column in ("industry", "region", "source") for expectation in rule.plain_text(column)],
        rule.max_length("tags", 500),
        rule.unique_in_file("external_id"),
        rule.not_taken("external_id"),
        rule.matches_existing(),
    ]
