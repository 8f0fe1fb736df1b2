"""Merge rules (pure): which fields a merge chooses side by side, and the default choice of each.

A field's choice is ``survivor`` or ``merged`` (whose value the survivor keeps); tags may also
be ``both`` (their union, the default). The default keeps the survivor's value when it has one,
else takes the other's: a merge never empties a field that either record had filled.

=============  =========================================  =================
field          values compared                            choices
=============  =========================================  =================
plain fields   the column of each record                  survivor, merged
owner          owner and team together (who sees it)      survivor, merged
tags           the tag lists                              + both (default)
custom.<name>  one custom field                           survivor, merged
=============  =========================================  =================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SURVIVOR = "survivor"
MERGED = "merged"
BOTH = "both"

CUSTOMER_FIELDS = ("name", "kind", "industry", "region", "source", "owner", "email", "phone", "external_id", "tags")
CONTACT_FIELDS = ("name", "title", "email", "phone")
CUSTOM_PREFIX = "custom."


def is_empty(value: Any) -> bool:
    """Nothing worth keeping: None, blank text, an empty list or mapping."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, set)):
        return not value
    return False


def default_choice(field: str, survivor_value: Any, merged_value: Any) -> str:
    """The survivor's non-empty value, else the other's; tags combine."""
    if field == "tags":
        return BOTH
    if is_empty(survivor_value) and not is_empty(merged_value):
        return MERGED
    return SURVIVOR


def choices_allowed(field: str) -> tuple[str, ...]:
    """What may be chosen for ``field``."""
    return (SURVIVOR, MERGED, BOTH) if field == "tags" else (SURVIVOR, MERGED)


def resolve_choices(
    fields: Mapping[str, tuple[Any, Any]], given: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, tuple[str, dict[str, Any]]]]:
    """Every field's choice (the given one, else the default) and the errors of the given ones.

    ``fields`` maps a field to (survivor's value, merged's value). A choice for a field that is
    not compared, or a choice the field does not offer, is an error (nothing is guessed).
    """
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, choice in given.items():
        if name not in fields:
            errors[f"field_choices.{name}"] = ("merge.error.unknown_field", {"field": name})
        elif choice not in choices_allowed(name):
            errors[f"field_choices.{name}"] = ("validation.choice", {})
    resolved = {}
    for name, (survivor, merged) in fields.items():
        wanted = given.get(name)
        valid = wanted is not None and f"field_choices.{name}" not in errors
        resolved[name] = wanted if valid and wanted is not None else default_choice(name, survivor, merged)
    return resolved, errors


def chosen_value(choice: str, survivor_value: Any, merged_value: Any) -> Any:
    """The value the survivor keeps for a field (``both``: the union of two tag lists, in order)."""
    if choice == BOTH:
        combined = list(survivor_value or [])
        combined.extend(tag for tag in (merged_value or []) if tag not in combined)
        return combined
    return merged_value if choice == MERGED else survivor_value
