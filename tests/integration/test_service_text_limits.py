"""Issue 19's limits on every text field, on the text that issue 13's and 17's services keep as typed:
a case reply or note, a macro, an access request's reason — at most their length, and no hidden characters
(NUL: PostgreSQL stores none; controls; direction overrides), with the shared rule's message, on every database."""

from __future__ import annotations

import pytest

from crm_core.db import Database
from crm_core.errors import DuplicateCustomer, ValidationFailed
from crm_core.services.access_requests import request_access
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.customers import CustomerInput, create_customer
from crm_core.services.macros import save_macro
from tests.factories import World, build_world, create_random_customer

HIDDEN = ("a\x00b", "bell\x07", "Acme\u202egnp.exe")


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_a_reply_and_a_note_refuse_hidden_characters(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Broken"))
    for text in HIDDEN:
        for internal in (False, True):
            with pytest.raises(ValidationFailed) as refused:
                add_case_reply(db, world.rep, case_id, text, internal=internal)
            assert refused.value.errors == {"body": ("imports.rule.hidden_characters", {"field": "body"})}
    assert add_case_reply(db, world.rep, case_id, "Line one\n\tline two <b>as text</b>") > 0


def test_a_macro_refuses_hidden_characters_in_its_name_and_text(db: Database, world: World) -> None:
    for name, body in (("Greeting\x00", "Hello {customer_name}"), ("Greeting", "Hello\u202e {customer_name}")):
        with pytest.raises(ValidationFailed) as refused:
            save_macro(db, world.admin, name=name, language="en", body=body)
        field = "name" if "\x00" in name else "body"
        assert refused.value.errors[field] == ("imports.rule.hidden_characters", {"field": field})


def test_an_access_requests_reason_refuses_hidden_characters(db: Database, world: World) -> None:
    create_customer(db, world.rep_other_team, CustomerInput(name="Harbour Freight Ltd", email="ops@harbour.test"))
    with pytest.raises(DuplicateCustomer):
        create_customer(db, world.rep, CustomerInput(name="Harbour Freight Ltd", email="ops@harbour.test"))
    with pytest.raises(ValidationFailed) as refused:
        request_access(db, world.rep, name="Harbour Freight Ltd", email="ops@harbour.test", reason="met\x00them")
    assert refused.value.errors == {"reason": ("imports.rule.hidden_characters", {"field": "reason"})}
