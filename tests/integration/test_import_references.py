"""Moving in from another CRM (issue 18): files that name their customers by the other system's IDs relink.

Customers arrive with their external IDs; a deals file and an activities file then name them by
those IDs ("Account ID", "客户编号"), which the suggested mapping reads as external IDs. A row naming
an unknown ID is refused, saying which ID and that it was looked up as an external ID (en and
zh-CN); a deal whose owner is nobody goes to the fallback owner the importer chose (named by
email), and the run says how many did. A fallback owner the importer may not give records to is
refused up front, on the command line too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from crm_core.cli import main
from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.i18n import t
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import, validate_import
from crm_core.models import Activity, Customer, Opportunity, User
from tests.factories import build_world


def test_deals_and_activities_find_their_customers_by_external_id_and_unknown_owners_go_to_the_fallback(
    db: Database,
) -> None:
    world = build_world(db)
    admin, manager = world.admin, world.manager
    with db.system_session("test") as session:
        session.execute(update(User).where(User.id == manager.user_id).values(email="Mia.Manager@Example.com"))
        session.commit()
    customers = open_import_file("accounts.csv", (
        b"External ID,Customer name,Email\n"
        b"ACC-1,Alpha Trading,alpha@example.com\n"
        b"ACC-3,Gamma Works,gamma@example.com\n"
        b"X-9,ACC-3,\n"  # a customer NAMED like Gamma's ID: by name, email or ID "ACC-3" names two customers
    ))
    assert run_import(db, admin, customers, "customers",
                      ImportMapping.suggested("customers", customers.headers)).created == 3

    deals = open_import_file("deals.csv", (
        "Deal name,Account ID,Amount,Owner\n"
        f"Alpha renewal,ACC-1,100,{admin.username}\n"
        "Gamma pilot,ACC-3,200,Ghost Person\n"  # an owner the other CRM had, nobody here
        "Lost account,ACC-404,300,\n"
    ).encode())
    mapping = ImportMapping.suggested("opportunities", deals.headers)
    assert (mapping.columns["Account ID"], mapping.customer_match) == ("customer", "external_id")
    # by any key, "ACC-3" is ambiguous and "Ghost Person" unknown: both refused, as before
    loose = validate_import(db, admin, deals, "opportunities", ImportMapping(
        columns=mapping.columns, match_on=mapping.match_on, customer_match="any"))
    assert {failure.message_key: failure.rows for failure in loose.failures} == {
        "imports.rule.unresolved_customer": [3, 4], "imports.rule.unresolved_owner": [3]}

    options = ImportOptions(policy="skip-invalid", fallback_owner=" mia.manager@example.COM ")
    result = run_import(db, admin, deals, "opportunities", mapping, options)
    assert (result.status, result.created, result.rejected) == ("partial", 2, 1)
    assert result.as_dict()["owners_fallback"] == 1
    assert result.report is not None
    assert [(failure.message_key, failure.rows, failure.examples) for failure in result.report.failures] == [
        ("imports.rule.unresolved_customer_external_id", [4], ["ACC-404"])]
    assert "external ID “ACC-404”" in result.report.reasons(4, "en")
    assert "外部编号为“ACC-404”" in result.report.reasons(4, "zh-CN")

    activities = open_import_file("activities.csv", (
        "客户编号,类型,日期,摘要,记录人\n"
        "ACC-3,call,2024-03-01 10:00,Pilot call,MIA.MANAGER@example.com\n"  # the author by email
        "ACC-7,call,2024-03-02 10:00,Who?,\n"
    ).encode())
    activity_mapping = ImportMapping.suggested("activities", activities.headers)
    assert activity_mapping.customer_match == "external_id"
    refused = run_import(db, admin, activities, "activities", activity_mapping)  # all or nothing
    assert (refused.status, refused.created) == ("rejected", 0)
    assert refused.report is not None and "ACC-7" in refused.report.reasons(3, "zh-CN")
    assert run_import(db, admin, activities, "activities", activity_mapping,
                      ImportOptions(policy="skip-invalid")).created == 1

    with db.session(admin) as session:
        ids = {customer.external_id: customer.id for customer in session.scalars(select(Customer))}
        placed = {deal.name: (deal.customer_id, deal.owner_id) for deal in session.scalars(select(Opportunity))}
        assert placed == {"Alpha renewal": (ids["ACC-1"], admin.user_id),
                          "Gamma pilot": (ids["ACC-3"], manager.user_id)}
        [activity] = session.scalars(select(Activity)).all()
        assert (activity.customer_id, activity.author_id) == (ids["ACC-3"], manager.user_id)

    # a manager may not hand rows to a rep of another team: refused before anything runs, in words
    with pytest.raises(ImportNotAllowed) as not_theirs:
        validate_import(db, manager, deals, "opportunities", mapping,
                        ImportOptions(fallback_owner=world.rep_other_team.username))
    assert not_theirs.value.message_key == "imports.error.fallback_owner"
    assert "备用负责人" in t(not_theirs.value.message_key, "zh-CN", **not_theirs.value.params)


def test_the_command_line_offers_both_options_and_refuses_a_fallback_owner_out_of_reach_in_words(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build_world(sqlite_db)
    manager = world.manager
    accounts = open_import_file("accounts.csv",
                                f"External ID,Customer name,Owner\nB-1,Beta,{manager.username}\n".encode())
    assert run_import(sqlite_db, world.admin, accounts, "customers",
                      ImportMapping.suggested("customers", accounts.headers)).created == 1
    file = tmp_path / "deals.csv"
    file.write_bytes(b"Deal name,Customer,Owner\nBeta deal,B-1,Nobody\n")
    url = ["--database-url", str(sqlite_db.engine.url)]
    with pytest.raises(SystemExit):
        main([*url, "import", "--help"])
    assert "--fallback-owner" in capsys.readouterr().out
    code = main([*url, "import", "opportunities", str(file), "--as", manager.username,
                 "--fallback-owner", world.rep_other_team.username])
    said = capsys.readouterr()
    assert code == 2 and "Traceback" not in said.err + said.out
    assert t("imports.error.fallback_owner", "en", owner=world.rep_other_team.username) in said.err
    code = main([*url, "import", "opportunities", str(file), "--as", manager.username, "--json",
                 "--fallback-owner", manager.username, "--customer-match", "external_id"])
    payload = json.loads(capsys.readouterr().out)
    assert (code, payload["created"], payload["owners_fallback"]) == (0, 1, 1), payload
    code = main([*url, "import", "opportunities", str(file), "--as", manager.username, "--customer-match", "id"])
    assert code == 2 and "external_id" in capsys.readouterr().err
