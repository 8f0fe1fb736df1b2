"""The sidebar's bell (every page: one indexed count) and how a notification reads and opens.

A notification's values (a task's title, a customer's name, a note's excerpt, a reason) are user text: the
message is the catalog's, its values go through :func:`crm_ui.text.plain_params`.
"""

from __future__ import annotations

import streamlit as st

from crm_core.queries.notifications import NotificationRow, unread_count
from crm_core.rules.notifications import message_key
from crm_ui.context import read_session, t
from crm_ui.text import plain_params

NOTIFICATIONS_PAGE = "pages/notifications.py"
PROFILE_PAGE = "pages/customer_profile.py"
TASKS_PAGE = "pages/tasks.py"


def notification_bell() -> None:
    """A link to the notifications page with my unread count, in the current container (the sidebar)."""
    with read_session() as session:
        count = unread_count(session)
    label = t("notifications.bell", count=count) if count else t("notifications.bell_none")
    st.page_link(NOTIFICATIONS_PAGE, label=label, width="stretch")


def message(row: NotificationRow) -> str:
    """The notification in the reader's language, its values shown as written."""
    return t(message_key(row.kind, row.params), **plain_params(row.params))


def target(row: NotificationRow) -> tuple[str, dict[str, str]] | None:
    """The page (and its query parameters) a notification opens, if any."""
    if row.entity == "customer" and row.entity_id:
        return PROFILE_PAGE, {"customer_id": str(row.entity_id)}
    if row.entity == "task":
        return TASKS_PAGE, {}
    if row.entity == "case" and row.entity_id:
        return "pages/case.py", {"case_id": str(row.entity_id)}
    if row.entity == "case_queue":  # an SLA sweep's digest: the queue lists its cases by due time
        return "pages/service_queue.py", {}
    return None
