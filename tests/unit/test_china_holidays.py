"""The shipped mainland-China holidays and 调休 working days agree with the chinese-calendar package."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest

from crm_core.rules import china_holidays

DAYS = [dt.date(year, 1, 1) + dt.timedelta(days=offset) for year in china_holidays.YEARS for offset in range(365)]


@pytest.mark.parametrize("year", china_holidays.YEARS)
def test_every_day_of_a_shipped_year_is_classified_as_the_package_says(year: int) -> None:
    for day in (d for d in DAYS if d.year == year):
        package_workday = chinese_calendar.is_workday(day)
        ours_workday = day in china_holidays.WORKDAYS or (day.weekday() < 5 and day not in china_holidays.HOLIDAYS)
        assert ours_workday == package_workday, day


def test_the_make_up_days_are_weekend_days_the_package_calls_workdays() -> None:
    assert len(china_holidays.WORKDAYS) == 6
    for day in china_holidays.WORKDAYS:
        assert day.weekday() >= 5 and chinese_calendar.is_workday(day), day
