"""Moving in from another CRM (issue 18): imports leave what the services leave, and admins import the past.

One parity test per database imports every entity from small files — products without a SKU,
customers with their creation dates, contacts, deals opened and closed years ago with a
product and a currency of their own, a deal's product lines, orders, activities and done tasks — and then runs every
data-quality suite of the database: no violation. It then reads back what the services would
have written (close dates, reasons, stage history, lifecycle stages, last contact, order
totals, the audit trail's history flag) and the reports of the past: a deal won in 2017 counts
in 2017's funnel and dashboard, not in this quarter's.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.cli import main
from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.i18n import t
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, revert_import, run_import, validate_import
from crm_core.models import AuditEvent, Customer, Opportunity, Order, PipelineStage, Product, Task
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from crm_core.queries.reports import ReportFilters, dashboard, funnel, period_bounds
from tests.factories import World, build_world


def import_csv(db: Database, actor: Actor, entity: str, body: str, **options: str) -> ImportResult:
    file = open_import_file(f"{entity}.csv", body.encode("utf-8"))
    result = run_import(db, actor, file, entity, ImportMapping.suggested(entity, file.headers),
                        ImportOptions(**options))  # type: ignore[arg-type]
    assert result.status == "imported", (entity, result.as_dict()["failures"])
    return result


def stages(db: Database, actor: Actor) -> dict[str, PipelineStage]:
    """The default pipeline's first open, won and lost stages."""
    with db.session(actor) as session:
        rows = list(session.scalars(select(PipelineStage).order_by(PipelineStage.pipeline_id, PipelineStage.position)))
        pipeline_id = rows[0].pipeline_id
        rows = [row for row in rows if row.pipeline_id == pipeline_id]
        session.expunge_all()
    return {
        "open": next(row for row in rows if row.kind == "open"),
        "won": next(row for row in rows if row.kind == "won"),
        "lost": next(row for row in rows if row.kind == "lost"),
    }


def test_a_move_in_of_every_entity_leaves_every_quality_suite_green_and_the_past_in_the_reports(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    stage = stages(db, admin)
    recent = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=10)).date().isoformat()
    owner = admin.username

    import_csv(db, admin, "products", "名称,产品编号,单价\nScanner,,1200\nLicence,LIC-1,33.33\nSupport,,10\n")
    import_csv(db, admin, "customers",
               "Customer name,Owner,Email,Created date\n"
               f"Alpha Old,{owner},alpha@example.com,2016-05-01\n"
               f"Beta Buyer,{owner},beta@example.com,2018-01-02 08:30\n"
               f"Gamma Talks,{owner},gamma@example.com,\n")
    import_csv(db, admin, "contacts", "Customer,Contact name,Email\nAlpha Old,Ann Alpha,ann@alpha.example.com\n")
    deals = import_csv(db, admin, "opportunities",
                       "Opportunity ID,Deal name,Customer,Stage,Amount,Currency,Product,Created date,Closed date,"
                       "Lost reason\n"
                       f"OPP-W,Old win,Alpha Old,{stage['won'].name},5000,USD,Scanner,2017-03-01,2017-09-15,\n"
                       f"OPP-L,Old loss,Beta Buyer,{stage['lost'].name},100,,,2018-01-10,2018-02-01,Price\n"
                       f"OPP-O,Still open,Gamma Talks,{stage['open'].name},300,,LIC-1,2025-01-05,,\n")
    assert deals.created == 3
    # the open deal's product lines (Salesforce's Opportunity Products): its amount becomes their sum
    import_csv(db, admin, "deal_lines", "Opportunity ID,Product,Quantity,Sales Price\nOPP-O,LIC-1,3,\n"
                                        "OPP-O,Support,2,10\n")
    import_csv(db, admin, "orders",
               "Order number,Customer,Product,Quantity,Unit price,Order date\n"
               f"SO-MOVE-1,Beta Buyer,Licence,1.5,33.33,{recent}\n"
               f"SO-MOVE-1,Beta Buyer,Licence,1.5,33.33,{recent}\n")
    import_csv(db, admin, "activities",
               "Customer,Type,Date,Summary\n"
               "Gamma Talks,call,2024-01-01 10:00,First call\n"
               "Gamma Talks,email,2023-01-01,Older mail\n")
    import_csv(db, admin, "tasks",
               "Title,Customer,Status,Completed\n"
               "Send the quote,Alpha Old,,2019-06-01 16:00\n"
               "Call back,Gamma Talks,open,\n")

    # every data-quality suite of the database: nothing the import wrote breaks a rule
    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])

    with db.session(admin) as session:
        by_name = {deal.name: deal for deal in session.scalars(select(Opportunity))}
        won, lost, still_open = by_name["Old win"], by_name["Old loss"], by_name["Still open"]
        products = {product.name: product for product in session.scalars(select(Product))}
        customers = {customer.name: customer for customer in session.scalars(select(Customer))}
        # deals: what the deal service leaves behind a close, with the dates of the past
        assert (won.created_at, won.closed_at) == (dt.datetime(2017, 3, 1), dt.datetime(2017, 9, 15, 12))
        assert (won.currency, won.product_id, won.probability) == ("USD", products["Scanner"].id, None)
        assert (lost.lost_reason, lost.lost_from_stage_id, lost.closed_at) == (
            "Price", stage["open"].id, dt.datetime(2018, 2, 1, 12))
        assert (still_open.closed_at, still_open.product_id) == (None, products["Licence"].id)
        assert still_open.amount == Decimal("119.99")  # 3 × 33.33 + 2 × 10: its lines' sum, as the service sums them
        history = session.execute(
            select(OpportunityStageChange.from_stage_id, OpportunityStageChange.to_stage_id,
                   OpportunityStageChange.changed_at)
            .where(OpportunityStageChange.opportunity_id == won.id).order_by(OpportunityStageChange.changed_at)
        ).all()
        assert [tuple(row) for row in history] == [
            (None, stage["open"].id, dt.datetime(2017, 3, 1)),
            (stage["open"].id, stage["won"].id, dt.datetime(2017, 9, 15, 12)),
        ]
        # products: no SKU twice (NULLs never collide in the unique index)
        assert [products[name].sku for name in ("Scanner", "Licence", "Support")] == [None, "LIC-1", None]
        # customers: creation dates kept; lifecycle re-evaluated as after each service write
        assert customers["Alpha Old"].created_at == dt.datetime(2016, 5, 1)
        assert {name: customer.lifecycle_stage for name, customer in customers.items()} == {
            "Alpha Old": "churned",  # won in 2017, nothing since: a lapsed buyer, no longer a prospect
            "Beta Buyer": "customer",  # an order ten days ago
            "Gamma Talks": "intent",  # an open deal
        }
        assert customers["Gamma Talks"].last_contacted_at == dt.datetime(2024, 1, 1, 10)
        # orders: lines rounded to the cent as the order service rounds them (1.5 × 33.33 = 50.00, twice)
        order = session.scalars(select(Order).where(Order.order_number == "SO-MOVE-1")).one()
        assert order.total_amount == Decimal("100.00")
        done = session.scalars(select(Task).where(Task.title == "Send the quote")).one()
        assert (done.status, done.completed_at) == ("done", dt.datetime(2019, 6, 1, 16))
        # the audit trail says which records carry imported history, and which dates
        flags = {
            (event.entity, event.entity_id): (event.changes or {}).get("_imported_history")
            for event in session.scalars(select(AuditEvent).where(AuditEvent.action == "create"))
        }
        assert flags[("opportunity", won.id)] == [None, ["created_at", "closed_at"]]
        assert flags[("opportunity", still_open.id)] == [None, ["created_at"]]
        assert flags[("customer", customers["Gamma Talks"].id)] is None
        assert flags[("task", done.id)] == [None, ["completed_at"]]
        contact_moves = [event.changes for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == "update", AuditEvent.entity == "customer",
            AuditEvent.entity_id == customers["Gamma Talks"].id))]
        assert [(changes["last_contacted_at"][1], "_import_run" in changes) for changes in contact_moves] == [
            ("2024-01-01T10:00:00", True)]

        # the reports of the past show the history; this quarter's do not
        of_2017 = funnel(session, filters=ReportFilters(since=dt.date(2017, 1, 1), until=dt.date(2017, 12, 31)))
        assert of_2017 is not None and (of_2017.won_count, of_2017.won_amount, of_2017.lost_count) == (
            1, Decimal("5000.00"), 0)
        assert of_2017.average_cycle_days == pytest.approx(198.5)
        today = dt.date.today()
        quarter_start, _, _ = period_bounds(today, "quarter")
        this_quarter = funnel(session, filters=ReportFilters(since=quarter_start))
        assert this_quarter is not None and this_quarter.won_count == 0
        assert dashboard(session, today=dt.date(2017, 9, 20), period="quarter").won_count == 1
        assert dashboard(session, today=today, period="quarter").won_count == 0


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_history_is_for_admins_and_closing_rules_hold_then_a_revert_takes_the_deals_and_their_effects(
    db: Database,
) -> None:
    world: World = build_world(db)
    stage = stages(db, world.admin)
    import_csv(db, world.admin, "customers", f"Customer name,Owner\nDelta,{world.manager.username}\n")
    next_year = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    body = ("Deal name,Customer,Stage,Closed date,Lost reason\n"
            f"Lost quietly,Delta,{stage['lost'].name},2019-01-01,\n"
            f"From the future,Delta,{stage['won'].name},{next_year},\n"
            f"Open but closed,Delta,{stage['open'].name},2019-01-01,\n")
    file = open_import_file("deals.csv", body.encode())
    mapping = ImportMapping.suggested("opportunities", file.headers)

    with pytest.raises(ImportNotAllowed) as refused:
        validate_import(db, world.manager, file, "opportunities", mapping)
    assert refused.value.message_key == "imports.error.history_admin"
    assert "closed_at" in t(refused.value.message_key, "en", **refused.value.params)
    assert "管理员" in t(refused.value.message_key, "zh-CN", **refused.value.params)

    report = validate_import(db, world.admin, file, "opportunities", mapping)
    assert {failure.message_key: failure.rows for failure in report.failures} == {
        "deal.lost_reason_required": [2],
        "deal.closed_in_future": [3],
        "imports.rule.closed_on_open_stage": [4],
    }
    assert report.reasons(4, "zh-CN") and report.reasons(2, "en") == t("deal.lost_reason_required", "en")

    # a manager imports deals without dates of the past: they close today, as by hand
    result = import_csv(db, world.manager, "opportunities",
                        f"Deal name,Customer,Stage,Amount\nWon today,Delta,{stage['won'].name},10\n")
    with db.session(world.admin) as session:
        deal = session.scalars(select(Opportunity).where(Opportunity.name == "Won today")).one()
        assert deal.closed_at is not None and deal.closed_at.date() == dt.datetime.now(dt.UTC).date()
        customer = session.get(Customer, deal.customer_id)
        assert customer is not None and customer.lifecycle_stage == "customer"
    # a file that marks an existing task done (or open again) leaves it as completing (reopening) by hand would
    import_csv(db, world.admin, "tasks", "Title,Status\nFollow up Delta,open\n")
    for status, completed in (("done", True), ("open", False)):
        import_csv(db, world.admin, "tasks", f"Title,Status\nFollow up Delta,{status}\n", mode="upsert")
        with db.session(world.admin) as session:
            task = session.scalars(select(Task).where(Task.title == "Follow up Delta")).one()
            assert (task.status, task.completed_at is not None) == (status, completed)
    reverted = revert_import(db, world.manager, result.run_id)
    assert reverted.deleted == 1
    with db.session(world.admin) as session:
        customer = session.scalars(select(Customer).where(Customer.name == "Delta")).one()
        assert customer.lifecycle_stage == "prospect"
        assert not session.scalars(select(OpportunityStageChange).where(
            OpportunityStageChange.opportunity_id == deal.id)).all()


def test_the_command_line_refuses_history_to_a_manager_in_words_and_imports_it_for_an_admin(
    capsys: pytest.CaptureFixture[str], sqlite_db: Database, tmp_path: Path
) -> None:
    world = build_world(sqlite_db)
    import_csv(sqlite_db, world.admin, "customers", f"Customer name,Owner\nEpsilon,{world.manager.username}\n")
    won = stages(sqlite_db, world.admin)["won"].name
    deals = tmp_path / "deals.csv"
    deals.write_text(f"Deal name,Customer,Stage,Amount,Created date,Closed date\nOld,Epsilon,{won},9,2017-02-01,"
                     "2017-05-02\n", encoding="utf-8")
    url = ["--database-url", str(sqlite_db.engine.url)]
    code = main([*url, "import", "opportunities", str(deals), "--as", world.manager.username, "--json"])
    said = capsys.readouterr()
    assert code != 0 and "Traceback" not in said.err + said.out
    assert t("imports.error.history_admin", "en", fields="created_at, closed_at") in said.err + said.out
    code = main([*url, "import", "opportunities", str(deals), "--as", world.admin.username, "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert (code, payload["status"], payload["created"]) == (0, "imported", 1)
    with sqlite_db.session(world.admin) as session:
        of_2017 = funnel(session, filters=ReportFilters(since=dt.date(2017, 1, 1), until=dt.date(2017, 12, 31)))
        assert of_2017 is not None and of_2017.won_count == 1 and of_2017.average_cycle_days == pytest.approx(90.5)
