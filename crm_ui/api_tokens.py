"""API token screens shared by *My account* (the user's own) and *Users* (an admin's whole workspace).

The secret of a new token is shown once, in a code block (copyable), until the user confirms
they copied it; it lives only in that browser session's state meanwhile, never in the database.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models.api import TokenScope
from crm_core.queries.api_tokens import ApiTokenRow, list_api_tokens
from crm_core.services.api_tokens import EXPIRY_CHOICES_DAYS, issue_api_token, revoke_api_token
from crm_ui.context import choice_key, current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import when_column
from crm_ui.layout import table_or_cards
from crm_ui.text import plain

STATE = st.session_state
NEW_SECRET_STATE = "account_token_secret"
NOTICE_STATE = "api_tokens_notice"


def token_table(rows: list[ApiTokenRow], *, show_user: bool) -> None:
    """The tokens as a table: name, (user,) first characters, access, dates, status."""
    frame = pd.DataFrame([
        {
            **({t("tokens.col.user"): row.username} if show_user else {}),
            t("tokens.col.name"): row.name,
            t("tokens.col.prefix"): row.prefix + "…",
            t("tokens.col.scope"): t(f"tokens.scope.{row.scope}"),
            t("tokens.col.created"): row.created_at,
            t("tokens.col.expires"): row.expires_at,
            t("tokens.col.last_used"): row.last_used_at,
            t("tokens.col.status"): t(f"tokens.status.{row.status()}"),
        }
        for row in rows
    ])
    table_or_cards(frame, column_config={
        t("tokens.col.created"): when_column(), t("tokens.col.expires"): when_column(),
        t("tokens.col.last_used"): when_column(),
    }, name="api_tokens_workspace" if show_user else "api_tokens_own", title=t("tokens.col.name"))


def revoke_picker(rows: list[ApiTokenRow], *, key: str, show_user: bool) -> None:
    """A select box of the active tokens and a Revoke button."""
    active = {row.id: row for row in rows if row.status() == "active"}
    if not active:
        return

    def label(token_id: int) -> str:
        row = active[token_id]
        return f"{row.username}: {row.name} ({row.prefix}…)" if show_user else f"{row.name} ({row.prefix}…)"

    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox(t("tokens.revoke_pick"), list(active), format_func=label, key=f"{key}_pick")
    if right.button(t("tokens.revoke"), key=f"{key}_revoke", width="stretch") and chosen is not None:
        try:
            revoke_api_token(get_db(), current_actor(), chosen)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE[NOTICE_STATE] = t("tokens.revoked", name=plain(active[chosen].name))
            st.rerun()


def show_notice() -> None:
    """The last create/revoke notice of this session, once."""
    if notice := STATE.pop(NOTICE_STATE, None):  # a toast: the revoke button is below the list
        st.toast(notice, icon="✅")


def own_tokens() -> None:
    """*My account*: create a token (its secret shown once), list and revoke one's own tokens."""
    actor = current_actor()
    st.subheader(t("tokens.title"))
    st.caption(t("tokens.intro") + " " + t("tokens.docs_hint"))
    show_notice()
    if secret := STATE.get(NEW_SECRET_STATE):
        st.success(t("tokens.created", name=plain(secret["name"])))
        st.code(secret["secret"], language=None, wrap_lines=True)
        if st.button(t("tokens.created_done"), key="account_token_copied"):
            STATE.pop(NEW_SECRET_STATE, None)
            st.rerun()
    with read_session() as session:
        rows = list_api_tokens(session, user_id=actor.user_id)
    if rows:
        token_table(rows, show_user=False)
        revoke_picker(rows, key="account_tokens", show_user=False)
    else:
        st.info(t("tokens.none"))
    st.markdown(f"**{t('tokens.create_heading')}**")
    if not actor.can_write:
        st.caption(t("tokens.scope_analyst_note"))
    generation = STATE.setdefault("account_token_form", 0)
    expiries: list[int | None] = [*EXPIRY_CHOICES_DAYS, None]
    with st.form(f"account_token_create_{generation}"):
        name = st.text_input(t("tokens.name") + " *", max_chars=80, help=t("tokens.name_help"))
        left, right = st.columns(2)
        scope = left.radio(t("tokens.scope"), [scope.value for scope in TokenScope], horizontal=True,
                           format_func=lambda value: t(f"tokens.scope.{value}"), key=choice_key("account_token_scope"))
        expiry = right.selectbox(t("tokens.expiry"), expiries, index=2, key=choice_key("account_token_expiry"),
                                 format_func=lambda days: (t("tokens.expiry.never") if days is None
                                                           else t("tokens.expiry.days", days=days)))
        if st.form_submit_button(t("tokens.create"), type="primary"):
            try:
                issued = issue_api_token(get_db(), actor, name=name, scope=str(scope), expires_in_days=expiry)
            except DomainError as error:
                show_domain_error(error, labels={"name": t("tokens.name"), "scope": t("tokens.scope"),
                                                 "expires_in_days": t("tokens.expiry")})
            else:
                STATE[NEW_SECRET_STATE] = {"name": issued.name, "secret": issued.secret}
                STATE["account_token_form"] = generation + 1
                st.rerun()


def workspace_tokens() -> None:
    """*Users* (admins): every token of the workspace, and revoke any of them."""
    st.subheader(t("tokens.admin_heading"))
    st.caption(t("tokens.admin_intro"))
    show_notice()
    with read_session() as session:
        rows = list_api_tokens(session)
    if not rows:
        st.info(t("tokens.none_workspace"))
        return
    token_table(rows, show_user=True)
    revoke_picker(rows, key="users_tokens", show_user=True)
