"""Duplicate rules (admin, 查重): per customer key — credit code, email, phone, company name — whether a
match is not checked, warns (the user may confirm) or blocks (only a manager or admin may override)."""

from __future__ import annotations

import streamlit as st

from crm_core.errors import DomainError
from crm_core.rules.duplicates import ACTIONS, CUSTOMER_KEYS
from crm_core.services.duplicate_rules import duplicate_rules, save_duplicate_rules
from crm_ui.context import current_actor, get_db, show_domain_error, t

STATE = st.session_state
actor = current_actor()

st.title(t("duplicate_rules.title"))
st.caption(t("duplicate_rules.intro"))
if notice := STATE.pop("duplicate_rules_notice", None):
    st.success(notice)

current = duplicate_rules(get_db(), actor)
labels = {f"duplicate_rule.{key}": t(f"duplicate_rules.key.{key}") for key in CUSTOMER_KEYS}
with st.form("duplicate_rules_form"):
    chosen = {
        key: st.radio(t(f"duplicate_rules.key.{key}"), ACTIONS, index=ACTIONS.index(current[key]), horizontal=True,
                      format_func=lambda action: t(f"duplicate_rules.action.{action}"),
                      key=f"duplicate_rules_{key}")
        for key in CUSTOMER_KEYS
    }
    saved = st.form_submit_button(t("duplicate_rules.save"), type="primary")
if saved:
    try:
        save_duplicate_rules(get_db(), actor, {key: str(action) for key, action in chosen.items()})
    except DomainError as error:
        show_domain_error(error, labels=labels)
    else:
        STATE["duplicate_rules_notice"] = t("duplicate_rules.saved")
        st.rerun()
