"""The case status flow, pure.

::

    new ──► open ◄──► pending (on the customer) ◄──► on_hold (internal)
     │       │            │                             │
     └───────┴────────────┴──────────► resolved ◄───────┘
                                          │  └── reopen → open (within REOPEN_WINDOW of resolution)
                                          ▼
                                        closed (final)

Any working status (new, open, pending, on_hold) may go to any other working status except
back to ``new``, and to ``resolved``. A resolved case is closed or reopened; reopening is
allowed only within the window after its resolution. Nothing leaves ``closed``.
"""

from __future__ import annotations

import datetime as dt

from crm_core.models import CaseStatus

REOPEN_WINDOW = dt.timedelta(days=7)
WORKING = frozenset({CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.ON_HOLD})
CLOSED_STATUSES = frozenset({CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value})


def _targets(current: str) -> tuple[str, ...]:
    if current in WORKING:
        return tuple(status.value for status in (CaseStatus.OPEN, CaseStatus.PENDING, CaseStatus.ON_HOLD,
                                                 CaseStatus.RESOLVED) if status != current)
    if current == CaseStatus.RESOLVED:
        return (CaseStatus.OPEN.value, CaseStatus.CLOSED.value)
    return ()


def transition_problem(
    current: str, target: str, *, resolved_at: dt.datetime | None, now: dt.datetime,
    reopen_window: dt.timedelta = REOPEN_WINDOW,
) -> str | None:
    """Why ``current`` → ``target`` is not allowed (a catalog key), or None when it is."""
    if target not in {status.value for status in CaseStatus}:
        return "cases.flow.unknown_status"
    if current == CaseStatus.CLOSED:
        return "cases.flow.closed_is_final"
    if target not in _targets(current):
        return "cases.flow.not_allowed"
    reopening = current == CaseStatus.RESOLVED and target == CaseStatus.OPEN
    if reopening and (resolved_at is None or now - resolved_at > reopen_window):
        return "cases.flow.reopen_window_passed"
    return None


def allowed_transitions(
    current: str, *, resolved_at: dt.datetime | None, now: dt.datetime,
    reopen_window: dt.timedelta = REOPEN_WINDOW,
) -> list[str]:
    """The statuses a case in ``current`` may move to now (the detail page offers these as actions)."""
    return [target for target in _targets(current)
            if transition_problem(current, target, resolved_at=resolved_at, now=now,
                                  reopen_window=reopen_window) is None]
