"""The merge dialogs of the Customer 360 (issue 17), for managers and admins.

Customers: in the details tab, the customer shown is the one that lives on. Search the
duplicate, choose each differing field's value (a radio per field; the default is this
record's non-empty value, else the duplicate's), see how many rows will move, confirm: the
page reruns on this customer with a toast. Contacts: in the contacts tab, two of the
customer's contacts. The versions of both records are kept from the moment the duplicate is
picked, so a change made meanwhile by someone else is refused (StaleRecord), not overwritten.
A bookmarked 360 of a merged customer opens the survivor with a notice (:func:`follow_merge`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError
from crm_core.models.merges import MergeEntity
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.merges import MergePreview, merge_preview, owner_names, redirect_target
from crm_core.rules.merging import BOTH, SURVIVOR, is_empty
from crm_core.services.merging import MERGING_ROLES, MergeResult, Versions, merge_contacts, merge_customers
from crm_ui.context import get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY
from crm_ui.text import plain, plain_format, plain_line

STATE = st.session_state

TABLE_LABELS = {
    "activities": "merge.table.activities", "automation_firings": "merge.table.automation_firings",
    "campaign_members": "merge.table.campaign_members", "cases": "merge.table.cases",
    "contacts": "merge.table.contacts", "lifecycle_overrides": "merge.table.lifecycle_overrides",
    "lifecycle_transitions": "merge.table.lifecycle_transitions", "opportunities": "merge.table.opportunities",
    "orders": "merge.table.orders", "pool_events": "merge.table.pool_events", "scores": "merge.table.scores",
    "tasks": "merge.table.tasks",
    "customer_tier_pins": "merge.table.customer_tier_pins",
    "customer_tier_standings": "merge.table.customer_tier_standings",
}


def may_merge(actor: Actor) -> bool:
    """Managers and admins merge (the service checks it again)."""
    return actor.role in MERGING_ROLES


def follow_merge(customer_id: int) -> int:
    """The customer to show for ``?customer_id=``: the survivor when that id was merged away (with a notice)."""
    with read_session() as session:
        survivor = redirect_target(session, MergeEntity.CUSTOMER, customer_id)
    if survivor is None:
        return customer_id
    st.query_params["customer_id"] = str(survivor)
    STATE[f"profile_{survivor}_notice"] = t("merge.redirected", old=customer_id)
    return survivor


def show_toast(prefix: str) -> None:
    """The toast a merge left for the page run after it."""
    if message := STATE.pop(f"{prefix}_merge_toast", None):
        st.toast(message, icon="🔀")


def customer_merge(actor: Actor, customer_id: int, prefix: str, labels: dict[str, str]) -> None:
    """Search a duplicate of this customer, choose the fields, see what moves, merge it in."""
    if not may_merge(actor):
        return
    key = f"{prefix}_merge"
    with st.expander(t("merge.action")):
        st.caption(t("merge.hint"))
        query = st.text_input(t("merge.search"), key=f"{key}_search", placeholder=t("merge.search_hint"))
        if not query.strip():
            return
        with read_session() as session:
            found = list_customers(session, filters=CustomerFilters(search=query), per_page=20, with_total=False)
        candidates = {row.id: " · ".join(filter(None, [row.name, row.owner_name or t("filter.unowned")]))
                      for row in found.items if row.id != customer_id}
        if not candidates:
            st.info(t("merge.none_found"))
            return
        merged_id = st.selectbox(t("merge.pick"), list(candidates), index=None, format_func=candidates.__getitem__,
                                 key=f"{key}_pick")
        if merged_id is None:
            return
        preview, owners = _preview(MergeEntity.CUSTOMER, customer_id, merged_id)
        if preview is None:
            st.warning(t("error.not_found"))
            return
        choices = field_choices(preview, labels, key, owners)
        moves_table(preview)
        if st.button(t("merge.confirm", name=plain_line(preview.merged_name)), type="primary",
                     key=f"{key}_confirm_{merged_id}"):
            versions = STATE[f"{key}_versions_{merged_id}"]
            try:
                result = merge_customers(get_db(), actor, customer_id, merged_id, choices, versions)
            except DomainError as error:
                show_domain_error(error, labels=_choice_labels(labels))
            else:
                _merged(prefix, key, t("merge.done", merged=plain(preview.merged_name),
                                       survivor=plain(preview.survivor_name), count=_moved(result)))


def contact_merge(actor: Actor, contacts: list[Any], prefix: str, labels: dict[str, str]) -> None:
    """Merge two contacts of this customer: the kept one takes the chosen values, activities and cases."""
    if not may_merge(actor) or len(contacts) < 2:
        return
    key = f"{prefix}_contact_merge"
    names = {contact.id: contact.name for contact in contacts}
    with st.expander(t("merge.contacts_action")):
        st.caption(t("merge.contacts_hint"))
        left, right = st.columns(2)
        survivor_id = left.selectbox(t("merge.contact_keep"), list(names), index=None, format_func=names.__getitem__,
                                     key=f"{key}_keep")
        others = [contact_id for contact_id in names if contact_id != survivor_id]
        merged_id = right.selectbox(t("merge.contact_merged"), others, index=None, format_func=names.__getitem__,
                                    key=f"{key}_merged")
        if survivor_id is None or merged_id is None:
            return
        preview, owners = _preview(MergeEntity.CONTACT, survivor_id, merged_id)
        if preview is None:
            st.warning(t("error.not_found"))
            return
        choices = field_choices(preview, labels, f"{key}_{survivor_id}", owners)
        moves_table(preview)
        if st.button(t("merge.contact_confirm", name=plain_line(preview.merged_name),
                       survivor=plain_line(preview.survivor_name)), type="primary",
                     key=f"{key}_confirm_{survivor_id}_{merged_id}"):
            versions = STATE[f"{key}_{survivor_id}_versions_{merged_id}"]
            try:
                merge_contacts(get_db(), actor, survivor_id, merged_id, choices, versions)
            except DomainError as error:
                show_domain_error(error, labels=_choice_labels(labels))
            else:
                STATE.pop(f"{key}_keep", None)
                _merged(prefix, key, t("merge.contact_done", merged=plain(preview.merged_name),
                                       survivor=plain(preview.survivor_name)))


def _preview(entity: str, survivor_id: int, merged_id: int) -> tuple[MergePreview | None, dict[int, str]]:
    """The preview, and the names of the owners it shows."""
    with read_session() as session:
        preview = merge_preview(session, entity, survivor_id, merged_id)
        owners = [value[0] for row in (preview.fields if preview is not None else []) if row.name == "owner"
                  for value in (row.survivor_value, row.merged_value) if value[0] is not None]
        return preview, owner_names(session, owners)


def field_choices(preview: MergePreview, labels: dict[str, str], key: str, owners: dict[int, str]) -> dict[str, str]:
    """A radio per differing field, the two values side by side; returns every field's choice."""
    # the versions the user is deciding on: a change by someone else before the confirm is refused
    STATE.setdefault(f"{key}_versions_{preview.merged_id}", Versions(preview.survivor_version, preview.merged_version))
    differing = [row for row in preview.fields if row.survivor_value != row.merged_value]
    st.markdown("**" + t("merge.fields") + "**")
    left, right = st.columns(2)
    left.caption(t("merge.keep_this", name=plain(preview.survivor_name)))
    right.caption(t("merge.keep_other", name=plain(preview.merged_name)))
    choices: dict[str, str] = {}
    for row in differing:
        shown = {choice: t("merge.both") if choice == BOTH
                 else display(row.name, row.survivor_value if choice == SURVIVOR else row.merged_value, owners)
                 for choice in row.choices}
        label = row.label or labels.get(row.name, row.name)
        choices[row.name] = st.radio(
            label, list(row.choices), index=list(row.choices).index(row.default), horizontal=True,
            format_func=plain_format(shown.__getitem__), key=f"{key}_{preview.merged_id}_{row.name}",
        )
    if same := len(preview.fields) - len(differing):
        st.caption(t("merge.same_fields", count=same))
    return choices


def display(field: str, value: Any, owners: dict[int, str]) -> str:
    """A field's value as the user reads it (owners by name, kinds translated); '(empty)' when empty."""
    if field == "owner":
        owner_id = value[0]
        if owner_id is None:
            return t("filter.unowned")
        return owners.get(owner_id, str(owner_id))
    if is_empty(value):
        return t("merge.empty_value")
    if field == "kind":
        return t(f"kind.{value}")
    if field == "tags":
        return ", ".join(value)
    return str(value)


def moves_table(preview: MergePreview) -> None:
    """How many rows of each kind point at the duplicate and will move (a table: its cells are plain text)."""
    if not preview.moves:
        st.caption(t("merge.moves.nothing"))
        return
    st.markdown("**" + t("merge.moves", count=preview.total_moves) + "**")
    rows = [{t("merge.moves.what"): _table_label(key), t("merge.moves.rows"): count}
            for key, count in sorted(preview.moves.items())]
    st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder=EMPTY)


def _table_label(key: str) -> str:
    table = key.split(".")[0]
    return t(TABLE_LABELS[table]) if table in TABLE_LABELS else key


def _choice_labels(labels: dict[str, str]) -> dict[str, str]:
    return {f"field_choices.{name}": label for name, label in labels.items()}


def _moved(result: MergeResult) -> int:
    return sum(result.moved.values())


def _merged(prefix: str, key: str, message: str) -> None:
    """After a merge: forget the dialog's state, leave a toast for the next run, rerun on this record."""
    for name in [name for name in STATE if str(name).startswith(key)]:
        del STATE[name]
    STATE[f"{prefix}_merge_toast"] = message
    # the edit form was loaded on the survivor's version before the merge: it starts again on the new one
    STATE[f"{prefix}_edit_generation"] = STATE.get(f"{prefix}_edit_generation", 0) + 1
    st.rerun()
