"""Incidents: an unexpected error logged once, under a short correlation id the user can quote.

The page (``crm_ui.context.show_unexpected_error``), the host's ``on_script_error`` and the
API's 500 handler all go through :func:`log_incident`, so an operator finds the traceback of
what a user reports by grepping the ``kestrel`` log for the id on their screen.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections import deque
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from crm_core.metrics import DATABASE_OUTAGES, INCIDENTS

LOG = logging.getLogger("kestrel")
# OperationalErrors that are bugs of ours (SQLite reports a schema mistake that way), not an outage
_NOT_AN_OUTAGE = re.compile(r"no such (table|column)|syntax error|has no column", re.IGNORECASE)


def new_incident_id() -> str:
    """Eight hex characters: short enough to read out, random enough not to collide in a day's log."""
    return secrets.token_hex(4)


def _surface(where: str) -> str:
    """page, api, cli or other: the metric's label (never the URL, which may carry ids)."""
    for prefix, surface in (("the page", "page"), ("API", "api"), ("python -m", "cli")):
        if where.startswith(prefix):
            return surface
    return "other"


@dataclass(frozen=True)
class Incident:
    """What the System page lists of an incident: never its message or trace (they are in the log)."""

    id: str
    surface: str  # page, api, cli, other
    error: str  # the exception's class name
    at: dt.datetime  # naive UTC
    tenant_id: int | None
    outage: bool


RECENT: deque[Incident] = deque(maxlen=50)  # this process's latest, for the System page


def recent_incidents(tenant_id: int, limit: int = 10) -> list[Incident]:
    """The newest incidents of this process that happened in ``tenant_id``'s work (page runs bind it)."""
    return [incident for incident in reversed(RECENT) if incident.tenant_id == tenant_id][:limit]


def log_incident(error: BaseException, *, where: str) -> str:
    """Log ``error`` with its traceback through the ``kestrel`` logger; returns the incident id."""
    incident_id = new_incident_id()
    tenant_id = structlog.contextvars.get_contextvars().get("tenant_id")
    RECENT.append(Incident(incident_id, _surface(where), type(error).__name__,
                           dt.datetime.now(dt.UTC).replace(tzinfo=None),
                           tenant_id if isinstance(tenant_id, int) else None, is_database_outage(error)))
    INCIDENTS.labels(where=_surface(where)).inc()
    if is_database_outage(error):
        DATABASE_OUTAGES.labels(where=_surface(where)).inc()
    LOG.error("incident %s: unexpected %s in %s", incident_id, type(error).__name__, where, exc_info=error)
    return incident_id


def is_database_outage(error: BaseException) -> bool:
    """Did the database fail to do its part: gone away, restarted, busy past the timeout, disk full?

    The user is told so (nothing was saved; try again shortly) instead of "unexpected error":
    PostgreSQL terminating the backend, MariaDB "gone away" or a lock wait timeout, SQLite
    "database is locked" past the busy timeout or "database or disk is full". The unit of work
    rolled back with it, and the pool replaces a dead connection on the next checkout.
    """
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError) and not _NOT_AN_OUTAGE.search(str(error.orig))
