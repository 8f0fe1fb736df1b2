"""Email templates (managers and admins): the marketing emails a campaign's steps send, per language, with the
variables they may use and a preview over a real contact. The rules live in crm_core.services.email_templates."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models import Role
from crm_core.queries.email_templates import customer_contacts, preview_customers
from crm_core.rules.email_templates import BODY_LENGTH, LANGUAGES, SUBJECT_LENGTH, VARIABLES
from crm_core.services import email_templates as service
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY

STATE = st.session_state

actor = current_actor()
if actor.role not in (Role.ADMIN, Role.MANAGER):
    st.error(t("error.access_denied"))
    st.stop()

st.title(t("marketing_mail.templates.title"))
if message := STATE.pop("email_templates_flash", None):
    st.success(message)
show_archived = st.toggle(t("marketing_mail.templates.show_archived"), key="email_templates_archived")
templates = service.list_templates(get_db(), actor, archived=show_archived)


def done(message_key: str) -> None:
    STATE["email_templates_flash"] = t(message_key)
    st.rerun()


def language_name(value: str) -> str:
    return t(f"marketing_mail.templates.lang.{value}")


if templates:
    st.dataframe(pd.DataFrame([{t("marketing_mail.templates.name"): row.name,
                                t("marketing_mail.templates.language"): language_name(row.language),
                                t("marketing_mail.templates.subject"): row.subject} for row in templates]),
                 hide_index=True, width="stretch", placeholder=EMPTY)
else:
    st.caption(t("marketing_mail.templates.none"))
by_id = {row.id: row for row in templates}
options: list[int | None] = [None, *by_id] if not show_archived else list(by_id)
if not options:
    st.stop()
editing = st.selectbox(t("marketing_mail.templates.edit"), options,
                       format_func=lambda key: by_id[key].name if key else t("marketing_mail.templates.new"),
                       key="email_templates_pick")
current = by_id.get(editing) if editing else None

with st.expander(t("marketing_mail.templates.variables"), expanded=False):
    st.code("\n".join("{{ " + f"{group}.{name}" + " }}" for group, names in VARIABLES.items() for name in names),
            language=None)
    st.caption(t("marketing_mail.templates.variables_help"))

if show_archived and current is not None:
    if st.button(t("marketing_mail.templates.restore"), key="email_templates_restore"):
        try:
            service.archive_template(get_db(), actor, current.id, archived=False)
        except DomainError as error:
            show_domain_error(error)
        else:
            done("marketing_mail.templates.restored")
    st.stop()

with st.form(f"email_templates_form_{editing or 'new'}"):
    name = st.text_input(t("marketing_mail.templates.name"), value=current.name if current else "", max_chars=120)
    language: str = st.selectbox(t("marketing_mail.templates.language"), list(LANGUAGES),
                                 index=list(LANGUAGES).index(current.language) if current else 0,
                                 format_func=language_name)
    subject = st.text_input(t("marketing_mail.templates.subject"), value=current.subject if current else "",
                            max_chars=SUBJECT_LENGTH)
    body = st.text_area(t("marketing_mail.templates.body"), value=current.body if current else "",
                        max_chars=BODY_LENGTH, height=260)
    save, archive = st.columns(2)
    form = service.TemplateInput(name=name, language=language, subject=subject, body=body)
    if save.form_submit_button(t("marketing_mail.templates.save"), type="primary"):
        try:
            service.save_template(get_db(), actor, form, template_id=editing,
                                  expected_version=current.version if current else None)
        except DomainError as error:
            show_domain_error(error, labels={"name": t("marketing_mail.templates.name"),
                                             "language": t("marketing_mail.templates.language"),
                                             "subject": t("marketing_mail.templates.subject"),
                                             "body": t("marketing_mail.templates.body")})
        else:
            done("marketing_mail.templates.saved")
    if current is not None and archive.form_submit_button(t("marketing_mail.templates.archive")):
        try:
            service.archive_template(get_db(), actor, current.id)
        except DomainError as error:
            show_domain_error(error)
        else:
            done("marketing_mail.templates.archived")

# --- preview over a real contact -------------------------------------------------------------------
st.subheader(t("marketing_mail.templates.preview"))
search = st.text_input(t("marketing_mail.templates.preview_customer"), max_chars=200,
                       key="email_templates_preview_search")
with read_session() as session:
    customers = preview_customers(session, search)
if not customers:
    st.caption(t("marketing_mail.templates.preview_none"))
    st.stop()
names = dict(customers)
customer_id = st.selectbox(t("marketing_mail.templates.preview_pick"), list(names), format_func=names.__getitem__,
                           key="email_templates_preview_customer")
with read_session() as session:
    contacts = customer_contacts(session, customer_id)
contact_names = {contact_id: f"{name} <{email}>" if email else name for contact_id, name, email in contacts}
contact_options: list[int | None] = [None, *contact_names]
no_contact = t("marketing_mail.templates.no_contact")
contact_id = st.selectbox(t("marketing_mail.templates.preview_contact"), contact_options,
                          format_func=lambda key: contact_names[key] if key else no_contact,
                          key="email_templates_preview_contact")
if st.button(t("marketing_mail.templates.preview_run"), key="email_templates_preview_run"):
    try:
        shown = service.preview(get_db(), actor, form, customer_id=customer_id, contact_id=contact_id)
    except DomainError as error:
        show_domain_error(error)
    else:
        if shown.missing:
            st.error(t("marketing_mail.templates.preview_missing", name=shown.missing))
        elif shown.problem:
            st.error(t("marketing_mail.templates.preview_broken", detail=shown.problem))
        else:
            st.text(shown.subject)
            st.text(shown.body)
