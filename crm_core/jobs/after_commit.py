"""Per-tenant job requests that a transaction collects and sends once it has committed.

A change that leaves work for the worker (a webhook event to dispatch, a robot message to
deliver) marks its tenant on the session; when the transaction commits, the request goes to
the queue once per tenant, so the worker never looks for rows that are not there yet. A
rollback forgets the marks. Nothing is requested when jobs run inline (``CRM_JOBS_INLINE``:
tests, ``make run``'s demo load), on an unbound session, or on a test's connection that is
rolled back at its end: the minute's schedule tick sends whatever is due in those cases.
:class:`AfterCommitIds` also carries ids per tenant (the customers whose orders changed).

:func:`call_after_commit` is the plain form for work that must follow the committed rows in this
process whatever the binding (a kept file's bytes checked again): called once after the commit,
never after a rollback, a failure logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

if TYPE_CHECKING:  # crm_core.db → access → the webhook outbox → here
    from crm_core.db import Database


def jobs_inline() -> bool:
    """Do jobs run in the calling process (``CRM_JOBS_INLINE=1``) instead of a worker?"""
    return os.environ.get("CRM_JOBS_INLINE", "").strip().lower() in ("1", "yes", "true")


# Every AfterCommit, called by the two listeners below. One listener each, registered when this module is
# imported: a module that defines an AfterCommit may be imported for the first time *inside* a commit's
# after_commit (a send imports the job kinds, which import the marketing sender); registering a listener
# then would change SQLAlchemy's listener list while it is being walked ("deque mutated during iteration").
_ALL: list[AfterCommit] = []


_CALLS_KEY = "kestrel_after_commit_calls"
LOG = logging.getLogger("kestrel.after_commit")


def call_after_commit(session: Session, call: Callable[[], None]) -> None:
    """Call ``call`` once ``session``'s transaction has committed (never after a rollback), whatever the session is
    bound to and whether jobs run inline: work on files that must follow the committed rows, not a job request."""
    session.info.setdefault(_CALLS_KEY, []).append(call)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for call in session.info.pop(_CALLS_KEY, []):
        try:
            call()
        except Exception:  # the rows are committed: a failed follow-up is logged, never turned into an error
            LOG.exception("a call after the commit failed")
    for hook in list(_ALL):  # a copy: a hook defined while these run waits for the next commit
        hook._after_commit(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CALLS_KEY, None)
    for hook in list(_ALL):
        hook._forget(session)


class AfterCommit:
    """Collects tenant ids under ``key`` on a session and calls ``send(db, tenant_id)`` after its commit."""

    def __init__(self, key: str, send: Callable[[Database, int], None]) -> None:
        self.key = key
        self._send = send
        _ALL.append(self)

    def mark(self, session: Session, tenant_id: int, ids: Iterable[int] = ()) -> None:
        """Send the request for ``tenant_id`` when ``session``'s transaction commits (``ids``: for
        :class:`AfterCommitIds`)."""
        marks: dict[int, set[int]] = session.info.setdefault(self.key, {})
        marks.setdefault(tenant_id, set()).update(ids)

    def _call(self, db: Database, tenant_id: int, _ids: frozenset[int]) -> None:
        self._send(db, tenant_id)

    def _after_commit(self, session: Session) -> None:
        marks: dict[int, set[int]] | None = session.info.pop(self.key, None)
        if not marks or jobs_inline():
            return
        try:
            bind = session.get_bind()
        except Exception:  # an unbound session: nothing to queue on; the tick sends them
            return
        if not isinstance(bind, Engine):
            return  # a test's connection, rolled back at its end: no worker will see these rows
        from crm_core.db import Database

        for tenant_id in sorted(marks):
            self._call(Database(bind), tenant_id, frozenset(marks[tenant_id]))

    def _forget(self, session: Session) -> None:
        session.info.pop(self.key, None)


class AfterCommitIds(AfterCommit):
    """An AfterCommit whose marks also gather ids per tenant (the customers whose orders changed), handed to
    ``send(db, tenant_id, ids)`` after the commit."""

    def __init__(self, key: str, send: Callable[[Database, int, frozenset[int]], None]) -> None:
        super().__init__(key, lambda _db, _tenant_id: None)
        self._send_ids = send

    def _call(self, db: Database, tenant_id: int, ids: frozenset[int]) -> None:
        self._send_ids(db, tenant_id, ids)


class JobAfterCommit(AfterCommit):
    """Queues a job of ``kind`` for each marked tenant once the session commits, unless one already waits
    (:func:`crm_core.jobs.service.request_job`); with ``schedule``, the tenant also gets its schedule of
    that kind first (the retries and whatever the request missed)."""

    def __init__(self, kind: str, *, schedule: tuple[str, str, str] | None = None) -> None:
        super().__init__(f"kestrel_after_commit:{kind}", self._request)
        self.kind = kind
        self.schedule = schedule

    def _request(self, db: Database, tenant_id: int) -> None:
        from crm_core.jobs.service import request_job  # the job kinds import what imports this module

        request_job(db, tenant_id, self.kind, schedule=self.schedule)
