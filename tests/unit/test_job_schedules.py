"""Schedules are crontab fields (UTC): which are refused, and when a schedule is due."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.errors import InvalidSchedule
from crm_core.jobs.context import kinds
from crm_core.jobs.schedules import check_crontab, is_due
from crm_core.models.jobs import JobSchedule


@pytest.mark.parametrize(
    ("minute", "hour", "day_of_week"),
    [("0", "*", "*"), ("*/15", "*", "*"), ("10", "1", "*"), ("0", "4", "0"), ("0,30", "8-18", "1-5")],
)
def test_a_crontab_of_numbers_stars_steps_ranges_and_lists_is_accepted(
    minute: str, hour: str, day_of_week: str
) -> None:
    check_crontab(minute, hour, day_of_week)


@pytest.mark.parametrize(
    ("minute", "hour", "day_of_week", "field"),
    [("60", "*", "*", "minute"), ("", "*", "*", "minute"), ("0", "24", "*", "hour"), ("0", "*", "mon", "day_of_week"),
     ("every", "*", "*", "minute"), ("0", "1;2", "*", "hour")],
)
def test_a_malformed_crontab_is_refused_naming_its_field(minute: str, hour: str, day_of_week: str, field: str) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        check_crontab(minute, hour, day_of_week)
    assert refused.value.params["field"] == field


@pytest.mark.parametrize(
    ("minute", "hour", "day_of_week", "at", "due"),
    [
        ("*/15", "*", "*", dt.datetime(2026, 12, 4, 9, 30), True),
        ("*/15", "*", "*", dt.datetime(2026, 12, 4, 9, 31), False),
        ("10", "1", "*", dt.datetime(2026, 12, 4, 1, 10), True),
        ("10", "1", "*", dt.datetime(2026, 12, 4, 2, 10), False),
        ("0", "4", "0", dt.datetime(2026, 12, 6, 4, 0), True),  # a Sunday
        ("0", "4", "0", dt.datetime(2026, 12, 7, 4, 0), False),  # a Monday
    ],
)
def test_a_schedule_is_due_in_the_minutes_its_crontab_names(
    minute: str, hour: str, day_of_week: str, at: dt.datetime, due: bool
) -> None:
    schedule = JobSchedule(kind="lifecycle_refresh", minute=minute, hour=hour, day_of_week=day_of_week)
    assert is_due(schedule, at) is due


def test_every_schedulable_kind_has_a_valid_default_schedule_and_a_name_in_both_languages() -> None:
    from crm_core.i18n import catalog

    schedulable = [kind for kind in kinds().values() if kind.schedulable]
    assert {"lifecycle_refresh", "automation_run"} <= {kind.name for kind in schedulable}
    for kind in schedulable:
        assert kind.default_schedule is not None
        check_crontab(*kind.default_schedule)
    for kind in kinds().values():
        assert kind.title_key in catalog("en") and kind.title_key in catalog("zh-CN")
