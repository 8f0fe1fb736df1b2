"""Incidents: an unexpected error logged once, under a short correlation id the user can quote.

The page (``crm_ui.context.show_unexpected_error``), the host's ``on_script_error`` and the
API's 500 handler all go through :func:`log_incident`, so an operator finds the traceback of
what a user reports by grepping the ``kestrel`` log for the id on their screen.
"""

from __future__ import annotations

import logging
import secrets

LOG = logging.getLogger("kestrel")


def new_incident_id() -> str:
    """Eight hex characters: short enough to read out, random enough not to collide in a day's log."""
    return secrets.token_hex(4)


def log_incident(error: BaseException, *, where: str) -> str:
    """Log ``error`` with its traceback through the ``kestrel`` logger; returns the incident id."""
    incident_id = new_incident_id()
    LOG.error("incident %s: unexpected %s in %s", incident_id, type(error).__name__, where, exc_info=error)
    return incident_id
