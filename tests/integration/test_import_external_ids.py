"""Moving in from another CRM (issue 18, decision 0042): five files that name their parents by the old system's IDs.

Products, accounts, contacts, deals, orders, activities and tasks arrive in that order, each carrying
its own external ID and naming its parents by theirs (a product also by SKU or name); the suggested
mappings read the headers ("Contact ID", "Deal ID", "Account ID"). Every link lands where the old
system had it, and every data-quality suite of the database stays green. Then what is refused, in
words that name the value: an external ID repeated in a file or already held by another record, a
deal nobody has, a deal of another customer than the row's; an upsert matched by external ID; and the
whole move-in reverted, run by run, newest first: nothing of it is left.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, revert_import, run_import, validate_import
from crm_core.models import Activity, Contact, Customer, Opportunity, Order, OrderLine, Product, Task
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from tests.factories import build_world


def import_csv(db: Database, actor: Actor, entity: str, body: str, **options: object) -> ImportResult:
    file = open_import_file(f"{entity}.csv", body.encode("utf-8"))
    mapping = ImportMapping.suggested(entity, file.headers)
    result = run_import(db, actor, file, entity, mapping, ImportOptions(**options))  # type: ignore[arg-type]
    assert result.status == "imported", (entity, mapping.columns, result.as_dict()["failures"])
    return result


def test_a_move_in_relinks_every_file_by_external_id_and_refuses_repeated_taken_and_unknown_ids(
    db: Database,
) -> None:
    world = build_world(db)
    admin, owner = world.admin, world.admin.username

    files = [
        ("products", "Product ID,Name,SKU,Price\nPRD-1,Scanner,,1200\nPRD-2,Licence,LIC-1,33.33\n"),
        ("customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{owner}\nACC-2,Beta,{owner}\n"),
        ("contacts", "Contact ID,Account ID,Contact name\nCON-1,ACC-1,Ann\nCON-2,ACC-2,Bob\n"),
        ("opportunities", "Opportunity ID,Account ID,Deal name,Amount,Product\n"
                          "OPP-1,ACC-1,Alpha deal,100,PRD-1\n"
                          "OPP-2,ACC-2,Beta deal,200,LIC-1\n"),  # a product by its SKU
        ("orders", "External ID,Order number,Account ID,Deal ID,Product,Quantity\n"
                   "ORD-1,SO-X-1,ACC-1,OPP-1,PRD-1,1\n"
                   "ORD-2,SO-X-2,ACC-2,OPP-2,PRD-2,2\n"
                   "ORD-2,SO-X-2,ACC-2,OPP-2,Scanner,1\n"),  # the lines of one order share its ID; a product by name
        ("activities", "Account ID,Contact ID,Deal ID,Type,Date,Summary\n"
                       "ACC-1,CON-1,OPP-1,call,2024-01-01 10:00,Call\n"),
        ("tasks", "Title,Account ID,Deal ID\nFollow up,ACC-2,OPP-2\n"),
    ]
    runs = [import_csv(db, admin, entity, body) for entity, body in files]

    with db.session(admin) as session:
        def ids(model: Any) -> dict[str, int]:
            return {row.external_id: row.id for row in session.scalars(select(model))}

        customers, contacts, deals, products, orders = (
            ids(Customer), ids(Contact), ids(Opportunity), ids(Product), ids(Order))
        assert {name: (deal.customer_id, deal.product_id) for name, deal in (
            (deal.external_id, deal) for deal in session.scalars(select(Opportunity)))} == {
            "OPP-1": (customers["ACC-1"], products["PRD-1"]), "OPP-2": (customers["ACC-2"], products["PRD-2"])}
        assert {contact.external_id: contact.customer_id for contact in session.scalars(select(Contact))} == {
            "CON-1": customers["ACC-1"], "CON-2": customers["ACC-2"]}
        assert {(order.external_id, order.order_number, order.customer_id, order.opportunity_id)
                for order in session.scalars(select(Order))} == {
            ("ORD-1", "SO-X-1", customers["ACC-1"], deals["OPP-1"]),
            ("ORD-2", "SO-X-2", customers["ACC-2"], deals["OPP-2"])}
        assert sorted((line.order_id, line.product_id) for line in session.scalars(select(OrderLine))) == sorted([
            (orders["ORD-1"], products["PRD-1"]), (orders["ORD-2"], products["PRD-2"]),
            (orders["ORD-2"], products["PRD-1"])])
        [activity] = session.scalars(select(Activity)).all()
        assert (activity.customer_id, activity.contact_id, activity.opportunity_id) == (
            customers["ACC-1"], contacts["CON-1"], deals["OPP-1"])
        [task] = session.scalars(select(Task).where(Task.title == "Follow up")).all()
        assert (task.customer_id, task.opportunity_id) == (customers["ACC-2"], deals["OPP-2"])

    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])

    # an ID another contact holds, and one the file repeats: refused, naming the value
    again = open_import_file("contacts.csv", b"Contact ID,Account ID,Contact name\n"
                                             b"CON-1,ACC-1,Ann again\nCON-9,ACC-1,Cy\nCON-9,ACC-1,Di\n")
    report = validate_import(db, admin, again, "contacts", ImportMapping.suggested("contacts", again.headers))
    assert {(failure.message_key, tuple(failure.rows)) for failure in report.failures} == {
        ("imports.rule.external_id_taken", (2,)), ("imports.rule.duplicate_in_file", (4,))}
    assert "external ID “CON-1”" in report.reasons(2, "en")
    assert "外部编号“CON-1”" in report.reasons(2, "zh-CN")
    assert "CON-9 (= 3)" in report.failures[[f.message_key for f in report.failures].index(
        "imports.rule.duplicate_in_file")].examples

    # a deal nobody has, and one of another customer than the row's
    stray = open_import_file("activities.csv", b"Account ID,Deal ID,Summary\nACC-1,OPP-9,Lost\nACC-1,OPP-2,Other\n")
    report = validate_import(db, admin, stray, "activities", ImportMapping.suggested("activities", stray.headers))
    assert {(failure.message_key, tuple(failure.rows)) for failure in report.failures} == {
        ("imports.rule.unresolved_deal", (2,)), ("imports.rule.other_customer_deal", (3,))}
    assert "no deal has the external ID “OPP-9”" in report.reasons(2, "en")
    assert "没有外部编号为“OPP-9”的商机" in report.reasons(2, "zh-CN")
    assert "“OPP-2” belongs to another customer" in report.reasons(3, "en")

    # an upsert matched by external ID updates that contact (and may keep its own ID)
    upsert = open_import_file("contacts.csv", b"Contact ID,Account ID,Contact name,Title\nCON-1,ACC-1,Ann,CEO\n")
    mapping = ImportMapping.suggested("contacts", upsert.headers)
    mapping.match_on = ["external_id"]
    result = run_import(db, admin, upsert, "contacts", mapping, ImportOptions(mode="upsert"))
    assert (result.status, result.created, result.updated) == ("imported", 0, 1)
    with db.session(admin) as session:
        assert session.scalars(select(Contact.title).where(Contact.external_id == "CON-1")).one() == "CEO"

    # the whole move-in undone: each run reverted, newest first (the order the imports page lists them in)
    for imported in [result, *reversed(runs)]:
        assert imported.run_id is not None and revert_import(db, admin, imported.run_id).conflicts == 0
    with db.session(admin) as session:
        left = {model.__name__: len(session.scalars(select(model.id)).all())
                for model in (Product, Customer, Contact, Opportunity, Order, OrderLine, Activity, Task)}
    assert left == dict.fromkeys(left, 0)
