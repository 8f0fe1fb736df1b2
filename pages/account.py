"""My account: the signed-in user's language preference and their personal API tokens."""

from __future__ import annotations

import streamlit as st

from crm_core.i18n import LANGUAGES
from crm_core.services.auth import set_language
from crm_ui.api_tokens import own_tokens
from crm_ui.context import LANG_STATE, carry_choices, current_actor, get_db, lang, t
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
own_tokens()
