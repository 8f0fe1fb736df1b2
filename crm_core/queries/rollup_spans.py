"""Reading a period from a rollup's day and week rows (decisions 0051, 0064).

A rollup keeps each slice's count per UTC day and, summed, per week (``week`` true, ``day`` the Monday). A period
is read as up to three index ranges: the day rows of its first partial week, the week rows of its full weeks, the
day rows of its last partial week. A 90-day period reads at most 24 "units" per slice instead of 90.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week: the ``day`` of a rollup's week rows."""
    return day - dt.timedelta(days=day.weekday())


def week_cover(first: dt.date | None, end: dt.date | None) -> tuple[tuple[dt.date | None, dt.date | None] | None,
                                                                 list[tuple[dt.date | None, dt.date | None]]]:
    """The days ``first`` (inclusive) to ``end`` (exclusive) as (the full weeks' Mondays from, to — None when no
    full week is inside — and the edge ranges of days outside them). An open side (None) reaches every week on
    that side."""
    # full weeks from the first Monday on or after the start to the Monday that begins the end's week; an open
    # side has no edge: every week row beyond the other side counts whole
    weeks_from = week_start(first + dt.timedelta(days=6)) if first is not None else None
    weeks_to = week_start(end) if end is not None else None
    if weeks_from is not None and weeks_to is not None and weeks_to <= weeks_from:
        return None, [(first, end)]  # no full week inside: its days
    edges: list[tuple[dt.date | None, dt.date | None]] = []
    if first is not None and weeks_from is not None and weeks_from > first:
        edges.append((first, weeks_from))
    if end is not None and weeks_to is not None and end > weeks_to:
        edges.append((weeks_to, end))
    return (weeks_from, weeks_to), edges


def day_conditions(week: Any, day: Any, start: dt.date | None, stop: dt.date | None) -> list[Any]:
    """The day rows (not week rows, not day-less rows) from ``start`` to ``stop`` (exclusive; None: open)."""
    bounds: list[Any] = [week.is_(False), day.is_not(None)]
    if start is not None:
        bounds.append(day >= start)
    if stop is not None:
        bounds.append(day < stop)
    return bounds


def week_conditions(week: Any, day: Any, weeks_from: dt.date | None, weeks_to: dt.date | None) -> list[Any]:
    """The week rows whose Monday is from ``weeks_from`` to ``weeks_to`` (exclusive; None: open)."""
    bounds: list[Any] = [week.is_(True)]
    if weeks_from is not None:
        bounds.append(day >= weeks_from)
    if weeks_to is not None:
        bounds.append(day < weeks_to)
    return bounds


def day_spans(week: Any, day: Any, first: dt.date | None, end: dt.date | None) -> list[list[Any]]:
    """The days ``first`` (inclusive) to ``end`` (exclusive) as conditions on the ``week`` and ``day`` columns, each
    read with one index range; an open side (None) reaches every row on that side. Day-less rows (``day`` NULL:
    all days) are never included."""
    weeks, edges = week_cover(first, end)
    spans = [week_conditions(week, day, *weeks)] if weeks is not None else []
    return spans + [day_conditions(week, day, start, stop) for start, stop in edges]
