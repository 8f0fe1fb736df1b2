"""The tenant's schedules (periodic jobs) on a page: listed for everyone, edited and started by admins.

The Automation page shows them to admins, who change a schedule's crontab fields (UTC) in a
form that keeps what was typed when a field is refused, and start any schedulable kind now;
the Jobs page lists them for other roles, read only. The rules (who may edit, what a valid
crontab is) live in ``crm_core.jobs.schedules``; this module only draws them.
"""

from __future__ import annotations

import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.jobs.context import kinds
from crm_core.jobs.schedules import ScheduleChange, update_schedule
from crm_core.jobs.service import submit_job
from crm_core.models import utcnow
from crm_core.queries.jobs import ScheduleView, list_schedules
from crm_ui.context import choice_key, get_db, read_session, t
from crm_ui.jobs import kind_label, plain, show_job_error, when_text

STARTED = "schedules_started_job"  # (kind, job id) of the last "Run now", shown after the rerun
SAVED = "schedules_saved"


def _field_keys(schedule_id: int) -> dict[str, str]:
    prefix = f"schedules_{schedule_id}_"
    return {name: prefix + name for name in ("minute", "hour", "day_of_week", "enabled")}


def schedules_section(actor: Actor) -> None:
    """List the schedules; for an admin, the edit form and Run now as well."""
    with read_session() as session:
        schedules = list_schedules(session)
    st.caption(plain(t("jobs.schedules.intro", now=f"{utcnow():%H:%M}")))
    if message := st.session_state.pop(SAVED, None):
        st.success(plain(message))
    if started := st.session_state.pop(STARTED, None):
        kind, job_id = started
        st.success(plain(t("jobs.schedules.started", kind=kind_label(kind), id=job_id)))
        st.page_link("pages/jobs.py", label=t("jobs.schedules.open_jobs"), icon="⏱️",
                     query_params={"job": str(job_id)})
    if not schedules:
        st.info(t("jobs.schedules.none"))
    else:
        _schedule_rows(actor, schedules)
    if not actor.is_admin:
        st.caption(t("jobs.schedules.read_only"))
        return
    if schedules:
        _edit_form(actor, schedules)


CRONTAB_CHARACTERS = frozenset("0123456789*/-, ")


def _crontab_text(schedule: ScheduleView) -> str:
    """The three fields as Markdown code (stored fields passed ``check_crontab``: nothing else to escape)."""
    text = f"{schedule.minute} {schedule.hour} {schedule.day_of_week}"
    return f"`{text}`" if set(text) <= CRONTAB_CHARACTERS else plain(text)


def _schedule_rows(actor: Actor, schedules: list[ScheduleView]) -> None:
    """One card per schedule: kind, crontab (UTC), enabled, last run and its job; Run now for admins.

    The card's items sit in a row that wraps, so a phone shows each schedule whole, not a table cut in columns.
    """
    registry = kinds()
    for schedule in schedules:
        with st.container(border=True, key=f"schedules_row_{schedule.id}"), st.container(
            horizontal=True, vertical_alignment="center", gap="medium"
        ):
            st.markdown(f"**{plain(kind_label(schedule.kind))}**")
            st.markdown(plain(t("jobs.schedules.column.when")) + " " + _crontab_text(schedule))
            if schedule.enabled:
                st.badge(t("jobs.schedules.enabled"), icon="✅", color="green")
            else:
                st.badge(t("jobs.schedules.paused"), icon="⏸️", color="gray")
            last_run = when_text(schedule.last_run_at) if schedule.last_run_at else t("jobs.schedules.never")
            st.caption(plain(f"{t('jobs.schedules.column.last_run')}: {last_run}"))
            if schedule.last_job_id:
                st.page_link("pages/jobs.py", label=t("jobs.schedules.last_job", id=schedule.last_job_id),
                             icon="⏱️", query_params={"job": str(schedule.last_job_id)})
            spec = registry.get(schedule.kind)
            if actor.is_admin and spec is not None and actor.role in spec.roles and st.button(
                t("jobs.schedules.run_now"), key=f"schedules_run_now_{schedule.kind}", icon="▶️"
            ):
                try:
                    job_id = submit_job(get_db(), actor, schedule.kind, {})
                except DomainError as error:
                    show_job_error(error)
                else:
                    st.session_state[STARTED] = (schedule.kind, job_id)
                    st.rerun()


def _edit_form(actor: Actor, schedules: list[ScheduleView]) -> None:
    """Change one schedule; a refused field is named in the user's language and the input stays."""
    st.markdown("**" + plain(t("jobs.schedules.edit")) + "**")
    by_id = {schedule.id: schedule for schedule in schedules}
    chosen = st.selectbox(t("jobs.schedules.pick"), list(by_id), format_func=lambda sid: kind_label(by_id[sid].kind),
                          key=choice_key("schedules_pick"))
    schedule = by_id[chosen]
    keys = _field_keys(schedule.id)
    with st.form(f"schedules_form_{schedule.id}", clear_on_submit=False):
        fields = st.columns(3)
        minute = fields[0].text_input(t("jobs.schedules.minute"), value=schedule.minute, key=keys["minute"],
                                      max_chars=60)
        hour = fields[1].text_input(t("jobs.schedules.hour"), value=schedule.hour, key=keys["hour"], max_chars=60)
        day_of_week = fields[2].text_input(t("jobs.schedules.day_of_week"), value=schedule.day_of_week,
                                           key=keys["day_of_week"], max_chars=30)
        enabled = st.toggle(t("jobs.schedules.enabled"), value=schedule.enabled, key=keys["enabled"])
        submitted = st.form_submit_button(t("jobs.schedules.save"), type="primary")
    if not submitted:
        return
    try:
        update_schedule(get_db(), actor, schedule.id, ScheduleChange(minute, hour, day_of_week, enabled),
                        version=schedule.version)
    except DomainError as error:
        show_job_error(error)  # the form keeps what was typed
        return
    for key in keys.values():  # the boxes show the stored values again
        st.session_state.pop(key, None)
    st.session_state[SAVED] = t("jobs.schedules.saved", kind=kind_label(schedule.kind))
    st.rerun()
