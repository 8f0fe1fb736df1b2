"""The do-not-contact list (admins, managers, reps): rendered by :mod:`crm_ui.consent`; every rule is enforced
again in ``crm_core.services.consent``."""

import streamlit as st

from crm_core.models import Role
from crm_ui.consent import do_not_contact_page
from crm_ui.context import current_actor, t

actor = current_actor()
if actor.role not in (Role.ADMIN, Role.MANAGER, Role.REP):
    st.error(t("error.access_denied"))
    st.stop()
do_not_contact_page(actor)
