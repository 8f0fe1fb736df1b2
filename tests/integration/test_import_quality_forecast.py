"""A dry run says which data-quality checks the import would make fail, before anything is written (issue 18,
decision 0056).

The dry run takes the run's own route in a transaction that never commits: it writes the valid rows, measures
every check of the database suites with the checks' own SQL, and reports those with more violations than before
— how many more, and the latest records breaking each. Nothing stays. The real import then leaves exactly those
checks failing; a file that breaks nothing forecasts nothing; the command line prints the forecast in words.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.cli import main
from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ValidationReport, run_import, validate_import
from crm_core.models import Customer, ImportRun, User
from crm_core.models.quality import ImportRejectedRow
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from tests.factories import build_world

RISKY = ("Customer name,Owner,Email,Lifecycle stage\n"
         "Alpha Twin,{owner},twin@example.com,prospect\n"
         "Beta Twin,{owner},twin@example.com,prospect\n"  # the same email: two duplicates the check flags
         "Gamma Says Customer,{owner},gamma@example.com,customer\n"  # a customer that never bought
         "Delta Old Rep,Olga Oldrep,delta@example.com,prospect\n"  # an owner who is nobody here: an inactive user
         "Broken,{owner},broken@,prospect\n")  # refused: not written, not measured
OPTIONS = ImportOptions(duplicates="create", create_owners=True, policy="skip-invalid")


def counts(db: Database, actor: Actor) -> tuple[int, int, int, int]:
    with db.system_session("test counts") as session:
        return tuple(int(session.scalar(select(func.count()).select_from(model).where(  # type: ignore[return-value]
            model.tenant_id == actor.tenant_id)) or 0) for model in (Customer, User, ImportRun, ImportRejectedRow))


def dry_run(db: Database, actor: Actor, body: str, options: ImportOptions = OPTIONS) -> ValidationReport:
    file = open_import_file("customers.csv", body.encode())
    return validate_import(db, actor, file, "customers", ImportMapping.suggested("customers", file.headers), options)


def test_a_dry_run_names_the_quality_checks_the_rows_would_break_and_writes_nothing(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    body = RISKY.format(owner=admin.username)
    before = counts(db, admin)
    report = dry_run(db, admin, body)
    assert counts(db, admin) == before  # no customer, user, run or quarantined row stays
    assert sorted(report.rejected) == [6]
    forecast = {entry["check"]: (entry["suite"], entry["count"], entry["examples"]) for entry in report.quality or []}
    assert forecast == {
        "duplicate_emails": ("db_customers", 2, ["Beta Twin · twin@example.com", "Alpha Twin · twin@example.com"]),
        "customers_without_a_sale": ("db_customers", 1, ["Gamma Says Customer · customer"]),
        "customers_owned_by_inactive_users": ("db_customers", 1, ["Delta Old Rep"]),
    }
    assert report.as_dict()["quality"] == report.quality  # what the job, the page and the CLI read

    # the import itself leaves exactly those checks failing
    file = open_import_file("customers.csv", body.encode())
    result = run_import(db, admin, file, "customers", ImportMapping.suggested("customers", file.headers), OPTIONS)
    assert (result.status, result.created) == ("partial", 4)
    failing = {check.check for suite in database_suites()
               for check in run_suite_for_tenant(db, admin, suite, data_docs=False).failures}
    assert failing == set(forecast)

    # a file that breaks nothing forecasts nothing, for a manager too (measured in what the manager sees)
    clean = f"Customer name,Owner,Email\nEpsilon,{world.manager.username},eps@example.com\n"
    assert dry_run(db, world.manager, clean, ImportOptions()).quality == []


def test_the_command_line_check_prints_the_quality_forecast(capsys: pytest.CaptureFixture[str], sqlite_db: Database,
                                                            tmp_path: Path) -> None:
    admin = build_world(sqlite_db).admin
    path = tmp_path / "customers.csv"
    path.write_text(RISKY.format(owner=admin.username), encoding="utf-8")
    url = ["--database-url", str(sqlite_db.engine.url)]
    common = ["import", "customers", str(path), "--as", admin.username, "--check", "--inline", "--duplicates",
              "create", "--create-owners", "--policy", "skip-invalid"]
    main([*url, *common])
    said = capsys.readouterr().out
    assert "data-quality check “Customers sharing an email address” would flag 2 more records" in said
    main([*url, *common, "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert {entry["check"] for entry in payload["quality"]} == {
        "duplicate_emails", "customers_without_a_sale", "customers_owned_by_inactive_users"}
