"""SLA settings (admins): business calendars (zone, working hours with a lunch break, holidays and 调休
working days, China's published days in one step), SLA policies per priority, and team queues."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.jobs.service import submit_job
from crm_core.models import CasePriority
from crm_core.models.automation import AssignmentMethod
from crm_core.queries.sla_settings import calendar_days, list_calendars, list_policies, list_queues
from crm_core.services import sla_settings
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t

STATE = st.session_state

actor = current_actor()
st.title(t("sla.settings.title"))
if message := STATE.pop("sla_settings_flash", None):
    st.success(message)
with read_session() as session:
    calendars = list_calendars(session)
    policies = {policy.priority: policy for policy in list_policies(session)}
    queues = list_queues(session)
names = {row.id: row.name for row in calendars}


def done(message_key: str, *, recompute: bool = False) -> None:
    """Say it is saved; after a change the clocks depend on, recompute the open cases in a job."""
    STATE["sla_settings_flash"] = t(message_key)
    if recompute:
        try:
            STATE["sla_settings_job"] = submit_job(get_db(), actor, "sla_recompute", {})
        except DomainError as error:
            show_domain_error(error)
            return
    st.rerun()


if job_id := STATE.pop("sla_settings_job", None):
    st.info(t("sla.settings.recomputing", id=job_id))
    st.page_link("pages/jobs.py", label=t("jobs.schedules.open_jobs"), icon="⏱️", query_params={"job": str(job_id)})


calendars_tab, policies_tab, queues_tab = st.tabs(
    [t("sla.settings.calendars"), t("sla.settings.policies"), t("sla.settings.queues")])

with calendars_tab:
    if calendars:
        st.dataframe(pd.DataFrame([{
            t("sla.settings.name"): row.name, t("sla.settings.time_zone"): row.time_zone,
            t("sla.settings.hours"): json.dumps(row.hours, ensure_ascii=False),
            t("sla.settings.holidays"): row.holidays, t("sla.settings.workdays"): row.workdays,
        } for row in calendars]), hide_index=True, width="stretch")
    with st.form("sla_settings_calendar"):
        name = st.text_input(t("sla.settings.name"), key="sla_settings_calendar_name", max_chars=120)
        zone = st.text_input(t("sla.settings.time_zone"), value="Asia/Shanghai", key="sla_settings_calendar_zone")
        spans = st.text_input(t("sla.settings.spans"), value="09:00-12:00, 13:00-18:00",
                              key="sla_settings_calendar_spans", help=t("sla.settings.spans_help"))
        weekdays = st.multiselect(t("sla.settings.weekdays"), list(range(1, 8)), default=[1, 2, 3, 4, 5],
                                  format_func=lambda day: t(f"sla.weekday.{day}"), key="sla_settings_calendar_days")
        if st.form_submit_button(t("sla.settings.add_calendar"), type="primary"):
            hours = sla_settings.hours_from_text(spans, weekdays)
            try:
                sla_settings.save_calendar(get_db(), actor, name=name, time_zone=zone.strip(), hours=hours)
            except DomainError as error:
                show_domain_error(error, labels={"name": t("sla.settings.name"),
                                                 "time_zone": t("sla.settings.time_zone"),
                                                 "hours": t("sla.settings.spans")})
            else:
                done("sla.settings.saved")
    if calendars:
        st.subheader(t("sla.settings.days"))
        chosen = st.selectbox(t("sla.settings.calendar"), list(names), format_func=lambda key: names[key],
                              key="sla_settings_days_calendar")
        year = st.number_input(t("sla.settings.year"), 2020, 2100, dt.date.today().year, key="sla_settings_year")
        with read_session() as session:
            days = calendar_days(session, chosen, year=int(year))
        if days:
            st.dataframe(pd.DataFrame([{t("sla.settings.day"): day, t("sla.settings.kind"): t(f"sla.kind.{kind}"),
                                        t("sla.settings.name"): label} for day, kind, label in days]),
                         hide_index=True, width="stretch")
        if st.button(t("sla.settings.china"), key="sla_settings_china"):
            try:
                sla_settings.add_china_holidays(get_db(), actor, chosen)
            except DomainError as error:
                show_domain_error(error)
            else:
                done("sla.settings.saved", recompute=True)
        with st.form("sla_settings_day"):
            day = st.date_input(t("sla.settings.day"), key="sla_settings_day_value")
            kind = st.radio(t("sla.settings.kind"), ["holiday", "workday", ""], horizontal=True,
                            format_func=lambda value: t(f"sla.kind.{value or 'ordinary'}"),
                            key="sla_settings_day_kind")
            label = st.text_input(t("sla.settings.name"), key="sla_settings_day_name", max_chars=120)
            if st.form_submit_button(t("sla.settings.save_day")):
                try:
                    sla_settings.set_calendar_day(get_db(), actor, chosen, day, kind or None, label)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    done("sla.settings.saved", recompute=True)

with policies_tab:
    if not calendars:
        st.info(t("sla.settings.calendar_first"))
    else:
        priority = st.selectbox(t("service.field.priority"), [priority.value for priority in CasePriority],
                                format_func=lambda value: t(f"service.priority.{value}"), key="sla_settings_priority")
        current = policies.get(priority)
        with st.form(f"sla_settings_policy_{priority}"):
            calendar_id = st.selectbox(t("sla.settings.calendar"), list(names), format_func=lambda key: names[key],
                                       index=list(names).index(current.calendar_id)
                                       if current is not None and current.calendar_id in names else 0)
            columns = st.columns(3)
            first = columns[0].number_input(t("service.metric.first_response"), 1, 525_600,
                                            current.first_response_minutes if current else 60)
            following = columns[1].number_input(t("service.metric.next_response"), 1, 525_600,
                                                current.next_response_minutes if current else 240)
            resolution = columns[2].number_input(t("service.metric.resolution"), 1, 525_600,
                                                 current.resolution_minutes if current else 1440)
            warn = st.slider(t("sla.settings.warn_percent"), 1, 99, current.warn_percent if current else 75)
            pause_pending = st.checkbox(t("sla.settings.pause_pending"),
                                        current.pause_on_pending if current else True)
            pause_hold = st.checkbox(t("sla.settings.pause_hold"), current.pause_on_hold if current else True)
            manager_after = st.number_input(t("sla.settings.manager_after"), 1, 525_600,
                                            current.manager_after_minutes if current else 60)
            if st.form_submit_button(t("sla.settings.save_policy"), type="primary"):
                try:
                    sla_settings.save_policy(get_db(), actor, sla_settings.PolicyInput(
                        priority=priority, calendar_id=calendar_id, first_response_minutes=int(first),
                        next_response_minutes=int(following), resolution_minutes=int(resolution),
                        warn_percent=int(warn), pause_on_pending=pause_pending, pause_on_hold=pause_hold,
                        manager_after_minutes=int(manager_after)))
                except DomainError as error:
                    show_domain_error(error)
                else:
                    done("sla.settings.policy_saved", recompute=True)

with queues_tab:
    for team_id, team_name, method, queue_calendar in queues:
        with st.form(f"sla_settings_queue_{team_id}"):
            st.text(team_name)
            chosen_method = st.radio(t("sla.settings.method"), list(AssignmentMethod.ALL), horizontal=True,
                                     index=list(AssignmentMethod.ALL).index(method) if method else 0,
                                     format_func=lambda value: t(f"sla.method.{value}"),
                                     key=f"sla_settings_queue_method_{team_id}")
            options: list[int | None] = [None, *names]
            chosen_calendar = st.selectbox(t("sla.settings.calendar"), options,
                                           index=options.index(queue_calendar) if queue_calendar in options else 0,
                                           format_func=lambda key: names[key] if key
                                           else t("sla.settings.policy_calendar"),
                                           key=f"sla_settings_queue_calendar_{team_id}")
            if st.form_submit_button(t("sla.settings.save_queue")):
                try:
                    sla_settings.save_queue(get_db(), actor, team_id=team_id, method=chosen_method,
                                            calendar_id=chosen_calendar)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    done("sla.settings.saved", recompute=True)

