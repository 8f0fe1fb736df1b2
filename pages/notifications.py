"""Notifications: my notifications, newest first (mark read, open the record), and the access requests I decide."""

from __future__ import annotations

import streamlit as st

from crm_core.errors import DomainError
from crm_core.formatting import when
from crm_core.queries.notifications import list_notifications, pending_access_requests
from crm_core.services.access_requests import decide_access_request
from crm_core.services.notifications import mark_all_read, mark_read
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.notifications import message, target
from crm_ui.text import plain, plain_line

PAGE_SIZE = 20
actor = current_actor()
STATE = st.session_state
STATE.setdefault("notifications_cursors", [])

st.title(t("notifications.title"))
if notice := STATE.pop("notifications_notice", None):
    st.success(notice)

with read_session() as session:
    requests = pending_access_requests(session)
if requests:
    st.subheader(t("notifications.requests_title"))
    for request in requests:
        with st.container(border=True):
            name = request.customer_name if request.customer_name is not None else t("notifications.request_hidden")
            st.markdown(t("notifications.request_line", requester=plain(request.requester_name), name=plain(name)))
            st.caption(t("notifications.request_reason", reason=plain(request.reason)) if request.reason
                       else t("notifications.request_no_reason"))
            approve_column, decline_column = st.columns(2)
            approve = approve_column.button(t("access_request.approve"), key=f"notifications_approve_{request.id}",
                                            type="primary")
            decline = decline_column.button(t("access_request.decline"), key=f"notifications_decline_{request.id}")
            if approve or decline:
                try:
                    decide_access_request(get_db(), actor, request.id, approve=approve)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE["notifications_notice"] = (
                        t("access_request.approved", requester=plain(request.requester_name)) if approve
                        else t("access_request.declined"))
                    st.rerun()
    st.divider()

left, right = st.columns([3, 1])
unread_only = left.toggle(t("notifications.unread_only"), key="notifications_unread_only")
if right.button(t("notifications.mark_all_read"), key="notifications_mark_all"):
    count = mark_all_read(get_db(), actor)
    STATE["notifications_notice"] = t("notifications.all_read_done", count=count)
    st.rerun()

cursors: list[int] = STATE["notifications_cursors"]
with read_session() as session:
    page = list_notifications(session, unread_only=unread_only, before_id=cursors[-1] if cursors else None,
                              limit=PAGE_SIZE)
if not page.items:
    st.info(t("notifications.empty"))
for row in page.items:
    with st.container(border=True):
        text_column, action_column = st.columns([4, 1])
        badge = "🔵 " if row.read_at is None else ""
        text_column.markdown(badge + message(row))
        text_column.caption(plain_line(when(row.created_at, lang())))
        opens = target(row)
        if opens is not None:
            page_path, params = opens
            if action_column.button(t("notifications.open"), key=f"notifications_open_{row.id}"):
                if row.read_at is None:
                    mark_read(get_db(), actor, row.id)
                st.switch_page(page_path, query_params=params)
        if row.read_at is None and action_column.button(t("notifications.mark_read"),
                                                        key=f"notifications_read_{row.id}"):
            mark_read(get_db(), actor, row.id)
            st.rerun()
older, newest = st.columns(2)
if page.has_next and older.button(t("notifications.more"), key="notifications_older"):
    cursors.append(page.items[-1].id)
    st.rerun()
if cursors and newest.button(t("notifications.newest"), key="notifications_newest"):
    cursors.clear()
    st.rerun()
