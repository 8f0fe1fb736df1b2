"""How a range of instants is read from the sales rollup (decision 0064): the rollup's days up to its count (its
own day up to the count's instant), as week rows inside and day rows at the edges; the rest live — from the count
on, the part of a last day the rollup does not hold, and edges older than the kept days."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import sqlite

from crm_core.queries.sales_rollup import Plan, RollupRun, plan

COUNTED = dt.datetime(2026, 3, 11, 9, 40)  # a Wednesday
RUN = RollupRun(refreshed_at=COUNTED, days_from=dt.date(2025, 12, 1))  # kept from a Monday


def at(day: str, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour))


def spans(reading: Plan) -> list[str]:
    """Each span's conditions, with the values in (``week IS 1 AND day >= '2026-01-05' …``)."""
    rendered = []
    for span in reading.spans:
        parts = [str(condition.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
                 for condition in span]
        rendered.append(" AND ".join(part.replace("deal_rollup.", "") for part in parts))
    return rendered


def test_all_history_is_the_day_less_rows_and_what_came_after_the_count_is_live() -> None:
    reading = plan(None, None, RUN, all_days=True)
    assert spans(reading) == ["week IS 0 AND day IS NULL"]
    assert reading.live == [(COUNTED, None)]


def test_ninety_days_are_weeks_inside_and_days_at_the_edges_the_counts_own_day_included() -> None:
    reading = plan(at("2025-12-11"), None, RUN, all_days=True)  # a Thursday
    assert spans(reading) == [
        "week IS 1 AND day >= '2025-12-15' AND day < '2026-03-09'",
        "week IS 0 AND day IS NOT NULL AND day >= '2025-12-11' AND day < '2025-12-15'",
        "week IS 0 AND day IS NOT NULL AND day >= '2026-03-09' AND day < '2026-03-12'",
    ]
    assert reading.live == [(COUNTED, None)]


def test_a_period_to_now_reads_the_count_then_the_minutes_since() -> None:
    reading = plan(at("2026-03-01"), at("2026-03-11", 12), RUN)
    assert spans(reading)[-1] == "week IS 0 AND day IS NOT NULL AND day >= '2026-03-09' AND day < '2026-03-12'"
    assert reading.live == [(COUNTED, at("2026-03-11", 12))]


def test_an_edge_before_the_kept_days_is_read_live_and_one_across_them_in_two_parts() -> None:
    older = plan(at("2025-06-05"), at("2026-02-19"), RUN)  # Thursday to Thursday, both edges inside weeks
    assert spans(older) == [
        "week IS 1 AND day >= '2025-06-09' AND day < '2026-02-16'",
        "week IS 0 AND day IS NOT NULL AND day >= '2026-02-16' AND day < '2026-02-19'",
    ]
    assert older.live == [(at("2025-06-05"), at("2025-06-09"))]
    across = plan(at("2025-11-27"), None, RUN)  # the Thursday before the kept days begin (Monday 1 December)
    assert across.live == [(COUNTED, None), (at("2025-11-27"), at("2025-12-01"))]


def test_a_range_ending_before_the_count_midday_reads_that_days_start_live() -> None:
    reading = plan(at("2026-02-01"), at("2026-02-03", 10), RUN)  # Sunday 1 to Tuesday 3, 10:00
    assert spans(reading) == ["week IS 0 AND day IS NOT NULL AND day >= '2026-02-01' AND day < '2026-02-03'"]
    assert reading.live == [(at("2026-02-03"), at("2026-02-03", 10))]


def test_a_range_after_the_count_or_not_from_a_midnight_is_all_live() -> None:
    assert plan(at("2026-03-12"), at("2026-03-13"), RUN) == Plan([], [(at("2026-03-12"), at("2026-03-13"))])
    assert plan(at("2026-03-02", 9), None, RUN) == Plan([], [(at("2026-03-02", 9), None)])
