"""Macros (managers and admins): the tenant's canned case replies, per language, with variables.
The rule (who may change them) is enforced again in ``crm_core.services.macros``."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models import Role
from crm_core.queries.macros import list_macros
from crm_core.rules.macros import LANGUAGES, VARIABLES
from crm_core.services import macros as macro_service
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.layout import table_or_cards

STATE = st.session_state

actor = current_actor()
if actor.role not in (Role.ADMIN, Role.MANAGER):
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("macros.title"))
if message := STATE.pop("macros_flash", None):
    st.success(message)
with read_session() as session:
    macros = [(macro.id, macro.name, macro.language, macro.body, macro.version) for macro in list_macros(session)]


def done(message_key: str) -> None:
    """Say it is saved and show the list again."""
    STATE["macros_flash"] = t(message_key)
    st.rerun()


st.caption(t("macros.help", variables=", ".join("{" + name + "}" for name in VARIABLES)))
if macros:
    table_or_cards(pd.DataFrame([{t("macros.name"): name, t("macros.language"): t(f"macros.lang.{language}"),
                                t("macros.body"): body} for _, name, language, body, _ in macros]), name="macros_list")
editing_options: list[int | None] = [None, *(macro_id for macro_id, *_ in macros)]
by_id = {macro_id: (name, language, body, version) for macro_id, name, language, body, version in macros}
editing = st.selectbox(t("macros.edit"), editing_options,
                       format_func=lambda key: by_id[key][0] + " · " + t(f"macros.lang.{by_id[key][1]}")
                       if key else t("macros.new"), key="macros_pick")
macro_now = by_id.get(editing) if editing else None
with st.form(f"macros_form_{editing or 'new'}"):
    macro_name = st.text_input(t("macros.name"), value=macro_now[0] if macro_now else "", max_chars=120)
    macro_language: str = st.selectbox(t("macros.language"), list(LANGUAGES),
                                       index=list(LANGUAGES).index(macro_now[1]) if macro_now else 0,
                                       format_func=lambda value: t(f"macros.lang.{value}"))
    macro_body = st.text_area(t("macros.body"), value=macro_now[2] if macro_now else "", max_chars=4000)
    save, delete = st.columns(2)
    if save.form_submit_button(t("macros.save"), type="primary"):
        try:
            macro_service.save_macro(get_db(), actor, name=macro_name, language=macro_language, body=macro_body,
                                     macro_id=editing, expected_version=macro_now[3] if macro_now else None)
        except DomainError as error:
            show_domain_error(error, labels={"name": t("macros.name"), "body": t("macros.body"),
                                             "language": t("macros.language")})
        else:
            done("macros.saved")
    if editing and delete.form_submit_button(t("macros.delete")):
        try:
            macro_service.delete_macro(get_db(), actor, editing)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE.pop("macros_pick", None)
            done("macros.deleted")
