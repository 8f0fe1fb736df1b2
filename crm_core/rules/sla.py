"""SLA clocks, pure: business calendars, business-time arithmetic and due times from a case's history.

Instants are naive UTC (as stored everywhere); a calendar turns each local date into working
intervals in its own time zone (zoneinfo, so a day across a daylight-saving change is as long as
it really is), then into UTC.  A date is worked when it is a make-up working day (调休: it takes
the hours of the first working weekday) or, not being a holiday, its weekday has hours.

A clock (first response, next response, resolution) runs from its start while the case is in a
running status and stops when met; statuses a policy pauses on stop it for as long as they last.
Its due time is where the running business time reaches the target: computed by walking the case's
history, so a change of priority or policy gives new due times from the same past.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.UTC
Interval = tuple[dt.datetime, dt.datetime]
_SEARCH_DAYS = 3 * 366  # a target longer than this finds no due time (a calendar without hours)


class CalendarHasNoHours(ValueError):
    """The calendar never works: no due time can be computed."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per ISO weekday (1 Monday … 7 Sunday), holidays and make-up working days."""

    name: str
    time_zone: str
    hours: Mapping[int, tuple[tuple[dt.time, dt.time], ...]]
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()

    @classmethod
    def from_settings(cls, name: str, time_zone: str, hours: Mapping[str, Sequence[Sequence[str]]],
                      holidays: frozenset[dt.date] = frozenset(),
                      workdays: frozenset[dt.date] = frozenset()) -> BusinessCalendar:
        """Build from the stored form: ``{"1": [["09:00", "12:00"], ["13:00", "18:00"]], …}``."""
        parsed = {int(day): tuple((dt.time.fromisoformat(start), dt.time.fromisoformat(end))
                                  for start, end in spans) for day, spans in hours.items()}
        return cls(name=name, time_zone=time_zone, hours=parsed, holidays=holidays, workdays=workdays)

    def day_spans(self, day: dt.date) -> tuple[tuple[dt.time, dt.time], ...]:
        """The local working spans of ``day``."""
        if day in self.workdays:
            first = min((weekday for weekday in range(1, 6) if self.hours.get(weekday)), default=None)
            return self.hours.get(first, ()) if first is not None else ()
        if day in self.holidays:
            return ()
        return self.hours.get(day.isoweekday(), ())

    def intervals(self, start: dt.datetime, end: dt.datetime | None = None) -> Iterator[Interval]:
        """Working intervals (naive UTC) overlapping [start, end), clipped, in order; endless when ``end`` is None."""
        zone = ZoneInfo(self.time_zone)
        day = start.replace(tzinfo=UTC).astimezone(zone).date() - dt.timedelta(days=1)
        last_day = day + dt.timedelta(days=_SEARCH_DAYS)
        if end is not None:
            last_day = min(last_day, end.replace(tzinfo=UTC).astimezone(zone).date() + dt.timedelta(days=1))
        while day <= last_day:
            for span_start, span_end in self.day_spans(day):
                begin = _utc(dt.datetime.combine(day, span_start, tzinfo=zone))
                finish = _utc(dt.datetime.combine(day, span_end, tzinfo=zone))
                begin, finish = max(begin, start), finish if end is None else min(finish, end)
                if begin < finish:
                    yield begin, finish
            day += dt.timedelta(days=1)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def add_business_time(start: dt.datetime, duration: dt.timedelta, calendar: BusinessCalendar) -> dt.datetime:
    """The instant when ``duration`` of working time has passed after ``start`` (naive UTC)."""
    if duration <= dt.timedelta(0):
        return start
    left = duration
    for begin, finish in calendar.intervals(start):
        if finish - begin >= left:
            return begin + left
        left -= finish - begin
    raise CalendarHasNoHours(calendar.name)


def business_time_between(a: dt.datetime, b: dt.datetime, calendar: BusinessCalendar) -> dt.timedelta:
    """Working time in [a, b) (zero when b is not after a)."""
    total = dt.timedelta(0)
    if b <= a:
        return total
    for begin, finish in calendar.intervals(a, b):
        total += finish - begin
    return total


# --- clocks over a case's history ----------------------------------------------------


@dataclass(frozen=True)
class StatusSpan:
    """The case was in ``status`` from ``start`` (until the next span's start)."""

    start: dt.datetime
    status: str


@dataclass(frozen=True)
class Pause:
    """A stretch when the clock stood still, and the working time it held back."""

    start: dt.datetime
    end: dt.datetime | None
    status: str
    business_minutes: float


@dataclass(frozen=True)
class Clock:
    """One metric's clock as computed: the due/warning instants and how they came about."""

    metric: str
    target_minutes: int
    started_at: dt.datetime | None
    met_at: dt.datetime | None
    due_at: dt.datetime | None  # None while paused, not started, or met
    warn_at: dt.datetime | None
    elapsed_minutes: float  # working minutes run until ``now`` (or until met)
    pauses: tuple[Pause, ...] = field(default_factory=tuple)
    paused: bool = False

    @property
    def breached(self) -> bool:
        """Met too late (for a running clock the sweep decides against ``due_at``)."""
        return self.met_at is not None and self.elapsed_minutes > self.target_minutes


def _segments(spans: Sequence[StatusSpan], start: dt.datetime, stop: dt.datetime) -> list[tuple[dt.datetime,
                                                                                                   dt.datetime, str]]:
    """[from, to, status] pieces of the history clipped to [start, stop)."""
    pieces = []
    ordered = sorted(spans, key=lambda span: span.start)
    for index, span in enumerate(ordered):
        end = ordered[index + 1].start if index + 1 < len(ordered) else stop
        begin, finish = max(span.start, start), min(end, stop)
        if begin < finish:
            pieces.append((begin, finish, span.status))
    return pieces


def run_clock(
    metric: str, *, spans: Sequence[StatusSpan], started_at: dt.datetime | None, met_at: dt.datetime | None,
    target_minutes: int, warn_percent: int, paused_statuses: frozenset[str], calendar: BusinessCalendar,
    now: dt.datetime,
) -> Clock:
    """The clock of ``metric`` from ``started_at`` until ``met_at`` (or ``now``), over the status ``spans``."""
    if started_at is None:
        return Clock(metric, target_minutes, None, met_at, None, None, 0.0)
    stop = met_at if met_at is not None else now
    target = dt.timedelta(minutes=target_minutes)
    warn = target * warn_percent / 100
    elapsed = dt.timedelta(0)
    pauses: list[Pause] = []
    due_at = warn_at = None
    pieces = _segments(spans, started_at, max(stop, started_at))
    # spans come in history order; equal instants (a database that keeps whole seconds) keep that order
    ordered = sorted(spans, key=lambda span: span.start)
    last_status = next((span.status for span in reversed(ordered) if span.start <= stop), None)
    for begin, finish, status in pieces:
        worked = business_time_between(begin, finish, calendar)
        if status in paused_statuses:
            pauses.append(Pause(begin, finish if (met_at is not None or finish < stop) else None, status,
                                worked.total_seconds() / 60))
            continue
        if warn_at is None and elapsed + worked >= warn:
            warn_at = add_business_time(begin, warn - elapsed, calendar)
        if due_at is None and elapsed + worked >= target:
            due_at = add_business_time(begin, target - elapsed, calendar)
        elapsed += worked
    paused = met_at is None and last_status in paused_statuses
    if met_at is None and not paused:  # running on from the end of the history
        if due_at is None:
            due_at = add_business_time(stop, target - elapsed, calendar)
        if warn_at is None:
            warn_at = add_business_time(stop, warn - elapsed, calendar)
    # paused: only instants already reached stay (a breach the sweep still has to record);
    # met: the due time shows only if it passed before the clock was met
    return Clock(metric, target_minutes, started_at, met_at, due_at, warn_at,
                 elapsed.total_seconds() / 60, tuple(pauses), paused)


def countdown(due_at: dt.datetime | None, now: dt.datetime) -> tuple[str, int] | None:
    """``("due_in" | "overdue", whole minutes)`` for a queue's countdown column; None without a running clock."""
    if due_at is None:
        return None
    minutes = int((due_at - now).total_seconds() // 60)
    return ("due_in", minutes) if minutes >= 0 else ("overdue", -minutes)
