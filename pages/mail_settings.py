"""Mail (admins): the tenant's own SMTP server for case mail (the environment's otherwise), a test message
sent by a job, the support mailbox read by IMAP every minute (decision 0052), which team's queue the mail
received at each address goes to (decision 0031), and the
marketing email settings: tracking, the daily cap per sender, the sender and postal address (decision 0048)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView, list_jobs
from crm_core.queries.mail_settings import list_mail_routes, mail_inbox_view, mail_settings_view
from crm_core.queries.users import list_teams
from crm_core.services import mail_settings as service
from crm_core.services import marketing_settings as marketing
from crm_ui import formatting
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY
from crm_ui.jobs import is_active, live_jobs, show_error, show_progress
from crm_ui.text import plain_params

STATE = st.session_state

actor = current_actor()
if not actor.is_admin:
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("mail.settings.title"))
if message := STATE.pop("mail_settings_flash", None):  # a toast: the form saved is further down the page
    st.toast(message, icon="✅")
with read_session() as session:
    current = mail_settings_view(session)
    routes = list_mail_routes(session)
    inbox = mail_inbox_view(session)
    teams = {team_id: name for team_id, name, _region, _manager in list_teams(session)}


def done(message_key: str) -> None:
    """Say it is saved and draw the page again with the stored values."""
    STATE["mail_settings_flash"] = t(message_key)
    st.rerun()


# --- outbound server --------------------------------------------------------------------------
st.subheader(t("mail.settings.smtp"))
st.caption(t("mail.settings.fallback", host=current.environment_host) if current.environment_host
           else t("mail.settings.fallback_none"))
team_options: list[int | None] = [None, *teams]
with st.form("mail_settings_smtp"):
    host = st.text_input(t("mail.settings.host"), value=current.smtp_host, max_chars=253, key="mail_settings_host")
    port = st.number_input(t("mail.settings.port"), 1, 65535, current.smtp_port, key="mail_settings_port")
    from_address = st.text_input(t("mail.settings.from"), value=current.from_address, max_chars=254,
                                 key="mail_settings_from")
    user = st.text_input(t("mail.settings.user"), value=current.smtp_user, max_chars=254, key="mail_settings_user")
    password = st.text_input(t("mail.settings.password"), type="password", max_chars=service.PASSWORD_LENGTH,
                             help=t("mail.settings.password_stored") if current.has_password
                             else t("mail.settings.password_none"), key="mail_settings_password")
    forget = st.checkbox(t("mail.settings.forget_password"), key="mail_settings_forget",
                         disabled=not current.has_password)
    starttls = st.checkbox(t("mail.settings.starttls"), value=current.starttls, key="mail_settings_starttls")
    default_team = st.selectbox(t("mail.settings.default_queue"), team_options,
                                index=team_options.index(current.default_team_id)
                                if current.default_team_id in team_options else 0,
                                format_func=lambda key: teams[key] if key else t("mail.settings.no_queue"),
                                key="mail_settings_default_team")
    if st.form_submit_button(t("mail.settings.save"), type="primary"):
        try:
            service.save_mail_settings(get_db(), actor, service.MailSettingsInput(
                smtp_host=host, smtp_port=int(port), from_address=from_address, smtp_user=user,
                password="" if forget else (password or None), starttls=starttls, default_team_id=default_team),
                expected_version=current.version or None)
        except DomainError as error:
            show_domain_error(error, labels={
                "smtp_host": t("mail.settings.host"), "smtp_port": t("mail.settings.port"),
                "from_address": t("mail.settings.from"), "smtp_user": t("mail.settings.user"),
                "password": t("mail.settings.password"), "starttls": t("mail.settings.starttls"),
                "default_team_id": t("mail.settings.default_queue")})
        else:
            STATE.pop("mail_settings_password", None)
            done("mail.settings.saved")

# --- test message (a job: the page never waits on an SMTP server) --------------------------------
st.subheader(t("mail.test.title"))
with st.form("mail_settings_test"):
    test_to = st.text_input(t("mail.test.to"), max_chars=254, key="mail_settings_test_to")
    if st.form_submit_button(t("mail.test.send")):
        try:
            service.request_test_mail(get_db(), actor, test_to)
        except DomainError as error:
            show_domain_error(error, labels={"to": t("mail.test.to")})


def load_test() -> list[JobView]:
    """The newest test message's job."""
    with read_session() as session:
        return list_jobs(session, kinds=[service.TEST_KIND], per_page=1).items


def draw_test(views: list[JobView]) -> None:
    """Whether the newest test message was sent, is on its way, or why it failed."""
    if not views:
        st.caption(t("mail.test.none"))
        return
    view = views[0]
    if is_active(view):
        show_progress(view)
    elif view.status == JobStatus.SUCCEEDED:
        st.success(t("mail.test.sent", **plain_params({"to": view.result.get("to", ""),
                                                         "host": view.result.get("host", ""),
                                                         "port": view.result.get("port", "")})))
    else:
        show_error(view)


test_views = load_test()
live_jobs("mail_settings_test_job", test_views, load_test, draw_test)

# --- the support mailbox, read by the mail_fetch job every minute (decision 0052) ----------------------
st.subheader(t("mail.inbox.title"))
st.caption(t("mail.inbox.help"))
if inbox.last_error:
    st.warning(t("mail.inbox.last_error", **plain_params({"error": inbox.last_error})))
st.caption(t("mail.inbox.checked", at=formatting.when(inbox.checked_at)) if inbox.checked_at
           else t("mail.inbox.never"))
securities = {key: t(f"mail.inbox.security.{key}") for key in ("tls", "starttls", "none")}
with st.form("mail_settings_inbox"):
    inbox_enabled = st.checkbox(t("mail.inbox.enabled"), value=inbox.enabled, key="mail_inbox_enabled")
    inbox_host = st.text_input(t("mail.inbox.host"), value=inbox.host, max_chars=253, key="mail_inbox_host")
    inbox_security = st.selectbox(t("mail.inbox.security"), list(securities),
                                  index=list(securities).index(inbox.security), format_func=securities.__getitem__,
                                  key="mail_inbox_security")
    inbox_port = st.number_input(t("mail.inbox.port"), 1, 65535, inbox.port, key="mail_inbox_port")
    inbox_user = st.text_input(t("mail.inbox.username"), value=inbox.username, max_chars=254, key="mail_inbox_user")
    inbox_password = st.text_input(t("mail.settings.password"), type="password", max_chars=service.PASSWORD_LENGTH,
                                   help=t("mail.settings.password_stored") if inbox.has_password
                                   else t("mail.settings.password_none"), key="mail_inbox_password")
    inbox_folder = st.text_input(t("mail.inbox.folder"), value=inbox.folder, max_chars=service.FOLDER_LENGTH,
                                 key="mail_inbox_folder")
    if st.form_submit_button(t("mail.inbox.save"), type="primary"):
        try:
            service.save_mail_inbox(get_db(), actor, service.MailInboxInput(
                enabled=inbox_enabled, host=inbox_host, port=int(inbox_port), security=inbox_security,
                username=inbox_user, password=inbox_password or None, folder=inbox_folder),
                expected_version=inbox.version or None)
        except DomainError as error:
            show_domain_error(error, labels={
                "host": t("mail.inbox.host"), "port": t("mail.inbox.port"), "security": t("mail.inbox.security"),
                "username": t("mail.inbox.username"), "password": t("mail.settings.password"),
                "folder": t("mail.inbox.folder")})
        else:
            STATE.pop("mail_inbox_password", None)
            done("mail.inbox.saved")
if inbox.enabled and st.button(t("mail.inbox.fetch_now"), key="mail_inbox_fetch"):
    try:
        service.request_mail_fetch(get_db(), actor)
    except DomainError as error:
        show_domain_error(error)
    else:
        done("mail.inbox.fetch_started")

# --- inbound routes ----------------------------------------------------------------------------
st.subheader(t("mail.routes.title"))
st.caption(t("mail.routes.help"))
if routes:
    st.dataframe(pd.DataFrame([{t("mail.routes.address"): route.address, t("mail.routes.team"): route.team_name}
                               for route in routes]), hide_index=True, width="stretch", placeholder=EMPTY)
if not teams:
    st.info(t("mail.routes.no_teams"))
else:
    with st.form("mail_settings_route"):
        address = st.text_input(t("mail.routes.address"), max_chars=254, key="mail_settings_route_address",
                                placeholder="support@")
        team_id = st.selectbox(t("mail.routes.team"), list(teams), format_func=lambda key: teams[key],
                               key="mail_settings_route_team")
        if st.form_submit_button(t("mail.routes.save")):
            try:
                service.save_mail_route(get_db(), actor, address=address, team_id=team_id)
            except DomainError as error:
                show_domain_error(error, labels={"address": t("mail.routes.address"),
                                                 "team_id": t("mail.routes.team")})
            else:
                done("mail.routes.saved")
if routes:
    by_id = {route.id: route for route in routes}
    chosen = st.selectbox(t("mail.routes.pick"), list(by_id), format_func=lambda key: by_id[key].address,
                          key="mail_settings_route_pick")
    if st.button(t("mail.routes.delete"), key="mail_settings_route_delete"):
        try:
            service.delete_mail_route(get_db(), actor, chosen)
        except DomainError as error:
            show_domain_error(error)
        else:
            done("mail.routes.deleted")

# --- marketing email (decision 0048) ---------------------------------------------------------------
st.subheader(t("marketing_mail.settings.title"))
st.caption(t("marketing_mail.settings.help"))
marketing_now = marketing.marketing_settings_view(get_db(), actor)
with st.form("mail_settings_marketing"):
    tracking = st.checkbox(t("marketing_mail.settings.tracking"), value=marketing_now.tracking_enabled,
                           help=t("marketing_mail.settings.tracking_help"), key="mail_settings_tracking")
    cap = st.number_input(t("marketing_mail.settings.cap"), 1, marketing.MAX_DAILY_CAP,
                          marketing_now.daily_cap_per_sender, key="mail_settings_cap")
    sender_name = st.text_input(t("marketing_mail.settings.sender_name"), value=marketing_now.sender_name,
                                max_chars=200, key="mail_settings_sender_name")
    sender = st.text_input(t("marketing_mail.settings.sender_address"), value=marketing_now.sender_address,
                           max_chars=254, help=t("marketing_mail.settings.sender_address_help"),
                           key="mail_settings_sender_address")
    postal = st.text_area(t("marketing_mail.settings.postal_address"), value=marketing_now.postal_address,
                          max_chars=500, key="mail_settings_postal")
    if st.form_submit_button(t("marketing_mail.settings.save")):
        try:
            marketing.save_marketing_settings(get_db(), actor, marketing.MarketingSettingsInput(
                tracking_enabled=tracking, daily_cap_per_sender=int(cap), sender_name=sender_name,
                sender_address=sender, postal_address=postal), expected_version=marketing_now.version)
        except DomainError as error:
            show_domain_error(error, labels={
                "daily_cap_per_sender": t("marketing_mail.settings.cap"),
                "sender_name": t("marketing_mail.settings.sender_name"),
                "sender_address": t("marketing_mail.settings.sender_address"),
                "postal_address": t("marketing_mail.settings.postal_address")})
        else:
            done("marketing_mail.settings.saved")
