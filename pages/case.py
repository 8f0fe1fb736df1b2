"""Case detail (``?case_id=``): the facts, the status actions the flow allows, a priority change, a
public reply or an internal note (with files), the case's files (downloaded; removed by their uploader
or a manager), the merge of a duplicate into it, the
case's timeline, and its SLA panel, which explains each due time (calendar, pauses, business minutes).
A case merged into another says so and links to it."""

from __future__ import annotations

from functools import partial

import streamlit as st

from crm_core.access import Actor, can_remove_case_file
from crm_core.config import attachment_max_bytes
from crm_core.db import Database
from crm_core.errors import DomainError
from crm_core.models import CasePriority, CaseStatus, utcnow
from crm_core.queries.case_files import case_attachments, merge_candidates
from crm_core.queries.cases import case_about, case_emails, case_timeline, get_case
from crm_core.queries.customer_profile import customer_contacts
from crm_core.queries.macros import list_macros, macro_for_case
from crm_core.queries.orders import customer_orders
from crm_core.queries.products import list_products
from crm_core.queries.users import assignable_owners, list_teams
from crm_core.rules.attachments import MAX_FILES, readable_size
from crm_core.rules.case_flow import allowed_transitions
from crm_core.services.case_attachments import NewFile, attach_files, download_attachment, remove_attachment
from crm_core.services.case_merging import merge_cases
from crm_core.services.cases import CaseInput, add_case_reply, change_case_priority, transition_case, update_case
from crm_core.services.merging import Versions
from crm_core.services.sla import explain_case_sla
from crm_ui import formatting
from crm_ui.context import current_actor, get_db, lang, read_session, record_id, show_domain_error, t
from crm_ui.files import file_picker
from crm_ui.text import plain, plain_line

STATE = st.session_state


def pick(label: str, choices: dict[int, str], current: int | None, key: str, empty: str) -> int | None:
    """A select box of ``choices`` with "none" (``empty``'s text) first, on ``current``."""
    options: list[int | None] = [None, *choices]
    return st.selectbox(label, options, index=options.index(current), key=f"case_edit_{key}",
                        format_func=lambda value: choices[value] if value is not None else t(empty))


def refusal_reason(key: str | None, name: str | None) -> str:
    """Why a mail's file was not kept, in the reader's language (the key the inbound mail recorded)."""
    limit = MAX_FILES if key == "case_files.error.too_many" else readable_size(attachment_max_bytes())
    return t(key or "case_files.error.type_not_allowed", name=plain_line(name or ""), max=limit)


def file_bytes(db: Database, reader: Actor, case_id: int, attachment_id: int) -> bytes:
    """An attachment's bytes, read (and the download audited) only when the reader clicks Download."""
    return download_attachment(db, reader, case_id, attachment_id).data


actor = current_actor()
now = utcnow()
case_id = record_id(st.query_params.get("case_id"))
with read_session() as session:
    case = get_case(session, case_id) if case_id is not None else None
    timeline = case_timeline(session, case.id) if case is not None else []
    explanation = explain_case_sla(session, case.id, now=now) if case is not None else None
    macros = list_macros(session, language=lang()) if case is not None and actor.can_write else []
    emails = case_emails(session, case.id) if case is not None else []
    order_number, product_name = case_about(session, case) if case is not None else (None, None)
    files = case_attachments(session, case.id) if case is not None else []
    mergeable = (case is not None and actor.can_write and case.merged_into_id is None
                 and case.status != CaseStatus.CLOSED.value)
    candidates = (merge_candidates(session, case.id, search=STATE.get(f"case_merge_search_{case.id}", ""))
                  if case is not None and mergeable else [])
if case is None or explanation is None:
    st.title(t("service.case.title"))
    st.info(t("service.case.not_found"))
    st.page_link("pages/service_queue.py", label=t("service.case.back"), icon="⬅️")
    st.stop()

if message := STATE.pop("case_flash", None):
    st.success(message)
st.title(plain_line(f"#{case.id} {case.subject}"))
if case.merged_into_id is not None:
    st.warning(t("case_merge.notice", id=case.merged_into_id))
    st.page_link("pages/case.py", label=t("case_merge.open_survivor", id=case.merged_into_id), icon="➡️",
                 query_params={"case_id": str(case.merged_into_id)})
facts = st.columns(3)
facts[0].metric(t("service.field.status"), t(f"service.status.{case.status}"))
facts[1].metric(t("service.field.priority"), t(f"service.priority.{case.priority}"))
facts[2].metric(t("service.field.channel"), t(f"service.channel.{case.channel}"))
# data (names, the category) as text, each escaped; the labels are the catalog's
st.caption(t("service.field.assignee") + ": " + plain_line(case.assignee_name or "—") + " · "
           + t("service.field.category") + ": " + plain_line(case.category or "—"))
if case.customer_name:
    st.page_link("pages/customer_profile.py", label=t("service.case.customer", name=plain_line(case.customer_name)),
                 icon="🪪", query_params={"customer_id": str(case.customer_id)})
if order_number or product_name:
    parts = [t("service.field.order") + " " + plain_line(order_number)] if order_number else []
    parts += [t("service.field.product") + " " + plain_line(product_name)] if product_name else []
    st.caption(t("service.case.about", what=" · ".join(parts)))
if case.description:
    st.text(case.description)

if actor.can_write:
    # --- status actions the flow allows, and the priority -----------------------------------------
    targets = allowed_transitions(case.status, resolved_at=case.resolved_at, now=now)
    if targets:
        st.subheader(t("service.case.actions"))
        buttons = st.columns(len(targets))
        for column, target in zip(buttons, targets, strict=True):
            if column.button(t(f"service.action.{target}"), key=f"case_move_{case.id}_{target}"):
                try:
                    transition_case(get_db(), actor, case.id, target, expected_version=case.version)
                except DomainError as error:
                    show_domain_error(error, labels={"status": t("service.field.status")})
                else:
                    STATE["case_flash"] = t("service.case.moved", status=t(f"service.status.{target}"))
                    st.rerun()
    with st.form(f"case_priority_{case.id}"):
        priorities = [priority.value for priority in CasePriority]
        new_priority = st.selectbox(t("service.field.priority"), priorities, index=priorities.index(case.priority)
                                    if case.priority in priorities else 0,
                                    format_func=lambda value: t(f"service.priority.{value}"),
                                    key=f"case_priority_value_{case.id}")
        if st.form_submit_button(t("service.case.change_priority")):
            try:
                change_case_priority(get_db(), actor, case.id, new_priority, expected_version=case.version)
            except DomainError as error:
                show_domain_error(error, labels={"priority": t("service.field.priority")})
            else:
                STATE["case_flash"] = t("service.case.priority_changed")
                st.rerun()
    # --- the details: subject, category, what it is about, queue and assignee -----------------------
    # opened on demand: its pickers (contacts, orders, products, teams, owners) are read only while it is open
    details = st.expander(t("service.case.edit"), key=f"case_details_open_{case.id}", on_change="rerun")
    with details:
        if details.open:
            with read_session() as session:
                people = {row.id: row.name for row in customer_contacts(session, case.customer_id)}
                orders = {row.id: f"{row.order_number} · {formatting.date(row.ordered_at)}"
                          for row in customer_orders(session, case.customer_id, limit=50)}
                products = {row.id: row.name for row in list_products(session, active_only=True)}
                teams = {team_id: name for team_id, name, *_ in list_teams(session)}
                owners = dict(assignable_owners(session, user_ids=None if actor.is_admin
                                                else frozenset({actor.user_id, *actor.visible_owner_ids})))
            # what the case has now stays choosable even when the list would not offer it
            # (by name where the case knows it, else by number: a bare "#" told nothing)
            for chosen_id, choices, label in (
                    (case.contact_id, people, None), (case.order_id, orders, order_number),
                    (case.product_id, products, product_name),
                    (case.team_id, teams, None), (case.assignee_id, owners, case.assignee_name)):
                if chosen_id is not None and chosen_id not in choices:
                    choices[chosen_id] = label or f"#{chosen_id}"

            with st.form(f"case_edit_{case.id}"):
                subject = st.text_input(t("service.field.subject"), value=case.subject, max_chars=200,
                                        key=f"case_edit_subject_{case.id}")
                category = st.text_input(t("service.field.category"), value=case.category or "", max_chars=120,
                                         key=f"case_edit_category_{case.id}")
                left, right = st.columns(2)
                with left:
                    contact_id = pick(t("service.field.contact"), people, case.contact_id, f"contact_{case.id}",
                                      "service.new.no_contact")
                    order_id = pick(t("service.field.order"), orders, case.order_id, f"order_{case.id}",
                                    "service.new.no_order")
                    product_id = pick(t("service.field.product"), products, case.product_id, f"product_{case.id}",
                                      "service.new.no_product")
                with right:
                    team_id = pick(t("service.new.queue"), teams, case.team_id, f"team_{case.id}",
                                   "service.new.no_queue")
                    assignee_id = pick(t("service.field.assignee"), owners, case.assignee_id, f"assignee_{case.id}",
                                       "service.board.unassigned")
                if st.form_submit_button(t("service.case.save_details")):
                    try:
                        update_case(get_db(), actor, case.id, CaseInput(
                            customer_id=case.customer_id, subject=subject, description=case.description,
                            status=case.status, priority=case.priority, contact_id=contact_id, assignee_id=assignee_id,
                            channel=case.channel, category=category, team_id=team_id, order_id=order_id,
                            product_id=product_id), expected_version=case.version)
                    except DomainError as error:
                        show_domain_error(error, labels={
                            "subject": t("service.field.subject"), "category": t("service.field.category"),
                            "contact_id": t("service.field.contact"), "order_id": t("service.field.order"),
                            "product_id": t("service.field.product"), "team_id": t("service.new.queue"),
                            "assignee_id": t("service.field.assignee")})
                    else:
                        STATE["case_flash"] = t("service.case.details_saved")
                        st.rerun()
    # --- reply or internal note, optionally from a macro in the reader's language ----------------
    if macros:
        picker = st.columns([3, 1], vertical_alignment="bottom")
        macro_names = {macro.id: macro.name for macro in macros}
        chosen = picker[0].selectbox(t("service.case.macro"), list(macro_names), format_func=macro_names.__getitem__,
                                     key=f"case_macro_{case.id}")
        if picker[1].button(t("service.case.use_macro"), key=f"case_macro_use_{case.id}"):
            with read_session() as session:
                rendered = macro_for_case(session, actor, chosen, case.id)
            if rendered is not None:
                STATE[f"case_reply_body_{case.id}"] = rendered[:4000]
                st.rerun()
    files_round = STATE.setdefault(f"case_files_round_{case.id}", 0)  # a new key empties the file pickers
    if STATE.pop(f"case_reply_sent_{case.id}", False):
        # set, not deleted, before the box is drawn: the browser keeps a box's text unless it is given a new one
        STATE[f"case_reply_body_{case.id}"] = ""
    with st.form(f"case_reply_{case.id}"):
        body = st.text_area(t("service.case.reply_body"), key=f"case_reply_body_{case.id}", max_chars=4000)
        internal = st.checkbox(t("service.case.internal"), key=f"case_reply_internal_{case.id}")
        reply_files = file_picker(t("case_files.reply_files"), accept_multiple_files=True,
                                  key=f"case_reply_files_{case.id}_{files_round}", max_bytes=attachment_max_bytes())
        if st.form_submit_button(t("service.case.send"), type="primary"):
            try:
                add_case_reply(get_db(), actor, case.id, body, internal=internal,
                               files=[NewFile(upload.name, upload.getvalue()) for upload in reply_files or []])
            except DomainError as error:
                show_domain_error(error, labels={"body": t("service.case.reply_body"),
                                                 "files": t("case_files.reply_files")})
            else:
                STATE[f"case_reply_sent_{case.id}"] = True  # the box is emptied on the rerun, before it is drawn
                STATE[f"case_files_round_{case.id}"] = files_round + 1
                STATE["case_flash"] = t("service.case.note_saved" if internal else "service.case.reply_sent")
                st.rerun()

# --- the case's files: downloaded as attachments (the bytes read, and the download audited, on the click) ------
st.subheader(t("case_files.title"))
if not files:
    st.caption(t("case_files.none"))
case_closed = case.status == CaseStatus.CLOSED.value
for file in files:
    removable = can_remove_case_file(actor, uploaded_by_id=file.uploaded_by_id, case_closed=case_closed)
    row = st.columns([4, 1, 1] if removable else [4, 1], vertical_alignment="center")
    who = t("case_files.from_mail") if file.source == "mail" else plain_line(file.uploaded_by or "—")
    row[0].text(file.file_name)
    row[0].caption(t("case_files.line", size=readable_size(file.size), kind=plain_line(file.content_type), who=who,
                     at=formatting.when(file.created_at)))
    row[1].download_button(
        t("case_files.download"), partial(file_bytes, get_db(), actor, case.id, file.id),
        file_name=file.file_name, mime=file.content_type, key=f"case_file_{file.id}", on_click="ignore", icon="⬇️")
    if removable:  # the popover is the confirmation: a second, explicit click removes the file for good
        with row[2].popover(t("case_files.remove"), icon="🗑️"):
            st.caption(t("case_files.remove_help"))
            if st.button(t("case_files.remove_confirm", name=plain_line(file.file_name)),
                         key=f"case_file_remove_{file.id}", type="primary"):
                try:
                    removed = remove_attachment(get_db(), actor, case.id, file.id)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE["case_flash"] = t("case_files.removed", name=plain_line(removed))
                    st.rerun()
if actor.can_write and case.status != CaseStatus.CLOSED.value:
    with st.form(f"case_attach_{case.id}"):
        new_files = file_picker(t("case_files.pick", max=readable_size(attachment_max_bytes())),
                                accept_multiple_files=True, key=f"case_attach_files_{case.id}_{files_round}",
                                max_bytes=attachment_max_bytes())
        if st.form_submit_button(t("case_files.attach")):
            try:
                attached = attach_files(get_db(), actor, case.id,
                                        [NewFile(upload.name, upload.getvalue()) for upload in new_files or []])
            except DomainError as error:
                show_domain_error(error, labels={"files": t("case_files.title")})
            else:
                STATE[f"case_files_round_{case.id}"] = files_round + 1
                STATE["case_flash"] = t("case_files.attached", count=len(attached))
                st.rerun()

# --- merge a duplicate of the same customer into this case -------------------------------------------
if mergeable:
    with st.expander(t("case_merge.title")):
        st.caption(t("case_merge.help"))
        st.text_input(t("case_merge.search"), key=f"case_merge_search_{case.id}")
        if not candidates:
            st.info(t("case_merge.none"))
        else:
            by_id = {candidate.id: candidate for candidate in candidates}
            picked = st.selectbox(
                t("case_merge.pick"), list(by_id), key=f"case_merge_pick_{case.id}",
                # an option is shown as text (never Markdown), as the macro picker's names are
                format_func=lambda value: f"#{value} · {by_id[value].subject} · "
                                          + t(f"service.status.{by_id[value].status}"))
            sure = st.checkbox(t("case_merge.confirm", id=picked), key=f"case_merge_sure_{case.id}")
            if st.button(t("case_merge.button"), key=f"case_merge_go_{case.id}", type="primary"):
                if not sure:
                    st.warning(t("case_merge.confirm_first"))
                else:
                    try:
                        merge_cases(get_db(), actor, case.id, picked, Versions(case.version, by_id[picked].version))
                    except DomainError as error:
                        show_domain_error(error)
                    else:
                        STATE.pop(f"case_merge_sure_{case.id}", None)
                        STATE["case_flash"] = t("case_merge.done", id=picked)
                        st.rerun()

# --- the SLA panel ------------------------------------------------------------------------------------
st.subheader(t("service.sla.title"))
entitlement = explanation.tier
tier = explanation.tier_names[1 if lang() == "zh-CN" else 0] if explanation.tier_names else None
if entitlement is None or tier is None:
    st.caption(t("service.sla.tier_default"))
elif case.customer_name is None:  # a case worked in the queue without sight of the customer: no order figures
    st.caption(t("service.sla.tier_hidden", tier=plain(tier)))
elif entitlement.basis == "pinned":
    st.caption(t("service.sla.tier_pinned", tier=plain(tier), until=formatting.date(entitlement.pinned_until))
               if entitlement.pinned_until else t("service.sla.tier_pinned_forever", tier=plain(tier)))
else:
    st.caption(t("service.sla.tier_orders", tier=plain(tier), total=formatting.money(entitlement.order_total),
                 months=entitlement.months, threshold=formatting.money(entitlement.threshold),
                 as_of=formatting.date(entitlement.as_of)))
if tier is not None and explanation.policy_id is not None and explanation.policy_tier_id is None:
    st.caption(t("service.sla.tier_fallback", tier=plain(tier)))
if explanation.policy_id is None:
    st.info(t("service.sla.no_policy", priority=t(f"service.priority.{case.priority}")))
else:
    paused = ", ".join(t(f"service.status.{status}") for status in explanation.paused_statuses) or "—"
    st.caption(t("service.sla.basis", calendar=plain(explanation.calendar_name or ""),
                 zone=plain(explanation.time_zone or ""), percent=explanation.warn_percent, paused=paused))
    for clock in explanation.clocks:
        with st.container(border=True):
            st.markdown(f"**{t(f'service.metric.{clock.metric}')}** · "
                        + t("service.sla.target", minutes=f"{clock.target_minutes:,}"))
            if clock.started_at is None:
                st.caption(t("service.sla.not_started"))
                continue
            if clock.met_at is not None:
                verdict = "service.sla.met_late" if clock.breached else "service.sla.met"
                st.write(t(verdict, at=formatting.when(clock.met_at), minutes=f"{clock.elapsed_minutes:,.0f}"))
            elif clock.paused:
                st.write(t("service.sla.paused", minutes=f"{clock.elapsed_minutes:,.0f}"))
            elif clock.due_at is not None:
                st.write(t("service.sla.due", at=formatting.when(clock.due_at),
                           warn=formatting.when(clock.warn_at), minutes=f"{clock.elapsed_minutes:,.0f}"))
            st.caption(t("service.sla.started", at=formatting.when(clock.started_at)))
            for pause in clock.pauses:
                st.caption(t("service.sla.pause", status=t(f"service.status.{pause.status}"),
                             start=formatting.when(pause.start),
                             end=formatting.when(pause.end) if pause.end else t("service.sla.ongoing"),
                             minutes=f"{pause.business_minutes:,.0f}"))
            if explanation.warned.get(clock.metric):
                st.caption(t("service.sla.warned_at", at=formatting.when(explanation.warned[clock.metric])))
            if explanation.breached.get(clock.metric):
                st.error(t("service.sla.breached_at", at=formatting.when(explanation.breached[clock.metric])))
    if explanation.escalation_level:
        st.warning(t(f"service.escalation.{explanation.escalation_level}"))

# --- the timeline ----------------------------------------------------------------------------------
st.subheader(t("service.case.timeline"))
for entry in timeline:
    who = plain_line(entry.actor_name or t("service.case.system"))
    when = formatting.when(entry.at)
    if entry.kind in ("reply", "note", "inbound"):
        st.markdown(f"**{t(f'service.event.{entry.kind}')}** · {who} · {when}")
        st.text(entry.body or "")
    elif entry.kind == "assignee" and (reason := entry.body or "").startswith("sla_breach:"):  # the sweep's hand-over
        st.caption(t("service.event.assignee_sla", metric=t(f"service.metric.{reason.removeprefix('sla_breach:')}"),
                     at=when))
    elif entry.kind in ("status", "priority"):
        group = "status" if entry.kind == "status" else "priority"
        before = t(f"service.{group}.{entry.from_value}") if entry.from_value else "—"
        st.caption(t(f"service.event.{entry.kind}", before=before, after=t(f"service.{group}.{entry.to_value}"),
                     who=who, at=when))
    elif entry.kind in ("merged", "merged_from"):
        st.caption(t(f"service.event.{entry.kind}", case=entry.to_value or entry.from_value, who=who, at=when))
    elif entry.kind in ("attachment", "file_removed"):
        st.caption(t(f"service.event.{entry.kind}", name=plain_line(entry.body or ""), who=who, at=when))
    elif entry.kind == "file_refused":
        st.caption(t("service.event.file_refused", name=plain_line(entry.body or ""),
                     reason=refusal_reason(entry.to_value, entry.body), at=when))
    else:
        st.caption(t(f"service.event.{entry.kind}", who=who, at=when))

# --- the case's emails: where each reply went and whether it was sent --------------------------------
if emails:
    st.subheader(t("service.case.emails"))
    for email in emails:
        status = t(f"service.email.status.{email.status}", attempts=email.attempts)
        line = t("service.case.email_line", direction=t(f"service.email.direction.{email.direction}"),
                 address=plain_line(email.address), status=status, at=formatting.when(email.at))
        if email.status == "failed":
            st.warning(line + " · " + plain_line(email.error or ""))
        else:
            st.caption(line)
