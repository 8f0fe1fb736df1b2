"""Service queue: the cases to work on, soonest SLA due first (mine / my team / all), filtered and paged
on the server, each with its countdown; a case opens on the case page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models import CaseChannel, CasePriority, CaseStatus, Role, utcnow
from crm_core.queries.cases import CaseFilters, case_board, list_cases
from crm_core.queries.customer_profile import customer_contacts
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.orders import customer_orders
from crm_core.queries.products import list_products
from crm_core.queries.users import list_teams
from crm_core.services.cases import CaseInput, create_case
from crm_ui import formatting
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, filters_label, sla_countdown, when_column
from crm_ui.text import plain, plain_line

PER_PAGE = 50
STATE = st.session_state
MINE, TEAM, ALL = "mine", "team", "all"
ANY = ""
UNRESOLVED = "unresolved"  # the list's default: the cases still to work on (not resolved or closed)
LIST, BOARD = "list", "board"
PRIORITY_MARK = {"urgent": "🔴", "high": "🟠", "normal": "🔵", "low": "⚪"}


def reset_page() -> None:
    STATE["service_queue_positions"] = [None]


actor = current_actor()
now = utcnow()
STATE.setdefault("service_queue_positions", [None])
st.title(t("service.queue.title"))
if created := STATE.pop("service_queue_created", None):
    st.success(t("service.new.created", id=created))
    st.page_link("pages/case.py", label=t("service.queue.go"), icon="➡️", query_params={"case_id": str(created)})

if actor.can_write:
    with st.expander(t("service.new.title")):
        found = st.text_input(t("service.new.find_customer"), key="service_new_search", max_chars=200)
        with read_session() as session:
            matches = list_customers(session, filters=CustomerFilters(search=found), per_page=20,
                                     with_total=False).items if found.strip() else []
            teams = list_teams(session)
        if found.strip() and not matches:
            st.caption(t("service.new.no_customer"))
        if matches:
            names = {row.id: row.name for row in matches}
            team_names = {team_id: name for team_id, name, *_ in teams}
            # the customer outside the form: its contacts and orders are what the form offers
            customer_id = st.selectbox(t("service.field.customer"), list(names), key="service_new_customer",
                                       format_func=names.__getitem__)
            with read_session() as session:
                people = {row.id: row.name for row in customer_contacts(session, customer_id)}
                orders = {row.id: f"{row.order_number} · {formatting.date(row.ordered_at)}"
                          for row in customer_orders(session, customer_id, limit=50)}
                products = {row.id: f"{row.name} ({row.sku})" if row.sku else row.name
                            for row in list_products(session, active_only=True)}
            with st.form("service_new_case"):
                subject = st.text_input(t("service.field.subject"), key="service_new_subject", max_chars=200)
                description = st.text_area(t("service.new.description"), key="service_new_description",
                                           max_chars=20_000)
                about = st.columns(3)
                contact_id = about[0].selectbox(
                    t("service.field.contact"), [None, *people], key=f"service_new_contact_{customer_id}",
                    format_func=lambda key: people[key] if key else t("service.new.no_contact"))
                order_id = about[1].selectbox(
                    t("service.field.order"), [None, *orders], key=f"service_new_order_{customer_id}",
                    format_func=lambda key: orders[key] if key else t("service.new.no_order"))
                product_id = about[2].selectbox(
                    t("service.field.product"), [None, *products], key="service_new_product",
                    format_func=lambda key: products[key] if key else t("service.new.no_product"))
                columns = st.columns(4)
                new_priority = columns[0].selectbox(
                    t("service.field.priority"), [p.value for p in CasePriority], index=2,
                    format_func=lambda value: t(f"service.priority.{value}"), key="service_new_priority")
                new_channel = columns[1].selectbox(
                    t("service.field.channel"), [c.value for c in CaseChannel],
                    format_func=lambda value: t(f"service.channel.{value}"), key="service_new_channel")
                category = columns[2].text_input(t("service.field.category"), key="service_new_category",
                                                 max_chars=120)
                queue_options: list[int | None] = [None, *team_names]
                queue = columns[3].selectbox(
                    t("service.new.queue"), queue_options, key="service_new_queue",
                    index=queue_options.index(min(actor.team_ids)) if actor.team_ids and min(actor.team_ids)
                    in queue_options else 0,
                    format_func=lambda key: team_names[key] if key else t("service.new.no_queue"))
                if st.form_submit_button(t("service.new.create"), type="primary"):
                    try:
                        case_id = create_case(get_db(), actor, CaseInput(
                            customer_id=customer_id, subject=subject, description=description, status="new",
                            priority=new_priority, channel=new_channel, category=category, team_id=queue,
                            contact_id=contact_id, order_id=order_id, product_id=product_id))
                    except DomainError as error:
                        show_domain_error(error, labels={
                            "subject": t("service.field.subject"), "description": t("service.new.description"),
                            "category": t("service.field.category"), "status": t("service.field.status"),
                            "team_id": t("service.new.queue"), "contact_id": t("service.field.contact"),
                            "order_id": t("service.field.order"), "product_id": t("service.field.product")})
                    else:
                        STATE["service_queue_created"] = case_id
                        reset_page()
                        st.rerun()

scopes = [MINE] + ([TEAM] if actor.team_ids else []) + [ALL]
# as on Tasks, a manager's day starts with the team's queue (their own is often empty); an admin's or
# analyst's with everything; an agent's with their own cases
start = TEAM if actor.role == Role.MANAGER and TEAM in scopes else ALL if actor.sees_whole_tenant else MINE
top = st.columns([3, 2], vertical_alignment="bottom")
scope = top[0].radio(t("service.queue.scope"), scopes, format_func=lambda value: t(f"service.queue.scope.{value}"),
                     key="service_queue_scope", horizontal=True, on_change=reset_page, index=scopes.index(start))
view = top[1].segmented_control(t("service.queue.view"), [LIST, BOARD], default=LIST, key="service_queue_view",
                                format_func=lambda value: t(f"service.queue.view.{value}")) or LIST
# the search in sight; the other filters in a popover that says how many are on (a phone shows the cases
# right below, not four boxes first)
bar = st.columns([3, 1], vertical_alignment="bottom")
search = bar[0].text_input(t("service.queue.search"), key="service_queue_search", max_chars=200,
                           on_change=reset_page)
filters_on = [STATE.get(key, default) != default for key, default in (
    ("service_queue_status", UNRESOLVED), ("service_queue_priority", ANY), ("service_queue_channel", ANY),
    ("service_queue_breached", False))]
with bar[1].popover(filters_label(sum(filters_on)), width="stretch"):
    status = ANY if view == BOARD else st.selectbox(
        t("service.field.status"), [UNRESOLVED, ANY] + [status.value for status in CaseStatus],
        format_func=lambda value: t("service.queue.unresolved") if value == UNRESOLVED
        else t(f"service.status.{value}") if value else t("service.any"),
        key="service_queue_status", on_change=reset_page)
    priority = st.selectbox(t("service.field.priority"), [ANY] + [priority.value for priority in CasePriority],
                            format_func=lambda value: t(f"service.priority.{value}") if value else t("service.any"),
                            key="service_queue_priority", on_change=reset_page)
    channel = st.selectbox(t("service.field.channel"), [ANY] + [channel.value for channel in CaseChannel],
                           format_func=lambda value: t(f"service.channel.{value}") if value else t("service.any"),
                           key="service_queue_channel", on_change=reset_page)
    breached_only = st.checkbox(t("service.queue.breached_only"), key="service_queue_breached", on_change=reset_page)

team_id = next(iter(sorted(actor.team_ids)), None) if scope == TEAM else None
filters = CaseFilters(
    assignee_id=actor.user_id if scope == MINE else None, team_id=team_id,
    status=None if status in (ANY, UNRESOLVED) else status, unresolved=status == UNRESOLVED,
    priority=priority or None, channel=channel or None, search=search, breached_only=breached_only,
)

if view == BOARD:
    # the case board: a column per status a case is worked in, its soonest-due cards first
    with read_session() as session:
        board = case_board(session, filters)
    st.caption(t("service.board.caption"))
    for column, lane in zip(st.columns(len(board)), board, strict=True):
        count = f"{lane.count:,}{'+' if lane.count_capped else ''}"
        column.markdown(f"**{t(f'service.status.{lane.status}')}** · {count}")
        for card in lane.cards:
            with column.container(border=True):
                st.page_link("pages/case.py", label=f"#{card.id}", query_params={"case_id": str(card.id)})
                st.markdown(plain(card.subject))  # wraps in a narrow column, where a link's label is cut
                st.caption(PRIORITY_MARK.get(card.priority, "") + " " + t(f"service.priority.{card.priority}")
                           + " · " + plain_line(card.assignee_name or t("service.board.unassigned")))
                left = sla_countdown(card.sla_due_at, now)
                if card.escalation_level >= 2:
                    st.caption(":red[" + left + "]")
                elif left != EMPTY:
                    st.caption(left)
        if lane.count > len(lane.cards):
            column.caption(t("service.board.more", count=f"{lane.count - len(lane.cards):,}"
                             + ("+" if lane.count_capped else "")))
    st.stop()

positions = STATE["service_queue_positions"]
with read_session() as session:
    page = list_cases(session, filters=filters, sort="sla_due", descending=False, per_page=PER_PAGE,
                      after=positions[-1], count_cap=10_000)

total = f"{page.total:,}{'+' if page.total_capped else ''}"
st.caption(t("service.queue.count", count=total))
if page.items:
    frame = pd.DataFrame([{
        "id": row.id,
        t("service.field.subject"): row.subject,
        t("service.field.customer"): row.customer_name or "—",
        t("service.field.status"): t(f"service.status.{row.status}"),
        t("service.field.priority"): t(f"service.priority.{row.priority}"),
        t("service.field.escalation"): row.escalation_level,
        t("service.field.countdown"): sla_countdown(row.sla_due_at, now),
        t("service.field.assignee"): row.assignee_name or "—",
        t("service.field.channel"): t(f"service.channel.{row.channel}"),
        t("service.field.sla_due"): row.sla_due_at,
    } for row in page.items])
    frame[t("service.field.sla_due")] = pd.to_datetime(frame[t("service.field.sla_due")])
    # ten columns, what an agent acts on first (escalation, time left) before what they look up (channel, the due
    # moment): on a 1400 px screen the last two are reached by scrolling the table; the short ones stay narrow
    small = {t(f"service.field.{name}"): st.column_config.TextColumn(width="small")
             for name in ("priority", "channel")}
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "id": st.column_config.NumberColumn("#", format="%d", width="small"),
        t("service.field.subject"): st.column_config.TextColumn(width="medium"),
        **small,
        t("service.field.sla_due"): when_column(),
        t("service.field.escalation"): st.column_config.NumberColumn(format="%d", width="small"),
    }, placeholder=EMPTY)
    by_id = {row.id: row for row in page.items}
    chosen = st.selectbox(t("service.queue.open_case"), list(by_id), key="service_queue_pick",
                          format_func=lambda case_id: f"#{case_id} {by_id[case_id].subject}")
    st.page_link("pages/case.py", label=t("service.queue.go"), icon="➡️", query_params={"case_id": str(chosen)})
else:
    st.info(t("service.queue.empty"))

pager = st.columns([1, 2, 1])
if pager[0].button(t("pager.previous"), disabled=len(positions) <= 1, key="service_queue_previous"):
    positions.pop()
    st.rerun()
pager[1].caption(t("service.queue.page", page=len(positions)))
if pager[2].button(t("pager.next"), disabled=not page.has_next, key="service_queue_next"):
    positions.append(page.next_position)
    st.rerun()
