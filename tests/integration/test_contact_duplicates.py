"""Contact duplicate rules (查重 per entity) on every database: a contact's email and phone are checked
across the tenant (the same person at another customer is the usual duplicate), warn or block as the
admin set them; a rep whose match sits at a customer she cannot see learns its owner and nothing else;
an edit is checked on the keys it changes; imports refuse the rows a blocking rule refuses."""

from __future__ import annotations

import codecs
from typing import Any

import pytest
from sqlalchemy import select, text

from crm_core.db import Database
from crm_core.errors import DuplicateContact
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import
from crm_core.models import Contact
from crm_core.models.quality import ImportRejectedRow
from crm_core.services.contacts import ContactInput, create_contact, update_contact
from crm_core.services.duplicate_rules import duplicate_rules, save_duplicate_rules
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_a_warning_names_the_contact_and_its_customer_when_visible_and_the_user_may_confirm(
    db: Database, world: World
) -> None:
    first = create_random_customer(db, world.rep, name="晨星科技")
    second = create_random_customer(db, world.rep, name="晨光贸易")
    create_contact(db, world.rep, ContactInput(first, "王五", email="Wang.Wu@Example.cn", phone="138 0013 8000"))
    with pytest.raises(DuplicateContact) as warned:  # the same mobile, typed as E.164, at another customer
        create_contact(db, world.rep, ContactInput(second, "王五", phone="+86 138-0013-8000"))
    error = warned.value
    assert (error.matched_on, error.action, error.existing_name, error.customer_name) == (
        "phone", "warn", "王五", "晨星科技")
    assert error.existing_id > 0 and error.customer_id == first
    assert error.message_key == "error.duplicate_contact"
    assert error.params == {"name": "王五", "matched_on": "phone", "owner": "Rita Rep", "customer": "晨星科技"}
    with pytest.raises(DuplicateContact) as by_email:  # the email, another case
        create_contact(db, world.rep, ContactInput(second, "Wu", email="wang.wu@example.CN"))
    assert by_email.value.matched_on == "email"
    created = create_contact(db, world.rep, ContactInput(second, "王五", phone="13800138000"), allow_duplicate=True)
    with db.system_session("test") as session:
        row = session.get(Contact, created)
        assert row is not None and (row.phone_normalized, row.email_normalized) == ("+8613800138000", None)


def test_a_rep_learns_only_the_owner_of_a_customer_she_cannot_see(db: Database, world: World) -> None:
    hidden = create_random_customer(db, world.rep_other_team, name="West Secret Co")
    create_contact(db, world.rep_other_team, ContactInput(hidden, "Secret Person", email="p@west.example"))
    mine = create_random_customer(db, world.rep, name="Mine Co")
    with pytest.raises(DuplicateContact) as warned:
        create_contact(db, world.rep, ContactInput(mine, "Someone", email="P@West.Example"))
    error = warned.value
    assert (error.existing_id, error.existing_name, error.customer_id, error.customer_name) == (0, "", 0, "")
    assert error.message_key == "error.duplicate_contact_hidden"
    assert error.params == {"name": "", "matched_on": "email", "owner": "Fay Faraway", "customer": ""}
    assert error.record_id > 0  # kept for the service only, never shown
    # the manager of East cannot see West either; an admin sees it all
    with pytest.raises(DuplicateContact) as admin_told:
        create_contact(db, world.admin, ContactInput(mine, "Someone", email="p@west.example"))
    assert (admin_told.value.existing_name, admin_told.value.customer_name) == ("Secret Person", "West Secret Co")


def test_block_refuses_reps_and_yields_to_managers_and_admins_who_confirm(db: Database, world: World) -> None:
    save_duplicate_rules(db, world.admin, {"email": "block"}, "contact")
    assert duplicate_rules(db, world.rep, "contact") == {"email": "block", "phone": "warn"}
    assert duplicate_rules(db, world.rep)["email"] == "warn"  # the customer rules are their own
    customer = create_random_customer(db, world.rep, name="Block Co")
    create_contact(db, world.rep, ContactInput(customer, "A", email="a@block.example"))
    with pytest.raises(DuplicateContact) as blocked:
        create_contact(db, world.rep, ContactInput(customer, "A2", email="a@block.example"), allow_duplicate=True)
    assert (blocked.value.action, blocked.value.message_key) == ("block", "error.duplicate_contact_blocked")
    with pytest.raises(DuplicateContact):  # a manager is told too, until he confirms
        create_contact(db, world.manager, ContactInput(customer, "A2", email="a@block.example"))
    assert create_contact(db, world.manager, ContactInput(customer, "A2", email="a@block.example"),
                          allow_duplicate=True) > 0
    assert create_contact(db, world.admin, ContactInput(customer, "A3", email="a@block.example"),
                          allow_duplicate=True) > 0
    # off: not checked at all
    save_duplicate_rules(db, world.admin, {"email": "off"}, "contact")
    assert create_contact(db, world.rep, ContactInput(customer, "A4", email="a@block.example")) > 0


def test_a_blocking_match_wins_and_an_archived_contact_is_no_duplicate(db: Database, world: World) -> None:
    save_duplicate_rules(db, world.admin, {"phone": "block"}, "contact")
    customer = create_random_customer(db, world.rep, name="Both Co")
    create_contact(db, world.rep, ContactInput(customer, "By email", email="x@both.example"))
    create_contact(db, world.rep, ContactInput(customer, "By phone", phone="021 6212 3456"))
    with pytest.raises(DuplicateContact) as found:
        create_contact(db, world.rep, ContactInput(customer, "New", email="x@both.example", phone="+862162123456"))
    assert (found.value.matched_on, found.value.action, found.value.existing_name) == ("phone", "block", "By phone")

    from crm_core.services.contacts import archive_contact
    with db.system_session("test") as session:
        archived = session.scalars(select(Contact.id).where(Contact.name == "By phone")).one()
    archive_contact(db, world.rep, archived, expected_version=1)
    with pytest.raises(DuplicateContact) as left:  # the email still warns
        create_contact(db, world.rep, ContactInput(customer, "New", email="x@both.example", phone="+862162123456"))
    assert (left.value.matched_on, left.value.action) == ("email", "warn")


def test_an_edit_is_checked_on_the_keys_it_changes_only(db: Database, world: World) -> None:
    customer = create_random_customer(db, world.rep, name="Edit Co")
    create_contact(db, world.rep, ContactInput(customer, "Old", email="same@edit.example"))
    pair = create_contact(db, world.rep, ContactInput(customer, "Pair", email="same@edit.example"),
                          allow_duplicate=True)
    # the old pair does not refuse an edit of other fields
    version = update_contact(db, world.rep, pair, ContactInput(customer, "Pair", title="Buyer",
                                                               email="SAME@edit.example"), expected_version=1)
    create_contact(db, world.rep, ContactInput(customer, "Phone owner", phone="13900139000"))
    with pytest.raises(DuplicateContact) as changed:
        update_contact(db, world.rep, pair, ContactInput(customer, "Pair", email="same@edit.example",
                                                         phone="139 0013 9000"), expected_version=version)
    assert changed.value.matched_on == "phone"
    # its own keys never match itself
    update_contact(db, world.rep, pair, ContactInput(customer, "Pair", email="same@edit.example",
                                                     phone="139 0013 9000"), expected_version=version,
                   allow_duplicate=True)


def test_tenants_are_isolated(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep, name="Tenant A Co")
    create_contact(db, world.rep, ContactInput(mine, "Li", email="li@shared.example"))
    theirs = create_random_customer(db, world.other_admin, name="Tenant B Co")
    save_duplicate_rules(db, world.other_admin, {"email": "block"}, "contact")
    assert create_contact(db, world.other_admin, ContactInput(theirs, "Li", email="li@shared.example")) > 0
    assert duplicate_rules(db, world.admin, "contact")["email"] == "warn"


FILE = (
    "customer,name,email,phone\n"
    "Import Co,Zhang,zhang@import.example,\n"  # 2: a colleague's contact at a hidden customer has it: blocked
    "Import Co,Li,li@import.example,\n"  # 3: new
    "Import Co,Li again,LI@import.example,\n"  # 4: row 3's email: blocked
    "Import Co,Zhao,,138 0013 8001\n"  # 5: the phone only warns: created
)


def test_an_import_refuses_the_contacts_a_blocking_rule_refuses(db: Database, world: World) -> None:
    save_duplicate_rules(db, world.admin, {"email": "block"}, "contact")
    hidden = create_random_customer(db, world.rep_other_team, name="Hidden West")
    create_contact(db, world.rep_other_team, ContactInput(hidden, "Zhang", email="Zhang@Import.example",
                                                          phone="13800138001"))
    create_random_customer(db, world.manager, name="Import Co")
    file = open_import_file("contacts.csv", codecs.BOM_UTF8 + FILE.encode())
    options = ImportOptions(mode="create", duplicates="create", policy="skip-invalid")
    mapping = ImportMapping.from_dict({"columns": {"customer": "customer", "name": "name", "email": "email",
                                                   "phone": "phone"}, "match_on": ["email"]})
    result = run_import(db, world.manager, file, "contacts", mapping, options)
    assert (result.status, result.rows_read, result.created, result.rejected) == ("partial", 4, 2, 2)
    assert result.report is not None and result.report.as_dict()["duplicates_blocked"] == 2
    with db.system_session("test") as session:
        reasons: dict[int, list[Any]] = dict(session.execute(
            select(ImportRejectedRow.row_number, ImportRejectedRow.reasons)
            .where(ImportRejectedRow.import_run_id == result.run_id)).all())
        created = {row.name: row for row in session.scalars(
            select(Contact).where(Contact.tenant_id == world.admin.tenant_id, Contact.customer_id != hidden))}
    assert sorted(reasons) == [2, 4]
    assert reasons[2] == [["imports.rule.contact_duplicate_blocked_row", {"field": "email", "owner": "Fay Faraway"}]]
    assert result.report.reasons(2, "zh-CN") == "被查重规则禁止：Fay Faraway 负责的客户下已有相同邮箱的联系人。"
    assert result.report.reasons(4, "en") == "Blocked by the duplicate rules: row 3 has the same Email."
    assert sorted(created) == ["Li", "Zhao"]
    assert (created["Li"].email_normalized, created["Zhao"].phone_normalized) == (
        "li@import.example", "+8613800138001")


def test_the_contact_keys_are_looked_up_through_indexes(db: Database, world: World) -> None:
    if db.dialect_name != "sqlite":
        pytest.skip("the plan is read on SQLite, where the benchmark runs")
    with db.system_session("test") as session:
        for column in ("email_normalized", "phone_normalized"):
            plan = " ".join(str(row[-1]) for row in session.execute(text(
                f"EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE tenant_id = :t AND {column} = :k"),
                {"t": world.admin.tenant_id, "k": "x"}))
            assert f"ix_contacts_tenant_id_{column}" in plan
