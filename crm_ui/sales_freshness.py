"""How fresh the funnel's and the dashboard's figures are (decision 0064), and a button that recounts them.

The ``sales_rollup`` job counts what was there before today every 10 minutes; today's work is always live. The
pages say which, and admins and managers may queue a recount at once.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.jobs.service import submit_job
from crm_core.models import Role
from crm_ui.context import get_db, show_domain_error, t
from crm_ui.formatting import when


def freshness(actor: Actor, counted_at: dt.datetime | None, *, key: str) -> None:
    """The figures' freshness as a caption and (admins, managers) "Refresh now", which queues the recount."""
    left, right = st.columns([5, 1])
    if counted_at is None:
        left.caption(t("sales_rollup.live"))
    else:
        left.caption(t("sales_rollup.as_of", when=when(counted_at)))
    if actor.role in (Role.ADMIN, Role.MANAGER) and right.button(t("sales_rollup.refresh"), key=key):
        try:
            job_id = submit_job(get_db(), actor, "sales_rollup", {})
        except DomainError as error:
            show_domain_error(error)
        else:
            st.success(t("sales_rollup.refresh_queued", job_id=job_id))
