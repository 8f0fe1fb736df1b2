"""A file that updates deals the tenant has moves them only as the board may (issue 18, decision 0053).

The deal service's transition table holds for an import's update as for a move by hand: a won or lost deal goes
back to an open stage first; won ↔ lost is refused, row by row, in words naming the two stages, by the dry run
and the run alike. What stays closed keeps its close day (another day would move the deal to another period of
the reports); a blank stage cell leaves the deal in its stage; what the deal form may change on a closed deal (its
amount, its reason …) the file may change too. A deal the file itself closed in an earlier row is judged from
there.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, ValidationReport, run_import, validate_import
from crm_core.models import Opportunity
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.quality.runs import database_suites, run_suite_for_tenant
from tests.factories import build_world
from tests.integration.test_import_external_ids import import_csv
from tests.integration.test_import_history import stages


def update_deals(db: Database, actor: Actor, body: str, match_on: str = "external_id",
                 **options: object) -> tuple[ImportResult, ValidationReport]:
    """Dry run, then run, of an update of deals matched on ``match_on``: (the run, the dry run's report)."""
    file = open_import_file("deals.csv", body.encode("utf-8"))
    mapping = ImportMapping.suggested("opportunities", file.headers)
    mapping.match_on = [match_on]
    chosen = ImportOptions(**{"mode": "update", "policy": "skip-invalid", **options})  # type: ignore[arg-type]
    report = validate_import(db, actor, file, "opportunities", mapping, chosen)
    return run_import(db, actor, file, "opportunities", mapping, chosen), report


def deal_rows(db: Database, actor: Actor) -> dict[str | None, tuple[object, ...]]:
    with db.session(actor) as session:
        return {deal.external_id: (deal.stage_id, deal.closed_at, deal.lost_reason, deal.amount, deal.won_reason)
                for deal in session.scalars(select(Opportunity))}


def test_an_import_moves_a_closed_deal_only_as_the_board_may_and_keeps_its_close_day(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    stage = stages(db, admin)
    won, lost, open_ = stage["won"].name, stage["lost"].name, stage["open"].name
    import_csv(db, admin, "customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{admin.username}\n")
    import_csv(db, admin, "opportunities",
               "Opportunity ID,Account ID,Deal name,Stage,Amount,Created date,Closed date,Lost reason\n"
               f"OPP-W,ACC-1,Won deal,{won},100,2017-03-01,2017-09-15,\n"
               f"OPP-L,ACC-1,Lost deal,{lost},100,2017-03-01,2017-10-01,Price\n"
               f"OPP-O,ACC-1,Open deal,{open_},100,2024-01-01,,\n"
               f"OPP-R,ACC-1,Reopened deal,{won},100,2017-03-01,2017-09-15,\n")
    before = deal_rows(db, admin)

    # won → lost and lost → won: refused row by row, naming the stages; the rows the table allows go in
    result, report = update_deals(db, admin,
                                  "Opportunity ID,Stage,Lost reason\n"
                                  f"OPP-W,{lost},Too late\n"
                                  f"OPP-L,{won},\n"
                                  f"OPP-R,{open_},\n")
    assert {failure.message_key: failure.rows for failure in report.failures} == {
        "imports.rule.stage_transition_refused": [2, 3]}
    assert report.reasons(2, "en") == (f"A closed deal cannot move to the other closed stage ({won} → {lost}): "
                                       "reopen it in an open stage first, as on the board.")
    assert f"（{lost} → {won}）" in report.reasons(3, "zh-CN")
    assert result.report is not None and result.report.rejected == report.rejected
    assert (result.status, result.updated, result.rejected) == ("partial", 1, 2)
    after = deal_rows(db, admin)
    assert (after["OPP-W"], after["OPP-L"]) == (before["OPP-W"], before["OPP-L"])
    # reopening is allowed, as on the board: no close date, no reason, the move in the history
    assert after["OPP-R"][:3] == (stage["open"].id, None, None)
    with db.session(admin) as session:
        reopened = session.scalars(select(Opportunity).where(Opportunity.external_id == "OPP-R")).one()
        moves = session.execute(select(OpportunityStageChange.from_stage_id, OpportunityStageChange.to_stage_id)
                                .where(OpportunityStageChange.opportunity_id == reopened.id)
                                .order_by(OpportunityStageChange.id)).all()
        assert [tuple(move) for move in moves][-1] == (stage["won"].id, stage["open"].id)

    # a blank stage cell leaves the deal where it is, with its close date (and a blank opening date its opening);
    # what its form changes, the file may
    result, report = update_deals(db, admin,
                                  "Opportunity ID,Stage,Amount,Created date,Closed date,Lost reason\n"
                                  "OPP-W,,250,,,\n"
                                  f"OPP-L,{lost},,,2017-10-01,Budget cut\n")
    assert report.failures == [] and (result.status, result.updated) == ("imported", 2)
    after = deal_rows(db, admin)
    assert after["OPP-W"] == (stage["won"].id, dt.datetime(2017, 9, 15, 12), None, Decimal("250.00"), None)
    assert after["OPP-L"][:3] == (stage["lost"].id, dt.datetime(2017, 10, 1, 12), "Budget cut")
    with db.session(admin) as session:
        assert set(session.scalars(select(Opportunity.created_at).where(
            Opportunity.external_id.in_(["OPP-W", "OPP-L"])))) == {dt.datetime(2017, 3, 1)}

    # the same close day is no change; another day is refused (another period of the reports)
    result, report = update_deals(db, admin,
                                  "Opportunity ID,Stage,Closed date\n"
                                  f"OPP-W,{won},2017-09-15\n"
                                  f"OPP-L,{lost},2018-01-05\n")
    assert {failure.message_key: failure.rows for failure in report.failures} == {
        "imports.rule.closed_date_fixed": [3]}
    assert "(2017-10-01 → 2018-01-05)" in report.reasons(3, "en")
    assert (result.updated, result.skipped, result.rejected) == (0, 1, 1)
    assert deal_rows(db, admin)["OPP-L"][1] == dt.datetime(2017, 10, 1, 12)

    # a deal the file closes in one row is judged from there by the next: won, then lost, is refused
    result, report = update_deals(db, admin,
                                  "Deal name,Stage,Closed date,Lost reason\n"
                                  f"Open deal,{won},2024-06-01,\n"
                                  f"Open deal,{lost},2024-06-02,Changed our mind\n", match_on="name")
    assert {failure.message_key: failure.rows for failure in report.failures} == {
        "imports.rule.stage_transition_refused": [3]}
    assert result.report is not None and result.report.rejected == report.rejected
    assert deal_rows(db, admin)["OPP-O"][:2] == (stage["won"].id, dt.datetime(2024, 6, 1, 12))

    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        assert run.success, (suite, [(check.check, check.examples) for check in run.failures])
