"""Customer 360: one customer's fields, contacts, deals, orders, activities, tasks, cases and
change history; edit (with optimistic locking) or archive it; log an activity; add a
contact, a deal or an order. The customer comes from ``?customer_id=`` (links from the grid)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError, StaleRecord
from crm_core.models import ActivityType, CustomerKind, LifecycleStage, OrderStatus
from crm_core.queries.customer_profile import get_customer_profile
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.deals import list_pipelines
from crm_core.queries.products import list_products
from crm_core.queries.users import assignable_owners
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.contacts import ContactInput, archive_contact, create_contact, update_contact
from crm_core.services.customers import (
    CustomerInput,
    archive_customer,
    custom_field_definitions,
    update_customer,
)
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.lifecycle import override_lifecycle_stage
from crm_core.services.orders import OrderInput, OrderLineInput, archive_order, create_order
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.text import plain, plain_join, plain_line, plain_params

STATE = st.session_state
actor = current_actor()


def money(value: Decimal | None, currency: str = "") -> str:
    return f"{(value or Decimal('0')):,.2f} {currency}".strip()


def when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else value.isoformat()


def order_status_label(status: str) -> str:
    return {
        "draft": t("orders.status_draft"), "confirmed": t("orders.status_confirmed"),
        "fulfilled": t("orders.status_fulfilled"), "cancelled": t("orders.status_cancelled"),
    }.get(status, status)


def priority_label(priority: str) -> str:
    return {"low": t("profile.priority_low"), "normal": t("profile.priority_normal"),
            "high": t("profile.priority_high")}.get(priority, priority)


def case_status_label(status: str) -> str:
    return {"open": t("profile.case_open"), "pending": t("profile.case_pending"),
            "resolved": t("profile.case_resolved"), "closed": t("profile.case_closed")}.get(status, status)


def action_label(action: str) -> str:
    return {"create": t("profile.action_create"), "update": t("profile.action_update"),
            "archive": t("profile.action_archive"), "restore": t("profile.action_restore"),
            "delete": t("profile.action_delete")}.get(action, action)


def entity_label(entity: str) -> str:
    return {"customer": t("profile.entity_customer"), "contact": t("profile.entity_contact"),
            "order": t("profile.entity_order")}.get(entity, entity)


def diff_lines(changes: dict[str, Any]) -> list[str]:
    """``field: old → new`` lines; custom fields are compared one by one."""
    lines = []
    for key, pair in changes.items():
        if key.startswith("_") or not isinstance(pair, list) or len(pair) != 2:
            continue
        old, new = pair
        if key == "custom_fields" and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old, new = old or {}, new or {}
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    lines.append(f"{custom_labels.get(name, name)}: {blank(old.get(name))} → {blank(new.get(name))}")
            continue
        lines.append(f"{field_labels.get(key, key)}: {readable(key, old)} → {readable(key, new)}")
    return lines


def readable(key: str, value: Any) -> str:
    """A stored value as the user knows it: owners by name, stages and kinds translated."""
    if value is None:
        return ""
    if key == "owner_id":
        return owner_names.get(value, str(value))
    if key == "lifecycle_stage":
        return t(f"stage.{value}")
    if key == "kind":
        return t(f"kind.{value}")
    if key == "tags":
        return ", ".join(tag for tag in str(value).split(",") if tag)
    return str(value)


def blank(value: Any) -> str:
    return "" if value is None else str(value)


# --- which customer --------------------------------------------------------------------------
raw_id = st.query_params.get("customer_id", "")
customer_id = int(raw_id) if str(raw_id).isdigit() else None
if customer_id is None:
    st.title(t("profile.title"))
    query = st.text_input(t("customers.search"), key="profile_search", placeholder=t("customers.search_hint"))
    if query.strip():
        with read_session() as session:
            found = list_customers(session, filters=CustomerFilters(search=query), per_page=20, with_total=False)
        for row in found.items:
            st.page_link("pages/customer_profile.py",
                         label=plain_join([row.name, row.owner_name or t("filter.unowned")]),
                         query_params={"customer_id": str(row.id)})
        if not found.items:
            st.info(t("customers.empty"))
    else:
        st.info(t("profile.pick"))
    st.stop()

with read_session() as session:
    profile = get_customer_profile(session, customer_id)
    definitions = custom_field_definitions(session)
    owners = assignable_owners(session)
if profile is None or profile.customer.archived_at is not None:
    st.title(t("profile.title"))
    st.warning(t("error.not_found"))
    st.page_link("pages/customers.py", label=t("profile.back"), icon="⬅️")
    st.stop()

customer = profile.customer
contact_names = {contact.id: contact.name for contact in profile.contacts}
owner_names = dict(owners)
custom_labels = {d.name: d.label_zh if lang() == "zh-CN" else d.label_en for d in definitions}
prefix = f"profile_{customer_id}"

# --- header ----------------------------------------------------------------------------------
st.page_link("pages/customers.py", label=t("profile.back"), icon="⬅️")
st.title(plain_line(customer.name))
st.caption(plain_join(filter(None, [
    t(f"kind.{customer.kind}"), t(f"stage.{customer.lifecycle_stage}"),
    t("profile.owned_by", owner=profile.owner_name or t("filter.unowned")), profile.team_name,
    ", ".join(customer.tag_list),
])))
if notice := STATE.pop(f"{prefix}_notice", None):
    st.success(notice)

open_deals = [d for d in profile.deals if d.stage_kind == "open"]
kpis = st.columns(4)
kpis[0].metric(t("profile.open_deals"), len(open_deals), help=money(sum((d.amount for d in open_deals), Decimal(0))))
kpis[1].metric(t("profile.weighted"), money(sum((d.weighted_amount for d in open_deals), Decimal(0))))
kpis[2].metric(t("profile.orders_total", count=profile.order_totals.count), money(profile.order_totals.total_amount))
overdue_count = sum(task.overdue for task in profile.open_tasks)
kpis[3].metric(t("profile.open_tasks"), len(profile.open_tasks),
               delta=t("profile.overdue", count=overdue_count) if overdue_count else None,
               delta_color="inverse", delta_arrow="off")

tabs = st.tabs([
    t("profile.tab_details"), t("profile.tab_contacts", count=len(profile.contacts)),
    t("profile.tab_deals", count=len(profile.deals)), t("profile.tab_orders", count=len(profile.orders)),
    t("profile.tab_activities"), t("profile.tab_tasks_cases"), t("profile.tab_history"),
])

field_labels = {
    "name": t("field.name"), "kind": t("field.kind"), "email": t("field.email"), "phone": t("field.phone"),
    "owner_id": t("field.owner"), "lifecycle_stage": t("field.lifecycle_stage"), "industry": t("field.industry"),
    "region": t("field.region"), "source": t("field.source"), "tags": t("field.tags"),
    **{f"custom.{name}": label for name, label in custom_labels.items()},
}

# --- details and edit -------------------------------------------------------------------------
with tabs[0]:
    details = {
        t("field.email"): customer.email or "", t("field.phone"): customer.phone or "",
        t("field.industry"): customer.industry or "", t("field.region"): customer.region or "",
        t("field.source"): customer.source or "", t("field.last_contacted_at"): when(customer.last_contacted_at),
        t("grid.created_at"): when(customer.created_at), t("field.updated_at"): when(customer.updated_at),
    }
    for definition in definitions:
        value = (customer.custom_fields or {}).get(definition.name)
        if definition.field_type == "bool" and value is not None:
            value = t("grid.yes") if value else t("grid.no")
        details[custom_labels[definition.name]] = "" if value is None else str(value)
    st.dataframe(pd.DataFrame({t("profile.field"): list(details), t("profile.value"): list(details.values())}),
                 hide_index=True, width="stretch")

    if actor.can_write:
        generation = STATE.setdefault(f"{prefix}_edit_generation", 0)
        # the version the user started editing from: kept until they reload
        loaded_version = STATE.setdefault(f"{prefix}_edit_version_{generation}", customer.version)
        with st.expander(t("profile.edit"), expanded=bool(STATE.get(f"{prefix}_edit_open"))):
            if stale := STATE.get(f"{prefix}_stale"):
                st.error(t("error.stale_record", **plain_params(stale.params)))
                if st.button(t("profile.reload"), key=f"{prefix}_reload"):
                    STATE.pop(f"{prefix}_stale", None)
                    STATE[f"{prefix}_edit_generation"] = generation + 1
                    st.rerun()
            owner_options: list[int | None] = [
                o for o, _ in owners
                if actor.sees_whole_tenant or o in actor.visible_owner_ids or o == customer.owner_id
            ]
            owner_options.append(None)
            with st.form(f"{prefix}_edit_{generation}", clear_on_submit=False):
                left, right = st.columns(2)
                name = left.text_input(field_labels["name"] + " *", value=customer.name, max_chars=200)
                kinds = [k.value for k in CustomerKind]
                kind = right.selectbox(field_labels["kind"], kinds, index=kinds.index(customer.kind),
                                       format_func=lambda v: t(f"kind.{v}"))
                email = left.text_input(field_labels["email"], value=customer.email or "")
                phone = right.text_input(field_labels["phone"], value=customer.phone or "")
                owner_index = (
                    owner_options.index(customer.owner_id)
                    if customer.owner_id in owner_options
                    else len(owner_options) - 1
                )
                owner_id = left.selectbox(
                    field_labels["owner_id"], owner_options, index=owner_index,
                    format_func=lambda v: t("filter.unowned") if v is None else owner_names.get(v, str(v)),
                )
                stages = [s.value for s in LifecycleStage]
                stage = right.selectbox(field_labels["lifecycle_stage"], stages,
                                        index=stages.index(customer.lifecycle_stage),
                                        format_func=lambda v: t(f"stage.{v}"))
                industry = left.text_input(field_labels["industry"], value=customer.industry or "", max_chars=80)
                region = right.text_input(field_labels["region"], value=customer.region or "", max_chars=80)
                source = left.text_input(field_labels["source"], value=customer.source or "", max_chars=80)
                tags = right.text_input(field_labels["tags"], value=", ".join(customer.tag_list))
                custom_values: dict[str, Any] = {}
                stored = customer.custom_fields or {}
                for definition in definitions:
                    label = plain_line(custom_labels[definition.name]) + (" *" if definition.required else "")
                    current = stored.get(definition.name)
                    if definition.field_type == "choice":
                        options = ["", *definition.choices]
                        custom_values[definition.name] = st.selectbox(
                            label, options, index=options.index(current) if current in options else 0)
                    elif definition.field_type == "bool":
                        custom_values[definition.name] = st.checkbox(label, value=bool(current))
                    elif definition.field_type == "date":
                        custom_values[definition.name] = st.date_input(
                            label, value=dt.date.fromisoformat(current) if current else None)
                    else:
                        custom_values[definition.name] = st.text_input(
                            label, value="" if current is None else str(current))
                saved = st.form_submit_button(t("profile.save"), type="primary")
            if saved:
                STATE[f"{prefix}_edit_open"] = True
                form = CustomerInput(
                    name=name, kind=kind, email=email, phone=phone, owner_id=owner_id, lifecycle_stage=stage,
                    industry=industry, region=region, source=source, tags=tags, custom_fields=custom_values,
                    external_id=customer.external_id or "",
                )
                try:
                    update_customer(get_db(), actor, customer_id, form, expected_version=loaded_version)
                except StaleRecord as error:
                    STATE[f"{prefix}_stale"] = error
                    st.rerun()
                except DomainError as error:
                    show_domain_error(error, labels=field_labels)
                else:
                    STATE[f"{prefix}_edit_generation"] = generation + 1
                    STATE[f"{prefix}_edit_open"] = False
                    STATE[f"{prefix}_notice"] = t("profile.saved")
                    st.rerun()
        with st.expander(t("profile.stage_override")):
            st.caption(t("profile.stage_override_hint"))
            with st.form(f"{prefix}_stage_override"):
                stages = [stage.value for stage in LifecycleStage]
                chosen_stage = st.selectbox(
                    t("field.lifecycle_stage"), stages, index=stages.index(customer.lifecycle_stage),
                    format_func=lambda value: t(f"stage.{value}"),
                )
                override_reason = st.text_input(t("profile.stage_override_reason") + " *", max_chars=500)
                if st.form_submit_button(t("profile.stage_override_save")):
                    try:
                        override_lifecycle_stage(
                            get_db(), actor, customer_id, stage=chosen_stage, reason=override_reason
                        )
                    except DomainError as error:
                        show_domain_error(error, labels={
                            "lifecycle_stage": t("field.lifecycle_stage"),
                            "reason": t("profile.stage_override_reason"),
                        })
                    else:
                        STATE[f"{prefix}_notice"] = t("profile.stage_override_done", stage=t(f"stage.{chosen_stage}"))
                        st.rerun()
        with st.expander(t("profile.archive")):
            st.caption(t("profile.archive_hint"))
            if st.button(t("profile.archive_confirm", name=plain_line(customer.name)), key=f"{prefix}_archive"):
                try:
                    archive_customer(get_db(), actor, customer_id, expected_version=loaded_version)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE["customers_notice"] = t("profile.archived", name=plain(customer.name))
                    st.switch_page("pages/customers.py")

# --- contacts -------------------------------------------------------------------------------
with tabs[1]:
    if profile.contacts:
        st.dataframe(pd.DataFrame([{
            t("field.name"): ("⭐ " if c.is_primary else "") + c.name, t("contacts.title_field"): c.title or "",
            t("field.email"): c.email or "", t("field.phone"): c.phone or "",
        } for c in profile.contacts]), hide_index=True, width="stretch")
    else:
        st.info(t("contacts.none"))
    if actor.can_write:
        contact_labels = {"name": t("field.name"), "title": t("contacts.title_field"), "email": t("field.email"),
                          "phone": t("field.phone")}
        editing_id = st.selectbox(
            t("contacts.choose"), [None, *contact_names], key=f"{prefix}_contact_pick",
            format_func=lambda v: t("contacts.new") if v is None else contact_names[v],
        )
        editing = next((c for c in profile.contacts if c.id == editing_id), None)
        contact_generation = STATE.setdefault(f"{prefix}_contact_generation", 0)
        with st.form(f"{prefix}_contact_{editing_id}_{contact_generation}", clear_on_submit=False):
            left, right = st.columns(2)
            contact_name = left.text_input(contact_labels["name"] + " *", value=editing.name if editing else "")
            contact_title = right.text_input(contact_labels["title"], value=(editing.title or "") if editing else "")
            contact_email = left.text_input(contact_labels["email"], value=(editing.email or "") if editing else "")
            contact_phone = right.text_input(contact_labels["phone"], value=(editing.phone or "") if editing else "")
            primary = st.checkbox(t("contacts.primary"), value=editing.is_primary if editing else not profile.contacts)
            contact_saved = st.form_submit_button(t("contacts.save") if editing else t("contacts.add"), type="primary")
        if contact_saved:
            contact_form = ContactInput(customer_id, contact_name, contact_title, contact_email, contact_phone, primary)
            try:
                if editing:
                    update_contact(get_db(), actor, editing.id, contact_form, expected_version=editing.version)
                else:
                    create_contact(get_db(), actor, contact_form)
            except DomainError as error:
                show_domain_error(error, labels=contact_labels)
            else:
                STATE[f"{prefix}_contact_generation"] = contact_generation + 1
                STATE[f"{prefix}_notice"] = t("contacts.saved", name=plain(contact_name.strip()))
                st.rerun()
        if editing and st.button(t("contacts.archive", name=plain_line(editing.name)),
                                 key=f"{prefix}_contact_archive"):
            try:
                archive_contact(get_db(), actor, editing.id, expected_version=editing.version)
            except DomainError as error:
                show_domain_error(error)
            else:
                STATE.pop(f"{prefix}_contact_pick", None)
                STATE[f"{prefix}_notice"] = t("contacts.archived", name=plain(editing.name))
                st.rerun()

# --- deals ----------------------------------------------------------------------------------
with tabs[2]:
    if profile.deals:
        st.dataframe(pd.DataFrame([{
            t("deal.name"): d.name, t("deal.stage"): d.stage_name, t("deal.amount"): float(d.amount),
            t("profile.currency"): d.currency, t("deal.probability"): d.probability,
            t("profile.weighted"): float(d.weighted_amount), t("deal.expected_close_date"): when(d.expected_close_date),
            t("field.owner"): d.owner_name or "",
        } for d in profile.deals]), hide_index=True, width="stretch",
            column_config={t("deal.amount"): st.column_config.NumberColumn(format="%.2f"),
                           t("profile.weighted"): st.column_config.NumberColumn(format="%.2f")})
        st.page_link("pages/pipeline.py", label=t("profile.open_pipeline"), icon="📋")
    else:
        st.info(t("profile.no_deals"))
    if actor.can_write:
        with read_session() as session:
            pipelines = list_pipelines(session)
        default_pipeline = next((p for p in pipelines if p.is_default), pipelines[0] if pipelines else None)
        open_stages = [s for s in (default_pipeline.stages if default_pipeline else []) if s.kind == "open"]
        deal_generation = STATE.setdefault(f"{prefix}_deal_generation", 0)
        with st.form(f"{prefix}_deal_{deal_generation}", clear_on_submit=False):
            st.markdown(f"**{t('profile.new_deal')}**")
            left, right = st.columns(2)
            deal_name = left.text_input(t("deal.name") + " *")
            deal_amount = right.text_input(t("deal.amount"), value="0")
            deal_stage = left.selectbox(t("deal.stage"), [s.id for s in open_stages],
                                        format_func=lambda v: next(s.name for s in open_stages if s.id == v))
            deal_close = right.date_input(t("deal.expected_close_date"), value=None)
            deal_saved = st.form_submit_button(t("profile.add_deal"), type="primary")
        if deal_saved:
            try:
                create_opportunity(get_db(), actor, OpportunityInput(
                    customer_id=customer_id, name=deal_name, amount=deal_amount,
                    pipeline_id=default_pipeline.id if default_pipeline else None, stage_id=deal_stage,
                    owner_id=customer.owner_id if customer.owner_id in actor.visible_owner_ids | {actor.user_id}
                    or actor.sees_whole_tenant else None,
                    expected_close_date=deal_close,
                ))
            except DomainError as error:
                show_domain_error(error, labels={"name": t("deal.name"), "amount": t("deal.amount"),
                                                 "expected_close_date": t("deal.expected_close_date")})
            else:
                STATE[f"{prefix}_deal_generation"] = deal_generation + 1
                STATE[f"{prefix}_notice"] = t("profile.deal_added", name=plain(deal_name.strip()))
                st.rerun()

# --- orders ---------------------------------------------------------------------------------
with tabs[3]:
    st.markdown(t("profile.orders_summary", count=profile.order_totals.count,
                  total=money(profile.order_totals.total_amount)))
    for order in profile.orders:
        with st.expander(plain_join([order.order_number, when(order.ordered_at)[:10], order_status_label(order.status),
                                     money(order.total_amount, order.currency)])):
            st.dataframe(pd.DataFrame([{
                "SKU": line.sku, t("products.name"): line.product_name, t("orders.quantity"): float(line.quantity),
                t("products.unit_price"): float(line.unit_price), t("orders.line_total"): float(line.line_total),
            } for line in order.lines]), hide_index=True, width="stretch")
            if actor.can_write and st.button(t("orders.archive"), key=f"{prefix}_order_archive_{order.id}"):
                try:
                    archive_order(get_db(), actor, order.id, expected_version=order.version)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE[f"{prefix}_notice"] = t("orders.archived", number=plain(order.order_number))
                    st.rerun()
    if actor.can_write:
        with read_session() as session:
            products = list_products(session, active_only=True)
        if not products:
            st.info(t("orders.no_products"))
        else:
            product_names = {p.id: f"{p.sku} · {p.name} ({money(p.unit_price, p.currency)})" for p in products}
            order_generation = STATE.setdefault(f"{prefix}_order_generation", 0)
            st.markdown(f"**{t('orders.new')}**")
            lines_frame = st.data_editor(
                pd.DataFrame({"product": pd.Series([None], dtype="object"), "quantity": [1.0], "unit_price": [None]}),
                num_rows="dynamic", hide_index=True, width="stretch",
                key=f"{prefix}_order_lines_{order_generation}",
                column_config={
                    "product": st.column_config.SelectboxColumn(
                        t("orders.product"), options=list(product_names.values()), required=True),
                    "quantity": st.column_config.NumberColumn(t("orders.quantity"), min_value=0.01, step=1.0,
                                                              required=True),
                    "unit_price": st.column_config.NumberColumn(t("orders.unit_price_override"), min_value=0.0,
                                                                format="%.2f"),
                },
            )
            with st.form(f"{prefix}_order_{order_generation}", clear_on_submit=False):
                left, right = st.columns(2)
                order_status = left.selectbox(t("orders.status"), [s.value for s in OrderStatus], index=1,
                                              format_func=order_status_label)
                ordered_on = right.date_input(t("orders.ordered_on"), value=dt.date.today())
                order_saved = st.form_submit_button(t("orders.create"), type="primary")
            if order_saved:
                by_label = {label: product_id for product_id, label in product_names.items()}
                lines = [
                    OrderLineInput(
                        by_label.get(str(row["product"]), 0), str(row["quantity"]),
                        None if pd.isna(row["unit_price"]) else str(row["unit_price"]),
                    )
                    for _, row in lines_frame.iterrows() if row["product"]
                ]
                try:
                    create_order(get_db(), actor, OrderInput(customer_id, lines, status=order_status,
                                                             ordered_at=ordered_on))
                except DomainError as error:
                    show_domain_error(error, labels={"lines": t("orders.lines")})
                else:
                    STATE[f"{prefix}_order_generation"] = order_generation + 1
                    STATE[f"{prefix}_notice"] = t("orders.created")
                    st.rerun()

# --- activities -----------------------------------------------------------------------------
with tabs[4]:
    if actor.can_write:
        activity_generation = STATE.setdefault(f"{prefix}_activity_generation", 0)
        with st.form(f"{prefix}_activity_{activity_generation}", clear_on_submit=False):
            left, right = st.columns([1, 3])
            activity_type = left.selectbox(t("tasks.activity_type"), [k.value for k in ActivityType],
                                           format_func=lambda v: t(f"tasks.activity.{v}"))
            summary = right.text_area(t("profile.activity_summary") + " *", height=80)
            contact_for_activity = left.selectbox(
                t("profile.activity_contact"), [None, *contact_names],
                format_func=lambda v: "—" if v is None else contact_names[v],
            )
            follow_up = right.date_input(t("profile.next_follow_up"), value=None)
            logged = st.form_submit_button(t("profile.log_activity"), type="primary")
        if logged:
            try:
                log_activity(get_db(), actor, ActivityInput(
                    customer_id=customer_id, type=activity_type, summary=summary,
                    contact_id=contact_for_activity, next_follow_up_at=follow_up,
                ))
            except DomainError as error:
                show_domain_error(error, labels={"summary": t("profile.activity_summary"),
                                                 "next_follow_up_at": t("profile.next_follow_up")})
            else:
                STATE[f"{prefix}_activity_generation"] = activity_generation + 1
                STATE[f"{prefix}_notice"] = t("profile.activity_logged")
                st.rerun()
    if profile.activities:
        for activity in profile.activities:
            what = plain_join(filter(None, [t(f"tasks.activity.{activity.type}"), activity.author_name,
                                            activity.contact_name]))
            st.markdown(f"**{plain(when(activity.occurred_at))}** · {what}")
            st.text(activity.summary)
    else:
        st.info(t("profile.no_activities"))

# --- tasks and cases ---------------------------------------------------------------------------
with tabs[5]:
    st.markdown(f"**{t('profile.open_tasks')}**")
    if profile.open_tasks:
        st.dataframe(pd.DataFrame([{
            t("profile.task"): ("⚠️ " if task.overdue else "") + task.title, t("profile.due"): when(task.due_at),
            t("profile.priority"): priority_label(task.priority), t("profile.assignee"): task.assignee_name or "",
        } for task in profile.open_tasks]), hide_index=True, width="stretch")
    else:
        st.caption(t("profile.no_tasks"))
    st.markdown(f"**{t('profile.cases')}**")
    if profile.cases:
        st.dataframe(pd.DataFrame([{
            t("profile.case_subject"): case.subject, t("profile.case_status"): case_status_label(case.status),
            t("profile.priority"): priority_label(case.priority), t("profile.opened"): when(case.opened_at),
            t("profile.resolved"): when(case.resolved_at),
        } for case in profile.cases]), hide_index=True, width="stretch")
    else:
        st.caption(t("profile.no_cases"))

# --- history --------------------------------------------------------------------------------
with tabs[6]:
    if profile.history:
        history_rows = [
            {
                t("profile.when"): when(change.occurred_at), t("profile.who"): change.actor_name or t("profile.system"),
                t("profile.what"): f"{action_label(change.action)} · {entity_label(change.entity)}",
                t("profile.changes"): "\n".join(diff_lines(change.changes)),
            }
            for change in profile.history
        ]
        st.dataframe(pd.DataFrame(history_rows), hide_index=True, width="stretch")
    else:
        st.info(t("profile.no_history"))
