"""Issue 19 ("Trust"): what the hostile corpus found in imports, one test each, on every database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, run_import, validate_import
from crm_core.models import Customer, Opportunity
from tests.factories import World, build_world


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def run(db: Database, world: World, entity: str, body: bytes, mapping: dict | None = None, **options: object
        ) -> ImportResult:
    file = open_import_file("t.csv", body)
    chosen = ImportMapping.from_dict(mapping) if mapping else ImportMapping.suggested(entity, file.headers)
    return run_import(db, world.admin, file, entity, chosen, ImportOptions(**options))  # type: ignore[arg-type]


def test_a_deal_amount_beyond_the_columns_precision_is_a_row_rejection(db: Database, world: World) -> None:
    customers = run(db, world, "customers", b"name\nOverflow Co\n")
    assert customers.created == 1
    body = (
        b"name,customer,amount\n"
        b"Fine deal,Overflow Co,999999999999.99\n"
        b"Huge deal,Overflow Co,1000000000000\n"
        b"Absurd deal,Overflow Co,99999999999999999999999999\n"
        b"Astronomic deal,Overflow Co,10000000000000000000000000000000000000000\n"  # quantize raised here
    )
    result = run(db, world, "opportunities", body, policy="skip-invalid")
    assert (result.status, result.created, result.rejected) == ("partial", 1, 3)
    assert result.report is not None and sorted(result.report.rejected) == [3, 4, 5]
    assert {key for reasons in result.report.rejected.values() for key, _ in reasons} == {"imports.rule.range"}
    with db.session(world.admin) as session:
        assert [str(a) for a in session.scalars(select(Opportunity.amount).where(
            Opportunity.name == "Fine deal"))] == ["999999999999.99"]


def test_order_lines_whose_total_overflows_the_order_are_refused(db: Database, world: World) -> None:
    run(db, world, "customers", b"name\nBig Buyer\n")
    run(db, world, "products", b"sku,name,unit_price\nBIG-1,Big thing,999999999999\n")
    body = b"order_number,customer,product,quantity,unit_price\nSO-BIG,Big Buyer,BIG-1,5000,999999999999\n"
    result = run(db, world, "orders", body, policy="skip-invalid")
    assert result.rejected == 1 and result.created == 0


def test_a_row_with_more_cells_than_the_header_is_refused_as_that_row(db: Database, world: World) -> None:
    body = b"name,email\nAcme Trust,a@acme-trust.com,\nAcme, Inc,b@acme-inc.com\nZeta Trust,z@zeta-trust.com\n"
    result = run(db, world, "customers", body, policy="skip-invalid")
    assert (result.created, result.rejected) == (2, 1)
    assert result.report is not None and list(result.report.rejected) == [3]
    assert result.report.rejected[3][0][0] == "imports.rule.extra_fields"
    with db.session(world.admin) as session:
        stored = dict(session.execute(select(Customer.name, Customer.email).where(
            Customer.name.in_(["Acme Trust", "Zeta Trust", "Acme", " Inc"]))).all())
    assert stored == {"Acme Trust": "a@acme-trust.com", "Zeta Trust": "z@zeta-trust.com"}


@pytest.mark.parametrize(
    ("mode", "duplicates"), [("upsert", "skip"), ("create", "merge")]
)
def test_counts_add_up_when_a_file_repeats_its_own_rows(db: Database, world: World, mode: str, duplicates: str
                                                         ) -> None:
    run(db, world, "customers", b"name,email,region\nExisting Count,exist@count.cn,North\n")
    body = (
        b"name,email,region\n"
        b"New Count,new@count.cn,East\n"
        b"New Count,new@count.cn,East\n"  # the same again: nothing to change
        b"New Count,new@count.cn,West\n"  # the same key, another value: changes the row above
        b"Existing Count,exist@count.cn,North\n"  # as stored: nothing to change
        b"Existing Count,exist@count.cn,South\n"  # changes the stored record
        b"Existing Count,exist@count.cn,South\n"  # repeats the row above
        b"Bad Count,not-an-email,East\n"
    )
    result = run(db, world, "customers", body, mapping={
        "columns": {"name": "name", "email": "email", "region": "region"}, "match_on": ["email"]},
        mode=mode, duplicates=duplicates, policy="skip-invalid")
    assert result.created + result.updated + result.skipped + result.rejected == result.rows_read == 7
    # a repeated row that changes what an earlier row of the file (or the database) holds is 'updated',
    # one that changes nothing is 'skipped'
    assert (result.created, result.updated, result.skipped, result.rejected) == (1, 2, 3, 1)
    with db.session(world.admin) as session:
        regions = dict(session.execute(select(Customer.name, Customer.region).where(
            Customer.name.in_(["New Count", "Existing Count"]))).all())
    assert regions == {"New Count": "West", "Existing Count": "South"}


def test_custom_field_values_are_read_by_their_types_as_the_form_reads_them(db: Database, world: World) -> None:
    from crm_core.services.custom_fields import FieldDefinitionInput, create_field
    from crm_core.services.customers import CustomerInput, create_customer

    for name, field_type, choices in (
        ("employees", "number", ""), ("founded", "date", ""), ("tier", "choice", "gold,silver"), ("vip", "bool", ""),
    ):
        create_field(db, world.admin, FieldDefinitionInput(name, name, name, field_type=field_type, choices=choices))
    body = (
        "name,employees,founded,tier,vip\n"
        "Typed One,\"1,200\",2020-03-05,gold,Yes\n"
        "Typed Two,12,2021年4月1日,Silver,否\n"
        "Typed Three,abc,2020-03-05,gold,yes\n"
        "Typed Four,12,not a date,gold,yes\n"
        "Typed Five,12,2020-03-05,bronze,yes\n"
        "Typed Six,12,2020-03-05,gold,perhaps\n"
    ).encode()
    mapping = {"columns": {"name": "name", "employees": "custom:employees", "founded": "custom:founded",
                           "tier": "custom:tier", "vip": "custom:vip"}}
    result = run(db, world, "customers", body, mapping=mapping, policy="skip-invalid")
    assert (result.created, result.rejected) == (2, 4)
    assert result.report is not None and sorted(result.report.rejected) == [4, 5, 6, 7]
    assert {key for reasons in result.report.rejected.values() for key, _ in reasons} == {"imports.rule.custom_field"}
    with db.session(world.admin) as session:
        stored: dict[str, object] = dict(session.execute(select(Customer.name, Customer.custom_fields).where(
            Customer.name.in_(["Typed One", "Typed Two"]))).all())
    assert stored == {
        "Typed One": {"employees": "1200", "founded": "2020-03-05", "tier": "gold", "vip": True},
        "Typed Two": {"employees": "12", "founded": "2021-04-01", "tier": "silver", "vip": False},
    }
    # the form reads the same way: "No" is false (it was bool("No"), true), "abc" no number
    form_id = create_customer(db, world.admin, CustomerInput(
        name="Form Typed", custom_fields={"vip": "No", "employees": "1,200"}))
    with db.session(world.admin) as session:
        assert session.get(Customer, form_id).custom_fields == {"vip": False, "employees": "1200"}  # type: ignore[union-attr]


def test_the_import_creates_no_custom_field_the_admin_page_would_refuse(db: Database, world: World) -> None:
    from crm_core.errors import ImportNotAllowed
    from crm_core.models import FieldDefinition

    for name in ("2024 revenue", "Revenue", "x" * 65, "a-b"):
        mapping = {"columns": {"name": "name", "extra": f"custom:{name}"}}
        with pytest.raises(ImportNotAllowed) as refused:
            run(db, world, "customers", b"name,extra\nNamed Co,1\n", mapping=mapping)
        assert refused.value.message_key == "imports.error.custom_field_name"
        with pytest.raises(ImportNotAllowed) as told:  # the dry run says so first
            validate_import(db, world.admin, open_import_file("t.csv", b"name,extra\nNamed Co,1\n"), "customers",
                            ImportMapping.from_dict(mapping))
        assert told.value.message_key == "imports.error.custom_field_name"
    with pytest.raises(ImportNotAllowed) as not_admin:  # and to a manager, that only an admin adds fields
        validate_import(db, world.manager, open_import_file("t.csv", b"name,extra\nNamed Co,1\n"), "customers",
                        ImportMapping.from_dict({"columns": {"name": "name", "extra": "custom:annual_revenue"}}))
    assert not_admin.value.message_key == "imports.error.custom_field_admin"
    with db.session(world.admin) as session:
        assert session.scalars(select(FieldDefinition.name)).all() == []


def test_custom_text_obeys_the_free_text_rules_in_the_import_the_form_and_the_api(db: Database, world: World) -> None:
    """A custom text value over 1,000 characters, or with a NUL, a direction override, markup or a formula,
    is refused with the same rule everywhere (it was cut at 1,000 characters, and the rest kept, in silence)."""
    from crm_core.errors import ValidationFailed
    from crm_core.services.custom_fields import FieldDefinitionInput, create_field
    from crm_core.services.customers import CustomerInput, create_customer

    create_field(db, world.admin, FieldDefinitionInput("notes", "Notes", "备注", field_type="text"))
    body = (
        "name,notes\n"
        f"Text Fine,{'字' * 1000}\n"
        f"Text Long,{'字' * 1001}\n"
        "Text Bidi,Acme\u202egnp.exe\n"
        "Text Markup,<img src=x onerror=alert(1)>\n"
        "Text Formula,=HYPERLINK(\"http://x\")\n"
    ).encode()
    mapping = {"columns": {"name": "name", "notes": "custom:notes"}}
    result = run(db, world, "customers", body, mapping=mapping, policy="skip-invalid")
    assert (result.created, result.rejected) == (1, 4)
    assert result.report is not None and sorted(result.report.rejected) == [3, 4, 5, 6]
    assert {key for reasons in result.report.rejected.values() for key, _ in reasons} == {"imports.rule.custom_field"}
    with db.session(world.admin) as session:
        assert session.scalars(select(Customer.custom_fields).where(Customer.name == "Text Fine")).one() == {
            "notes": "字" * 1000}
    expected = {
        "字" * 1001: ("imports.rule.too_long", {"field": "notes", "max": 1000}),
        "a\x00b": ("imports.rule.hidden_characters", {"field": "notes"}),
        "Acme\u202egnp.exe": ("imports.rule.hidden_characters", {"field": "notes"}),
        "<b onclick=x>": ("imports.rule.markup", {"field": "notes"}),
        "=1+1": ("imports.rule.formula", {"field": "notes"}),
    }
    for value, problem in expected.items():
        with pytest.raises(ValidationFailed) as refused:
            create_customer(db, world.admin, CustomerInput(name="Form Text", custom_fields={"notes": value}))
        assert refused.value.errors == {"custom.notes": problem}


def test_a_required_custom_field_is_required_of_imported_rows_that_create(db: Database, world: World) -> None:
    from crm_core.services.custom_fields import FieldDefinitionInput, create_field

    create_field(db, world.admin, FieldDefinitionInput("region_code", "Region code", "区域代码", required=True))
    create_field(db, world.admin, FieldDefinitionInput("opted_in", "Opted in", "已同意", field_type="bool",
                                                       required=True))
    mapping = {"columns": {"name": "name", "email": "email", "region_code": "custom:region_code"}}
    body = b"name,email,region_code\nHas Code,has@code.cn,R1\nNo Code,no@code.cn,\n"
    result = run(db, world, "customers", body, mapping=mapping, policy="skip-invalid")
    # a yes/no field is never blank (unticked is no), as on the form
    assert (result.created, result.rejected) == (1, 1)
    assert result.report is not None and result.report.rejected[3][0][0] == "imports.rule.custom_field_required"
    # the column not mapped at all: every row that creates lacks it
    unmapped = run(db, world, "customers", b"name\nUnmapped Co\n", policy="skip-invalid")
    assert (unmapped.created, unmapped.rejected) == (0, 1)
    # an update leaves the field alone, as it leaves the entity's own required fields
    update = run(db, world, "customers", b"email,industry\nhas@code.cn,Energy\n", mode="update",
                 mapping={"columns": {"email": "email", "industry": "industry"}, "match_on": ["email"]})
    assert (update.status, update.updated, update.rejected) == ("imported", 1, 0)
