"""A deal's product lines (issue 18, decision 0045): Salesforce's "Opportunity Product" rows imported by the deal's
external ID; a deal with lines is worth their sum; a line naming no deal is refused naming the value; a revert
takes the lines away and gives the deals their amounts back; the database suites stay green."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import StaleRecord, ValidationFailed
from crm_core.importing.mapping import ImportMapping
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import revert_import, validate_import
from crm_core.models import Opportunity
from crm_core.models.pipeline import OpportunityLine
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from crm_core.services.deal_lines import DealLineInput, deal_lines, set_deal_lines
from crm_core.services.deals import OpportunityInput, update_opportunity
from tests.factories import build_world
from tests.integration.test_import_external_ids import import_csv


def test_deal_lines_import_by_external_id_sum_into_the_amount_refuse_unknown_deals_and_revert(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    import_csv(db, admin, "products", "Product ID,Name,SKU,Price\nPRD-1,Scanner,SCN-1,1200\nPRD-2,Licence,,33.33\n")
    import_csv(db, admin, "customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{admin.username}\n")
    import_csv(db, admin, "opportunities", "Opportunity ID,Account ID,Deal name,Amount\n"
                                           "OPP-1,ACC-1,Alpha deal,100\nOPP-2,ACC-1,Other deal,50\n")
    # Salesforce's export: the deal by its ID, the product by its code (or external ID, or name); a blank
    # price is the product's list price
    run = import_csv(db, admin, "deal_lines", "Opportunity ID,Product Code,Quantity,Sales Price\n"
                                             "OPP-1,SCN-1,2,1000\nOPP-1,PRD-2,1.5,\n")
    assert run.created == 2
    with db.session(admin) as session:
        deal = session.scalars(select(Opportunity).where(Opportunity.external_id == "OPP-1")).one()
        other = session.scalars(select(Opportunity).where(Opportunity.external_id == "OPP-2")).one()
        [lines] = deal_lines(session, [deal.id]).values()
        assert [(line.position, line.sku, line.product_name, line.quantity, line.unit_price, line.line_total)
                for line in lines] == [
            (1, "SCN-1", "Scanner", Decimal("2.00"), Decimal("1000.00"), Decimal("2000.00")),
            (2, None, "Licence", Decimal("1.50"), Decimal("33.33"), Decimal("50.00"))]  # 49.995, half-up
        assert (deal.amount, other.amount) == (Decimal("2050.00"), Decimal("50.00"))
        deal_id, version = deal.id, deal.version
    for suite in database_suites():
        result = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert result.success, (suite, [(check.check, check.examples) for check in result.failures])

    # a line naming a deal nobody has: refused, naming the value, in both languages
    stray = open_import_file("deal_lines.csv", b"Opportunity ID,Product Code,Quantity\nOPP-9,SCN-1,1\n")
    report = validate_import(db, admin, stray, "deal_lines", ImportMapping.suggested("deal_lines", stray.headers))
    assert [(failure.message_key, failure.rows) for failure in report.failures] == [
        ("imports.rule.unresolved_deal", [2])]
    assert "no deal has the external ID “OPP-9”" in report.reasons(2, "en")
    assert "没有外部编号为“OPP-9”的商机" in report.reasons(2, "zh-CN")

    # the import reverted: its lines go, the deal is worth what it was before
    assert run.run_id is not None
    reverted = revert_import(db, admin, run.run_id)
    assert (reverted.deleted, reverted.conflicts) == (2, 0)
    with db.session(admin) as session:
        assert session.scalars(select(OpportunityLine.id)).all() == []
        reverted_deal = session.get(Opportunity, deal_id)
        assert reverted_deal is not None and reverted_deal.amount == Decimal("100.00")
        version = reverted_deal.version

    # by hand: the lines as a whole, the deal's version moves; its form's amount gives way to the lines' sum
    with pytest.raises(ValidationFailed):
        set_deal_lines(db, admin, deal_id, [DealLineInput(product_id=lines[0].product_id, quantity="0")],
                       expected_version=version)
    with pytest.raises(StaleRecord):
        set_deal_lines(db, admin, deal_id, [], expected_version=version - 1)
    before = version
    version = set_deal_lines(db, admin, deal_id, [DealLineInput(product_id=lines[1].product_id, quantity=2)],
                             expected_version=version)
    assert version == before + 1
    with db.session(admin) as session:
        edited = session.get(Opportunity, deal_id)
        assert edited is not None and (edited.amount, edited.version) == (Decimal("66.66"), version)
        customer_id, stage_id = edited.customer_id, edited.stage_id
    update_opportunity(db, admin, deal_id, OpportunityInput(customer_id=customer_id, name="Alpha deal", amount=5,
                                                            stage_id=stage_id), expected_version=version)
    with db.session(admin) as session:
        assert session.scalars(select(Opportunity.amount).where(Opportunity.id == deal_id)).one() == Decimal("66.66")


def test_a_salesforce_opportunity_product_export_is_detected_as_deal_lines() -> None:
    from crm_core.importing.presets import detect_preset

    assert detect_preset(["Opportunity ID", "Product Code", "Quantity", "Sales Price", "Total Price"]) == (
        "salesforce", "deal_lines")
    assert detect_preset(["Product Name", "Product Code", "List Price", "Active"]) == ("salesforce", "products")


def test_a_revert_leaves_the_records_made_after_the_run_under_its_old_ids(db: Database) -> None:
    """SQLite gives a deleted row's id to the next insert: lines set by hand after the import's lines were
    replaced may carry the import's ids, and stay when the import is reverted (on every database)."""
    world = build_world(db)
    admin = world.admin
    import_csv(db, admin, "products", "Product ID,Name,Price\nPRD-1,Scanner,1200\n")
    import_csv(db, admin, "customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{admin.username}\n")
    import_csv(db, admin, "opportunities", "Opportunity ID,Account ID,Deal name,Amount\nOPP-1,ACC-1,Alpha deal,100\n")
    run = import_csv(db, admin, "deal_lines", "Opportunity ID,Product ID,Quantity\nOPP-1,PRD-1,1\n")
    with db.session(admin) as session:
        deal = session.scalars(select(Opportunity).where(Opportunity.external_id == "OPP-1")).one()
        [imported] = deal_lines(session, [deal.id])[deal.id]
    set_deal_lines(db, admin, deal.id, [DealLineInput(product_id=imported.product_id, quantity=3)],
                   expected_version=deal.version)  # the imported line goes; the new one may get its id
    assert run.run_id is not None
    assert revert_import(db, admin, run.run_id).deleted == 0
    with db.session(admin) as session:
        assert [line.quantity for line in deal_lines(session, [deal.id])[deal.id]] == [Decimal(3)]


def test_a_second_import_of_the_same_lines_adds_nothing_and_a_new_line_is_added_once(db: Database) -> None:
    """A line the deal already has (same product, quantity and price; counted, so a deal with two equal lines keeps
    two) is a match: skipped by default, as any record already there; only "create anyway" adds it again."""
    world = build_world(db)
    admin = world.admin
    import_csv(db, admin, "products", "Product ID,Name,SKU,Price\nPRD-1,Scanner,SCN-1,1200\nPRD-2,Licence,,33.33\n")
    import_csv(db, admin, "customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{admin.username}\n")
    import_csv(db, admin, "opportunities", "Opportunity ID,Account ID,Deal name,Amount\nOPP-1,ACC-1,Alpha deal,100\n")
    lines = "Opportunity ID,Product Code,Quantity,Sales Price\nOPP-1,SCN-1,2,1000\nOPP-1,PRD-2,1,\nOPP-1,PRD-2,1,\n"
    first = import_csv(db, admin, "deal_lines", lines)
    assert first.created == 3

    def amount_and_lines() -> tuple[Decimal, list[tuple[int, Decimal, Decimal]]]:
        with db.session(admin) as session:
            deal = session.scalars(select(Opportunity).where(Opportunity.external_id == "OPP-1")).one()
            return deal.amount, [(line.position, line.quantity, line.unit_price)
                                 for line in deal_lines(session, [deal.id])[deal.id]]

    before = amount_and_lines()
    assert before[0] == Decimal("2066.66")
    again = open_import_file("deal_lines.csv", lines.encode())
    mapping = ImportMapping.suggested("deal_lines", again.headers)
    forecast = validate_import(db, admin, again, "deal_lines", mapping)
    assert (forecast.would_create, forecast.would_skip, forecast.matches_in_database) == (0, 3, 3)
    second = import_csv(db, admin, "deal_lines", lines)
    assert (second.created, second.skipped) == (0, 3)
    assert amount_and_lines() == before

    # one more line in the file: that one goes in, after the others
    third = import_csv(db, admin, "deal_lines", lines + "OPP-1,SCN-1,1,1100\n")
    assert (third.created, third.skipped) == (1, 3)
    amount, positions = amount_and_lines()
    assert (amount, positions[-1]) == (Decimal("3166.66"), (4, Decimal("1.00"), Decimal("1100.00")))
    # "create anyway": the same lines again, as asked
    forced = import_csv(db, admin, "deal_lines", "Opportunity ID,Product Code,Quantity\nOPP-1,PRD-2,1\n",
                        duplicates="create")
    assert forced.created == 1
