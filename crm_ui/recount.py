"""How fresh a rollup's figures are, and the button that recounts them (decisions 0051, 0064).

Jobs recount the campaign results and the sales figures on a schedule; the pages say when they last did, and
admins and managers may queue a recount at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.jobs.service import submit_job
from crm_core.models import Role
from crm_ui.context import get_db, show_domain_error, t
from crm_ui.formatting import when


def recount_button(actor: Actor, job_kind: str, *, place: Any, key: str, label: str, queued: str) -> None:
    """For admins and managers, a button in ``place`` that queues ``job_kind``; says which job it queued."""
    if actor.role in (Role.ADMIN, Role.MANAGER) and place.button(t(label), key=key):
        try:
            job_id = submit_job(get_db(), actor, job_kind, {})
        except DomainError as error:
            show_domain_error(error)
        else:
            st.success(t(queued, job_id=job_id))


def sales_freshness(actor: Actor, counted_at: dt.datetime | None, *, key: str) -> None:
    """The funnel's and the dashboard's freshness as a caption, and "Refresh now" (the ``sales_rollup`` job)."""
    left, right = st.columns([5, 1])
    left.caption(t("sales_rollup.live") if counted_at is None else t("sales_rollup.as_of", when=when(counted_at)))
    recount_button(actor, "sales_rollup", place=right, key=key, label="sales_rollup.refresh",
                   queued="sales_rollup.refresh_queued")
