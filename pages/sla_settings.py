"""SLA settings (admins): business calendars (zone, working hours with a lunch break, holidays and 调休
working days, China's published days in one step), customer tiers tied to orders (and pins), SLA
policies per tier and priority, and team queues."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.jobs.service import submit_job
from crm_core.models import CasePriority
from crm_core.models.automation import AssignmentMethod
from crm_core.queries.customer_tiers import list_pins, list_tiers
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.sla_settings import calendar_days, list_calendars, list_policies, list_queues
from crm_core.rules import china_holidays
from crm_core.services import customer_tiers as tier_service
from crm_core.services import sla_settings
from crm_ui import formatting
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY
from crm_ui.layout import WHOLE_TABLE_ROWS, table_or_cards

STATE = st.session_state

actor = current_actor()
st.title(t("sla.settings.title"))
if message := STATE.pop("sla_settings_flash", None):  # a toast: the form saved is further down the page
    st.toast(message, icon="✅")
with read_session() as session:
    calendars = list_calendars(session)
    policy_rows = list_policies(session)
    tiers = list_tiers(session)
    pins = list_pins(session)
    queues = list_queues(session)
names = {row.id: row.name for row in calendars}
policies = {(row.tier_id, row.priority): row for row in policy_rows}
tier_names = {row.id: row.name(lang()) for row in tiers}


def tier_label(tier_id: int | None) -> str:
    """A tier's name in the reader's language; None: the default policies."""
    return tier_names.get(tier_id, "?") if tier_id is not None else t("tiers.default")


def done(message_key: str, *, recompute: bool = False, job: str = "sla_recompute") -> None:
    """Say it is saved; after a change the clocks (or tiers) depend on, run ``job`` over the tenant."""
    STATE["sla_settings_flash"] = t(message_key)
    if recompute:
        try:
            STATE["sla_settings_job"] = submit_job(get_db(), actor, job, {})
            STATE["sla_settings_job_note"] = "tiers.refreshing" if job == "customer_tier_refresh" \
                else "sla.settings.recomputing"
        except DomainError as error:
            show_domain_error(error)
            return
    st.rerun()


if job_id := STATE.pop("sla_settings_job", None):
    st.info(t(STATE.pop("sla_settings_job_note", "sla.settings.recomputing"), id=job_id))
    st.page_link("pages/jobs.py", label=t("jobs.schedules.open_jobs"), icon="⏱️", query_params={"job": str(job_id)})


calendars_tab, tiers_tab, policies_tab, queues_tab = st.tabs(
    [t("sla.settings.calendars"), t("tiers.title"), t("sla.settings.policies"), t("sla.settings.queues")])

with calendars_tab:
    if calendars:
        table_or_cards(pd.DataFrame([{
            t("sla.settings.name"): row.name, t("sla.settings.time_zone"): row.time_zone,
            t("sla.settings.hours"): json.dumps(row.hours, ensure_ascii=False),
            t("sla.settings.holidays"): row.holidays, t("sla.settings.workdays"): row.workdays,
        } for row in calendars]), name="sla_calendars",  # a card leaves the hours' JSON to the table
            facts=[t("sla.settings.time_zone"), t("sla.settings.holidays"), t("sla.settings.workdays")])
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
            table_or_cards(pd.DataFrame([{t("sla.settings.day"): day, t("sla.settings.kind"): t(f"sla.kind.{kind}"),
                                        t("sla.settings.name"): label} for day, kind, label in days]),
                           name="sla_days", title=t("sla.settings.day"))
        published = ", ".join(str(each) for each in china_holidays.YEARS)
        if int(year) > max(china_holidays.YEARS):
            st.info(t("sla.settings.china_missing", year=int(year), years=published))
        if st.button(t("sla.settings.china", years=published), key="sla_settings_china"):
            try:
                sla_settings.add_china_holidays(get_db(), actor, chosen)
            except DomainError as error:
                show_domain_error(error)
            else:
                done("sla.settings.saved", recompute=True)
        with st.form("sla_settings_day"):
            day = st.date_input(t("sla.settings.day"), key="sla_settings_day_value",
                                format=formatting.date_input_format())
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

with tiers_tab:
    st.caption(t("tiers.help"))
    if tiers:
        table_or_cards(pd.DataFrame([{
            t("tiers.code"): row.code, t("tiers.name_en"): row.name_en, t("tiers.name_zh"): row.name_zh,
            t("tiers.rank"): row.rank, t("tiers.threshold"): formatting.money(row.min_order_total),
            t("tiers.months"): row.months, t("tiers.by_orders"): row.by_orders, t("tiers.pinned"): row.pinned,
        } for row in tiers]), name="sla_tiers")
        if st.button(t("tiers.refresh"), key="sla_settings_tiers_refresh"):
            done("tiers.refresh_started", recompute=True, job="customer_tier_refresh")
    else:
        st.info(t("tiers.none"))
    tier_options: list[int | None] = [None, *(row.id for row in tiers)]
    by_tier = {row.id: row for row in tiers}
    editing_tier = st.selectbox(t("tiers.edit"), tier_options, key="sla_settings_tier_pick",
                                format_func=lambda key: tier_label(key) if key else t("tiers.new"))
    tier_now = by_tier.get(editing_tier) if editing_tier else None
    tier_key = f"sla_settings_tier_{editing_tier or 'new'}"
    with st.form(tier_key):
        columns = st.columns(3)
        code = columns[0].text_input(t("tiers.code"), value=tier_now.code if tier_now else "", max_chars=32,
                                     help=t("tiers.code_help"), key=f"{tier_key}_code")
        name_en = columns[1].text_input(t("tiers.name_en"), value=tier_now.name_en if tier_now else "",
                                        max_chars=120, key=f"{tier_key}_name_en")
        name_zh = columns[2].text_input(t("tiers.name_zh"), value=tier_now.name_zh if tier_now else "",
                                        max_chars=120, key=f"{tier_key}_name_zh")
        columns = st.columns(3)
        rank = columns[0].number_input(t("tiers.rank"), 1, 100, tier_now.rank if tier_now else len(tiers) + 1,
                                       help=t("tiers.rank_help"), key=f"{tier_key}_rank")
        threshold = columns[1].text_input(t("tiers.threshold"), max_chars=20, key=f"{tier_key}_threshold",
                                          value=str(tier_now.min_order_total) if tier_now else "")
        months = columns[2].number_input(t("tiers.months"), 1, 60, tier_now.months if tier_now else 12,
                                         key=f"{tier_key}_months")
        if st.form_submit_button(t("tiers.save"), type="primary"):
            try:
                tier_service.save_tier(get_db(), actor, tier_service.TierInput(
                    code=code, name_en=name_en, name_zh=name_zh, rank=int(rank), min_order_total=threshold,
                    months=int(months)), tier_id=editing_tier, expected_version=tier_now.version if tier_now else None)
            except DomainError as error:
                show_domain_error(error, labels={"code": t("tiers.code"), "name_en": t("tiers.name_en"),
                                                 "name_zh": t("tiers.name_zh"), "rank": t("tiers.rank"),
                                                 "min_order_total": t("tiers.threshold"),
                                                 "months": t("tiers.months")})
            else:
                done("tiers.saved", recompute=True, job="customer_tier_refresh")
    if tiers:
        st.subheader(t("tiers.pins"))
        st.caption(t("tiers.pins_help"))
        if pins:
            st.dataframe(pd.DataFrame([{
                t("tiers.customer"): pin.customer_name, t("tiers.tier"): tier_label(pin.tier_id),
                t("tiers.until"): formatting.date(pin.until) if pin.until else t("tiers.no_end"),
            } for pin in pins]), hide_index=True, width="stretch",
                height="content" if len(pins) <= WHOLE_TABLE_ROWS else "auto", placeholder=EMPTY)
        query = st.text_input(t("tiers.find_customer"), key="sla_settings_pin_search", max_chars=100)
        found = []
        if query.strip():
            with read_session() as session:
                found = [(row.id, row.name) for row in list_customers(
                    session, filters=CustomerFilters(search=query), per_page=20, with_total=False).items]
            if not found:
                st.info(t("customers.empty"))
        if found:
            found_names = dict(found)
            with st.form("sla_settings_pin"):
                customer_id = st.selectbox(t("tiers.customer"), list(found_names),
                                           format_func=found_names.__getitem__, key="sla_settings_pin_customer")
                pin_options: list[int | None] = [*(row.id for row in tiers), None]
                pin_tier = st.selectbox(t("tiers.tier"), pin_options, key="sla_settings_pin_tier",
                                        format_func=lambda key: tier_label(key) if key else t("tiers.unpin"))
                has_end = st.checkbox(t("tiers.has_end"), key="sla_settings_pin_has_end")
                until = st.date_input(t("tiers.until"), format=formatting.date_input_format(),
                                      key="sla_settings_pin_until")
                if st.form_submit_button(t("tiers.save_pin"), type="primary"):
                    try:
                        tier_service.pin_customer_tier(get_db(), actor, customer_id, pin_tier,
                                                       until if has_end else None)
                    except DomainError as error:
                        show_domain_error(error, labels={"until": t("tiers.until"), "tier_id": t("tiers.tier")})
                    else:
                        done("tiers.pin_saved")

with policies_tab:
    if not calendars:
        st.info(t("sla.settings.calendar_first"))
    else:
        if policy_rows:
            table_or_cards(pd.DataFrame([{
                t("tiers.tier"): tier_label(row.tier_id),
                t("service.field.priority"): t(f"service.priority.{row.priority}"),
                t("sla.settings.calendar"): names.get(row.calendar_id, "—"),
                t("service.metric.first_response"): row.first_response_minutes,
                t("service.metric.next_response"): row.next_response_minutes,
                t("service.metric.resolution"): row.resolution_minutes,
                t("sla.settings.warn_percent"): row.warn_percent,
                t("tiers.reassign_column"): t("tiers.yes") if row.reassign_on_breach else t("tiers.no"),
            } for row in policy_rows]), name="sla_policies")
        choice = st.columns(2)
        policy_tier = choice[0].selectbox(t("tiers.tier"), [None, *(row.id for row in tiers)], format_func=tier_label,
                                          key="sla_settings_policy_tier")
        priority = choice[1].selectbox(t("service.field.priority"), [priority.value for priority in CasePriority],
                                       format_func=lambda value: t(f"service.priority.{value}"),
                                       key="sla_settings_priority")
        current = policies.get((policy_tier, priority))
        if current is None and policy_tier is not None:
            st.caption(t("tiers.falls_back"))
        with st.form(f"sla_settings_policy_{policy_tier or 0}_{priority}"):
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
            reassign = st.checkbox(t("tiers.reassign"), current.reassign_on_breach if current else False,
                                   help=t("tiers.reassign_help"),
                                   key=f"sla_settings_reassign_{policy_tier or 0}_{priority}")
            if st.form_submit_button(t("sla.settings.save_policy"), type="primary"):
                try:
                    sla_settings.save_policy(get_db(), actor, sla_settings.PolicyInput(
                        priority=priority, calendar_id=calendar_id, first_response_minutes=int(first),
                        next_response_minutes=int(following), resolution_minutes=int(resolution),
                        warn_percent=int(warn), pause_on_pending=pause_pending, pause_on_hold=pause_hold,
                        manager_after_minutes=int(manager_after), tier_id=policy_tier,
                        reassign_on_breach=reassign))
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

