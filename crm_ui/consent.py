"""The consent ledger on screen (decisions 0046, 0047): the Customer 360's consent tab — per person and channel
the state now with its lawful basis and proof, the history, a form to record a grant or a withdrawal — and the
do-not-contact page (list, search, add; take off for managers and admins). Addresses, proofs and reasons are
users' text: shown in tables or as plain text, never as Markdown."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.models import Role
from crm_core.models.marketing import ANY_CHANNEL, Channel, LawfulBasis
from crm_core.queries.campaigns import customer_memberships
from crm_core.queries.consent import ConsentState, consent_history, consent_state, list_do_not_contact
from crm_core.services.campaigns import stop_member
from crm_core.services.consent import (
    USER_PROOF_KINDS,
    ConsentInput,
    add_do_not_contact,
    record_consent,
    remove_do_not_contact,
)
from crm_ui.context import choice_key, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, number, when
from crm_ui.layout import form_cells, table_or_cards
from crm_ui.pager import numbered_pager
from crm_ui.text import plain, plain_line

STATE = st.session_state
CHANNELS = [channel.value for channel in Channel]
BASES = [basis.value for basis in LawfulBasis]
HISTORY_PAGE_SIZE = 20
DNC_PAGE_SIZE = 25


def channel_label(channel: str) -> str:
    return t(f"consent.channel.{channel}")


def basis_label(basis: str | None) -> str:
    return t(f"consent.basis.{basis}") if basis else EMPTY


def proof_text(kind: str | None, proof: str) -> str:
    if not kind:
        return EMPTY
    label = t(f"consent.proof_kind.{kind}")
    return f"{label}: {proof}" if proof else label


def _labels() -> dict[str, str]:
    return {name: t(f"consent.field.{name}") for name in
            ("contact", "channel", "action", "basis", "proof_kind", "proof", "address")} | {
        "contact_id": t("consent.field.contact")}


def consent_tab(actor: Actor, customer_id: int, customer_name: str, contacts: list[tuple[int, str]]) -> None:
    """The 360's consent tab of a customer the actor sees; ``contacts`` its (id, name) pairs."""
    prefix = f"consent_{customer_id}"
    st.caption(t("consent.intro"))
    if notice := STATE.pop(f"{prefix}_notice", None):
        st.success(notice)
    with read_session() as session:
        states = consent_state(session, actor.tenant_id, customer_id) or []
        page_number = int(STATE.get(f"{prefix}_page", 1))
        history = consent_history(session, customer_id, page=page_number, per_page=HISTORY_PAGE_SIZE)
    st.subheader(t("consent.current"))
    if states:
        table_or_cards([_state_row(row, customer_name) for row in states], name=f"{prefix}_now",
                       facts=[t("consent.col.channel"), t("consent.col.address"), t("consent.col.state"),
                              t("consent.col.proof")])
    else:
        st.info(t("consent.no_addresses"))
    st.subheader(t("consent.history"))
    names = dict(contacts)
    if history.items:
        table_or_cards([{
            t("consent.col.when"): when(entry.recorded_at),
            t("consent.col.who"): names.get(entry.contact_id or 0, customer_name),
            t("consent.col.channel"): channel_label(entry.channel), t("consent.col.address"): entry.address,
            t("consent.col.action"): t(f"consent.action.{entry.action}"),
            t("consent.col.basis"): basis_label(entry.basis),
            t("consent.col.proof"): proof_text(entry.proof_kind, entry.proof),
            t("consent.col.by"): entry.recorded_by or t("consent.by_person_or_system"),
        } for entry in history.items], name=f"{prefix}_history")
        if page_number > 1 or history.has_next:
            numbered_pager(f"{prefix}_page", page_number, history.has_next, str(page_number))
    else:
        st.info(t("consent.no_history"))
    if actor.can_write:
        consent_form(actor, customer_id, customer_name, contacts, prefix)
    campaigns_now(actor, customer_id, prefix)


def campaigns_now(actor: Actor, customer_id: int, prefix: str) -> None:
    """The campaigns the customer is in now; its owner (or a manager/admin) stops one for this customer."""
    with read_session() as session:
        memberships = customer_memberships(session, customer_id)
    if not memberships:
        return
    st.subheader(t("consent.campaigns_now"))
    for membership in memberships:
        with st.container(border=True, key=f"{prefix}_member_{membership.member_id}"):
            st.markdown(f"**{plain_line(membership.campaign)}**")
            st.caption(t("consent.campaign_state", state=t(f"campaigns.member.{membership.state}"),
                         next=when(membership.next_run_at)))
            if actor.can_write and st.button(t("consent.stop_campaign"), key=f"{prefix}_stop_{membership.member_id}"):
                try:
                    stop_member(get_db(), actor, membership.member_id)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE[f"{prefix}_notice"] = t("consent.campaign_stopped", campaign=membership.campaign)
                    st.rerun()


def _state_row(row: ConsentState, customer_name: str) -> dict[str, Any]:
    return {
        t("consent.col.who"): row.who if row.contact_id is not None else t("consent.customer_itself",
                                                                            name=customer_name),
        t("consent.col.channel"): channel_label(row.channel), t("consent.col.address"): row.address,
        t("consent.col.state"): t(f"consent.state.{row.state}"), t("consent.col.basis"): basis_label(row.basis),
        t("consent.col.since"): when(row.since) if row.since else EMPTY,
        t("consent.col.proof"): proof_text(row.proof_kind, row.proof),
        t("consent.col.by"): (row.recorded_by or t("consent.by_person_or_system")) if row.action else EMPTY,
    }


def consent_form(actor: Actor, customer_id: int, customer_name: str, contacts: list[tuple[int, str]],
                 prefix: str) -> None:
    """Record a grant or a withdrawal; a refused form keeps what was typed (the same form key) and says why."""
    people: list[int | None] = [*(contact_id for contact_id, _ in contacts), None]
    names = dict(contacts)
    generation = STATE.setdefault(f"{prefix}_generation", 0)
    st.subheader(t("consent.form_title"))
    with st.form(f"{prefix}_form_{generation}", clear_on_submit=False):
        cells = form_cells(6)  # in reading order on a phone too
        person = next(cells).selectbox(t("consent.field.contact"), people, key=choice_key(f"{prefix}_person"),
                                       format_func=lambda v: names[v] if v is not None else t("consent.customer_itself",
                                       name=customer_name))
        channel = next(cells).selectbox(t("consent.field.channel"), CHANNELS, format_func=channel_label,
                                        key=choice_key(f"{prefix}_channel"))
        action = next(cells).radio(t("consent.field.action"), ["grant", "withdraw"], horizontal=True,
                                   format_func=lambda v: t(f"consent.action.{v}"), key=choice_key(f"{prefix}_action"))
        basis = next(cells).selectbox(t("consent.field.basis"), BASES, format_func=basis_label,
                                      key=choice_key(f"{prefix}_basis"))
        proof_kind = next(cells).selectbox(t("consent.field.proof_kind"), list(USER_PROOF_KINDS),
                                           format_func=lambda v: t(f"consent.proof_kind.{v}"),
                                           index=list(USER_PROOF_KINDS).index("manual"),
                                           key=choice_key(f"{prefix}_proof_kind"))
        address = next(cells).text_input(t("consent.field.address"), help=t("consent.address_help"), max_chars=254)
        proof = st.text_area(t("consent.field.proof"), help=t("consent.proof_help"), max_chars=1000)
        saved = st.form_submit_button(t("consent.save"), type="primary")
    if not saved:
        return
    form = ConsentInput(customer_id, channel, action, basis=basis if action == "grant" else "",
                        proof_kind=proof_kind, proof=proof, contact_id=person, address=address)
    try:
        record_consent(get_db(), actor, form)
    except DomainError as error:
        show_domain_error(error, labels=_labels())
        return
    STATE[f"{prefix}_generation"] = generation + 1
    STATE[f"{prefix}_page"] = 1
    STATE[f"{prefix}_notice"] = t("consent.saved", channel=channel_label(channel),
                                  action=t(f"consent.action.{action}"))
    st.rerun()


# --- the do-not-contact page ----------------------------------------------------------------------------------


def do_not_contact_page(actor: Actor) -> None:
    """The tenant's do-not-contact list: searched and paged on the server; add (anyone who writes), take off
    (managers and admins)."""
    st.title(t("dnc.title"))
    st.caption(t("dnc.intro"))
    if notice := STATE.pop("dnc_notice", None):
        st.success(notice)
    left, right = st.columns([3, 2])
    search = left.text_input(t("dnc.search"), key="dnc_search", max_chars=200)
    channel = right.selectbox(t("dnc.channel_filter"), [None, *CHANNELS, ANY_CHANNEL], key=choice_key("dnc_channel"),
                              format_func=lambda v: t("dnc.any_channel") if v is None else channel_label(v))
    filters = (search, channel)
    if STATE.get("dnc_filters") != filters:  # a new search starts at its first page
        STATE["dnc_filters"], STATE["dnc_page"] = filters, 1
    page_number = int(STATE.get("dnc_page", 1))
    with read_session() as session:
        page = list_do_not_contact(session, search=search, channel=channel, page=page_number,
                                   per_page=DNC_PAGE_SIZE)
    if page.items:
        st.caption(t("dnc.count", count=number(page.total or 0)))
        table_or_cards([{
            t("dnc.col.address"): row.address, t("dnc.col.channel"): channel_label(row.channel),
            t("dnc.col.reason"): row.reason, t("dnc.col.added_at"): when(row.added_at),
            t("dnc.col.added_by"): row.added_by or EMPTY,
        } for row in page.items], name="dnc_list")
        if page_number > 1 or page.has_next:
            numbered_pager("dnc_page", page_number, page.has_next,
                           t("dnc.position", page=page_number, pages=page.page_count or page_number))
    else:
        st.info(t("dnc.empty"))
    if actor.can_write:
        add_form(actor)
    if actor.role in (Role.ADMIN, Role.MANAGER) and page.items:
        remove_form(actor, [(row.id, row.address, row.channel) for row in page.items])


def add_form(actor: Actor) -> None:
    generation = STATE.setdefault("dnc_generation", 0)
    st.subheader(t("dnc.add_title"))
    with st.form(f"dnc_add_{generation}", clear_on_submit=False):
        left, right = st.columns([3, 2])
        address = left.text_input(t("dnc.address"), max_chars=254)
        channel = right.selectbox(t("dnc.channel_filter"), [ANY_CHANNEL, *CHANNELS], format_func=channel_label,
                                  key=choice_key(f"dnc_add_channel_{generation}"))
        reason = st.text_input(t("dnc.reason"), max_chars=500)
        added = st.form_submit_button(t("dnc.add"), type="primary")
    if not added:
        return
    try:
        add_do_not_contact(get_db(), actor, channel, address, reason)
    except DomainError as error:
        show_domain_error(error, labels={"address": t("dnc.address"), "channel": t("dnc.channel_filter"),
                                         "reason": t("dnc.reason")})
        return
    STATE["dnc_generation"] = generation + 1
    STATE["dnc_notice"] = t("dnc.added", address=plain(address.strip()))
    st.rerun()


def remove_form(actor: Actor, entries: list[tuple[int, str, str]]) -> None:
    st.subheader(t("dnc.remove_title"))
    labels = {entry_id: f"{address} · {channel_label(channel)}" for entry_id, address, channel in entries}
    with st.form("dnc_remove"):
        entry_id = st.selectbox(t("dnc.remove_pick"), list(labels), format_func=lambda v: labels[v])
        removed = st.form_submit_button(t("dnc.remove"))
    if not removed or entry_id is None:
        return
    try:
        remove_do_not_contact(get_db(), actor, entry_id)
    except DomainError as error:
        show_domain_error(error)
        return
    STATE["dnc_notice"] = t("dnc.removed", address=plain(labels[entry_id]))
    st.rerun()
