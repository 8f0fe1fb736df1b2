"""The Webhooks page's sections: notices, settings, new subscription, the list, actions, the delivery log.

Each section calls one query or service of ``crm_core`` (the rules live there) and draws the
result. URLs, descriptions, payloads and response bodies are data: shown as text
(``plain``, ``st.code``, dataframes), never as Markdown.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.models.webhooks import DeliveryStatus
from crm_core.queries.webhooks import (
    DeliveryFilters,
    SubscriptionRow,
    allow_private_targets,
    delivery_attempts,
    delivery_payload,
    disabled_for_failures,
    list_deliveries,
    list_subscriptions,
)
from crm_core.rules.webhooks import EVENT_TYPES, PING
from crm_core.services.webhooks import (
    SubscriptionForm,
    create_subscription,
    replay_delivery,
    replay_range,
    rotate_secret,
    send_ping,
    set_allow_private_targets,
    set_enabled,
    update_subscription,
)
from crm_ui.context import get_db, read_session, show_domain_error, t
from crm_ui.formatting import date_input_format, filters_label
from crm_ui.layout import CardPick, picked_here, table_or_cards
from crm_ui.text import plain

STATE = st.session_state
FLASH = "webhooks_flash"
SECRET = "webhooks_secret"  # (subscription id, secret): shown once, after the rerun that made it
PAGE = "webhooks_log_page"
EVENT_CHOICES = [*EVENT_TYPES, *sorted({f"{name.split('.', 1)[0]}.*" for name in EVENT_TYPES})]


def _flash(message: str) -> None:
    STATE[FLASH] = message
    st.rerun()


def _when(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else ""


def flash_and_secret() -> None:
    """The message of the last action, and a secret made by it (shown this once)."""
    if message := STATE.pop(FLASH, None):  # a toast: the button was on a card or form far down the page
        st.toast(message, icon="✅")
    if made := STATE.pop(SECRET, None):
        st.warning(t("webhooks.secret.once"))
        st.code(made, language=None, wrap_lines=True)


def notices() -> None:
    """Tell every admin which endpoints the system disabled after 5 days of failures."""
    with read_session() as session:
        disabled = disabled_for_failures(session)
    for row in disabled:
        st.error(t("webhooks.notice.disabled", url=plain(row.url), when=_when(row.disabled_at)))


def settings_section(actor: Actor) -> None:
    """The tenant's setting for private targets."""
    with read_session() as session:
        allowed = allow_private_targets(session)
    with st.expander(t("webhooks.settings.header")), st.form("webhooks_settings"):
        allow = st.checkbox(t("webhooks.settings.allow_private"), value=allowed,
                            help=t("webhooks.settings.allow_private_help"))
        if st.form_submit_button(t("webhooks.settings.save")):
            try:
                set_allow_private_targets(get_db(), actor, allow)
            except DomainError as error:
                show_domain_error(error)
            else:
                _flash(t("webhooks.settings.saved"))


def create_section(actor: Actor) -> None:
    """The new-subscription form; the input stays when it is refused."""
    with st.expander(t("webhooks.create.header")), st.form("webhooks_create"):
        url = st.text_input(t("webhooks.create.url"), key="webhooks_new_url", placeholder="https://")
        description = st.text_input(t("webhooks.create.description"), key="webhooks_new_description")
        chosen = st.multiselect(t("webhooks.create.events"), EVENT_CHOICES, key="webhooks_new_events")
        if st.form_submit_button(t("webhooks.create.submit"), type="primary"):
            try:
                _id, secret = create_subscription(get_db(), actor, SubscriptionForm(url, list(chosen), description))
            except DomainError as error:
                show_domain_error(error, labels={"url": t("webhooks.create.url"),
                                                 "event_types": t("webhooks.create.events"),
                                                 "description": t("webhooks.create.description")})
            else:
                STATE[SECRET] = secret
                _flash(t("webhooks.created"))


def _state_label(row: SubscriptionRow) -> str:
    if row.enabled:
        return t("webhooks.state.enabled")
    if row.disabled_reason == "failures":
        return t("webhooks.state.disabled_failures")
    return t("webhooks.state.disabled_admin")


def subscriptions_section() -> list[SubscriptionRow]:
    """The tenant's subscriptions as a table; returns them."""
    st.subheader(t("webhooks.list.header"))
    with read_session() as session:
        rows = list_subscriptions(session)
    if not rows:
        st.info(t("webhooks.list.empty"))
        return rows
    table = pd.DataFrame({
        t("webhooks.col.url"): [row.url for row in rows],
        t("webhooks.col.description"): [row.description for row in rows],
        t("webhooks.col.events"): [", ".join(row.event_types) for row in rows],
        t("webhooks.col.state"): [_state_label(row) for row in rows],
        t("webhooks.col.delivered"): [row.counts.get("succeeded", 0) for row in rows],
        t("webhooks.col.pending"): [row.counts.get("pending", 0) for row in rows],
        t("webhooks.col.failed"): [row.counts.get("failed", 0) for row in rows],
    })
    # on a phone a card's button picks its subscription for the actions and the log below
    table_or_cards(table, name="webhooks_list",
                   pick=CardPick(t("webhooks.pick_this"), "webhooks_pick", [row.id for row in rows]))
    return rows


def pick_subscription(rows: list[SubscriptionRow]) -> SubscriptionRow | None:
    """The subscription the actions and the log are about."""
    if not rows:
        return None
    by_id = {row.id: row for row in rows}
    picked_here("webhooks_pick")
    chosen = st.selectbox(t("webhooks.pick"), list(by_id), key="webhooks_pick",
                          format_func=lambda sub_id: f"#{sub_id} {by_id[sub_id].url}")
    return by_id.get(chosen) if chosen is not None else None


def actions(actor: Actor, row: SubscriptionRow) -> None:
    """Enable or disable, rotate the secret, send a ping."""
    buttons = st.container(horizontal=True)  # one row that wraps on a phone
    try:
        if row.enabled and buttons.button(t("webhooks.action.disable"), key="webhooks_disable"):
            set_enabled(get_db(), actor, row.id, False, version=row.version)
            _flash(t("webhooks.disabled_done"))
        if not row.enabled and buttons.button(t("webhooks.action.enable"), key="webhooks_enable"):
            set_enabled(get_db(), actor, row.id, True, version=row.version)
            _flash(t("webhooks.enabled_done"))
        if buttons.button(t("webhooks.action.rotate"), key="webhooks_rotate"):
            STATE[SECRET] = rotate_secret(get_db(), actor, row.id)
            _flash(t("webhooks.rotated"))
        if buttons.button(t("webhooks.action.ping"), key="webhooks_ping"):
            send_ping(get_db(), actor, row.id)
            _flash(t("webhooks.ping_queued"))
    except DomainError as error:
        show_domain_error(error)


def edit_section(actor: Actor, row: SubscriptionRow) -> None:
    """Change the chosen subscription's URL, event types and description, on the version shown."""
    labels = {"url": t("webhooks.create.url"), "event_types": t("webhooks.create.events"),
              "description": t("webhooks.create.description")}
    # the form edits the subscription as first shown (kept in the session): a change another admin saves
    # meanwhile neither resets the typing nor is overwritten; the save is refused as stale instead
    seen = STATE.setdefault(f"webhooks_edit_seen_{row.id}", row)
    if seen.version != row.version and st.button(t("webhooks.edit.reload"), key="webhooks_edit_reload"):
        STATE.pop(f"webhooks_edit_seen_{row.id}", None)
        st.rerun()
    row = seen
    with st.expander(t("webhooks.edit.header")), st.form(f"webhooks_edit_{row.id}_{row.version}"):
        url = st.text_input(labels["url"], value=row.url)
        description = st.text_input(labels["description"], value=row.description)
        known = [choice for choice in row.event_types if choice in EVENT_CHOICES]
        chosen = st.multiselect(labels["event_types"], EVENT_CHOICES, default=known)
        if st.form_submit_button(t("webhooks.edit.submit"), type="primary"):
            try:
                update_subscription(get_db(), actor, row.id, SubscriptionForm(url, list(chosen), description),
                                    version=row.version)
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE.pop(f"webhooks_edit_seen_{row.id}", None)
                _flash(t("webhooks.edit.saved"))


def _filters() -> DeliveryFilters:
    statuses = [None, *(status.value for status in DeliveryStatus)]
    types = [None, *EVENT_TYPES, PING]
    # in a popover that counts them: a phone shows the log, not four boxes first
    filters_on = sum(1 for key in ("webhooks_log_status", "webhooks_log_type", "webhooks_log_since",
                                   "webhooks_log_until") if STATE.get(key) is not None)
    box = st.popover(filters_label(filters_on))
    status = box.selectbox(t("webhooks.log.status"), statuses, key="webhooks_log_status",
                                  format_func=lambda s: t(f"webhooks.status.{s}") if s else t("webhooks.log.any"))
    event_type = box.selectbox(t("webhooks.log.event_type"), types, key="webhooks_log_type",
                                    format_func=lambda s: s or t("webhooks.log.any"))
    since = box.date_input(t("webhooks.log.since"), value=None, key="webhooks_log_since",
                           format=date_input_format())
    until = box.date_input(t("webhooks.log.until"), value=None, key="webhooks_log_until",
                           format=date_input_format())
    return DeliveryFilters(
        status=status, event_type=event_type,
        since=dt.datetime.combine(since, dt.time.min) if isinstance(since, dt.date) else None,
        until=dt.datetime.combine(until, dt.time.max) if isinstance(until, dt.date) else None,
    )


def delivery_log(actor: Actor, row: SubscriptionRow) -> None:
    """The subscription's deliveries (filtered, paged in SQL); one delivery's attempts; replay."""
    st.subheader(t("webhooks.log.header"))
    filters = _filters()
    view = f"{row.id}:{filters}"  # another subscription or filter starts again at page 1
    page_number = int(STATE[PAGE][1]) if STATE.get(PAGE, (None,))[0] == view else 1
    with read_session() as session:
        page = list_deliveries(session, row.id, filters=filters, page=page_number)
    if not page.items:
        st.info(t("webhooks.log.empty"))
    else:
        table_or_cards(pd.DataFrame({
            t("webhooks.col.created"): [_when(item.created_at) for item in page.items],
            t("webhooks.col.event"): [item.event_type for item in page.items],
            t("webhooks.col.status"): [t(f"webhooks.status.{item.status}") for item in page.items],
            t("webhooks.col.attempts"): [item.attempts for item in page.items],
            t("webhooks.col.code"): [item.last_status_code for item in page.items],
            t("webhooks.col.latency"): [item.last_latency_ms for item in page.items],
            t("webhooks.col.next"): [_when(item.next_attempt_at) for item in page.items],
            t("webhooks.col.webhook_id"): [item.webhook_id for item in page.items],
            t("webhooks.col.error"): [item.last_error or "" for item in page.items],
        }), name="webhooks_log", title=t("webhooks.col.event"),
            facts=[t(f"webhooks.col.{part}") for part in ("created", "status", "attempts", "code", "next", "error")],
            pick=CardPick(t("webhooks.delivery.open"), "webhooks_delivery", [item.id for item in page.items]))
    # one row on every width (columns would stack on a phone)
    pager = st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center")
    if page.page > 1 and pager.button(t("webhooks.log.prev"), key="webhooks_prev"):
        STATE[PAGE] = (view, page.page - 1)
        st.rerun()
    pager.caption(t("webhooks.log.page", page=page.page))
    if page.has_next and pager.button(t("webhooks.log.next"), key="webhooks_next"):
        STATE[PAGE] = (view, page.page + 1)
        st.rerun()
    if page.items:
        _delivery_detail(actor, {item.id: item.webhook_id for item in page.items})
    _replay_range(actor, row)


def _delivery_detail(actor: Actor, choices: dict[int, str]) -> None:
    picked_here("webhooks_delivery")  # a card's "Details and replay" brings them into view
    delivery_id = st.selectbox(t("webhooks.delivery.pick"), list(choices), key="webhooks_delivery",
                               format_func=lambda d: f"#{d} {choices[d]}")
    if delivery_id is None:
        return
    with read_session() as session:
        attempts = delivery_attempts(session, delivery_id)
        payload = delivery_payload(session, delivery_id)
    st.caption(t("webhooks.delivery.payload"))
    st.code(payload or "", language="json", wrap_lines=True)
    if not attempts:
        st.caption(t("webhooks.delivery.no_attempts"))
    for attempt in attempts:
        st.markdown(t("webhooks.delivery.attempt_line", attempt=attempt.attempt, when=_when(attempt.attempted_at),
                      status=attempt.status_code if attempt.status_code is not None else "—",
                      latency=attempt.latency_ms if attempt.latency_ms is not None else "—"))
        if attempt.error:
            st.caption(t("webhooks.delivery.error", error=plain(attempt.error)))
        st.caption(t("webhooks.delivery.request"))
        st.code("\n".join(f"{name}: {value}" for name, value in attempt.request_headers.items()), language=None,
                wrap_lines=True)
        st.caption(t("webhooks.delivery.response"))
        st.code(attempt.response_body, language=None, wrap_lines=True)
    if st.button(t("webhooks.delivery.replay"), key="webhooks_replay_one"):
        try:
            replay_delivery(get_db(), actor, delivery_id)
        except DomainError as error:
            show_domain_error(error)
        else:
            _flash(t("webhooks.replayed"))


def _replay_range(actor: Actor, row: SubscriptionRow) -> None:
    with st.expander(t("webhooks.replay_range.header")), st.form("webhooks_replay_range"):
        dates = st.container(horizontal=True)
        today = dt.date.today()
        since = dates.date_input(t("webhooks.log.since"), value=today, key="webhooks_range_since",
                                 format=date_input_format())
        until = dates.date_input(t("webhooks.log.until"), value=today, key="webhooks_range_until",
                                 format=date_input_format())
        only_failed = st.checkbox(t("webhooks.replay_range.only_failed"), key="webhooks_range_failed")
        if st.form_submit_button(t("webhooks.replay_range.submit")):
            statuses = [DeliveryStatus.FAILED.value, DeliveryStatus.CANCELLED.value] if only_failed else None
            try:
                count = replay_range(get_db(), actor, row.id, dt.datetime.combine(since, dt.time.min),  # type: ignore[arg-type]
                                     dt.datetime.combine(until, dt.time.max), statuses=statuses)  # type: ignore[arg-type]
            except DomainError as error:
                show_domain_error(error, labels={"until": t("webhooks.log.until"), "since": t("webhooks.log.since")})
            else:
                _flash(t("webhooks.replay_range.done", count=count))
