"""``python -m crm_core report funnel|dashboard --json`` prints what the pages compute, per user."""

from __future__ import annotations

import json

import pytest

from crm_core.cli import main
from crm_core.db import Database
from crm_core.queries.reports import ReportFilters, dashboard, funnel
from crm_core.services.deals import OpportunityInput, create_opportunity
from tests.factories import build_world, create_random_customer


def run(capsys: pytest.CaptureFixture[str], db: Database, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["--database-url", str(db.engine.url), "report", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 and "--json" in args else {})


def test_the_funnel_report_equals_the_query_for_the_same_user(sqlite_db: Database,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world(sqlite_db)
    mine = create_random_customer(sqlite_db, world.rep)
    theirs = create_random_customer(sqlite_db, world.rep_other_team)
    create_opportunity(sqlite_db, world.rep, OpportunityInput(customer_id=mine, name="A", amount="100"))
    create_opportunity(sqlite_db, world.rep_other_team, OpportunityInput(customer_id=theirs, name="B", amount="900"))
    code, printed = run(capsys, sqlite_db, "funnel", "--json", "--as", world.rep.username)
    assert code == 0
    with sqlite_db.session(world.rep) as session:
        expected = funnel(session, filters=ReportFilters())
    assert expected is not None
    assert {key: value for key, value in printed.items() if key not in ("status", "as", "role")} == expected.as_dict()
    assert printed["total_amount"] == "100.00"
    code, admin = run(capsys, sqlite_db, "funnel", "--json", "--as", world.admin.username,
                      "--owner", world.rep_other_team.username, "--pipeline", "Default pipeline")
    assert code == 0 and admin["total_amount"] == "900.00"


def test_the_dashboard_report_defaults_to_the_first_admin(sqlite_db: Database,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    world = build_world(sqlite_db)
    customer = create_random_customer(sqlite_db, world.rep)
    create_opportunity(sqlite_db, world.rep, OpportunityInput(customer_id=customer, name="A", amount="250"))
    code, printed = run(capsys, sqlite_db, "dashboard", "--json", "--period", "quarter")
    assert code == 0 and printed["as"] == world.admin.username
    with sqlite_db.session(world.admin) as session:
        expected = dashboard(session, period="quarter")
    assert printed["open_pipeline"] == expected.as_dict()["open_pipeline"] == {"count": 1, "amount": "250.00"}
    assert printed["revenue_by_month"] == expected.as_dict()["revenue_by_month"]


@pytest.mark.parametrize("args", [["funnel", "--since", "24/11/2026"], ["funnel", "--owner", "nobody"],
                                  ["dashboard", "--as", "ghost"]])
def test_bad_report_arguments_exit_with_2_and_a_message(sqlite_db: Database, capsys: pytest.CaptureFixture[str],
                                                        args: list[str]) -> None:
    build_world(sqlite_db)
    assert main(["--database-url", str(sqlite_db.engine.url), "report", *args]) == 2
    assert capsys.readouterr().err.strip()
