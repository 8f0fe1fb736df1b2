"""Mainland China's public holidays and make-up working days (调休), as published by the State Council.

2026: 国务院办公厅关于2026年部分节假日安排的通知 (国办发明电〔2025〕7号), checked against the
``chinese-calendar`` package (1.11.0) by ``tests/unit/test_china_holidays.py``. A year is added
here when its notice is out (the notice for 2027 is published late in 2026); until then a
calendar has no holidays for that year and the admin adds them on the SLA settings page.
"""

from __future__ import annotations

import datetime as dt


def _span(year: int, month: int, first: int, last: int) -> list[dt.date]:
    return [dt.date(year, month, day) for day in range(first, last + 1)]


HOLIDAYS: dict[dt.date, str] = {
    **{day: "元旦 New Year's Day" for day in _span(2026, 1, 1, 3)},
    **{day: "春节 Spring Festival" for day in _span(2026, 2, 15, 23)},
    **{day: "清明节 Qingming" for day in _span(2026, 4, 4, 6)},
    **{day: "劳动节 Labour Day" for day in _span(2026, 5, 1, 5)},
    **{day: "端午节 Dragon Boat Festival" for day in _span(2026, 6, 19, 21)},
    **{day: "中秋节 Mid-Autumn Festival" for day in _span(2026, 9, 25, 27)},
    **{day: "国庆节 National Day" for day in _span(2026, 10, 1, 7)},
}
"""Days off (weekends inside a holiday included)."""

WORKDAYS: dict[dt.date, str] = {
    dt.date(2026, 1, 4): "元旦调休 New Year make-up day",
    dt.date(2026, 2, 14): "春节调休 Spring Festival make-up day",
    dt.date(2026, 2, 28): "春节调休 Spring Festival make-up day",
    dt.date(2026, 5, 9): "劳动节调休 Labour Day make-up day",
    dt.date(2026, 9, 20): "国庆节调休 National Day make-up day",
    dt.date(2026, 10, 10): "国庆节调休 National Day make-up day",
}
"""Weekend days that are working days (调休)."""

YEARS = (2026,)
