"""The Customer 360, rendered: header with key facts and tap-to-call/mail links, quick actions,
a paged timeline, and the tabs (details and edit, contacts, deals, orders, tasks and cases,
consent (:mod:`crm_ui.consent`), history). ``pages/customer_profile.py`` only calls :func:`page`.

Reruns stay small: the quick-action forms and the timeline are ``st.fragment``s, so typing,
choosing a form, filtering or paging reruns that fragment alone; a successful write reruns
the page (the header's facts changed). Values from users are shown through ``crm_ui.text``;
tel:/mailto: links come from ``crm_core.rules.contact_details`` (valid values, normalised,
never the text as typed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError, DuplicateContact, DuplicateCustomer, StaleRecord
from crm_core.models import ActivityType, CustomerKind, LifecycleStage, OrderStatus, Priority
from crm_core.queries.customer_profile import (
    TIMELINE_KINDS,
    CustomerProfile,
    KeyFacts,
    TimelineCursor,
    TimelineEntry,
    customer_timeline,
    get_customer_profile,
    key_facts,
)
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.deals import list_pipelines
from crm_core.queries.products import list_products
from crm_core.queries.users import assignable_owners
from crm_core.rules.contact_details import mailto_uri, tel_uri
from crm_core.rules.duplicates import BLOCK, may_override
from crm_core.rules.regions import region_label
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.contacts import ContactInput, archive_contact, create_contact, update_contact
from crm_core.services.customers import CustomerInput, archive_customer, custom_field_definitions, update_customer
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.lifecycle import override_lifecycle_stage
from crm_core.services.orders import OrderInput, OrderLineInput, archive_order, create_order
from crm_core.services.tasks import TaskInput, create_task
from crm_ui import consent, merging, pool
from crm_ui.context import current_actor, get_db, lang, read_session, record_id, show_domain_error, t
from crm_ui.formatting import EMPTY, date, money, number, or_dash, when
from crm_ui.layout import form_cells
from crm_ui.regions import region_selects
from crm_ui.text import plain, plain_join, plain_line, plain_params

STATE = st.session_state
PROFILE_PAGE = "pages/customer_profile.py"
CUSTOMERS_PAGE = "pages/customers.py"
TIMELINE_PAGE_SIZE = 20
QUICK_ACTIONS = ("call", "task", "deal")

# the dataframe's hover toolbar (search, download, full screen) sits above its top edge: on a
# phone it covered the tab names when a table opened a tab. Tabs here start with a caption,
# and the toolbar gets room of its own.
PROFILE_CSS = """
<style>
.st-key-profile_facts [data-testid="stVerticalBlockBorderWrapper"] { min-width: 9rem; }
[data-testid="stTabs"] [data-testid="stElementToolbar"] { top: -0.25rem; }
@media (max-width: 640px) {
  [data-testid="stTabs"] [data-baseweb="tab-list"] { overflow-x: auto; position: relative; z-index: 2; }
  .st-key-profile_facts { gap: 0.5rem; }
}
</style>
"""


@dataclass(frozen=True)
class Profile:
    """One run's view of the customer: the loaded 360 and what the renderers share."""

    actor: Actor
    data: CustomerProfile
    facts: KeyFacts
    definitions: list[Any]
    owner_names: dict[int, str]
    owners: list[tuple[int, str]]

    @property
    def customer_id(self) -> int:
        return self.data.customer.id

    @property
    def prefix(self) -> str:
        return f"profile_{self.customer_id}"

    @property
    def custom_labels(self) -> dict[str, str]:
        return {d.name: d.label_zh if lang() == "zh-CN" else d.label_en for d in self.definitions}

    def field_labels(self) -> dict[str, str]:
        return {
            "name": t("field.name"), "kind": t("field.kind"), "email": t("field.email"), "phone": t("field.phone"),
            "owner_id": t("field.owner"), "lifecycle_stage": t("field.lifecycle_stage"),
            "industry": t("field.industry"), "region": t("field.region"), "source": t("field.source"),
            "tags": t("field.tags"), "credit_code": t("field.credit_code"), "province_code": t("field.province_code"),
            "city_code": t("field.city_code"), "district_code": t("field.district_code"),
            **{f"custom.{name}": label for name, label in self.custom_labels.items()},
        }


def page() -> None:
    """The Customer 360 of ``?customer_id=``, or a search when there is none."""
    raw_id = st.query_params.get("customer_id", "")
    if not raw_id:
        pick_customer()
        return
    customer_id = record_id(raw_id)  # a malformed id is simply not found, like another tenant's
    actor = current_actor()
    if customer_id is not None:
        customer_id = merging.follow_merge(customer_id)  # a merged customer's link opens its survivor
    with read_session() as session:
        data = get_customer_profile(session, customer_id, with_activities=False) if customer_id else None
        if data is None or data.customer.archived_at is not None:
            facts = None
        else:
            facts = key_facts(session, data)
            definitions = custom_field_definitions(session)
            owners = assignable_owners(session)
    if data is None or facts is None or customer_id is None:
        st.title(t("profile.title"))
        st.warning(t("error.not_found"))
        back_link()
        return
    profile = Profile(actor, data, facts, definitions, dict(owners), owners)
    st.html(PROFILE_CSS)
    back_link()
    header(profile)
    merging.show_toast(profile.prefix)
    if actor.can_write:
        quick_actions(profile)
    tabs = st.tabs([
        t("records.tab_timeline"), t("profile.tab_details"),
        t("profile.tab_contacts", count=len(data.contacts)), t("profile.tab_deals", count=len(data.deals)),
        t("profile.tab_orders", count=len(data.orders)), t("profile.tab_tasks_cases"), t("consent.tab"),
        t("profile.tab_history"),
    ])
    with tabs[0]:
        timeline(customer_id)
    with tabs[1]:
        details_tab(profile)
    with tabs[2]:
        contacts_tab(profile)
    with tabs[3]:
        deals_tab(profile)
    with tabs[4]:
        orders_tab(profile)
    with tabs[5]:
        tasks_tab(profile)
    with tabs[6]:
        consent.consent_tab(actor, customer_id, data.customer.name, [(c.id, c.name) for c in data.contacts])
    with tabs[7]:
        history_tab(profile)


def pick_customer() -> None:
    """No customer chosen: a search that lists links to the 360s."""
    st.title(t("profile.title"))
    query = st.text_input(t("customers.search"), key="profile_search", placeholder=t("customers.search_hint"))
    if not query.strip():
        st.info(t("profile.pick"))
        return
    with read_session() as session:
        found = list_customers(session, filters=CustomerFilters(search=query), per_page=20, with_total=False)
    for row in found.items:
        st.page_link(PROFILE_PAGE, label=plain_join([row.name, row.owner_name or t("filter.unowned")]),
                     query_params={"customer_id": str(row.id)})
    if not found.items:
        st.info(t("customers.empty"))


def back_link() -> None:
    """Back to the grid as it was left: its filters, page and position live in the session (see customers_grid)."""
    st.page_link(CUSTOMERS_PAGE, label=t("profile.back"), icon="⬅️")


# --- header ----------------------------------------------------------------------------------


def contact_links(email: str | None, phone: str | None) -> str:
    """Markdown links to call or write, built from validated values (the label is escaped text)."""
    links = []
    if (tel := tel_uri(phone)) is not None:
        links.append(f"[📞 {plain_line(phone)}]({tel})")
    if (mailto := mailto_uri(email)) is not None:
        links.append(f"[✉️ {plain_line(email)}]({mailto})")
    return " · ".join(links)


def header(profile: Profile) -> None:
    """Name, kind and tags; the key facts; the customer's phone and email one tap away; the last notice."""
    customer, facts = profile.data.customer, profile.facts
    st.title(plain_line(customer.name))
    st.caption(plain_join(filter(None, [t(f"kind.{customer.kind}"), profile.data.team_name,
                                        ", ".join(customer.tag_list)])))
    links = contact_links(customer.email, customer.phone)
    if links:
        st.markdown(links)
    if notice := STATE.pop(f"{profile.prefix}_notice", None):
        st.success(notice)
    open_value = (money(facts.open_value, currency_code=facts.currency) if facts.currency
                  else (EMPTY if not facts.open_deals else number(facts.open_value, digits=2)))
    cells = [
        (t("field.owner"), profile.data.owner_name or t("filter.unowned")),
        (t("field.lifecycle_stage"), t(f"stage.{customer.lifecycle_stage}")),
        (t("records.deal_stage"), facts.deal_stage or EMPTY),
        (t("records.open_deals_value", count=facts.open_deals), open_value),
        (t("records.last_contact"), when(facts.last_contacted_at)),
        (t("records.next_step"), next_step_text(facts)),
    ]
    with st.container(horizontal=True, key="profile_facts", gap="small"):
        for label, value in cells:
            with st.container(border=True, width="content"):
                st.caption(label)  # the catalog's text
                st.markdown(f"**{plain_line(value)}**")


def next_step_text(facts: KeyFacts) -> str:
    """The next open task (with its due moment), else the soonest open deal and its stage; '—' when none."""
    step = facts.next_step
    if step is None:
        return EMPTY
    due = when(step.due) if isinstance(step.due, dt.datetime) else date(step.due)
    overdue = " ⚠️" if step.overdue else ""
    if step.kind == "task":
        return t("records.next_task", title=step.title, due=due) + overdue
    return t("records.next_deal", name=step.title, stage=step.stage_name or EMPTY, due=due) + overdue


# --- quick actions ---------------------------------------------------------------------------


@st.fragment
def quick_actions(profile: Profile) -> None:
    """Log a call, add a task or start a deal: one click opens the small form; only this fragment reruns."""
    key = f"{profile.prefix}_quick"
    labels = {"call": t("records.quick_call"), "task": t("records.quick_task"), "deal": t("records.quick_deal")}
    chosen = st.segmented_control(
        t("records.quick_actions"), list(QUICK_ACTIONS), format_func=labels.__getitem__, key=key,
        label_visibility="collapsed",
    )
    if chosen == "call":
        log_call_form(profile)
    elif chosen == "task":
        task_form(profile)
    elif chosen == "deal":
        deal_form(profile)


def _done(profile: Profile, notice: str) -> None:
    """After a write: close the quick form, say what happened, and rerun the page (its facts changed)."""
    STATE.pop(f"{profile.prefix}_quick", None)
    STATE[f"{profile.prefix}_notice"] = notice
    STATE.pop(f"{profile.prefix}_timeline_cursors", None)
    st.rerun(scope="app")


def log_call_form(profile: Profile) -> None:
    """A call (or visit, meeting, email, note) with an optional follow-up."""
    generation = STATE.setdefault(f"{profile.prefix}_activity_generation", 0)
    contacts = {contact.id: contact.name for contact in profile.data.contacts}
    with st.form(f"{profile.prefix}_activity_{generation}", clear_on_submit=False, border=True):
        left, right = st.columns([1, 2])
        kind = left.selectbox(t("tasks.activity_type"), [k.value for k in ActivityType],
                              format_func=lambda v: t(f"tasks.activity.{v}"))
        contact = left.selectbox(t("profile.activity_contact"), [None, *contacts],
                                 format_func=lambda v: EMPTY if v is None else contacts[v])
        summary = right.text_area(t("profile.activity_summary") + " *", height=96, max_chars=4000)
        follow_up = right.date_input(t("profile.next_follow_up"), value=None)
        logged = st.form_submit_button(t("profile.log_activity"), type="primary")
    if logged:
        try:
            log_activity(get_db(), profile.actor, ActivityInput(
                customer_id=profile.customer_id, type=kind, summary=summary, contact_id=contact,
                next_follow_up_at=follow_up,
            ))
        except DomainError as error:
            show_domain_error(error, labels={"summary": t("profile.activity_summary"),
                                             "next_follow_up_at": t("profile.next_follow_up")})
        else:
            STATE[f"{profile.prefix}_activity_generation"] = generation + 1
            _done(profile, t("profile.activity_logged"))


def task_form(profile: Profile) -> None:
    """A task on this customer for the acting user."""
    generation = STATE.setdefault(f"{profile.prefix}_task_generation", 0)
    with st.form(f"{profile.prefix}_task_{generation}", clear_on_submit=False, border=True):
        title = st.text_input(t("profile.task") + " *", max_chars=200)
        left, right = st.columns(2)
        due_day = left.date_input(t("profile.due"), value=dt.date.today() + dt.timedelta(days=1))
        priority = right.selectbox(t("profile.priority"), [p.value for p in Priority],
                                   index=[p.value for p in Priority].index(Priority.NORMAL.value),
                                   format_func=priority_label)
        added = st.form_submit_button(t("records.add_task"), type="primary")
    if added:
        due_at = dt.datetime.combine(due_day, dt.time(9, 0)) if due_day else None
        try:
            create_task(get_db(), profile.actor, TaskInput(title=title, due_at=due_at, customer_id=profile.customer_id,
                                                           priority=priority))
        except DomainError as error:
            show_domain_error(error, labels={"title": t("profile.task"), "priority": t("profile.priority")})
        else:
            STATE[f"{profile.prefix}_task_generation"] = generation + 1
            _done(profile, t("records.task_added", title=plain(title.strip())))


def deal_form(profile: Profile) -> None:
    """A deal in the default pipeline's open stages, owned like the customer when the actor may."""
    actor, customer = profile.actor, profile.data.customer
    with read_session() as session:
        pipelines = list_pipelines(session)
    default_pipeline = next((p for p in pipelines if p.is_default), pipelines[0] if pipelines else None)
    open_stages = [s for s in (default_pipeline.stages if default_pipeline else []) if s.kind == "open"]
    stage_names = {s.id: s.name for s in open_stages}
    generation = STATE.setdefault(f"{profile.prefix}_deal_generation", 0)
    with st.form(f"{profile.prefix}_deal_{generation}", clear_on_submit=False, border=True):
        cells = form_cells(4)  # in reading order on a phone too
        name = next(cells).text_input(t("deal.name") + " *", max_chars=200)
        amount = next(cells).text_input(t("deal.amount"), value="0")
        stage = next(cells).selectbox(t("deal.stage"), list(stage_names), format_func=lambda v: stage_names[v])
        close = next(cells).date_input(t("deal.expected_close_date"), value=None)
        saved = st.form_submit_button(t("profile.add_deal"), type="primary")
    if saved:
        owner = customer.owner_id if (actor.sees_whole_tenant
                                      or customer.owner_id in actor.visible_owner_ids | {actor.user_id}) else None
        try:
            create_opportunity(get_db(), actor, OpportunityInput(
                customer_id=profile.customer_id, name=name, amount=amount,
                pipeline_id=default_pipeline.id if default_pipeline else None, stage_id=stage,
                owner_id=owner, expected_close_date=close,
            ))
        except DomainError as error:
            show_domain_error(error, labels={"name": t("deal.name"), "amount": t("deal.amount"),
                                             "expected_close_date": t("deal.expected_close_date")})
        else:
            STATE[f"{profile.prefix}_deal_generation"] = generation + 1
            _done(profile, t("profile.deal_added", name=plain(name.strip())))


# --- timeline --------------------------------------------------------------------------------


@st.fragment
def timeline(customer_id: int) -> None:
    """The newest things first, a page at a time from the server; filtering or paging reruns this alone."""
    prefix = f"profile_{customer_id}_timeline"
    labels = {kind: t(f"records.kind.{kind}") for kind in TIMELINE_KINDS}
    chosen = st.pills(t("records.timeline_filter"), list(TIMELINE_KINDS), format_func=labels.__getitem__,
                      selection_mode="multi", key=f"{prefix}_kinds", label_visibility="collapsed")
    kinds = tuple(chosen) if chosen else TIMELINE_KINDS
    if STATE.get(f"{prefix}_kinds_seen") != kinds:
        STATE[f"{prefix}_kinds_seen"] = kinds
        STATE[f"{prefix}_cursors"] = []
    cursors: list[TimelineCursor] = STATE.setdefault(f"{prefix}_cursors", [])
    with read_session() as session:
        page = customer_timeline(session, customer_id, kinds=kinds, after=cursors[-1] if cursors else None,
                                 limit=TIMELINE_PAGE_SIZE)
    if not page.entries:
        st.info(t("records.timeline_empty") if not cursors else t("records.timeline_end"))
    for entry in page.entries:
        timeline_entry(entry)
    if cursors or page.next_cursor is not None:
        # callbacks move the cursor before the fragment reruns: the click's own rerun shows the page
        def previous() -> None:
            STATE[f"{prefix}_cursors"] = cursors[:-1]

        def older() -> None:
            STATE[f"{prefix}_cursors"] = [*cursors, page.next_cursor]

        pager = st.columns([1, 1, 2])
        pager[0].button(t("pager.previous"), key=f"{prefix}_previous", disabled=not cursors, width="stretch",
                        on_click=previous)
        pager[1].button(t("records.older"), key=f"{prefix}_next", disabled=page.next_cursor is None,
                        width="stretch", on_click=older)
        pager[2].caption(t("grid.page", page=len(cursors) + 1))


ENTRY_ICONS = {"activity": "💬", "deal_stage": "💼", "lifecycle": "🔄", "task": "✅", "order": "🧾", "marketing": "📣"}


def timeline_entry(entry: TimelineEntry) -> None:
    """One line of what happened (all data escaped), then the entry's own text as plain text."""
    details = entry.details
    body: str | None = None
    if entry.kind == "activity":
        what = [t(f"tasks.activity.{details['type']}"), entry.actor_name, details.get("contact")]
        body = entry.text
    elif entry.kind == "deal_stage":
        moved = (t("records.deal_created", stage=details["to_stage"]) if details["from_stage"] is None
                 else t("records.deal_moved", before=details["from_stage"], after=details["to_stage"]))
        what = [entry.text, moved, money(details["amount"], currency_code=details["currency"]), entry.actor_name]
        if details["to_kind"] == "lost":
            reason = details.get("lost_reason")
            what.append(t("records.lost_reason", reason=reason) if reason else t("records.lost_no_reason"))
    elif entry.kind == "lifecycle":
        before = t(f"stage.{details['from_stage']}") if details["from_stage"] else EMPTY
        what = [t("records.lifecycle_moved", before=before, after=t(f"stage.{details['to_stage']}")),
                entry.actor_name if details["source"] == "manual" else t("records.by_rules")]
        body = entry.text if details["source"] == "manual" else None
    elif entry.kind == "task":
        state = t("records.task_done") if details["status"] == "done" else (
            t("records.task_open", due=when(details["due_at"])) if details["due_at"] else t("records.task_undated"))
        what = [t("records.task_created", title=entry.text), state, entry.actor_name]
    elif entry.kind == "marketing":  # a campaign touch: the campaign, what happened; the link or reason as text
        what = [t(f"campaign_results.touch.{details['touch']}", campaign=entry.text)]
        body = details.get("detail")
    else:
        what = [t("records.order", number=entry.text), order_status_label(details["status"]),
                money(details["amount"], currency_code=details["currency"])]
    st.markdown(f"{ENTRY_ICONS[entry.kind]} **{plain(when(entry.occurred_at))}** · "
                + plain_join(value for value in what if value))
    if body:
        st.text(body)


# --- tabs ------------------------------------------------------------------------------------


def details_tab(profile: Profile) -> None:
    """Every field, links to call or write, and (for writers) edit, stage override and archive."""
    customer = profile.data.customer
    st.caption(t("records.details_hint"))
    rows = [
        (t("field.email"), customer.email), (t("field.phone"), customer.phone),
        (t("field.industry"), customer.industry), (t("field.region"), customer.region),
        (t("regions.place"), region_label(customer.province_code, customer.city_code, customer.district_code)),
        (t("field.credit_code"), customer.credit_code), (t("field.source"), customer.source),
        (t("field.last_contacted_at"), when(customer.last_contacted_at)),
        (t("grid.created_at"), when(customer.created_at)), (t("field.updated_at"), when(customer.updated_at)),
    ]
    for definition in profile.definitions:
        value = (customer.custom_fields or {}).get(definition.name)
        if definition.field_type == "bool" and value is not None:
            value = t("grid.yes") if value else t("grid.no")
        rows.append((profile.custom_labels[definition.name], None if value is None else str(value)))
    lines = []
    for label, value in rows:
        shown = plain_line(or_dash(value))
        if label == t("field.phone") and (tel := tel_uri(customer.phone)):
            shown = f"[{shown}]({tel})"
        elif label == t("field.email") and (mailto := mailto_uri(customer.email)):
            shown = f"[{shown}]({mailto})"
        lines.append(f"- **{plain_line(label)}**: {shown}")
    st.markdown("\n".join(lines))
    if profile.actor.can_write:
        edit_customer(profile)
        generation = STATE.get(f"{profile.prefix}_edit_generation", 0)
        pool.profile_section(profile.actor, customer, profile.prefix,
                             STATE.get(f"{profile.prefix}_edit_version_{generation}", customer.version))
        stage_override(profile)
        archive(profile)
        merging.customer_merge(profile.actor, profile.customer_id, profile.prefix,
                               {**profile.field_labels(), "owner": t("field.owner"),
                                "external_id": t("merge.field.external_id")})


def edit_customer(profile: Profile) -> None:
    """The edit form, with optimistic locking against the version the user started from."""
    actor, customer, prefix = profile.actor, profile.data.customer, profile.prefix
    labels = profile.field_labels()
    generation = STATE.setdefault(f"{prefix}_edit_generation", 0)
    loaded_version = STATE.setdefault(f"{prefix}_edit_version_{generation}", customer.version)
    with st.expander(t("profile.edit"), expanded=bool(STATE.get(f"{prefix}_edit_open"))):
        if stale := STATE.get(f"{prefix}_stale"):
            st.error(t("error.stale_record", **plain_params(stale.params)))
            if st.button(t("profile.reload"), key=f"{prefix}_reload"):
                STATE.pop(f"{prefix}_stale", None)
                STATE[f"{prefix}_edit_generation"] = generation + 1
                st.rerun()
        owner_options: list[int | None] = [
            o for o, _ in profile.owners
            if actor.sees_whole_tenant or o in actor.visible_owner_ids or o == customer.owner_id
        ]
        owner_options.append(None)
        pending_duplicate = STATE.get(f"{prefix}_duplicate_{generation}")
        if pending_duplicate:
            show_domain_error(pending_duplicate)
            blocked = pending_duplicate.action == BLOCK
            st.caption(t("customers.duplicate_blocked_hint" if blocked else "customers.duplicate_hint"))
        # outside the form: choosing a province refreshes the cities before the form is sent
        province_code, city_code, district_code = region_selects(
            f"{prefix}_region_{generation}",
            (customer.province_code or "", customer.city_code or "", customer.district_code or ""))
        with st.form(f"{prefix}_edit_{generation}", clear_on_submit=False):
            cells = form_cells(11)  # in reading order on a phone too
            name = next(cells).text_input(labels["name"] + " *", value=customer.name, max_chars=200)
            kinds = [k.value for k in CustomerKind]
            kind = next(cells).selectbox(labels["kind"], kinds, index=kinds.index(customer.kind),
                                         format_func=lambda v: t(f"kind.{v}"))
            email = next(cells).text_input(labels["email"], value=customer.email or "")
            phone = next(cells).text_input(labels["phone"], value=customer.phone or "")
            owner_index = (owner_options.index(customer.owner_id) if customer.owner_id in owner_options
                           else len(owner_options) - 1)
            owner_id = next(cells).selectbox(
                labels["owner_id"], owner_options, index=owner_index,
                format_func=lambda v: t("filter.unowned") if v is None else profile.owner_names.get(v, str(v)),
            )
            stages = [s.value for s in LifecycleStage]
            stage = next(cells).selectbox(labels["lifecycle_stage"], stages,
                                          index=stages.index(customer.lifecycle_stage),
                                          format_func=lambda v: t(f"stage.{v}"))
            industry = next(cells).text_input(labels["industry"], value=customer.industry or "", max_chars=80)
            region = next(cells).text_input(labels["region"], value=customer.region or "", max_chars=80)
            source = next(cells).text_input(labels["source"], value=customer.source or "", max_chars=80)
            tags = next(cells).text_input(labels["tags"], value=", ".join(customer.tag_list))
            credit_code = next(cells).text_input(labels["credit_code"], value=customer.credit_code or "",
                                                 max_chars=40)
            custom_values = custom_inputs(profile, customer.custom_fields or {})
            confirm_duplicate = False
            if pending_duplicate and may_override(actor.role, pending_duplicate.action):
                confirm_label = "customers.create_blocked_anyway" if pending_duplicate.action == BLOCK else \
                    "customers.create_anyway"
                confirm_duplicate = st.checkbox(t(confirm_label), key=f"{prefix}_confirm_{generation}")
            saved = st.form_submit_button(t("profile.save"), type="primary")
        if saved:
            STATE[f"{prefix}_edit_open"] = True
            form = CustomerInput(
                name=name, kind=kind, email=email, phone=phone, owner_id=owner_id, lifecycle_stage=stage,
                industry=industry, region=region, source=source, tags=tags, custom_fields=custom_values,
                external_id=customer.external_id or "", credit_code=credit_code, province_code=province_code,
                city_code=city_code, district_code=district_code,
            )
            try:
                update_customer(get_db(), actor, profile.customer_id, form, expected_version=loaded_version,
                                allow_duplicate=confirm_duplicate)
            except StaleRecord as error:
                STATE[f"{prefix}_stale"] = error
                st.rerun()
            except DuplicateCustomer as error:
                STATE[f"{prefix}_duplicate_{generation}"] = error  # the typed values stay (same form key)
                st.rerun()
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE[f"{prefix}_edit_generation"] = generation + 1
                STATE[f"{prefix}_edit_open"] = False
                STATE[f"{prefix}_notice"] = t("profile.saved")
                st.rerun()


def custom_inputs(profile: Profile, stored: dict[str, Any]) -> dict[str, Any]:
    """One input per custom field, filled with the stored value."""
    values: dict[str, Any] = {}
    for definition in profile.definitions:
        label = plain_line(profile.custom_labels[definition.name]) + (" *" if definition.required else "")
        current = stored.get(definition.name)
        if definition.field_type == "choice":
            options = ["", *definition.choices]
            values[definition.name] = st.selectbox(label, options,
                                                   index=options.index(current) if current in options else 0)
        elif definition.field_type == "bool":
            values[definition.name] = st.checkbox(label, value=bool(current))
        elif definition.field_type == "date":
            values[definition.name] = st.date_input(label, value=dt.date.fromisoformat(current) if current else None)
        else:
            values[definition.name] = st.text_input(label, value="" if current is None else str(current))
    return values


def stage_override(profile: Profile) -> None:
    """Set the lifecycle stage by hand, with a reason kept in the stage history."""
    prefix, customer = profile.prefix, profile.data.customer
    with st.expander(t("profile.stage_override")):
        st.caption(t("profile.stage_override_hint"))
        with st.form(f"{prefix}_stage_override"):
            stages = [stage.value for stage in LifecycleStage]
            chosen = st.selectbox(t("field.lifecycle_stage"), stages, index=stages.index(customer.lifecycle_stage),
                                  format_func=lambda value: t(f"stage.{value}"))
            reason = st.text_input(t("profile.stage_override_reason") + " *", max_chars=500)
            if st.form_submit_button(t("profile.stage_override_save")):
                try:
                    override_lifecycle_stage(get_db(), profile.actor, profile.customer_id, stage=chosen, reason=reason)
                except DomainError as error:
                    show_domain_error(error, labels={"lifecycle_stage": t("field.lifecycle_stage"),
                                                     "reason": t("profile.stage_override_reason")})
                else:
                    STATE[f"{prefix}_notice"] = t("profile.stage_override_done", stage=t(f"stage.{chosen}"))
                    st.rerun()


def archive(profile: Profile) -> None:
    """Archive the customer (it leaves every list; its history stays)."""
    prefix, customer = profile.prefix, profile.data.customer
    generation = STATE.get(f"{prefix}_edit_generation", 0)
    loaded_version = STATE.get(f"{prefix}_edit_version_{generation}", customer.version)
    with st.expander(t("profile.archive")):
        st.caption(t("profile.archive_hint"))
        if st.button(t("profile.archive_confirm", name=plain_line(customer.name)), key=f"{prefix}_archive"):
            try:
                archive_customer(get_db(), profile.actor, profile.customer_id, expected_version=loaded_version)
            except DomainError as error:
                show_domain_error(error)
            else:
                STATE["customers_notice"] = t("profile.archived", name=plain(customer.name))
                st.switch_page(CUSTOMERS_PAGE)


def contacts_tab(profile: Profile) -> None:
    """Contacts as cards with tap-to-call and tap-to-mail; add, edit or archive one."""
    contacts = profile.data.contacts
    if not contacts:
        st.info(t("contacts.none"))
    for contact in contacts:
        with st.container(border=True):
            st.markdown(("⭐ " if contact.is_primary else "") + f"**{plain_line(contact.name)}**"
                        + (f" · {plain_line(contact.title)}" if contact.title else ""))
            links = contact_links(contact.email, contact.phone)
            st.markdown(links or plain_join(v for v in (contact.email, contact.phone) if v) or EMPTY)
    if profile.actor.can_write:
        contact_form(profile)
        merging.contact_merge(profile.actor, contacts, profile.prefix,
                              {"name": t("field.name"), "title": t("contacts.title_field"), "email": t("field.email"),
                               "phone": t("field.phone")})


def contact_form(profile: Profile) -> None:
    prefix, contacts = profile.prefix, profile.data.contacts
    names = {contact.id: contact.name for contact in contacts}
    labels = {"name": t("field.name"), "title": t("contacts.title_field"), "email": t("field.email"),
              "phone": t("field.phone")}
    editing_id = st.selectbox(t("contacts.choose"), [None, *names], key=f"{prefix}_contact_pick",
                              format_func=lambda v: t("contacts.new") if v is None else names[v])
    editing = next((c for c in contacts if c.id == editing_id), None)
    generation = STATE.setdefault(f"{prefix}_contact_generation", 0)
    form_key = f"{prefix}_contact_{editing_id}_{generation}"
    pending_duplicate: DuplicateContact | None = STATE.get(f"{form_key}_duplicate")
    if pending_duplicate:
        show_domain_error(pending_duplicate)
        blocked = pending_duplicate.action == BLOCK
        st.caption(t("contacts.duplicate_blocked_hint" if blocked else "contacts.duplicate_hint"))
    with st.form(form_key, clear_on_submit=False):
        cells = form_cells(4)  # in reading order on a phone too
        name = next(cells).text_input(labels["name"] + " *", value=editing.name if editing else "")
        title = next(cells).text_input(labels["title"], value=(editing.title or "") if editing else "")
        email = next(cells).text_input(labels["email"], value=(editing.email or "") if editing else "")
        phone = next(cells).text_input(labels["phone"], value=(editing.phone or "") if editing else "")
        primary = st.checkbox(t("contacts.primary"), value=editing.is_primary if editing else not contacts)
        confirm_duplicate = False
        if pending_duplicate and may_override(profile.actor.role, pending_duplicate.action):
            confirm_label = "contacts.add_blocked_anyway" if pending_duplicate.action == BLOCK else \
                "contacts.add_anyway"
            confirm_duplicate = st.checkbox(t(confirm_label), key=f"{form_key}_confirm")
        saved = st.form_submit_button(t("contacts.save") if editing else t("contacts.add"), type="primary")
    if saved:
        form = ContactInput(profile.customer_id, name, title, email, phone, primary)
        try:
            if editing:
                update_contact(get_db(), profile.actor, editing.id, form, expected_version=editing.version,
                               allow_duplicate=confirm_duplicate)
            else:
                create_contact(get_db(), profile.actor, form, allow_duplicate=confirm_duplicate)
        except DuplicateContact as error:
            STATE[f"{form_key}_duplicate"] = error  # the typed values stay (same form key)
            st.rerun()
        except DomainError as error:
            show_domain_error(error, labels=labels)
        else:
            STATE.pop(f"{form_key}_duplicate", None)
            STATE[f"{prefix}_contact_generation"] = generation + 1
            STATE[f"{prefix}_notice"] = t("contacts.saved", name=plain(name.strip()))
            st.rerun()
    if editing and st.button(t("contacts.archive", name=plain_line(editing.name)), key=f"{prefix}_contact_archive"):
        try:
            archive_contact(get_db(), profile.actor, editing.id, expected_version=editing.version)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE.pop(f"{prefix}_contact_pick", None)
            STATE[f"{prefix}_notice"] = t("contacts.archived", name=plain(editing.name))
            st.rerun()


def deals_tab(profile: Profile) -> None:
    """The customer's deals; a lost one shows its reason in words, or says none was given."""
    deals = profile.data.deals
    if not deals:
        st.info(t("profile.no_deals"))
        return
    st.caption(t("records.deals_hint"))
    frame = pd.DataFrame([{
        t("deal.name"): d.name, t("deal.stage"): d.stage_name,
        t("deal.amount"): money(d.amount, currency_code=d.currency),
        t("deal.probability"): f"{d.probability}%",
        t("profile.weighted"): money(d.weighted_amount, currency_code=d.currency),
        t("deal.expected_close_date"): date(d.expected_close_date), t("field.owner"): or_dash(d.owner_name),
        t("deal.lost_reason"): ((d.lost_reason or "").strip() or t("records.no_reason_given"))
        if d.stage_kind == "lost" else EMPTY,
    } for d in deals])
    st.dataframe(frame, hide_index=True, width="stretch", placeholder=EMPTY)
    st.page_link("pages/pipeline.py", label=t("profile.open_pipeline"), icon="📋")


def order_status_label(status: str) -> str:
    return {"draft": t("orders.status_draft"), "confirmed": t("orders.status_confirmed"),
            "fulfilled": t("orders.status_fulfilled"), "cancelled": t("orders.status_cancelled")}.get(status, status)


def priority_label(priority: str) -> str:
    return {"low": t("profile.priority_low"), "normal": t("profile.priority_normal"),
            "high": t("profile.priority_high")}.get(priority, priority)


def orders_tab(profile: Profile) -> None:
    """Orders with their lines; archive one; a new order from the catalogue."""
    data, prefix, actor = profile.data, profile.prefix, profile.actor
    st.markdown(t("profile.orders_summary", count=data.order_totals.count, total=money(data.order_totals.total_amount)))
    for order in data.orders:
        with st.expander(plain_join([order.order_number, date(order.ordered_at), order_status_label(order.status),
                                     money(order.total_amount, currency_code=order.currency)])):
            st.dataframe(pd.DataFrame([{
                "SKU": line.sku, t("products.name"): line.product_name, t("orders.quantity"): float(line.quantity),
                t("products.unit_price"): money(line.unit_price, currency_code=order.currency),
                t("orders.line_total"): money(line.line_total, currency_code=order.currency),
            } for line in order.lines]), hide_index=True, width="stretch", placeholder=EMPTY)
            if actor.can_write and st.button(t("orders.archive"), key=f"{prefix}_order_archive_{order.id}"):
                try:
                    archive_order(get_db(), actor, order.id, expected_version=order.version)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE[f"{prefix}_notice"] = t("orders.archived", number=plain(order.order_number))
                    st.rerun()
    if actor.can_write:
        order_form(profile)


def order_form(profile: Profile) -> None:
    prefix, actor = profile.prefix, profile.actor
    with read_session() as session:
        products = list_products(session, active_only=True)
    if not products:
        st.info(t("orders.no_products"))
        return
    product_names = {
        p.id: " · ".join(filter(None, (p.sku, f"{p.name} ({money(p.unit_price, currency_code=p.currency)})")))
        for p in products
    }
    generation = STATE.setdefault(f"{prefix}_order_generation", 0)
    st.markdown(f"**{t('orders.new')}**")
    lines_frame = st.data_editor(
        pd.DataFrame({"product": pd.Series([None], dtype="object"), "quantity": [1.0], "unit_price": [None]}),
        num_rows="dynamic", hide_index=True, width="stretch", key=f"{prefix}_order_lines_{generation}",
        column_config={
            "product": st.column_config.SelectboxColumn(t("orders.product"), options=list(product_names.values()),
                                                        required=True),
            "quantity": st.column_config.NumberColumn(t("orders.quantity"), min_value=0.01, step=1.0, required=True),
            "unit_price": st.column_config.NumberColumn(t("orders.unit_price_override"), min_value=0.0,
                                                        format="%.2f"),
        },
    )
    with st.form(f"{prefix}_order_{generation}", clear_on_submit=False):
        left, right = st.columns(2)
        status = left.selectbox(t("orders.status"), [s.value for s in OrderStatus], index=1,
                                format_func=order_status_label)
        ordered_on = right.date_input(t("orders.ordered_on"), value=dt.date.today())
        saved = st.form_submit_button(t("orders.create"), type="primary")
    if saved:
        by_label = {label: product_id for product_id, label in product_names.items()}
        lines = [
            OrderLineInput(by_label.get(str(row["product"]), 0), str(row["quantity"]),
                           None if pd.isna(row["unit_price"]) else str(row["unit_price"]))
            for _, row in lines_frame.iterrows() if row["product"]
        ]
        try:
            create_order(get_db(), actor, OrderInput(profile.customer_id, lines, status=status, ordered_at=ordered_on))
        except DomainError as error:
            show_domain_error(error, labels={"lines": t("orders.lines")})
        else:
            STATE[f"{prefix}_order_generation"] = generation + 1
            STATE[f"{prefix}_notice"] = t("orders.created")
            st.rerun()


def tasks_tab(profile: Profile) -> None:
    data = profile.data
    st.markdown(f"**{t('profile.open_tasks')}**")
    if data.open_tasks:
        st.dataframe(pd.DataFrame([{
            t("profile.task"): ("⚠️ " if task.overdue else "") + task.title, t("profile.due"): when(task.due_at),
            t("profile.priority"): priority_label(task.priority), t("profile.assignee"): or_dash(task.assignee_name),
        } for task in data.open_tasks]), hide_index=True, width="stretch", placeholder=EMPTY)
    else:
        st.caption(t("profile.no_tasks"))
    st.markdown(f"**{t('profile.cases')}**")
    if data.cases:
        record = data.sla_record
        if record is not None:
            st.caption(t("profile.sla_record", first=share(record.first_response_met, record.first_response_measured),
                         resolution=share(record.resolution_met, record.resolution_measured),
                         csat=share(record.csat_good, record.csat_rated)))
        st.dataframe(pd.DataFrame([{
            "#": case.id,
            t("profile.case_subject"): case.subject, t("profile.case_status"): case_status_label(case.status),
            t("profile.priority"): t(f"service.priority.{case.priority}"), t("profile.opened"): when(case.opened_at),
            t("profile.resolved"): when(case.resolved_at),
            t("service.metric.first_response"): sla_outcome_label(case.first_response),
            t("service.metric.resolution"): sla_outcome_label(case.resolution),
            t("profile.csat"): t(f"profile.csat.{case.csat}") if case.csat else EMPTY,
        } for case in data.cases]), hide_index=True, width="stretch", placeholder=EMPTY)
        by_id = {case.id: case.subject for case in data.cases}
        pick = st.columns([3, 1], vertical_alignment="bottom")
        chosen = pick[0].selectbox(t("service.queue.open_case"), list(by_id), key="profile_case_pick",
                                   format_func=lambda case_id: f"#{case_id} {by_id[case_id]}")
        with pick[1]:
            st.page_link("pages/case.py", label=t("service.queue.go"), icon="➡️",
                         query_params={"case_id": str(chosen)})
    else:
        st.caption(t("profile.no_cases"))


def share(part: int, whole: int) -> str:
    """"8 of 10 (80%)", or a dash when nothing was measured."""
    if not whole:
        return EMPTY
    return t("profile.share", part=f"{part:,}", whole=f"{whole:,}", percent=round(100 * part / whole))


def sla_outcome_label(outcome: str | None) -> str:
    """A clock's outcome on the 360 (met, missed, running), or a dash without an SLA policy."""
    return t(f"profile.sla.{outcome}") if outcome else EMPTY


def case_status_label(status: str) -> str:
    """A case's status as the service pages name it (new, open, pending, on hold, resolved, closed)."""
    return t(f"service.status.{status}")


def history_tab(profile: Profile) -> None:
    """Audited writes to the customer, its contacts and orders, with readable diffs."""
    history = profile.data.history
    pool.history_section(profile.customer_id)
    if not history:
        st.info(t("profile.no_history"))
        return
    st.caption(t("records.history_hint"))
    rows = [{
        t("profile.when"): when(change.occurred_at), t("profile.who"): change.actor_name or t("profile.system"),
        t("profile.what"): f"{action_label(change.action)} · {entity_label(change.entity)}",
        t("profile.changes"): "\n".join(diff_lines(profile, change.changes)),
    } for change in history]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder=EMPTY)


def action_label(action: str) -> str:
    return {"create": t("profile.action_create"), "update": t("profile.action_update"),
            "archive": t("profile.action_archive"), "restore": t("profile.action_restore"),
            "delete": t("profile.action_delete"), "merge": t("merge.history_action")}.get(action, action)


def entity_label(entity: str) -> str:
    return {"customer": t("profile.entity_customer"), "contact": t("profile.entity_contact"),
            "order": t("profile.entity_order")}.get(entity, entity)


def diff_lines(profile: Profile, changes: dict[str, Any]) -> list[str]:
    """``field: old → new`` lines with labels the user knows; custom fields compared one by one."""
    labels = {**profile.field_labels(), "lost_reason": t("deal.lost_reason")}
    lines = []
    for key, pair in changes.items():
        if key.startswith("_") or not isinstance(pair, list) or len(pair) != 2:
            continue
        old, new = pair
        if key == "custom_fields" and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old, new = old or {}, new or {}
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    label = profile.custom_labels.get(name, name)
                    lines.append(f"{label}: {blank(old.get(name))} → {blank(new.get(name))}")
            continue
        lines.append(f"{labels.get(key, key)}: {readable(profile, key, old)} → {readable(profile, key, new)}")
    return lines


def readable(profile: Profile, key: str, value: Any) -> str:
    """A stored value as the user knows it: owners by name, stages and kinds translated."""
    if value is None:
        return ""
    if key == "owner_id":
        return profile.owner_names.get(value, str(value))
    if key == "lifecycle_stage":
        return t(f"stage.{value}")
    if key == "kind":
        return t(f"kind.{value}")
    if key == "tags":
        return ", ".join(tag for tag in str(value).split(",") if tag)
    return str(value)


def blank(value: Any) -> str:
    return "" if value is None else str(value)
