"""Webhooks (admins): subscriptions, their secrets and test pings, the delivery log and replays.

The sections are drawn by ``crm_ui.webhooks``; the rules and the work live in ``crm_core``
(services, queries, the dispatcher job).
"""

from __future__ import annotations

import streamlit as st

from crm_ui import webhooks as sections
from crm_ui.context import current_actor, t

actor = current_actor()
if not actor.is_admin:
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("webhooks.title"))
st.caption(t("webhooks.caption"))
sections.flash_and_secret()
sections.notices()
sections.settings_section(actor)
sections.create_section(actor)
rows = sections.subscriptions_section()
chosen = sections.pick_subscription(rows)
if chosen is not None:
    sections.actions(actor, chosen)
    sections.edit_section(actor, chosen)
    sections.delivery_log(actor, chosen)
