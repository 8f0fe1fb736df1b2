"""My account: the signed-in user's language preference, password and personal API tokens."""

from __future__ import annotations

import streamlit as st

from crm_core.errors import DomainError, ValidationFailed
from crm_core.i18n import LANGUAGES
from crm_core.services.auth import change_own_password, set_language
from crm_core.services.notifications import preferences_of, save_preferences
from crm_ui.api_tokens import own_tokens
from crm_ui.context import (
    LANG_STATE,
    SESSION_STARTED_STATE,
    carry_choices,
    current_actor,
    get_db,
    lang,
    read_session,
    show_domain_error,
    t,
)
from crm_ui.session_cookie import TICKET_STATE, TICKETS
from crm_ui.text import plain

LANGUAGE_KEY = "account_language"
actor = current_actor()


def save_language() -> None:
    """Remember the picked language for this user and switch the session to it."""
    chosen = st.session_state[LANGUAGE_KEY]
    set_language(get_db(), actor.username, chosen)
    carry_choices(lang(), chosen)
    st.session_state[LANG_STATE] = chosen
    st.session_state["kestrel_lang_chosen"] = True
    st.session_state["account_language_saved"] = True


st.title(t("account.title"))
st.markdown(t("account.profile", name=plain(actor.full_name), username=plain(actor.username),
              role=t(f"role.{actor.role.value}")))
if st.session_state.pop("account_language_saved", False):
    st.success(t("account.language_saved"))
st.session_state[LANGUAGE_KEY] = lang()  # follows the sidebar's switch too
st.selectbox(t("account.language"), list(LANGUAGES), format_func=LANGUAGES.__getitem__, key=LANGUAGE_KEY,
             on_change=save_language)

st.divider()
st.subheader(t("account.password_title"))
if st.session_state.pop("account_password_saved", False):
    st.success(t("account.password_changed"))
# not cleared on submit: a refused change keeps what was typed (the fields are masked)
with st.form("account_password"):
    current = st.text_input(t("account.current_password"), type="password", key="account_current_password")
    new = st.text_input(t("account.new_password"), type="password", help=t("password.rules"),
                        key="account_new_password")
    confirm = st.text_input(t("account.confirm_password"), type="password", key="account_confirm_password")
    submitted = st.form_submit_button(t("account.password_submit"))
if submitted:
    try:
        started = change_own_password(get_db(), actor, current, new, confirm)
    except ValidationFailed as error:
        show_domain_error(error, labels={"current_password": t("account.current_password"),
                                         "new_password": t("account.new_password"),
                                         "confirm_password": t("account.confirm_password")})
    else:
        st.session_state[SESSION_STARTED_STATE] = started  # this session outlives the cut-off
        st.session_state[TICKET_STATE] = TICKETS.issue(actor.username)  # and this browser gets a newer cookie
        for key in ("account_current_password", "account_new_password", "account_confirm_password"):
            st.session_state.pop(key, None)
        st.session_state["account_password_saved"] = True
        st.rerun()

st.divider()
own_tokens()

st.divider()
st.subheader(t("account.notifications_title"))
st.caption(t("account.notifications_intro"))
if st.session_state.pop("account_notifications_saved", False):
    st.success(t("account.notifications_saved"))
with read_session() as session:
    chosen = preferences_of(session)
with st.form("account_notifications"):
    kind_column, app_column, robot_column = st.columns([3, 1, 1])
    kind_column.caption(t("account.notifications_kind"))
    app_column.caption(t("account.notifications_in_app"))
    robot_column.caption(t("account.notifications_robot"))
    choices: dict[str, tuple[bool, bool]] = {}
    for kind, (in_app, robot) in chosen.items():
        kind_column, app_column, robot_column = st.columns([3, 1, 1])
        kind_column.markdown(t(f"notifications.kind_name.{kind}"))
        choices[kind] = (
            app_column.checkbox(t("account.notifications_in_app"), value=in_app, key=f"account_in_app_{kind}",
                                label_visibility="collapsed"),
            robot_column.checkbox(t("account.notifications_robot"), value=robot, key=f"account_robot_{kind}",
                                  label_visibility="collapsed"),
        )
    saved = st.form_submit_button(t("account.notifications_save"))
if saved:
    try:
        save_preferences(get_db(), actor, choices)
    except DomainError as error:
        show_domain_error(error)
    else:
        st.session_state["account_notifications_saved"] = True
        st.rerun()
