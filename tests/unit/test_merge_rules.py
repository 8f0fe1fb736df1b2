"""The merge's field rules: the default keeps what either record had filled; tags combine."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.rules.merging import BOTH, MERGED, SURVIVOR, chosen_value, default_choice, resolve_choices


@pytest.mark.parametrize(
    ("field", "survivor", "merged", "expected"),
    [
        ("email", "a@kestrel.example", "b@kestrel.example", SURVIVOR),
        ("email", "", "b@kestrel.example", MERGED),
        ("email", "   ", "b@kestrel.example", MERGED),
        ("email", None, None, SURVIVOR),
        ("email", "", "", SURVIVOR),
        ("owner", (None, None), (7, 2), SURVIVOR),  # a tuple is a value: the survivor's pool place is kept
        ("custom.employees", None, 12, MERGED),
        ("custom.employees", 0, 12, SURVIVOR),  # zero is a value, not an empty field
        ("tags", ["vip"], [], BOTH),
    ],
)
def test_the_default_is_the_survivors_non_empty_value_else_the_others(
    field: str, survivor: Any, merged: Any, expected: str
) -> None:
    assert default_choice(field, survivor, merged) == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [(SURVIVOR, ["vip", "expo"]), (MERGED, ["expo", "key"]), (BOTH, ["vip", "expo", "key"])],
)
def test_tags_can_be_kept_taken_or_combined_in_order_without_repeats(choice: str, expected: list[str]) -> None:
    assert chosen_value(choice, ["vip", "expo"], ["expo", "key"]) == expected


def test_given_choices_override_the_defaults_and_bad_ones_are_named() -> None:
    fields = {"name": ("Kestrel", "Kestrel Ltd"), "email": ("", "b@kestrel.example"), "tags": ([], ["vip"])}
    resolved, errors = resolve_choices(fields, {"name": MERGED, "email": BOTH, "colour": MERGED})
    assert resolved == {"name": MERGED, "email": MERGED, "tags": BOTH}
    assert errors == {"field_choices.email": ("validation.choice", {}),
                      "field_choices.colour": ("merge.error.unknown_field", {"field": "colour"})}
