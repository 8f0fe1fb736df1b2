"""SLA calendar math and clocks: parametrize tables (weekends, holidays, 调休, outside hours, pauses, DST)."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.rules.sla import (
    BusinessCalendar,
    CalendarHasNoHours,
    StatusSpan,
    add_business_time,
    business_time_between,
    run_clock,
)

WEEK = {str(day): [["09:00", "12:00"], ["13:00", "18:00"]] for day in range(1, 6)}  # 8 h with a lunch break
SHANGHAI = BusinessCalendar.from_settings(
    "cn", "Asia/Shanghai", WEEK,
    holidays=frozenset({dt.date(2026, 10, day) for day in range(1, 8)}),  # National Day 2026
    workdays=frozenset({dt.date(2026, 9, 20), dt.date(2026, 10, 10)}),  # 调休 Sunday 20 Sep, Saturday 10 Oct
)
BERLIN = BusinessCalendar.from_settings("de", "Europe/Berlin", {str(d): [["09:00", "17:00"]] for d in range(1, 6)})


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Shanghai is UTC+8: 09:00 local = 01:00 UTC, 12:00 = 04:00, 13:00 = 05:00, 18:00 = 10:00.
@pytest.mark.parametrize(("start", "minutes", "due"), [
    ("2026-12-07 01:00", 60, "2026-12-07 02:00"),  # Monday 09:00 + 1 h
    ("2026-12-07 03:30", 60, "2026-12-07 05:30"),  # the lunch break does not count
    ("2026-12-07 09:30", 60, "2026-12-08 01:30"),  # 17:30 + 1 h → next morning 09:30
    ("2026-12-06 02:00", 30, "2026-12-07 01:30"),  # opened on a Sunday → Monday 09:30
    ("2026-12-07 12:00", 30, "2026-12-08 01:30"),  # opened at 20:00, outside hours
    ("2026-12-04 09:00", 120, "2026-12-07 02:00"),  # Friday 17:00 + 2 h → Monday 10:00 over the weekend
    ("2026-09-30 09:00", 120, "2026-10-08 02:00"),  # 17:00 on 30 Sep + 2 h → after the National Day week
    ("2026-10-09 09:00", 120, "2026-10-10 02:00"),  # Friday 17:00 + 2 h → the 调休 Saturday 10 Oct
    ("2026-09-18 09:00", 120, "2026-09-20 02:00"),  # Friday → the 调休 Sunday 20 Sep
    ("2026-12-07 01:00", 8 * 60 * 5, "2026-12-11 10:00"),  # a full working week ends Friday 18:00
])
def test_add_business_time_in_shanghai(start: str, minutes: int, due: str) -> None:
    assert add_business_time(utc(start), dt.timedelta(minutes=minutes), SHANGHAI) == utc(due)


@pytest.mark.parametrize(("a", "b", "minutes"), [
    ("2026-12-07 01:00", "2026-12-07 10:00", 480),  # one working day minus lunch
    ("2026-12-05 00:00", "2026-12-07 00:00", 0),  # a weekend
    ("2026-10-01 00:00", "2026-10-08 00:00", 0),  # the holiday week
    ("2026-10-10 00:00", "2026-10-11 00:00", 480),  # a 调休 Saturday works
    ("2026-12-07 10:00", "2026-12-07 01:00", 0),  # b before a
    ("2026-12-04 09:30", "2026-12-07 01:30", 60),  # Friday 17:30 → Monday 09:30: two half hours
])
def test_business_time_between_in_shanghai(a: str, b: str, minutes: int) -> None:
    assert business_time_between(utc(a), utc(b), SHANGHAI) == dt.timedelta(minutes=minutes)


@pytest.mark.parametrize(("start", "minutes", "due"), [
    # 2026-03-29: Berlin goes from UTC+1 to UTC+2. Friday 27 Mar 16:00 local = 15:00 UTC.
    ("2026-03-27 15:00", 120, "2026-03-30 08:00"),  # + 2 h → Monday 10:00 CEST = 08:00 UTC
    ("2026-03-30 07:00", 60, "2026-03-30 08:00"),  # Monday 09:00 CEST is 07:00 UTC (it was 08:00 a week before)
    ("2026-03-23 08:00", 60, "2026-03-23 09:00"),  # Monday 09:00 CET, before the change
    # 2026-10-25: back to UTC+1. Friday 23 Oct 16:00 CEST = 14:00 UTC; + 2 h → Monday 10:00 CET = 09:00 UTC.
    ("2026-10-23 14:00", 120, "2026-10-26 09:00"),
])
def test_add_business_time_across_daylight_saving_in_berlin(start: str, minutes: int, due: str) -> None:
    assert add_business_time(utc(start), dt.timedelta(minutes=minutes), BERLIN) == utc(due)


def test_a_calendar_without_hours_gives_no_due_time() -> None:
    never = BusinessCalendar.from_settings("never", "UTC", {})
    with pytest.raises(CalendarHasNoHours):
        add_business_time(utc("2026-12-07 00:00"), dt.timedelta(minutes=1), never)


PAUSED = frozenset({"pending", "on_hold"})


def clock(spans: list[tuple[str, str]], *, target: int, now: str, met: str | None = None):  # type: ignore[no-untyped-def]
    history = [StatusSpan(utc(at), status) for at, status in spans]
    return run_clock("resolution", spans=history, started_at=history[0].start, met_at=utc(met) if met else None,
                     target_minutes=target, warn_percent=75, paused_statuses=PAUSED, calendar=SHANGHAI,
                     now=utc(now))


@pytest.mark.parametrize(("spans", "target", "now", "due", "warn", "paused_minutes"), [
    # no pause: Monday 09:00 + 4 h (lunch in between) → 14:00 local; warning at 3 h → 12:00 local
    ([("2026-12-07 01:00", "open")], 240, "2026-12-07 02:00", "2026-12-07 06:00", "2026-12-07 04:00", 0),
    # pending 10:00 → next day 10:00 (spans the night): 8 working hours held back → due one day later
    ([("2026-12-07 01:00", "open"), ("2026-12-07 02:00", "pending"), ("2026-12-08 02:00", "open")],
     240, "2026-12-08 03:00", "2026-12-08 06:00", "2026-12-08 04:00", 480),
    # 6 h run, then on hold from 16:00 before National Day to 09:00 after it: the holiday week holds back
    # only 2 working hours; the 4 h left run from 8 Oct 09:00 (lunch in between), the warning at 7.5 h
    ([("2026-09-30 01:00", "open"), ("2026-09-30 08:00", "on_hold"), ("2026-10-08 01:00", "open")],
     600, "2026-10-08 01:30", "2026-10-08 06:00", "2026-10-08 02:30", 120),
])
def test_pauses_hold_the_clock(spans, target, now, due, warn, paused_minutes) -> None:  # type: ignore[no-untyped-def]
    result = clock(spans, target=target, now=now)
    assert (result.due_at, result.warn_at) == (utc(due), utc(warn))
    assert sum(pause.business_minutes for pause in result.pauses) == paused_minutes


def test_a_paused_clock_has_no_due_time_until_it_runs_again() -> None:
    result = clock([("2026-12-07 01:00", "open"), ("2026-12-07 02:00", "pending")], target=240,
                   now="2026-12-09 00:00")
    assert result.paused and result.due_at is None and result.elapsed_minutes == 60
    assert result.pauses[-1].end is None


def test_a_clock_paused_after_its_due_time_keeps_the_breach() -> None:
    result = clock([("2026-12-07 01:00", "open"), ("2026-12-07 03:00", "pending")], target=60,
                   now="2026-12-08 00:00")
    assert result.due_at == utc("2026-12-07 02:00")


def test_a_met_clock_says_whether_it_breached() -> None:
    on_time = clock([("2026-12-07 01:00", "open")], target=60, now="2026-12-08 00:00", met="2026-12-07 01:30")
    late = clock([("2026-12-07 01:00", "open")], target=60, now="2026-12-08 00:00", met="2026-12-07 02:30")
    assert (on_time.breached, on_time.due_at) == (False, None)
    assert (late.breached, late.due_at) == (True, utc("2026-12-07 02:00"))


@pytest.mark.parametrize(("target", "due"), [
    (480, "2026-12-07 10:00"),  # normal: 8 h → Monday 18:00
    (120, "2026-12-07 03:00"),  # raised to urgent mid-case: 2 h from the same start, not from the change
])
def test_a_priority_change_recomputes_from_the_cases_start(target: int, due: str) -> None:
    result = clock([("2026-12-07 01:00", "open")], target=target, now="2026-12-07 02:30")
    assert result.due_at == utc(due)
