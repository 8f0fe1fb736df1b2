"""Duplicate rules (admin, 查重), per entity: a customer's credit code, email, phone and company name, and a
contact's email and phone (checked across the workspace) — each not checked, warning (the user may confirm)
or blocking (only a manager or admin may override). One form per entity."""

from __future__ import annotations

import streamlit as st

from crm_core.errors import DomainError
from crm_core.rules.duplicates import ACTIONS, CONTACT, CUSTOMER, ENTITIES, KEYS
from crm_core.services.duplicate_rules import duplicate_rules, save_duplicate_rules
from crm_ui.context import current_actor, get_db, show_domain_error, t

STATE = st.session_state
actor = current_actor()

st.title(t("duplicate_rules.title"))
st.caption(t("duplicate_rules.intro"))
if notice := STATE.pop("duplicate_rules_notice", None):  # a toast: the form saved is further down the page
    st.toast(notice, icon="✅")

SAVE = {CUSTOMER: ("duplicate_rules.save", "duplicate_rules.saved"),
        CONTACT: ("duplicate_rules.save_contact", "duplicate_rules.saved_contact")}
# the customer widgets keep their earlier keys (duplicate_rules_<key>); a contact's are prefixed
PREFIX = {CUSTOMER: "duplicate_rules", CONTACT: "duplicate_rules_contact"}

for entity in ENTITIES:
    st.subheader(t(f"duplicate_rules.section.{entity}"))
    current = duplicate_rules(get_db(), actor, entity)
    labels = {f"duplicate_rule.{key}": t(f"duplicate_rules.key.{key}") for key in KEYS[entity]}
    with st.form(f"{PREFIX[entity]}_form"):
        chosen = {
            key: st.radio(t(f"duplicate_rules.key.{key}"), ACTIONS, index=ACTIONS.index(current[key]),
                          horizontal=True, format_func=lambda action: t(f"duplicate_rules.action.{action}"),
                          key=f"{PREFIX[entity]}_{key}")
            for key in KEYS[entity]
        }
        saved = st.form_submit_button(t(SAVE[entity][0]), type="primary")
    if saved:
        try:
            save_duplicate_rules(get_db(), actor, {key: str(action) for key, action in chosen.items()}, entity)
        except DomainError as error:
            show_domain_error(error, labels=labels)
        else:
            STATE["duplicate_rules_notice"] = t(SAVE[entity][1])
            st.rerun()
