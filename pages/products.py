"""Products: the catalogue that order lines draw from; managers and admins add, edit and retire products."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError, StaleRecord
from crm_core.models import Role
from crm_core.queries.products import list_products
from crm_core.services.products import ProductInput, archive_product, create_product, update_product
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, number_column
from crm_ui.layout import form_cells
from crm_ui.text import plain, plain_line, plain_params

STATE = st.session_state
actor = current_actor()
may_edit = actor.role in (Role.ADMIN, Role.MANAGER)

st.title(t("products.title"))
if notice := STATE.pop("products_notice", None):
    st.success(notice)

search = st.text_input(t("products.search"), key="products_search")
with read_session() as session:
    products = list_products(session, search=search)

if products:
    st.dataframe(
        pd.DataFrame([{
            "SKU": p.sku or EMPTY, t("products.name"): p.name, t("products.unit_price"): float(p.unit_price),
            t("profile.currency"): p.currency, t("products.active"): p.is_active,
        } for p in products]),
        hide_index=True, width="stretch",
        # each product has its own currency (the next column): the amount with separators, no symbol
        column_config={t("products.unit_price"): number_column(digits=2)}, placeholder=EMPTY,
    )
else:
    st.info(t("products.empty"))

if not may_edit:
    st.info(t("products.read_only"))
    st.stop()

labels = {"sku": "SKU", "name": t("products.name"), "unit_price": t("products.unit_price"),
          "currency": t("profile.currency")}
st.divider()
editing_id = st.selectbox(
    t("products.choose"), [None, *[p.id for p in products]], key="products_pick",
    format_func=lambda value: t("products.new") if value is None else next(
        " · ".join(filter(None, (p.sku, p.name))) for p in products if p.id == value),
)
editing = next((p for p in products if p.id == editing_id), None)
generation = STATE.setdefault("products_generation", 0)
# the version the user started from, kept until they reload
loaded_version = STATE.setdefault(f"products_version_{editing_id}_{generation}", editing.version if editing else 0)
if stale := STATE.get("products_stale"):
    st.error(t("error.stale_record", **plain_params(stale.params)))
    if st.button(t("profile.reload"), key="products_reload"):
        STATE.pop("products_stale", None)
        STATE["products_generation"] = generation + 1
        st.rerun()
with st.form(f"products_form_{editing_id}_{generation}", clear_on_submit=False):
    cells = form_cells(4)  # in reading order on a phone too
    sku = next(cells).text_input("SKU", value=(editing.sku or "") if editing else "", max_chars=64)
    name = next(cells).text_input(labels["name"] + " *", value=editing.name if editing else "", max_chars=200)
    price = next(cells).text_input(labels["unit_price"], value=f"{editing.unit_price:.2f}" if editing else "0.00")
    currency = next(cells).text_input(labels["currency"], value=editing.currency if editing else "CNY", max_chars=3)
    active = st.checkbox(t("products.active"), value=editing.is_active if editing else True)
    submitted = st.form_submit_button(t("products.save") if editing else t("products.create"), type="primary")
if submitted:
    form = ProductInput(sku, name, price, currency, active)
    try:
        if editing:
            update_product(get_db(), actor, editing.id, form, expected_version=loaded_version)
        else:
            create_product(get_db(), actor, form)
    except StaleRecord as error:
        STATE["products_stale"] = error
        st.rerun()
    except DomainError as error:
        show_domain_error(error, labels=labels)
    else:
        STATE["products_generation"] = generation + 1
        STATE["products_notice"] = t("products.saved", name=plain(name.strip()))
        st.rerun()
if editing and st.button(t("products.archive", name=plain_line(editing.name)), key="products_archive"):
    try:
        archive_product(get_db(), actor, editing.id, expected_version=loaded_version)
    except DomainError as error:
        show_domain_error(error)
    else:
        STATE.pop("products_pick", None)
        STATE["products_notice"] = t("products.archived", name=plain(editing.name))
        st.rerun()
