"""The Campaigns page (issue 14, decision 0049). Thin: services write, queries read."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.errors import DomainError
from crm_core.i18n import t as translate
from crm_core.marketing.dry_run import dry_run
from crm_core.models import LifecycleStage, Role
from crm_core.queries.campaigns import (
    list_campaigns,
    list_members,
    step_occupancy,
    step_places,
    steps_of,
    template_choices,
)
from crm_core.queries.segments import list_saved_segments
from crm_core.rules import sequences
from crm_core.services import campaigns as service
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error
from crm_ui.formatting import when
from crm_ui.layout import table_or_cards
from crm_ui.pager import numbered_pager
from crm_ui.text import chart_text

KINDS = ("email", "task", "wait", "branch", "goal")


def render() -> None:
    language = lang()

    def t(key: str, **params: Any) -> str:
        return translate(key, language, **params)

    actor = current_actor()
    can_edit = actor.role in (Role.ADMIN, Role.MANAGER)
    st.title(t("campaigns.title"))
    with read_session() as session:
        rows = list_campaigns(session)
        segments = {row.id: row.name for row in list_saved_segments(session)}
        templates = template_choices(session)
    table_or_cards(pd.DataFrame([{
        t("campaigns.col.name"): row.name, t("campaigns.col.status"): t(f"campaigns.status.{row.status}"),
        t("campaigns.col.active"): row.members.get("active", 0),
        t("campaigns.col.finished"): sum(row.members.get(s, 0) for s in ("completed", "goal", "exited")),
        t("campaigns.col.pending"): row.members.get("pending", 0)} for row in rows]), name="campaigns_list")
    names = {row.id: row.name for row in rows}
    if (chosen := st.session_state.pop("campaigns_chosen", None)) in names:
        st.session_state["campaigns_choice"] = chosen
    choice = st.selectbox(t("campaigns.choose"), [0, *names], key="campaigns_choice",
                          format_func=lambda i: t("campaigns.new") if i == 0 else names[i])
    campaign = next((row for row in rows if row.id == choice), None)
    if can_edit:
        _campaign_form(t, actor, campaign, segments)
    if campaign is None:
        return
    _step_editor(t, actor, campaign.id, campaign.version, templates, can_edit and campaign.status != "stopped")
    _dry_run(t, actor, campaign.id, campaign.version)
    if can_edit:
        _controls(t, actor, campaign)
    _members(t, campaign.id)


def _campaign_form(t: Any, actor: Any, campaign: Any, segments: dict[int, str]) -> None:
    with get_db().session(actor) as session:
        current = session.get(service.Campaign, campaign.id) if campaign else None
        if current is not None:
            session.expunge(current)
    # keyed by the campaign: picking another campaign shows its values, not the last one's typed input
    def key(name: str) -> str:
        return f"campaigns_{name}" if current is None else f"campaigns_{current.id}_{name}"

    with st.form(key("form")):
        name = st.text_input(t("campaigns.field.name"), value=current.name if current else "", key=key("name"))
        target = st.selectbox(t("campaigns.field.target"), service.TARGET_KINDS, key=key("target"),
                              index=service.TARGET_KINDS.index(current.target_kind) if current and current.target_kind
                              in service.TARGET_KINDS else 0, format_func=lambda k: t(f"campaigns.target.{k}"))
        segment_ids = list(segments)
        segment_id = st.selectbox(t("campaigns.field.segment"), [None, *segment_ids], key=key("segment"),
                                  index=(segment_ids.index(current.segment_id) + 1)
                                  if current and current.segment_id in segment_ids else 0,
                                  format_func=lambda i: "—" if i is None else segments[i])
        stages = [stage.value for stage in LifecycleStage]
        # an edit starts from what the campaign has (not from the defaults, which a save would write back)
        stage = st.selectbox(t("campaigns.field.stage"), stages, key=key("stage"),
                             index=stages.index(current.lifecycle_stage)
                             if current and current.lifecycle_stage in stages else 0,
                             format_func=lambda s: t(f"stage.{s}"))
        mode = st.radio(t("campaigns.field.entry_mode"), service.ENTRY_MODES, key=key("mode"), horizontal=True,
                        index=service.ENTRY_MODES.index(current.entry_mode)
                        if current and current.entry_mode in service.ENTRY_MODES else 0,
                        format_func=lambda m: t(f"campaigns.entry.{m}"))
        reentry = st.checkbox(t("campaigns.field.reentry"), value=bool(current and current.allow_reentry),
                              key=key("reentry"))
        goals = ["none", "deal_won", *[f"lifecycle:{s}" for s in stages]]
        saved_goal = (current.goal or {}) if current else {}
        current_goal = ("deal_won" if saved_goal.get("kind") == "deal_won" else
                        f"lifecycle:{saved_goal.get('stage')}" if saved_goal.get("kind") == "lifecycle" else "none")
        goal = st.selectbox(t("campaigns.field.goal"), goals, key=key("goal"),
                            index=goals.index(current_goal) if current_goal in goals else 0,
                            format_func=lambda g: t(f"campaigns.goal.{g.split(':')[0]}",  # in a sentence
                                                    stage=t(f"campaigns.stage.{g.split(':')[-1]}")))
        exit_on = st.multiselect(t("campaigns.field.exit_on"), sequences.EXIT_RULES, key=key("exit"),
                                 default=list(current.exit_on or []) if current else ["replied", "unsubscribed"],
                                 format_func=lambda r: t(f"campaigns.exit.{r}"))
        days = st.number_input(t("campaigns.field.attribution_days"), 1, 365, key=key("days"),
                               value=current.attribution_days if current else 90)
        if st.form_submit_button(t("campaigns.save")):
            form = service.CampaignInput(
                name=name, target_kind=target, segment_id=segment_id, lifecycle_stage=stage, entry_mode=mode,
                allow_reentry=reentry, exit_on=list(exit_on), attribution_days=int(days),
                goal=None if goal == "none" else ({"kind": "deal_won"} if goal == "deal_won"
                                                  else {"kind": "lifecycle", "stage": goal.split(":")[1]}))
            try:
                saved = service.save_campaign(get_db(), actor, form, campaign_id=current.id if current else None,
                                              expected_version=current.version if current else None)
            except DomainError as error:
                show_domain_error(error)
            else:
                st.session_state["campaigns_chosen"] = saved
                st.rerun()


def _step_label(t: Any, number: int, step: Any, templates: dict[int, str]) -> str:
    config = step.config or {}
    detail = ""
    if step.kind == "email":
        detail = templates.get(int(config.get("template_id") or 0), "?")
    elif step.kind == "task":
        detail = str(config.get("title", ""))
    elif step.kind == "wait":
        detail = t("campaigns.wait_detail", days=config.get("days"),
                   unit=t("campaigns.business_days" if config.get("business_days") else "campaigns.days"))
    elif step.kind == "branch":
        detail = t(f"campaigns.event.{config.get('event')}")
    elif step.kind == "goal":
        stage = t(f"campaigns.stage.{config.get('stage', 'customer')}")
        detail = t(f"campaigns.goal.{config.get('kind')}", stage=stage)
    return f"{number}. {t(f'campaigns.kind.{step.kind}')}: {detail}"


def _step_editor(t: Any, actor: Any, campaign_id: int, version: int, templates: dict[int, str],
                 can_edit: bool) -> None:
    st.subheader(t("campaigns.steps"))
    st.caption(t("campaigns.live_edit_rules"))
    with read_session() as session:
        steps = steps_of(session, campaign_id)
        on_step = step_occupancy(session, campaign_id)
    db = get_db()

    def act(run: Any) -> None:
        try:
            run()
        except DomainError as error:
            show_domain_error(error)
        else:
            st.rerun()

    for number, step in enumerate(steps, 1):
        with st.container(border=True):
            st.text(_step_label(t, number, step, templates))
            if on_step.get(step.id):
                st.caption(t("campaigns.members_on_step", count=on_step[step.id]))
            if can_edit:
                with st.container(horizontal=True):
                    if st.button("↑", key=f"campaigns_up_{step.id}"):
                        act(lambda s=step: service.move_step(db, actor, campaign_id, s.id, -1,
                                                             expected_version=version))
                    if st.button("↓", key=f"campaigns_down_{step.id}"):
                        act(lambda s=step: service.move_step(db, actor, campaign_id, s.id, 1,
                                                             expected_version=version))
                    if st.button(t("campaigns.remove"), key=f"campaigns_remove_{step.id}"):
                        act(lambda s=step: service.remove_step(db, actor, campaign_id, s.id,
                                                               expected_version=version))
    if not can_edit:
        return
    kind = st.selectbox(t("campaigns.add_kind"), KINDS, key="campaigns_new_kind",
                        format_func=lambda k: t(f"campaigns.kind.{k}"))
    config: dict[str, Any] = {}
    if kind == "email":
        config["template_id"] = st.selectbox(t("campaigns.field.template"), list(templates), key="campaigns_tpl",
                                             format_func=lambda i: templates[i])
    elif kind == "task":
        config["activity_kind"] = st.selectbox(t("campaigns.field.activity"), sequences.TASK_KINDS,
                                               key="campaigns_activity",
                                               format_func=lambda k: t(f"campaigns.activity.{k}"))
        config["title"] = st.text_input(t("campaigns.field.title"), key="campaigns_task_title")
        config["due_days"] = int(st.number_input(t("campaigns.field.due_days"), 0, 90, 1, key="campaigns_due"))
    elif kind == "wait":
        config["days"] = int(st.number_input(t("campaigns.field.days"), 0, 365, 2, key="campaigns_wait_days"))
        config["business_days"] = st.checkbox(t("campaigns.business_days"), key="campaigns_business")
    elif kind == "branch":
        config["event"] = st.selectbox(t("campaigns.field.event"), sequences.BRANCH_EVENTS, key="campaigns_event",
                                       format_func=lambda e: t(f"campaigns.event.{e}"))
        config["within_days"] = int(st.number_input(t("campaigns.field.within"), 0, 365, 3, key="campaigns_within"))
        targets = [None, *[step.id for step in steps]]
        labels = {step.id: _step_label(t, n, step, templates) for n, step in enumerate(steps, 1)}
        config["then_step"] = st.selectbox(t("campaigns.field.then"), targets, key="campaigns_then",
                                           format_func=lambda i: t("campaigns.next") if i is None else labels[i])
        config["else_step"] = st.selectbox(t("campaigns.field.else"), targets, key="campaigns_else",
                                           format_func=lambda i: t("campaigns.next") if i is None else labels[i])
    else:
        goal = st.selectbox(t("campaigns.field.goal"), ["deal_won", "lifecycle:customer", "lifecycle:intent"],
                            key="campaigns_step_goal",
                            format_func=lambda g: t(f"campaigns.goal.{g.split(':')[0]}",
                                                    stage=t(f"campaigns.stage.{g.split(':')[-1]}")))
        config = {"kind": "deal_won"} if goal == "deal_won" else {"kind": "lifecycle", "stage": goal.split(":")[1]}
    if st.button(t("campaigns.add_step"), key="campaigns_add"):
        act(lambda: service.save_step(db, actor, campaign_id, kind, config, expected_version=version))


def _dry_run(t: Any, actor: Any, campaign_id: int, version: int) -> None:
    st.subheader(t("campaigns.dry_run"))
    if st.button(t("campaigns.dry_run_button"), key="campaigns_dry"):
        try:
            st.session_state["campaigns_dry_result"] = (campaign_id, version, dry_run(get_db(), actor, campaign_id))
        except DomainError as error:
            show_domain_error(error)
            return
    # kept while the campaign is unchanged (ticking "I am sure" below must not wipe what it is about to launch);
    # any edit of the campaign or its steps raises its version, and an older dry run is no longer shown
    kept = st.session_state.get("campaigns_dry_result")
    if kept is None or kept[:2] != (campaign_id, version):
        return
    result = kept[2]
    labels = [chart_text(t("campaigns.funnel.entered")) if stage.key == "entered" else
              chart_text(t("campaigns.funnel.goal")) if stage.key == "goal" else
              chart_text(f"{stage.step}. {t(f'campaigns.kind.{stage.kind}')}") for stage in result.stages]
    # each stage's reach, split into who the step acts on and who its send would skip (and why), stacked; a skipped
    # member still goes on to the next step
    figure = go.Figure([
        go.Funnel(name=chart_text(t(key)), y=labels, x=[part(stage) for stage in result.stages])
        for key, part in (("campaigns.funnel.passes", lambda s: s.count - s.no_address - s.no_basis),
                          ("campaigns.funnel.no_address", lambda s: s.no_address),
                          ("campaigns.funnel.no_basis", lambda s: s.no_basis))])
    figure.update_layout(funnelmode="stack", legend={"orientation": "h"})
    st.plotly_chart(figure, use_container_width=True)
    table_or_cards(pd.DataFrame([{
        t("campaigns.funnel.stage"): label, t("campaigns.funnel.count"): stage.count,
        t("campaigns.funnel.no_address"): stage.no_address, t("campaigns.funnel.no_basis"): stage.no_basis}
        for label, stage in zip(labels, result.stages, strict=True)]), name="campaigns_dry_run")


def _controls(t: Any, actor: Any, campaign: Any) -> None:
    st.subheader(t("campaigns.controls"))
    actions = {"planned": ("launch", "stop"), "running": ("pause", "stop"), "paused": ("resume", "stop")}
    available = actions.get(campaign.status, ())
    if not available:
        st.info(t("campaigns.is_stopped"))
        return
    if done := st.session_state.pop("campaigns_done", None):
        st.success(done)  # kept across the rerun that shows the new state (a toast would vanish with it)
    confirm = st.checkbox(t("campaigns.confirm"), key="campaigns_confirm")
    with st.container(horizontal=True):
        for action in available:
            if st.button(t(f"campaigns.action.{action}"), key=f"campaigns_{action}", disabled=not confirm):
                try:
                    run = getattr(service, action)
                    outcome = run(get_db(), actor, campaign.id, expected_version=campaign.version)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    # the next action asks again: "I am sure" is for this one only
                    st.session_state.pop("campaigns_confirm", None)
                    st.session_state["campaigns_done"] = (
                        t("campaigns.launched", count=outcome.enrolled + outcome.started) if action == "launch"
                        else t(f"campaigns.done.{action}"))
                    st.rerun()


def _members(t: Any, campaign_id: int) -> None:
    st.subheader(t("campaigns.members"))
    page = int(st.session_state.get("campaigns_members_page", 1))
    with read_session() as session:
        result = list_members(session, campaign_id, page=page)
        places = step_places(session, campaign_id)

    def step_text(step_id: int | None) -> str | None:
        """A member's step as the sequence above numbers it ("2. Task for the owner"); a removed one by kind."""
        if step_id is None or step_id not in places:
            return None
        number, kind = places[step_id]
        kind_text = t(f"campaigns.kind.{kind}")
        return f"{number}. {kind_text}" if number is not None else t("campaigns.removed_step", kind=kind_text)

    table_or_cards(pd.DataFrame([{
        t("campaigns.col.customer"): row.customer, t("campaigns.col.state"): t(f"campaigns.member.{row.state}"),
        t("campaigns.col.step"): step_text(row.step_id), t("campaigns.col.next_run"): when(row.next_run_at),
        t("campaigns.col.cycle"): row.cycle,
        t("campaigns.col.exit_reason"): t(f"campaigns.exit_reason.{row.exit_reason}") if row.exit_reason else None}
        for row in result.items], columns=[t(f"campaigns.col.{name}") for name in (
            "customer", "state", "step", "next_run", "cycle", "exit_reason")]), name="campaigns_members")
    numbered_pager("campaigns_members_page", page, result.has_next, str(page))
