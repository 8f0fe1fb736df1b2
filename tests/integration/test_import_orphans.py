"""Moving in (issue 18, decision 0043): rows without a customer, owners who are nobody here, and revert parity.

A contact, deal, order or activity whose customer cell is empty is refused (the default), attached to a
placeholder customer of its own, or made a lead; an admin may give rows whose owner is unknown to inactive users
made for those names. Reverting a run takes what it made with it (customers, unused users), moves the customers'
last contact back, and a stage the revert restores is a move in the deal's history, as a move by hand is.
"""

from __future__ import annotations

import datetime as dt
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
from crm_core.models import AuditEvent, Contact, Customer, Opportunity, Order, User
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from crm_core.services.auth import verify_password
from crm_core.services.duplicate_rules import save_duplicate_rules
from tests.factories import build_world
from tests.integration.test_import_history import stages


def run_csv(db: Database, actor: Actor, entity: str, body: str, **options: object) -> ImportResult:
    file = open_import_file(f"{entity}.csv", body.encode("utf-8"))
    result = run_import(db, actor, file, entity, ImportMapping.suggested(entity, file.headers),
                        ImportOptions(**options))  # type: ignore[arg-type]
    assert result.status in ("imported", "partial"), (entity, result.as_dict())
    return result


def test_rows_without_a_customer_are_refused_placed_or_made_leads_and_the_quality_suites_stay_green(
    db: Database,
) -> None:
    world = build_world(db)
    admin, manager = world.admin, world.manager
    stage = stages(db, admin)
    run_csv(db, admin, "customers", f"Customer name,Owner,Email\nKnown Co,{manager.username},known@example.com\n")
    deals = (f"Deal name,Customer,Stage,Owner\nLonely win,,{stage['won'].name},{manager.username}\n"
             f"Known deal,Known Co,{stage['open'].name},\nGhost deal,Nobody Ltd,{stage['open'].name},\n")
    file = open_import_file("deals.csv", deals.encode())
    mapping = ImportMapping.suggested("opportunities", file.headers)
    # reject (the default): the empty cell is refused and counted; an unresolved name stays a refusal
    rejected = validate_import(db, admin, file, "opportunities", mapping)
    assert (rejected.orphans_rejected, rejected.rejected_count) == (1, 2)
    with pytest.raises(ImportNotAllowed) as unknown:
        validate_import(db, admin, file, "opportunities", mapping, ImportOptions(orphans="adopt"))
    assert "placeholder" in t(unknown.value.message_key, "zh-CN", **unknown.value.params)

    placed = run_csv(db, admin, "opportunities", deals, orphans="placeholder", policy="skip-invalid")
    assert (placed.created, placed.rejected, placed.as_dict()["orphans_placeholder"]) == (2, 1, 1)
    leads = run_csv(db, admin, "contacts", "Customer,Contact name,Email\n,Ann Lead,ann@lead.example.com\n"
                    ",Bo Lead,known@example.com\n", orphans="lead")
    assert leads.as_dict()["orphans_lead"] == 2
    run_csv(db, admin, "products", "Product name,Unit price\nWidget,10\n")
    orders = run_csv(db, admin, "orders", "Order number,Customer,Product,Quantity\nSO-ORPH,,Widget,1\n"
                     "SO-ORPH,,Widget,2\n", orphans="placeholder")
    assert orders.as_dict()["orphans_placeholder"] == 2  # two lines, one order: one placeholder

    with db.session(admin) as session:
        made = {customer.name: customer for customer in session.scalars(
            select(Customer).where(Customer.name != "Known Co"))}
        placeholder = made[t("imports.orphan.placeholder_name", "en", name="Lonely win")]
        # owned by the row's owner, tagged to be found, and its lifecycle re-evaluated (a won deal: a customer)
        assert (placeholder.owner_id, placeholder.tags, placeholder.lifecycle_stage) == (
            manager.user_id, "no-account", "customer")
        deal = session.scalars(select(Opportunity).where(Opportunity.name == "Lonely win")).one()
        assert deal.customer_id == placeholder.id
        ann, bo = made["Ann Lead"], made["Bo Lead"]
        assert (ann.kind, ann.email, ann.tags, ann.owner_id) == ("person", "ann@lead.example.com", "imported-lead",
                                                                 admin.user_id)
        assert bo.email is None  # Known Co's email: the lead would be its duplicate, so the contact keeps it
        assert {contact.name: contact.customer_id for contact in session.scalars(select(Contact))} == {
            "Ann Lead": ann.id, "Bo Lead": bo.id}
        order = session.scalars(select(Order).where(Order.order_number == "SO-ORPH")).one()
        assert session.get(Customer, order.customer_id).name == t(  # type: ignore[union-attr]
            "imports.orphan.placeholder_name", "en", name=t("imports.orphan.order", "en", number="SO-ORPH"))
        created_events = set(session.scalars(select(AuditEvent.entity_id).where(
            AuditEvent.entity == "customer", AuditEvent.action == "create")))
        assert placeholder.id in created_events and ann.id in created_events
    assert "（无客户）" in t("imports.orphan.placeholder_name", "zh-CN", name="商机")

    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])

    # a revert takes the placeholder with the deal
    assert revert_import(db, admin, placed.run_id).deleted == 3  # two deals and the placeholder
    with db.session(admin) as session:
        assert session.get(Customer, placeholder.id) is None
        assert session.get(Customer, ann.id) is not None


def test_a_lead_made_from_a_row_without_a_customer_meets_the_blocking_duplicate_rules(db: Database) -> None:
    """A lead is a new customer: the tenant's blocking rules refuse it as the customer form and a customers file
    would (a customer holding its name or email, or an earlier row's lead), naming the key and the owner; the
    dry run says so before anything is written. Placeholders, one per row by choice, are not leads."""
    world = build_world(db)
    admin, manager = world.admin, world.manager
    stage = stages(db, admin)
    run_csv(db, admin, "customers", f"Customer name,Owner,Email\nAcme Renewal,{manager.username},"
                                    "known@example.com\n")
    save_duplicate_rules(db, admin, {"name": "block", "email": "block"})
    open_stage = stage["open"].name
    deals = ("Deal name,Customer,Stage\n"
             f"ACME Renewal Co.,,{open_stage}\n"  # the company key of Acme Renewal: blocked
             f"Fresh start,,{open_stage}\n"
             f"Fresh Start,,{open_stage}\n")  # the same lead as the row before: blocked
    file = open_import_file("deals.csv", deals.encode())
    mapping = ImportMapping.suggested("opportunities", file.headers)
    report = validate_import(db, admin, file, "opportunities", mapping, ImportOptions(orphans="lead"))
    assert {failure.message_key: failure.rows for failure in report.failures} == {
        "imports.rule.lead_duplicate_blocked": [2, 4]}
    assert report.reasons(2, "en") == t("imports.rule.lead_duplicate_blocked_row", "en", field=t("field.name", "en"),
                                        owner="Mia Manager")
    assert report.reasons(4, "zh-CN") == t("imports.rule.duplicate_blocked_in_file", "zh-CN", row=3,
                                           field=t("field.name", "zh-CN"))
    assert (report.orphans_lead, report.would_create) == (1, 1)
    # placeholders are one per row by choice: the same rows go in
    assert validate_import(db, admin, file, "opportunities", mapping, ImportOptions(orphans="placeholder")).success

    contacts = "Customer,Contact name,Email\n,Ann Lead,known@example.com\n,Bo Lead,bo@lead.example.com\n"
    leads = run_csv(db, admin, "contacts", contacts, orphans="lead", policy="skip-invalid")
    assert (leads.created, leads.rejected, leads.as_dict()["orphans_lead"]) == (1, 1, 1)
    assert leads.report is not None and "known" not in leads.report.reasons(2, "en")  # the key, not the value
    assert t("field.email", "en") in leads.report.reasons(2, "en")
    with db.session(admin) as session:
        assert sorted(session.scalars(select(Customer.name))) == ["Acme Renewal", "Bo Lead"]
    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])


def test_unknown_owners_become_inactive_users_for_an_admin_only_and_a_revert_removes_the_unused_ones(
    db: Database,
) -> None:
    world = build_world(db)
    admin, manager = world.admin, world.manager
    run_csv(db, admin, "customers", f"Customer name,Owner\nOwned Co,{admin.username}\n")
    body = ("Deal name,Customer,Owner\nOld one,Owned Co,Old Rep\nOld two,Owned Co,old rep\nOld three,Owned Co,王五\n"
            f"Mine,Owned Co,{manager.username}\n")
    file = open_import_file("deals.csv", body.encode())
    mapping = ImportMapping.suggested("opportunities", file.headers)
    for actor, options, key in ((manager, ImportOptions(create_owners=True), "imports.error.create_owners_admin"),
                                (admin, ImportOptions(create_owners=True, fallback_owner=admin.username),
                                 "imports.error.owner_choices")):
        with pytest.raises(ImportNotAllowed) as refused:
            validate_import(db, actor, file, "opportunities", mapping, options)
        assert refused.value.message_key == key

    first = run_csv(db, admin, "opportunities", body, create_owners=True)
    assert (first.created, first.as_dict()["owners_created"], first.as_dict()["owners_inactive"]) == (4, 2, 3)
    with db.session(admin) as session:
        made = {user.full_name: user for user in session.scalars(select(User).where(User.is_active.is_(False)))}
        assert set(made) == {"Old Rep", "王五"}
        assert made["Old Rep"].username == "imported.old-rep" and made["王五"].username.startswith("imported.")
        assert not verify_password("", made["Old Rep"].password_hash)
        owners = {deal.name: deal.owner_id for deal in session.scalars(select(Opportunity))}
        assert owners == {"Old one": made["Old Rep"].id, "Old two": made["Old Rep"].id,
                          "Old three": made["王五"].id, "Mine": manager.user_id}
        assert session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "user", AuditEvent.entity_id == made["Old Rep"].id)).one().changes[
            "_import_run"] == [None, first.run_id]
    # a later file naming the same person finds the user the first made
    second = run_csv(db, admin, "opportunities", "Deal name,Customer,Owner\nOld four,Owned Co,OLD REP\n",
                     create_owners=True)
    assert (second.as_dict()["owners_created"], second.as_dict()["owners_inactive"]) == (0, 1)
    # reverting the first run deletes 王五 (unused now) but keeps Old Rep, who owns the second run's deal
    assert revert_import(db, admin, first.run_id).deleted == 5
    with db.session(admin) as session:
        assert set(session.scalars(select(User.full_name).where(User.is_active.is_(False)))) == {"Old Rep"}


def test_reverting_activities_moves_last_contact_back_and_deal_stage_moves_are_history_both_ways(
    db: Database,
) -> None:
    world = build_world(db)
    admin = world.admin
    stage = stages(db, admin)
    run_csv(db, admin, "customers", f"Customer name,Owner\nTalky Co,{admin.username}\n")
    run_csv(db, admin, "activities", "Customer,Type,Date,Summary\nTalky Co,call,2024-01-01 10:00,First\n")
    later = run_csv(db, admin, "activities", "Customer,Type,Date,Summary\nTalky Co,call,2024-03-01 09:00,Second\n")

    def last_contact() -> dt.datetime | None:
        with db.session(admin) as session:
            return session.scalars(select(Customer.last_contacted_at).where(Customer.name == "Talky Co")).one()

    assert last_contact() == dt.datetime(2024, 3, 1, 9)
    revert_import(db, admin, later.run_id)
    assert last_contact() == dt.datetime(2024, 1, 1, 10)

    run_csv(db, admin, "opportunities", f"Deal name,Customer,Stage\nMover,Talky Co,{stage['open'].name}\n")
    moved = run_csv(db, admin, "opportunities", f"Deal name,Stage,Lost reason\nMover,{stage['lost'].name},Price\n",
                    mode="update")
    assert moved.updated == 1

    def history() -> list[tuple[int | None, int]]:
        with db.session(admin) as session:
            return [tuple(row) for row in session.execute(  # type: ignore[misc]
                select(OpportunityStageChange.from_stage_id, OpportunityStageChange.to_stage_id)
                .order_by(OpportunityStageChange.id))]

    assert history() == [(None, stage["open"].id), (stage["open"].id, stage["lost"].id)]
    revert_import(db, admin, moved.run_id)
    assert history()[-1] == (stage["lost"].id, stage["open"].id)
    with db.session(admin) as session:
        deal = session.scalars(select(Opportunity).where(Opportunity.name == "Mover")).one()
        assert (deal.stage_id, deal.closed_at, deal.lost_reason) == (stage["open"].id, None, None)
    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])


def test_the_command_line_offers_both_choices_and_reports_where_the_rows_went_in_chinese(
    capsys: pytest.CaptureFixture[str], sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(sqlite_db)
    activities = tmp_path / "activities.csv"
    activities.write_text("Customer,Type,Date,Summary,Author\n,call,2024-02-02,Cold call,Lin Left\n", encoding="utf-8")
    url = ["--database-url", str(sqlite_db.engine.url)]
    monkeypatch.setenv("CRM_LANG", "zh-CN")
    code = main([*url, "import", "activities", str(activities), "--as", world.manager.username, "--create-owners"])
    said = capsys.readouterr()
    assert code == 2 and t("imports.error.create_owners_admin", "zh-CN") in said.err
    code = main([*url, "import", "activities", str(activities), "--as", world.admin.username, "--orphans", "lead",
                 "--create-owners"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert t("imports.cli.orphans", "zh-CN", rejected=0, placeholder=0, lead=1) in out
    assert t("imports.cli.owners_created", "zh-CN", created=1, rows=1) in out
    with sqlite_db.session(world.admin) as session:
        lead = session.scalars(select(Customer).where(Customer.name == "Cold call")).one()
        assert (lead.tags, lead.lifecycle_stage, lead.last_contacted_at) == (
            "imported-lead", "prospect", dt.datetime(2024, 2, 2))
        author = session.scalars(select(User).where(User.full_name == "Lin Left")).one()
        assert lead.owner_id == author.id and not author.is_active
