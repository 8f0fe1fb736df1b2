"""The duplicate rules' keys and defaults per entity (crm_core.rules.duplicates), and the duplicate errors'
message keys: a contact's names only when visible, its owner always."""

from __future__ import annotations

import pytest

from crm_core.errors import DuplicateContact, DuplicateCustomer, DuplicateRecord
from crm_core.rules.duplicates import (
    BLOCK,
    CONTACT,
    CUSTOMER,
    KEYS,
    OFF,
    WARN,
    actions_with_defaults,
    may_override,
)


def test_each_entity_has_its_keys_and_defaults() -> None:
    assert actions_with_defaults({}, CUSTOMER) == {"credit_code": BLOCK, "email": WARN, "phone": WARN, "name": WARN}
    assert actions_with_defaults({}, CONTACT) == {"email": WARN, "phone": WARN}
    assert actions_with_defaults({"phone": BLOCK}, CONTACT) == {"email": WARN, "phone": BLOCK}
    # a stored row of a key the entity does not have is not an action of it
    assert actions_with_defaults({"credit_code": OFF}, CONTACT) == {"email": WARN, "phone": WARN}
    assert KEYS[CONTACT] == ("email", "phone")
    with pytest.raises(KeyError):
        actions_with_defaults({}, "product")


@pytest.mark.parametrize(("role", "action", "allowed"), [
    ("rep", WARN, True), ("rep", BLOCK, False), ("analyst", BLOCK, False),
    ("manager", BLOCK, True), ("admin", BLOCK, True), ("admin", OFF, False),
])
def test_who_may_confirm_is_the_same_for_every_entity(role: str, action: str, allowed: bool) -> None:
    assert may_override(role, action) is allowed


def test_a_contact_duplicate_names_the_record_only_when_visible() -> None:
    seen = DuplicateContact(7, "王五", "email", "Rita Rep", action=WARN, customer_id=3, customer_name="晨星")
    hidden = DuplicateContact(0, "", "phone", "Fay Faraway", action=BLOCK)
    assert isinstance(seen, DuplicateRecord) and isinstance(DuplicateCustomer(1, "A", "name"), DuplicateRecord)
    assert (seen.entity, seen.message_key, seen.params) == (
        "contact", "error.duplicate_contact", {"name": "王五", "matched_on": "email", "owner": "Rita Rep",
                                               "customer": "晨星"})
    assert hidden.message_key == "error.duplicate_contact_blocked_hidden"
    assert hidden.params["owner"] == "Fay Faraway" and hidden.customer_id == 0
    assert DuplicateContact(0, "", "email").params["owner"] == "—"
    assert DuplicateCustomer(1, "A", "name", action=BLOCK).message_key == "error.duplicate_customer_blocked"
