"""Automation (admins): stage automation rules, assignment rules, what the rules did lately, and the schedules.

Running the rules now and every scheduled run are jobs on the queue (the Jobs page follows them);
the schedules section is ``crm_ui.schedules``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.jobs.service import submit_job
from crm_core.models import LifecycleStage, Priority
from crm_core.models.automation import (
    AssignmentMethod,
    AutomationAction,
    AutomationTrigger,
)
from crm_core.queries.automation import (
    list_assignment_rules,
    list_automation_rules,
    recent_firings,
)
from crm_core.queries.segments import campaign_choices
from crm_core.queries.users import list_teams
from crm_core.rules.assignment import FIELDS, OPERATORS, VALUELESS_OPERATORS
from crm_core.services.automation import (
    AssignmentRuleInput,
    AutomationRuleInput,
    ensure_default_automation_rules,
    save_assignment_rule,
    save_automation_rule,
)
from crm_core.services.customers import custom_field_definitions
from crm_ui.context import (
    current_actor,
    get_db,
    lang,
    read_session,
    show_domain_error,
    t,
)
from crm_ui.formatting import number, when, when_column
from crm_ui.layout import flow, table_or_cards
from crm_ui.schedules import schedules_section
from crm_ui.text import plain, plain_join, plain_line

STATE = st.session_state
NEW = 0
CONDITION_ROWS = 4
STAGES = [stage.value for stage in LifecycleStage]

actor = current_actor()
if not actor.is_admin:
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("automation.title"))
st.caption(t("automation.intro"))
if message := STATE.pop("automation_admin_flash", None):  # a toast: the form saved is further down the page
    st.toast(message, icon="✅")
if not STATE.get("automation_admin_seeded"):
    ensure_default_automation_rules(get_db(), actor)
    STATE["automation_admin_seeded"] = True

with read_session() as session:
    automation_rules = list_automation_rules(session)
    assignment_rules = list_assignment_rules(session)
    firings = recent_firings(session, limit=50)
    teams = list_teams(session)
    campaigns = campaign_choices(session, tenant_id=actor.tenant_id)
    definitions = custom_field_definitions(session)
custom_labels = {
    f"custom.{definition.name}": definition.label_zh if lang() == "zh-CN" else definition.label_en
    for definition in definitions
}
team_names = {team_id: name for team_id, name, _region, _manager in teams}
campaign_names = dict(campaigns)


def describe_trigger(trigger: str, threshold: int | None) -> str:
    return t(f"automation.trigger_text.{trigger}", threshold=threshold if threshold is not None else "")


def field_label(field_name: str) -> str:
    if field_name.startswith("custom."):
        return custom_labels.get(field_name, field_name.removeprefix("custom."))
    return t(f"automation.field.{field_name}") if field_name else "—"


def describe_condition(condition: dict[str, Any]) -> str:
    operator = t(f"automation.op.{condition.get('op')}")
    text = f"{field_label(str(condition.get('field')))} {operator}"
    return f"{text} {condition.get('value') or ''}".strip()


def describe_action(rule: Any) -> str:
    if rule.action == AutomationAction.CREATE_TASK:
        return t("automation.action_text.create_task", title=rule.task_title, days=rule.due_in_days,
                 who=t(f"automation.assign_to.{rule.assign_to}"))
    if rule.action == AutomationAction.ADD_TAG:
        return t("automation.action_text.add_tag", tag=rule.tag)
    return t("automation.action_text.enroll_campaign", campaign=rule.campaign_name or "?")


def finish(message: str, *reset_prefixes: str) -> None:
    for key in list(STATE.keys()):
        if any(str(key).startswith(prefix) for prefix in reset_prefixes):
            del STATE[key]
    STATE["automation_admin_flash"] = message
    st.rerun()


stage_tab, assignment_tab, history_tab, schedules_tab = st.tabs(
    [t("automation.tab.stage"), t("automation.tab.assignment"), t("automation.tab.history"),
     t("jobs.schedules.title")]
)

# --- stage automation -------------------------------------------------------------------
with stage_tab:
    # a card per rule, wrapped: "When … Then …" reads as a sentence, and a long action never makes a
    # table scroll sideways (issue 11: the "Then" column did at 1400 px)
    for box, listed in zip(flow("automation_rules", len(automation_rules), item_rem=26), automation_rules,
                         strict=True):
        with box:
            state = t("automation.column.active") if listed.is_active else t("automation.inactive")
            st.markdown(f"**{plain_line(listed.name)}**")
            st.caption(plain_join([t(f"stage.{listed.stage}"), state,
                                   t("layout.fact", label=t("automation.column.fired"), value=number(listed.fired)),
                                   t("layout.fact", label=t("automation.column.last_fired"),
                                     value=when(listed.last_fired_at))]))
            st.markdown(plain(t("layout.fact", label=t("automation.column.when"),
                                value=describe_trigger(listed.trigger, listed.threshold))))
            st.markdown(plain(t("layout.fact", label=t("automation.column.then"), value=describe_action(listed))))
    run_column, _ = st.columns([1, 3])
    if run_column.button(t("automation.run_now"), key="automation_admin_run"):
        try:  # a job: the rules run in a worker, the Jobs page shows what they did
            job_id = submit_job(get_db(), actor, "automation_run", {})
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE["automation_admin_run_job"] = job_id
            st.rerun()
    if run_job := STATE.pop("automation_admin_run_job", None):
        st.success(plain(t("jobs.schedules.started", kind=t("jobs.kind.automation_run"), id=run_job)))
        st.page_link("pages/jobs.py", label=t("jobs.schedules.open_jobs"), icon="⏱️",
                     query_params={"job": str(run_job)})

    st.subheader(t("automation.edit_rule"))
    by_id = {rule.id: rule for rule in automation_rules}
    chosen = st.selectbox(
        t("automation.rule"), [NEW, *by_id], key="automation_admin_rule_choice",
        format_func=lambda rule_id: t("automation.new_rule") if rule_id == NEW else by_id[rule_id].name,
    )
    rule = by_id.get(chosen)
    prefix = f"automation_admin_rule_{chosen}_"
    name = st.text_input(t("automation.column.name") + " *", value=rule.name if rule else "", key=prefix + "name",
                         max_chars=120)
    columns = st.columns(3)
    stage = columns[0].selectbox(
        t("field.lifecycle_stage"), STAGES, index=STAGES.index(rule.stage) if rule else 1,
        format_func=lambda value: t(f"stage.{value}"), key=prefix + "stage",
    )
    triggers = list(AutomationTrigger.ALL)
    trigger = columns[1].selectbox(
        t("automation.trigger"), triggers, index=triggers.index(rule.trigger) if rule else 1,
        format_func=lambda value: t(f"automation.trigger.{value}"), key=prefix + "trigger",
    )
    threshold: int | None = None
    if trigger != AutomationTrigger.ENTERED_STAGE:
        percent = trigger == AutomationTrigger.CHURN_RISK
        threshold = int(columns[2].number_input(
            t("automation.threshold_percent") if percent else t("automation.threshold_days"),
            min_value=0, max_value=3650, step=1,
            value=int(rule.threshold) if rule and rule.threshold is not None else (70 if percent else 7),
            key=prefix + "threshold",
        ))
    actions = list(AutomationAction.ALL)
    action = st.selectbox(
        t("automation.action"), actions, index=actions.index(rule.action) if rule else 0,
        format_func=lambda value: t(f"automation.action.{value}"), key=prefix + "action",
    )
    form: dict[str, Any] = {}
    if action == AutomationAction.CREATE_TASK:
        form["task_title"] = st.text_input(
            t("automation.task_title") + " *", value=rule.task_title if rule else "", key=prefix + "task_title",
            help=t("automation.task_title_help"), max_chars=200,
        )
        task_columns = st.columns(3)
        form["due_in_days"] = int(task_columns[0].number_input(
            t("automation.due_in_days"), min_value=0, max_value=365, step=1,
            value=rule.due_in_days if rule else 1, key=prefix + "due",
        ))
        priorities = [priority.value for priority in Priority]
        form["priority"] = task_columns[1].selectbox(
            t("tasks.column.priority"), priorities, index=priorities.index(rule.priority) if rule else 1,
            format_func=lambda value: t(f"tasks.priority.{value}"), key=prefix + "priority",
        )
        form["assign_to"] = task_columns[2].selectbox(
            t("automation.assign_to"), ["owner", "team"], index=["owner", "team"].index(rule.assign_to) if rule else 0,
            format_func=lambda value: t(f"automation.assign_to.{value}"), key=prefix + "assign_to",
        )
    elif action == AutomationAction.ADD_TAG:
        form["tag"] = st.text_input(t("automation.tag") + " *", value=rule.tag if rule else "", key=prefix + "tag",
                                    max_chars=60)
    elif campaigns:
        campaign_ids = [campaign_id for campaign_id, _ in campaigns]
        form["campaign_id"] = st.selectbox(
            t("automation.campaign"), campaign_ids,
            index=campaign_ids.index(rule.campaign_id) if rule and rule.campaign_id in campaign_ids else 0,
            format_func=lambda campaign_id: campaign_names.get(campaign_id, "?"), key=prefix + "campaign",
        )
    else:
        st.info(t("automation.no_campaigns"))
    active = st.checkbox(t("automation.column.active"), value=rule.is_active if rule else True, key=prefix + "active")
    if st.button(t("automation.save"), type="primary", key=prefix + "save"):
        try:
            save_automation_rule(
                get_db(), actor,
                AutomationRuleInput(name=name, stage=str(stage), trigger=str(trigger), action=str(action),
                                    threshold=threshold, is_active=active, **form),
                rule_id=rule.id if rule else None, expected_version=rule.version if rule else None,
            )
        except DomainError as error:
            show_domain_error(error, labels={
                "name": t("automation.column.name"), "stage": t("field.lifecycle_stage"),
                "trigger": t("automation.trigger"), "threshold": t("automation.threshold_days"),
                "action": t("automation.action"), "task_title": t("automation.task_title"),
                "due_in_days": t("automation.due_in_days"), "tag": t("automation.tag"),
                "campaign_id": t("automation.campaign"), "priority": t("tasks.column.priority"),
                "assign_to": t("automation.assign_to"),
            })
        else:
            finish(t("automation.saved", name=plain(name.strip())), prefix, "automation_admin_rule_choice")

# --- assignment rules ---------------------------------------------------------------------
with assignment_tab:
    st.caption(t("automation.assignment_intro"))
    if assignment_rules:
        table_or_cards(
            pd.DataFrame(
                [
                    {
                        t("automation.column.position"): rule.position,
                        t("automation.column.name"): rule.name,
                        t("automation.column.when"): " · ".join(
                            describe_condition(condition) for condition in rule.conditions
                        ) or t("automation.every_customer"),
                        t("automation.team"): rule.team_name or t("automation.all_reps"),
                        t("automation.method"): t(f"automation.method.{rule.method}"),
                        t("automation.column.active"): rule.is_active,
                    }
                    for rule in assignment_rules
                ]
            ),
            name="automation_assignment", title=t("automation.column.name"),
        )
    else:
        st.info(t("automation.no_assignment_rules"))
    assignment_by_id = {rule.id: rule for rule in assignment_rules}
    chosen_assignment = st.selectbox(
        t("automation.rule"), [NEW, *assignment_by_id], key="automation_admin_assignment_choice",
        format_func=lambda rule_id: t("automation.new_rule") if rule_id == NEW else assignment_by_id[rule_id].name,
    )
    assignment = assignment_by_id.get(chosen_assignment)
    a_prefix = f"automation_admin_assignment_{chosen_assignment}_"
    a_name = st.text_input(t("automation.column.name") + " *", value=assignment.name if assignment else "",
                           key=a_prefix + "name", max_chars=120)
    st.markdown(t("automation.conditions"))
    conditions: list[dict[str, Any]] = []
    existing = list(assignment.conditions) if assignment else []
    field_options: list[str] = ["", *FIELDS, *custom_labels]
    operators: list[str] = list(OPERATORS)
    for row in range(CONDITION_ROWS):
        current: dict[str, Any] = existing[row] if row < len(existing) else {}
        current_field, current_op = str(current.get("field") or ""), str(current.get("op") or "")
        cells = st.columns([2, 2, 3])
        field_value = cells[0].selectbox(
            t("automation.condition_field", number=row + 1), field_options,
            index=field_options.index(current_field) if current_field in field_options else 0,
            format_func=field_label, key=f"{a_prefix}field_{row}",
        )
        op_value = cells[1].selectbox(
            t("automation.condition_op"), operators,
            index=operators.index(current_op) if current_op in operators else 0,
            format_func=lambda value: t(f"automation.op.{value}"), key=f"{a_prefix}op_{row}",
        )
        value_text = cells[2].text_input(
            t("automation.condition_value"), value=str(current.get("value") or ""), key=f"{a_prefix}value_{row}",
            disabled=op_value in VALUELESS_OPERATORS, max_chars=200,
        )
        if field_value:
            conditions.append({"field": field_value, "op": op_value, "value": value_text})
    a_columns = st.columns(4)
    team_options = [NEW, *team_names]
    a_team = a_columns[0].selectbox(
        t("automation.team"), team_options,
        index=team_options.index(assignment.team_id) if assignment and assignment.team_id in team_options else 0,
        format_func=lambda team_id: t("automation.all_reps") if team_id == NEW else team_names[team_id],
        key=a_prefix + "team",
    )
    methods = list(AssignmentMethod.ALL)
    a_method = a_columns[1].selectbox(
        t("automation.method"), methods, index=methods.index(assignment.method) if assignment else 0,
        format_func=lambda value: t(f"automation.method.{value}"), key=a_prefix + "method",
    )
    a_position = int(a_columns[2].number_input(
        t("automation.column.position"), min_value=0, max_value=10_000, step=1,
        value=assignment.position if assignment else 10 * (len(assignment_rules) + 1), key=a_prefix + "position",
    ))
    a_due = int(a_columns[3].number_input(
        t("automation.follow_up_due_days"), min_value=0, max_value=60, step=1,
        value=assignment.follow_up_due_days if assignment else 1, key=a_prefix + "due",
    ))
    a_active = st.checkbox(t("automation.column.active"), value=assignment.is_active if assignment else True,
                           key=a_prefix + "active")
    if st.button(t("automation.save"), type="primary", key=a_prefix + "save"):
        try:
            save_assignment_rule(
                get_db(), actor,
                AssignmentRuleInput(name=a_name, conditions=conditions, team_id=None if a_team == NEW else int(a_team),
                                    method=str(a_method), position=a_position, follow_up_due_days=a_due,
                                    is_active=a_active),
                rule_id=assignment.id if assignment else None,
                expected_version=assignment.version if assignment else None,
            )
        except DomainError as error:
            labels = {"name": t("automation.column.name"), "team_id": t("automation.team"),
                      "method": t("automation.method"), "position": t("automation.column.position"),
                      "follow_up_due_days": t("automation.follow_up_due_days")}
            labels.update({f"condition_{n}": t("automation.condition_field", number=n)
                           for n in range(1, CONDITION_ROWS + 1)})
            show_domain_error(error, labels=labels)
        else:
            finish(t("automation.saved", name=plain(a_name.strip())), a_prefix, "automation_admin_assignment_choice")

# --- history -----------------------------------------------------------------------------
with history_tab:
    if firings:
        frame = pd.DataFrame(
            [
                {
                    t("automation.column.fired_at"): row.fired_at,
                    t("automation.rule"): row.rule_name,
                    t("tasks.column.customer"): row.customer_name,
                    t("automation.action"): t(f"automation.action.{row.outcome}"),
                }
                for row in firings
            ]
        )
        table_or_cards(
            frame,
            column_config={t("automation.column.fired_at"): when_column()},
            name="automation_firings", title=t("automation.rule"),
        )
    else:
        st.info(t("automation.no_firings"))

# --- schedules ---------------------------------------------------------------------------
with schedules_tab:
    schedules_section(actor)
