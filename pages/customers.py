"""Customers: the server-side filtered, paginated grid and the create form."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError, DuplicateCustomer
from crm_core.models import CustomerKind, LifecycleStage
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.users import assignable_owners
from crm_core.services.customers import CustomerInput, create_customer, custom_field_definitions
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t

PER_PAGE_CHOICES = [25, 50, 100]
STATE = st.session_state


def reset_page() -> None:
    STATE["customers_page"] = 1


actor = current_actor()
STATE.setdefault("customers_page", 1)
STATE.setdefault("customers_form_generation", 0)

st.title(t("customers.title"))

with read_session() as session:
    owners = assignable_owners(session)
    definitions = custom_field_definitions(session)
owner_names = dict(owners)

# --- filters -------------------------------------------------------------------
ALL, UNOWNED = "__all__", "__unowned__"
filter_columns = st.columns([3, 2, 2, 1])
search = filter_columns[0].text_input(
    t("customers.search"), key="customers_search", placeholder=t("customers.search_hint"), on_change=reset_page
)
owner_choice = filter_columns[1].selectbox(
    t("field.owner"),
    [ALL, UNOWNED, *[owner_id for owner_id, _ in owners]],
    format_func=lambda value: {ALL: t("filter.all"), UNOWNED: t("filter.unowned")}.get(value)
    or owner_names.get(value, str(value)),
    key="customers_owner",
    on_change=reset_page,
)
stage_choice = filter_columns[2].selectbox(
    t("field.lifecycle_stage"),
    [ALL, *[stage.value for stage in LifecycleStage]],
    format_func=lambda value: t("filter.all") if value == ALL else t(f"stage.{value}"),
    key="customers_stage",
    on_change=reset_page,
)
per_page = filter_columns[3].selectbox(
    t("customers.per_page"), PER_PAGE_CHOICES, index=1, key="customers_per_page", on_change=reset_page
)

filters = CustomerFilters(
    search=search,
    owner_id=owner_choice if isinstance(owner_choice, int) else None,
    unowned=owner_choice == UNOWNED,
    lifecycle_stage=None if stage_choice == ALL else stage_choice,
)

with read_session() as session:
    page = list_customers(session, filters=filters, page=STATE["customers_page"], per_page=per_page)

# --- grid ----------------------------------------------------------------------
st.caption(t("customers.count", total=f"{page.total or 0:,}"))
if page.items:
    frame = pd.DataFrame(
        [
            {
                t("field.name"): row.name,
                t("field.kind"): t(f"kind.{row.kind}"),
                t("field.lifecycle_stage"): t(f"stage.{row.lifecycle_stage}"),
                t("field.owner"): row.owner_name or t("filter.unowned"),
                t("field.email"): row.email or "",
                t("field.phone"): row.phone or "",
                t("field.industry"): row.industry or "",
                t("field.region"): row.region or "",
                t("field.tags"): ", ".join(row.tags),
                t("field.last_contacted_at"): row.last_contacted_at,
                t("field.updated_at"): row.updated_at,
            }
            for row in page.items
        ]
    )
    for column in (t("field.last_contacted_at"), t("field.updated_at")):
        frame[column] = pd.to_datetime(frame[column])
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            t("field.last_contacted_at"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            t("field.updated_at"): st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
else:
    st.info(t("customers.empty"))

pager = st.columns([1, 2, 1])
if pager[0].button(t("pager.previous"), disabled=page.page <= 1, key="customers_previous"):
    STATE["customers_page"] = page.page - 1
    st.rerun()
pager[1].markdown(
    f"<div style='text-align:center'>{t('pager.position', page=page.page, pages=page.page_count or 1)}</div>",
    unsafe_allow_html=True,
)
if pager[2].button(t("pager.next"), disabled=not page.has_next, key="customers_next"):
    STATE["customers_page"] = page.page + 1
    st.rerun()

# --- create form -----------------------------------------------------------------
st.divider()
st.subheader(t("customers.new"))
if not actor.can_write:
    st.info(t("access.read_only"))
    st.stop()

generation = STATE["customers_form_generation"]
if owners and not actor.sees_whole_tenant:
    owner_options: list[int | None] = [
        owner_id for owner_id, _ in owners if owner_id == actor.user_id or owner_id in actor.visible_owner_ids
    ]
else:
    owner_options = [owner_id for owner_id, _ in owners]
owner_options = [actor.user_id, *[o for o in owner_options if o != actor.user_id], None]
field_labels = {
    "name": t("field.name"), "kind": t("field.kind"), "email": t("field.email"), "phone": t("field.phone"),
    "owner_id": t("field.owner"), "lifecycle_stage": t("field.lifecycle_stage"), "industry": t("field.industry"),
    "region": t("field.region"), "source": t("field.source"), "tags": t("field.tags"),
}
for definition in definitions:
    field_labels[f"custom.{definition.name}"] = definition.label_zh if lang() == "zh-CN" else definition.label_en

if created := STATE.pop("customers_created_notice", None):
    st.success(t("customers.created", name=created))
if pending_duplicate := STATE.get("customers_duplicate_pending"):
    show_domain_error(pending_duplicate)
    st.caption(t("customers.duplicate_hint"))

with st.form(f"customers_create_{generation}", clear_on_submit=False):
    left, right = st.columns(2)
    name = left.text_input(field_labels["name"] + " *", max_chars=200)
    kind = right.selectbox(
        field_labels["kind"], [kind.value for kind in CustomerKind], format_func=lambda v: t(f"kind.{v}")
    )
    email = left.text_input(field_labels["email"], placeholder="name@example.com")
    phone = right.text_input(field_labels["phone"], placeholder="+86 138 0013 8000")
    owner_id = left.selectbox(
        field_labels["owner_id"],
        owner_options,
        format_func=lambda value: t("filter.unowned") if value is None else owner_names.get(value, str(value)),
    )
    stage = right.selectbox(
        field_labels["lifecycle_stage"], [s.value for s in LifecycleStage], format_func=lambda v: t(f"stage.{v}")
    )
    industry = left.text_input(field_labels["industry"], max_chars=80)
    region = right.text_input(field_labels["region"], max_chars=80)
    source = left.text_input(field_labels["source"], max_chars=80)
    tags = right.text_input(field_labels["tags"], placeholder=t("customers.tags_hint"))
    custom_values: dict[str, Any] = {}
    for definition in definitions:
        label = field_labels[f"custom.{definition.name}"] + (" *" if definition.required else "")
        if definition.field_type == "choice":
            custom_values[definition.name] = st.selectbox(label, ["", *definition.choices])
        elif definition.field_type == "bool":
            custom_values[definition.name] = st.checkbox(label)
        elif definition.field_type == "date":
            custom_values[definition.name] = st.date_input(label, value=None)
        else:
            custom_values[definition.name] = st.text_input(label)
    confirm_duplicate = False
    if STATE.get("customers_duplicate_pending"):
        confirm_duplicate = st.checkbox(t("customers.create_anyway"), key=f"customers_confirm_{generation}")
    submitted = st.form_submit_button(t("customers.create"), type="primary")

if submitted:
    form = CustomerInput(
        name=name, kind=kind, email=email, phone=phone, owner_id=owner_id, lifecycle_stage=stage,
        industry=industry, region=region, source=source, tags=tags, custom_fields=custom_values,
    )
    try:
        create_customer(get_db(), actor, form, allow_duplicate=confirm_duplicate)
    except DuplicateCustomer as error:
        # keep the typed values (same form key) and ask for confirmation on the next run
        STATE["customers_duplicate_pending"] = error
        st.rerun()
    except DomainError as error:
        show_domain_error(error, labels=field_labels)
    else:
        STATE.pop("customers_duplicate_pending", None)
        STATE["customers_form_generation"] = generation + 1
        STATE["customers_created_notice"] = name.strip()
        reset_page()
        st.rerun()
