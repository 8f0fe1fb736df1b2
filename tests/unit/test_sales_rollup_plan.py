"""How a range of instants is read from the sales rollup (decision 0064): whole days before the count's day from
week and day rows, the rest live — the count's day on, and edges older than the kept days."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import sqlite

from crm_core.queries.sales_rollup import Plan, RollupRun, plan

RUN = RollupRun(refreshed_at=dt.datetime(2026, 3, 11, 9, 40), counted_before=dt.datetime(2026, 3, 11),
                days_from=dt.date(2025, 12, 1))  # Wednesday; the kept days from Monday 1 December


def at(day: str, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour))


def spans(reading: Plan) -> list[str]:
    """Each span's conditions, with the values in (``week = 1 AND day >= '2026-01-05' …``)."""
    rendered = []
    for span in reading.spans:
        parts = [str(condition.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
                 for condition in span]
        rendered.append(" AND ".join(part.replace("deal_rollup.", "") for part in parts))
    return rendered


def test_every_day_before_the_count_is_read_from_the_day_less_rows_and_today_live() -> None:
    reading = plan(None, None, RUN, all_days=True)
    assert spans(reading) == ["week IS 0 AND day IS NULL"]
    assert reading.live == [(at("2026-03-11"), None)]


def test_ninety_days_are_weeks_inside_and_days_at_the_edges_then_live_from_the_counts_day() -> None:
    reading = plan(at("2025-12-11"), None, RUN, all_days=True)  # a Thursday
    assert spans(reading) == [
        "week IS 1 AND day >= '2025-12-15' AND day < '2026-03-09'",
        "week IS 0 AND day IS NOT NULL AND day >= '2025-12-11' AND day < '2025-12-15'",
        "week IS 0 AND day IS NOT NULL AND day >= '2026-03-09' AND day < '2026-03-11'",
    ]
    assert reading.live == [(at("2026-03-11"), None)]


def test_an_edge_before_the_kept_days_is_read_live_and_one_across_them_in_two_parts() -> None:
    older = plan(at("2025-06-05"), at("2026-02-19"), RUN)  # Thursday to Thursday, both edges inside weeks
    assert spans(older) == [
        "week IS 1 AND day >= '2025-06-09' AND day < '2026-02-16'",
        "week IS 0 AND day IS NOT NULL AND day >= '2026-02-16' AND day < '2026-02-19'",
    ]
    assert older.live == [(at("2025-06-05"), at("2025-06-09"))]
    across = plan(at("2025-11-27"), None, RUN)  # the Thursday before the kept days begin (Monday 1 December)
    assert across.live[0] == (at("2026-03-11"), None)
    assert (at("2025-11-27"), at("2025-12-01")) in across.live


def test_a_range_after_the_count_or_not_from_a_midnight_is_all_live() -> None:
    assert plan(at("2026-03-11"), at("2026-03-12"), RUN) == Plan([], [(at("2026-03-11"), at("2026-03-12"))])
    assert plan(at("2026-03-02", 9), None, RUN) == Plan([], [(at("2026-03-02", 9), None)])


def test_a_range_ending_midday_reads_that_days_start_live() -> None:
    reading = plan(at("2026-02-01"), at("2026-02-03", 10), RUN)  # Sunday 1 to Tuesday 3, 10:00
    assert spans(reading) == [
        "week IS 0 AND day IS NOT NULL AND day >= '2026-02-01' AND day < '2026-02-03'",
    ]
    assert reading.live == [(at("2026-02-03"), at("2026-02-03", 10))]
