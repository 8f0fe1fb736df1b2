"""Users and teams (admins): add users, change roles and teams, deactivate, unlock, add teams."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError, StaleRecord
from crm_core.models import Role, utcnow
from crm_core.queries.users import list_teams, list_users
from crm_core.services.tenants import UserInput, create_team, create_user, unlock_user, update_user
from crm_ui.api_tokens import workspace_tokens
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, when
from crm_ui.jobs import flash, show_flash
from crm_ui.layout import CardPick, form_cells, picked_here, table_or_cards
from crm_ui.team_robots import team_robot_settings
from crm_ui.text import plain, plain_line

STATE = st.session_state
PAGE_KEY = "users"
actor = current_actor()
if not actor.is_admin:
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("users.title"))
show_flash(PAGE_KEY)  # a toast: the forms are far down the page, on a phone a screen or more

with read_session() as session:
    users = list_users(session)
    teams = list_teams(session)
team_names = {team_id: name for team_id, name, _, _ in teams}
roles = [role.value for role in Role]
labels = {
    "username": t("user.username"), "full_name": t("user.full_name"), "email": t("field.email"),
    "role": t("user.role"), "team_id": t("user.team"), "password": t("login.password"), "name": t("field.name"),
}
now = utcnow()

users_tab, teams_tab, tokens_tab = st.tabs([t("users.tab_users"), t("users.tab_teams"), t("tokens.title")])

with users_tab:
    table_or_cards(
        pd.DataFrame(
            [
                {
                    labels["username"]: user.username,
                    labels["full_name"]: user.full_name,
                    labels["role"]: t(f"role.{user.role}"),
                    labels["team_id"]: user.team_name or EMPTY,
                    t("user.status"): t("user.locked") if user.locked_until and user.locked_until > now
                    else (t("user.active") if user.is_active else t("user.inactive")),
                    t("user.last_login"): when(user.last_login_at),  # never logged in: "—", not "None"
                }
                for user in users
            ]
        ),
        name="users_list", title=labels["full_name"],
        pick=CardPick(t("users.edit_this"), "users_edit_choice", [user.id for user in users]),  # a phone's edit
    )

    locked = [user for user in users if user.locked_until and user.locked_until > now]
    if locked:
        st.warning(t("users.locked_count", count=len(locked)))
        for user in locked:
            if st.button(t("users.unlock", username=plain_line(user.username)), key=f"users_unlock_{user.id}"):
                try:
                    unlock_user(get_db(), actor, user.id)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    flash(PAGE_KEY, t("users.unlocked", username=plain(user.username)))
                    st.rerun()

    st.subheader(t("users.new"))
    generation = STATE.setdefault("users_form_generation", 0)
    with st.form(f"users_create_{generation}"):
        cells = form_cells(6)
        username = next(cells).text_input(labels["username"] + " *", help=t("user.username_help"))
        full_name = next(cells).text_input(labels["full_name"] + " *")
        email = next(cells).text_input(labels["email"])
        role = next(cells).selectbox(labels["role"], roles, index=roles.index("rep"),
                                     format_func=lambda r: t(f"role.{r}"))
        team_id = next(cells).selectbox(
            labels["team_id"], [None, *team_names], format_func=lambda v: "—" if v is None else team_names[v]
        )
        password = next(cells).text_input(labels["password"] + " *", type="password", help=t("password.rules"))
        if st.form_submit_button(t("users.create"), type="primary"):
            try:
                create_user(
                    get_db(), actor,
                    UserInput(username=username, full_name=full_name, role=role, email=email,
                              team_id=team_id, password=password),
                )
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE["users_form_generation"] = generation + 1
                flash(PAGE_KEY, t("users.created", username=plain(username.strip().lower())))
                st.rerun()

    picked_here("users_edit_choice")  # a card's "Change this user" brings the form into view
    st.subheader(t("users.edit"))
    by_id = {user.id: user for user in users}
    chosen_id = st.selectbox(
        t("users.choose"), list(by_id), format_func=lambda v: f"{by_id[v].full_name} ({by_id[v].username})",
        key="users_edit_choice",
    )
    if chosen_id is not None:
        # the form edits the user as first shown (kept in the session), so a change saved meanwhile by another
        # admin neither resets what is typed nor gets overwritten: the save is refused and names who changed it
        seen_key = f"users_edit_seen_{chosen_id}"
        if seen_key not in STATE:
            STATE[seen_key] = by_id[chosen_id]
        chosen = STATE[seen_key]
        with st.form(f"users_edit_{chosen.id}_{chosen.version}"):
            cells = form_cells(6)
            edit_name = next(cells).text_input(labels["full_name"] + " *", value=chosen.full_name)
            edit_email = next(cells).text_input(labels["email"], value=chosen.email or "")
            edit_role = next(cells).selectbox(
                labels["role"], roles, index=roles.index(chosen.role), format_func=lambda r: t(f"role.{r}")
            )
            team_options = [None, *team_names]
            edit_team = next(cells).selectbox(
                labels["team_id"], team_options,
                index=team_options.index(chosen.team_id) if chosen.team_id in team_options else 0,
                format_func=lambda v: "—" if v is None else team_names[v],
            )
            edit_password = next(cells).text_input(t("users.new_password"), type="password", help=t("password.rules"))
            edit_active = next(cells).checkbox(t("user.active"), value=chosen.is_active)
            saved = st.form_submit_button(t("users.save"), type="primary")
        if saved:
            try:
                update_user(
                    get_db(), actor, chosen.id,
                    UserInput(username=chosen.username, full_name=edit_name, role=edit_role,
                              email=edit_email, team_id=edit_team, password=edit_password),
                    expected_version=chosen.version, is_active=edit_active,
                )
            except StaleRecord as error:
                show_domain_error(error)
                STATE["users_edit_stale"] = chosen.id
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE.pop(seen_key, None)
                flash(PAGE_KEY, t("users.saved", username=plain(chosen.username)))
                st.rerun()
        if STATE.get("users_edit_stale") == chosen.id and st.button(t("users.reload"), key="users_edit_reload"):
            STATE.pop(seen_key, None)  # show the current version (what was typed is dropped on purpose)
            STATE.pop("users_edit_stale", None)
            st.rerun()

with teams_tab:
    table_or_cards(
        pd.DataFrame(
            [{labels["name"]: name, t("field.region"): region or "", t("team.manager"): manager or ""}
             for _, name, region, manager in teams]
        ),
        name="users_teams",
    )
    managers = {user.id: user.full_name for user in users if user.role in ("manager", "admin") and user.is_active}
    with st.form(f"teams_create_{STATE.setdefault('teams_form_generation', 0)}"):
        team_name = st.text_input(labels["name"] + " *")
        team_region = st.text_input(t("field.region"))
        team_manager = st.selectbox(
            t("team.manager"), [None, *managers], format_func=lambda v: "—" if v is None else managers[v]
        )
        if st.form_submit_button(t("teams.create"), type="primary"):
            try:
                create_team(get_db(), actor, name=team_name, region=team_region, manager_id=team_manager)
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE["teams_form_generation"] += 1
                flash(PAGE_KEY, t("teams.created", name=plain(team_name.strip())))
                st.rerun()
    st.divider()
    team_robot_settings(team_names)

with tokens_tab:
    workspace_tokens()
