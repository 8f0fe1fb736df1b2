"""The customer pool (公海), rendered: the pool page (browse, claim, assign), its rules (admins), and the
360's pool section (claim, release, history). The rules themselves live in ``crm_core.services.pool``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError, StaleRecord
from crm_core.jobs.service import submit_job
from crm_core.models import LifecycleStage, Role
from crm_core.queries.customers import CustomerFilters, CustomerPage, list_customers
from crm_core.queries.pool import (
    PoolRuleRow,
    PoolStanding,
    list_pool_rules,
    open_stage_names,
    pool_history,
    pool_standing,
)
from crm_core.queries.users import assignable_owners, list_teams
from crm_core.services.pool import (
    PoolRuleForm,
    assign_from_pool,
    claim_customers,
    release_to_pool,
    save_pool_rule,
)
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.customers_grid import filter_choices
from crm_ui.formatting import EMPTY, dashed, number, when, when_column
from crm_ui.layout import form_cells
from crm_ui.text import plain, plain_line, plain_params

STATE = st.session_state
PROFILE_PAGE = "pages/customer_profile.py"
PER_PAGE = 50
ALL = "__all__"


def page() -> None:
    actor = current_actor()
    st.title(t("pool.title"))
    st.caption(t("pool.intro"))
    if notice := STATE.pop("pool_notice", None):
        st.success(notice)
    with read_session() as session:
        standing = pool_standing(session, actor)
    standing_bar(actor, standing)
    if actor.is_admin:
        browse, rules = st.tabs([t("pool.tab_pool"), t("pool.tab_rules")])
        with browse:
            pool_list(actor)
        with rules:
            rules_tab(actor)
    else:
        pool_list(actor)


def standing_bar(actor: Actor, standing: PoolStanding) -> None:
    """Where a rep stands against their team's caps today (managers and admins assign beyond them)."""
    terms = standing.terms
    if actor.role != Role.REP:
        st.caption(t("pool.manager_hint"))
        return
    if terms is None:
        st.info(t("pool.no_rule"))
        return
    columns = st.columns(3)
    columns[0].metric(t("pool.claimed_today"), f"{number(standing.claimed_today)} / {number(terms.daily_claim_cap)}")
    held_cap = number(terms.held_cap) if terms.held_cap is not None else "∞"
    columns[1].metric(t("pool.held"), f"{number(standing.held)} / {held_cap}")
    columns[2].metric(t("pool.returns_after"), t("pool.days", days=terms.idle_days))
    st.caption(t("pool.terms_hint", cooldown=terms.cooldown_days, reminder=terms.reminder_days))


def pool_list(actor: Actor) -> None:
    """The pooled customers the user sees, newest in the pool first, a page at a time; claim or assign ticked rows."""
    search = st.text_input(t("pool.search"), key="pool_search", max_chars=200)
    row = st.columns(4 if actor.role != Role.REP else 3)

    def everything(value: Any) -> str:
        return t("filter.all") if value == ALL else str(value)

    stages = [ALL, *[stage.value for stage in LifecycleStage]]
    stage = row[0].selectbox(t("field.lifecycle_stage"), stages, key="pool_stage",
                             format_func=lambda value: t("filter.all") if value == ALL else t(f"stage.{value}"))
    industry = row[1].selectbox(t("field.industry"), [ALL, *filter_choices(actor.tenant_id, actor.user_id, "industry")],
                                key="pool_industry", format_func=everything)
    region = row[2].selectbox(t("field.region"), [ALL, *filter_choices(actor.tenant_id, actor.user_id, "region")],
                              key="pool_region", format_func=everything)
    team: Any = ALL
    if actor.role != Role.REP:  # a rep's pool is their own team's
        with read_session() as session:
            teams = {team_id: name for team_id, name, _, _ in list_teams(session)}
        team = row[3].selectbox(t("grid.team"), [ALL, *teams], key="pool_team",
                                format_func=lambda value: t("filter.all") if value == ALL else teams.get(value, ""))
    filters = CustomerFilters(search=search.strip(), unowned=True,
                              lifecycle_stage=None if stage == ALL else stage,
                              industry=None if industry == ALL else industry, region=None if region == ALL else region,
                              team_id=None if team == ALL else int(team))
    signature = (filters.search, filters.lifecycle_stage, filters.industry, filters.region, filters.team_id)
    if STATE.get("pool_filters") != signature:
        STATE["pool_filters"], STATE["pool_cursors"] = signature, []
    cursors: list[Any] = STATE.setdefault("pool_cursors", [])
    try:
        with read_session() as session:
            found = list_customers(session, filters=filters, per_page=PER_PAGE, sort="updated_at", descending=True,
                                   with_total=True, count_cap=1000, after=cursors[-1] if cursors else None)
    except DomainError as error:
        show_domain_error(error)
        return
    if not found.items:
        st.info(t("pool.empty"))
        return
    total = number(found.total or 0) + ("+" if found.total_capped else "")
    st.caption(t("pool.count", count=total))
    selected = pool_table(found)
    pager(found, cursors)
    if actor.can_write:
        actions(actor, selected)


def pool_table(found: CustomerPage) -> list[int]:
    generation = STATE.get("pool_generation", 0)
    frame = pd.DataFrame([{
        t("field.name"): row.name, t("field.lifecycle_stage"): t(f"stage.{row.lifecycle_stage}"),
        t("field.industry"): row.industry, t("field.region"): row.region, t("grid.team"): row.team_name,
        t("field.last_contacted_at"): row.last_contacted_at, t("field.updated_at"): row.updated_at,
    } for row in found.items])
    event = st.dataframe(
        dashed(frame), hide_index=True, width="stretch", key=f"pool_table_{generation}", on_select="rerun",
        selection_mode="multi-row",
        column_config={t("field.last_contacted_at"): when_column(), t("field.updated_at"): when_column()},
        placeholder=EMPTY,
    )
    selected = [found.items[index].id for index in event.selection.rows if index < len(found.items)]
    if len(selected) == 1:
        st.page_link(PROFILE_PAGE, label=t("pool.open", name=plain_line(
            next(row.name for row in found.items if row.id == selected[0]))),
            query_params={"customer_id": str(selected[0])}, icon="🪪")
    return selected


def pager(found: CustomerPage, cursors: list[Any]) -> None:
    row = st.columns([1, 2, 1])
    if row[0].button(t("pager.previous"), disabled=not cursors, key="pool_previous"):
        STATE["pool_cursors"] = cursors[:-1]
        st.rerun()
    row[1].caption(t("grid.page", page=len(cursors) + 1))
    if row[2].button(t("pager.next"), disabled=not found.has_next or found.next_cursor is None, key="pool_next"):
        STATE["pool_cursors"] = [*cursors, found.next_cursor]
        st.rerun()


def _done(notice: str) -> None:
    STATE["pool_notice"] = notice
    STATE["pool_generation"] = STATE.get("pool_generation", 0) + 1
    STATE["pool_cursors"] = []
    st.rerun()


def actions(actor: Actor, selected: list[int]) -> None:
    """Claim the ticked customers; a manager or admin may instead give them to a rep."""
    st.caption(t("grid.selected", count=len(selected)))
    columns = st.columns([2, 3, 2])
    if columns[0].button(t("pool.claim", count=len(selected)), type="primary", disabled=not selected,
                         key="pool_claim"):
        try:
            claimed = claim_customers(get_db(), actor, selected)
        except DomainError as error:
            show_domain_error(error)
        else:
            _done(t("pool.claimed", count=claimed))
    if actor.role not in (Role.MANAGER, Role.ADMIN):
        return
    with read_session() as session:
        owners = assignable_owners(session, user_ids=None if actor.is_admin
                                   else frozenset(actor.visible_owner_ids | {actor.user_id}))
    names = dict(owners)
    owner_id = columns[1].selectbox(t("pool.assign_to"), list(names), key="pool_assign_owner",
                                    format_func=lambda value: names.get(value, ""), label_visibility="collapsed")
    if columns[2].button(t("pool.assign", count=len(selected)), disabled=not selected or owner_id is None,
                         key="pool_assign"):
        try:
            assigned = assign_from_pool(get_db(), actor, selected, int(owner_id))
        except DomainError as error:
            show_domain_error(error)
        else:
            _done(t("pool.assigned", count=assigned, name=plain(names.get(owner_id, ""))))


# --- the rules (admins) ------------------------------------------------------------------------


RULE_LABELS = ("team_id", "enabled", "idle_days", "no_deal_days", "protected_stage_ids", "reminder_days",
               "daily_claim_cap", "held_cap", "cooldown_days")


def rules_tab(actor: Actor) -> None:
    labels = {name: t(f"pool.rule.{name}") for name in RULE_LABELS}
    with read_session() as session:
        rules = list_pool_rules(session)
        teams = {team_id: name for team_id, name, _, _ in list_teams(session)}
        stages = open_stage_names(session)
    st.caption(t("pool.rules_hint"))
    if rules:
        st.dataframe(pd.DataFrame([{
            labels["team_id"]: rule.team_name or t("pool.rule.default"), labels["enabled"]: rule.enabled,
            labels["idle_days"]: rule.idle_days, labels["no_deal_days"]: rule.no_deal_days,
            labels["reminder_days"]: rule.reminder_days, labels["daily_claim_cap"]: rule.daily_claim_cap,
            labels["held_cap"]: rule.held_cap, labels["cooldown_days"]: rule.cooldown_days,
        } for rule in rules]), hide_index=True, width="stretch", placeholder=EMPTY)
    else:
        st.info(t("pool.rules_empty"))
    by_id = {rule.id: rule for rule in rules}
    editing_id = st.selectbox(t("pool.rule.choose"), [None, *by_id], key="pool_rule_pick",
                              format_func=lambda value: t("pool.rule.new") if value is None
                              else by_id[value].team_name or t("pool.rule.default"))
    rule_form(actor, by_id.get(editing_id) if editing_id is not None else None, teams, stages, labels)
    st.divider()
    if st.button(t("pool.run_now"), key="pool_run_now"):
        try:
            job_id = submit_job(get_db(), actor, "pool_return", {})
        except DomainError as error:
            show_domain_error(error)
        else:
            st.success(t("jobs.schedules.started", kind=t("jobs.kind.pool_return"), id=job_id))


def rule_form(actor: Actor, rule: PoolRuleRow | None, teams: dict[int, str], stages: dict[int, str],
              labels: dict[str, str]) -> None:
    rule_key = rule.id if rule else "new"
    generation = STATE.setdefault("pool_rule_generation", 0)
    # the version the admin started from, kept until they reload
    loaded_version = STATE.setdefault(f"pool_rule_version_{rule_key}_{generation}", rule.version if rule else 0)
    if stale := STATE.get("pool_rule_stale"):
        st.error(t("error.stale_record", **plain_params(stale.params)))
        if st.button(t("profile.reload"), key="pool_rule_reload"):
            STATE.pop("pool_rule_stale", None)
            STATE["pool_rule_generation"] = generation + 1
            st.rerun()
    team_choices: list[int | None] = [None, *teams]
    with st.form(f"pool_rule_form_{rule_key}_{generation}"):
        cells = form_cells(8)  # in reading order on a phone too
        team_id = next(cells).selectbox(
            labels["team_id"], team_choices,
            index=team_choices.index(rule.team_id) if rule and rule.team_id in teams else 0,
            format_func=lambda value: t("pool.rule.default") if value is None else teams[value])
        enabled = next(cells).checkbox(labels["enabled"], value=rule.enabled if rule else True)
        idle_days = next(cells).number_input(labels["idle_days"], min_value=1, max_value=3650, step=1,
                                             value=rule.idle_days if rule else 30)
        no_deal_days = next(cells).number_input(labels["no_deal_days"], min_value=0, max_value=3650, step=1,
                                                value=rule.no_deal_days or 0 if rule else 0,
                                                help=t("pool.rule.zero_is_off"))
        reminder_days = next(cells).number_input(labels["reminder_days"], min_value=0, max_value=365, step=1,
                                                 value=rule.reminder_days if rule else 3,
                                                 help=t("pool.rule.zero_is_off"))
        cooldown_days = next(cells).number_input(labels["cooldown_days"], min_value=0, max_value=3650, step=1,
                                                 value=rule.cooldown_days if rule else 30)
        daily_claim_cap = next(cells).number_input(labels["daily_claim_cap"], min_value=0, max_value=1000, step=1,
                                                   value=rule.daily_claim_cap if rule else 10)
        held_cap = next(cells).number_input(labels["held_cap"], min_value=0, max_value=1_000_000, step=1,
                                            value=rule.held_cap or 0 if rule else 0, help=t("pool.rule.zero_is_none"))
        kept = [stage for stage in (rule.protected_stage_ids if rule else []) if stage in stages]
        protected = st.multiselect(labels["protected_stage_ids"], list(stages), default=kept,
                                   format_func=lambda value: stages.get(value, str(value)),
                                   help=t("pool.rule.protected_hint"))
        submitted = st.form_submit_button(t("pool.rule.save"), type="primary")
    if not submitted:
        return
    form = PoolRuleForm(team_id=team_id, enabled=enabled, idle_days=int(idle_days),
                        no_deal_days=int(no_deal_days) or None, protected_stage_ids=[int(value) for value in protected],
                        reminder_days=int(reminder_days), daily_claim_cap=int(daily_claim_cap),
                        held_cap=int(held_cap) or None, cooldown_days=int(cooldown_days))
    try:
        save_pool_rule(get_db(), actor, form, rule_id=rule.id if rule else None,
                       expected_version=loaded_version if rule else None)
    except StaleRecord as error:
        STATE["pool_rule_stale"] = error
        st.rerun()
    except DomainError as error:
        show_domain_error(error, labels=labels)
    else:
        STATE["pool_rule_generation"] = generation + 1
        STATE.pop("pool_rule_pick", None)
        STATE["pool_notice"] = t("pool.rule.saved", team=plain(teams.get(team_id, "")) if team_id
                                 else t("pool.rule.default"))
        st.rerun()


# --- the 360's pool section ---------------------------------------------------------------------


def profile_section(actor: Actor, customer: Any, prefix: str, loaded_version: int) -> None:
    """On a customer's details: claim it when it is in the pool, else (its owner, a manager) release it."""
    if not actor.can_write:
        return
    if customer.owner_id is None:
        st.caption(t("pool.profile_in_pool"))
        if st.button(t("pool.claim_one"), key=f"{prefix}_pool_claim", type="primary"):
            try:
                claim_customers(get_db(), actor, [customer.id])
            except DomainError as error:
                show_domain_error(error)
            else:
                _profile_done(prefix, t("pool.claimed", count=1))
        return
    if actor.role == Role.REP and customer.owner_id != actor.user_id:
        return
    with st.expander(t("pool.release")):
        st.caption(t("pool.release_hint"))
        with st.form(f"{prefix}_pool_release"):
            note = st.text_input(t("pool.release_note"), max_chars=500)
            if st.form_submit_button(t("pool.release_confirm", name=plain_line(customer.name))):
                try:
                    release_to_pool(get_db(), actor, customer.id, expected_version=loaded_version, note=note)
                except DomainError as error:
                    show_domain_error(error, labels={"note": t("pool.release_note")})
                else:
                    _profile_done(prefix, t("pool.released", name=plain(customer.name)))


def _profile_done(prefix: str, notice: str) -> None:
    """The user's own change moved the customer's version: the 360's forms start again from the new one."""
    STATE[f"{prefix}_notice"] = notice
    STATE[f"{prefix}_edit_generation"] = STATE.get(f"{prefix}_edit_generation", 0) + 1
    st.rerun()


def history_section(customer_id: int) -> None:
    """The customer's pool ledger: returns, releases, claims, assignments and reminders."""
    with read_session() as session:
        rows = pool_history(session, customer_id)
    if not rows:
        return
    st.subheader(t("pool.history"))
    st.dataframe(pd.DataFrame([{
        t("profile.when"): when(row.occurred_at),
        t("profile.what"): t(f"pool.event.{row.kind}") + (f" · {t(f'pool.reason.{row.reason}')}" if row.reason else ""),
        t("pool.history_owner"): row.owner_name or "",
        t("pool.history_previous"): row.previous_owner_name or "",
        t("profile.who"): row.actor_name or t("profile.system"),
        t("pool.release_note"): row.note or "",
    } for row in rows]), hide_index=True, width="stretch", placeholder=EMPTY)
