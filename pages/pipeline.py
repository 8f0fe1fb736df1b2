"""Pipeline board: a column per stage (count, sum, weighted sum), cards with a stage menu
offering only allowed transitions, the deal form (create/edit, optimistic locking) and a CSV export.

Reads through :func:`crm_core.queries.deals.load_board`; writes through
:mod:`crm_core.services.deals`. Every refusal is shown in the user's language and the
form keeps what the user typed.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

import streamlit as st

from crm_core.errors import DomainError, StaleRecord
from crm_core.exporting import to_csv
from crm_core.models import StageKind
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.deals import (
    EXPORT_COLUMNS,
    MAX_SEARCH_MATCHES,
    DealCard,
    DealFilters,
    PipelineRow,
    StageRow,
    get_deal,
    iter_deal_export,
    list_pipelines,
    load_board,
)
from crm_core.queries.scores import latest_scores
from crm_core.queries.users import assignable_owners
from crm_core.rules.pipeline import allowed_targets
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage, update_opportunity
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import money
from crm_ui.text import plain, plain_join, plain_line

STATE = st.session_state
CLOSED_WINDOWS = [30, 90, 365, 0]  # days of won/lost deals shown; 0 = all
ALL = "__all__"

actor = current_actor()
today = dt.datetime.now(dt.UTC).date()
STATE.setdefault("pipeline_pages", {})
STATE.setdefault("pipeline_form_generation", 0)


def reset_pages() -> None:
    STATE["pipeline_pages"] = {}
    STATE.pop("pipeline_export", None)  # an export always matches the filters on screen


st.title(t("board.title"))

with read_session() as session:
    pipelines = list_pipelines(session)
    owners = assignable_owners(session)
owner_names = dict(owners)
if not pipelines:
    st.info(t("board.no_pipeline"))
    st.stop()

# --- filters -------------------------------------------------------------------------
filter_columns = st.columns([2, 2, 3, 2, 1])
pipeline_ids = [pipeline.id for pipeline in pipelines]
pipeline_id = filter_columns[0].selectbox(
    t("board.pipeline"), pipeline_ids,
    format_func=lambda value: next(p.name for p in pipelines if p.id == value),
    key="pipeline_pipeline", on_change=reset_pages,
)
pipeline: PipelineRow = next(p for p in pipelines if p.id == pipeline_id)
visible_owner_choices = [ALL, *[owner_id for owner_id, _ in owners
                                if actor.sees_whole_tenant or owner_id in actor.visible_owner_ids
                                or owner_id == actor.user_id]]
owner_choice = filter_columns[1].selectbox(
    t("field.owner"), visible_owner_choices,
    format_func=lambda value: t("filter.all") if value == ALL else owner_names.get(value, str(value)),
    key="pipeline_owner", on_change=reset_pages,
)
search = filter_columns[2].text_input(
    t("board.search"), key="pipeline_search", placeholder=t("board.search_hint"), on_change=reset_pages
)
closed_window = filter_columns[3].selectbox(
    t("board.closed_window"), CLOSED_WINDOWS,
    format_func=lambda days: t("board.closed_all") if days == 0 else t("board.closed_days", days=days),
    index=1, key="pipeline_closed_window", on_change=reset_pages,
)
per_page = filter_columns[4].selectbox(t("board.per_column"), [5, 10, 20], index=1, key="pipeline_per_page",
                                       on_change=reset_pages)
filters = DealFilters(
    owner_id=owner_choice if isinstance(owner_choice, int) else None,
    search=search,
    closed_since=None if closed_window == 0 else today - dt.timedelta(days=closed_window),
)

stages_by_id: dict[int, StageRow] = {stage.id: stage for stage in pipeline.stages}


def allowed_moves(current: StageRow) -> list[StageRow]:
    """The stages a deal in ``current`` may move to (the pipeline rules), in pipeline order."""
    targets = allowed_targets(current.info, [stage.info for stage in pipeline.stages])
    return [stages_by_id[target.id] for target in targets]


# --- notices from the previous run ---------------------------------------------------------
if notice := STATE.pop("pipeline_notice", None):
    st.success(notice)
if pending := STATE.pop("pipeline_move_error", None):
    show_domain_error(pending)


# --- the deal form (create or edit) -----------------------------------------------------------
def deal_form(editing: DealCard | None) -> None:
    """The create/edit form; keeps the input on any refusal (same widget keys)."""
    generation = STATE["pipeline_form_generation"]
    prefix = f"pipeline_form_{editing.id if editing else 'new'}_{generation}"
    owner_options = [owner_id for owner_id, _ in owners
                     if actor.is_admin or owner_id == actor.user_id or owner_id in actor.visible_owner_ids]
    if actor.user_id not in owner_options:
        owner_options.insert(0, actor.user_id)
    if editing is None:
        query = st.text_input(t("board.customer_search"), key="pipeline_customer_search",
                              placeholder=t("board.customer_search_hint"))
        matches: list[tuple[int, str]] = []
        if query.strip():
            with read_session() as session:
                found = list_customers(session, filters=CustomerFilters(search=query), per_page=20, with_total=False)
            matches = [(row.id, row.name) for row in found.items]
            if not matches:
                st.caption(t("board.no_customer_match"))
        customer_names = dict(matches)
        # outside the form: its choices follow the search above
        picked = st.selectbox(
            t("deal.customer") + " *", list(customer_names), format_func=lambda value: customer_names[value],
            index=0 if customer_names else None, placeholder=t("board.customer_pick"),
            key=f"pipeline_customer_choice_{zlib.crc32(query.strip().encode())}",  # new search, fresh choice
        )
        stage_options = [stage for stage in pipeline.stages if stage.kind == StageKind.OPEN.value]
    else:
        customer_names = {editing.customer_id: editing.customer_name}
        picked = editing.customer_id
        current = stages_by_id[editing.stage_id]
        stage_options = [current, *allowed_moves(current)]
    labels = {
        "name": t("deal.name"), "customer_id": t("deal.customer"), "amount": t("deal.amount"),
        "currency": t("deal.currency"), "owner_id": t("field.owner"), "stage_id": t("deal.stage"),
        "probability": t("deal.probability"), "expected_close_date": t("deal.expected_close_date"),
        "lost_reason": t("deal.lost_reason"), "closed_at": t("deal.closed_on"), "pipeline_id": t("board.pipeline"),
    }
    with st.form(prefix, clear_on_submit=False):
        left, right = st.columns(2)
        name = left.text_input(labels["name"] + " *", value=editing.name if editing else "", max_chars=200)
        customer_choice = picked
        right.text_input(labels["customer_id"], value=customer_names.get(picked, "") if picked else "",
                         disabled=True)
        amount = left.text_input(labels["amount"] + " *", value=str(editing.amount) if editing else "",
                                 placeholder="120000")
        currency = right.text_input(labels["currency"], value=editing.currency if editing else "", max_chars=3,
                                    placeholder=t("board.currency_default"))
        owner_id = left.selectbox(
            labels["owner_id"], owner_options, format_func=lambda value: owner_names.get(value, str(value)),
            index=owner_options.index(editing.owner_id) if editing and editing.owner_id in owner_options else 0,
        )
        stage_id = right.selectbox(
            labels["stage_id"], [stage.id for stage in stage_options],
            format_func=lambda value: f"{stages_by_id[value].name} ({stages_by_id[value].probability}%)",
        )
        probability_text = left.text_input(
            labels["probability"], value="" if not editing or editing.hand_set_probability is None
            else str(editing.hand_set_probability), placeholder=t("board.probability_hint"),
        )
        expected_close = right.date_input(
            labels["expected_close_date"], value=editing.expected_close_date if editing else None,
            format="YYYY-MM-DD",
        )
        lost_reason = left.text_input(labels["lost_reason"], value=(editing.lost_reason or "") if editing else "",
                                      help=t("board.lost_reason_help"), max_chars=500)
        closed_on = right.date_input(labels["closed_at"], value=None, format="YYYY-MM-DD",
                                     help=t("board.closed_on_help"))
        submitted = st.form_submit_button(t("board.save_deal") if editing else t("board.create_deal"), type="primary")
    if not submitted:
        return
    probability: int | None = None
    if probability_text.strip():
        try:
            probability = int(probability_text.strip().rstrip("%"))
        except ValueError:
            st.error(t("deal.probability_range"))
            return
    if customer_choice is None:
        st.error(t("board.customer_required"))
        return
    form = OpportunityInput(
        customer_id=customer_choice, name=name, amount=amount, currency=currency, pipeline_id=pipeline.id,
        stage_id=stage_id, owner_id=owner_id, probability=probability, expected_close_date=expected_close,
        lost_reason=lost_reason, closed_on=closed_on,
    )
    try:
        if editing is None:
            create_opportunity(get_db(), actor, form)
        else:
            update_opportunity(get_db(), actor, editing.id, form, expected_version=STATE["pipeline_edit_version"])
    except StaleRecord as error:
        show_domain_error(error)
        STATE["pipeline_stale"] = True
    except DomainError as error:
        show_domain_error(error, labels=labels)
    else:
        STATE["pipeline_form_generation"] = generation + 1
        STATE.pop("pipeline_edit_id", None)
        STATE.pop("pipeline_stale", None)
        STATE["pipeline_notice"] = t("board.saved" if editing else "board.created", name=plain(name.strip()))
        reset_pages()
        st.rerun()


# the form edits the deal as it was when the user opened it (a snapshot): its values and
# version stay put while someone else saves, so a conflict is detected, not overwritten
editing: DealCard | None = STATE.get("pipeline_edit_snapshot") if STATE.get("pipeline_edit_id") else None
if editing is not None and editing.pipeline_id != pipeline.id:
    STATE.pop("pipeline_edit_id", None)
    editing = None

if actor.can_write:
    if editing is not None:
        with st.container(border=True):
            st.subheader(t("board.edit_deal", name=plain_line(editing.name)))
            deal_form(editing)
            buttons = st.columns([1, 1, 4])
            if STATE.get("pipeline_stale") and buttons[0].button(t("board.reload"), key="pipeline_reload"):
                # take the saved version as the new base; the form shows their values
                with read_session() as session:
                    fresh = get_deal(session, editing.id)
                if fresh is None:
                    STATE.pop("pipeline_edit_id", None)
                else:
                    STATE["pipeline_edit_snapshot"] = fresh
                    STATE["pipeline_edit_version"] = fresh.version
                STATE["pipeline_form_generation"] += 1
                STATE.pop("pipeline_stale", None)
                st.rerun()
            if buttons[1].button(t("board.cancel_edit"), key="pipeline_cancel_edit"):
                STATE.pop("pipeline_edit_id", None)
                STATE.pop("pipeline_stale", None)
                st.rerun()
    else:
        with st.expander(t("board.new_deal"), expanded=False):
            deal_form(None)
else:
    st.caption(t("access.read_only"))


# --- the board -----------------------------------------------------------------------------
with read_session() as session:
    board = load_board(
        session, pipeline_id=pipeline.id, filters=filters, per_page=per_page, pages=STATE["pipeline_pages"]
    )
assert board is not None

if board.search_truncated:
    st.warning(t("board.search_truncated", count=f"{MAX_SEARCH_MATCHES:,}"))
summary = st.columns(3)
summary[0].metric(t("dashboard.open_pipeline"), money(board.open_amount))
summary[1].metric(t("dashboard.weighted_forecast"), money(board.weighted_amount))
summary[2].metric(t("board.deals_on_board"), f"{sum(column.count for column in board.columns):,}")


def move_menu(card: DealCard) -> None:
    """The card's stage menu: only the transitions the pipeline allows."""
    current = stages_by_id[card.stage_id]
    targets = allowed_moves(current)
    if not targets:
        st.caption(t("board.no_moves"))
        return
    target_id = st.selectbox(
        t("board.move_to"), [stage.id for stage in targets], key=f"pipeline_target_{card.id}",
        format_func=lambda value: stages_by_id[value].name,
    )
    target = stages_by_id[target_id]
    reason = ""
    closed_on: dt.date | None = None
    if target.kind == StageKind.LOST.value:
        reason = st.text_input(t("deal.lost_reason") + " *", key=f"pipeline_reason_{card.id}", max_chars=500)
    if target.kind != StageKind.OPEN.value:
        closed_on = st.date_input(t("deal.closed_on"), value=today, max_value=today,
                                  key=f"pipeline_closed_{card.id}", format="YYYY-MM-DD")
    if st.button(t("board.move_button"), key=f"pipeline_move_{card.id}", type="primary"):
        try:
            move_stage(get_db(), actor, card.id, target_id, expected_version=card.version,
                       lost_reason=reason or None, closed_on=closed_on)
        except DomainError as error:
            STATE["pipeline_move_error"] = error
        else:
            STATE["pipeline_notice"] = t("board.moved", name=plain(card.name), stage=plain(target.name))
            for key in (f"pipeline_target_{card.id}", f"pipeline_reason_{card.id}"):
                STATE.pop(key, None)
            reset_pages()
        st.rerun()


def render_card(card: DealCard) -> None:
    with st.container(border=True):
        st.markdown(f"**{plain_line(card.name)}**")
        st.caption(f"🏢 {plain_line(card.customer_name)}")
        st.markdown(plain(f"{money(card.amount)} {card.currency} · {card.probability}%"))
        if card.id in win_scores:  # present once `python -m crm_core score apply` has run
            st.caption(t("board.win_score", percent=win_scores[card.id].percent))
        details = [card.owner_name or t("filter.unowned")]
        if card.stage_kind == StageKind.OPEN.value and card.expected_close_date:
            flag = "⚠️ " if card.is_overdue(today) else ""
            details.append(f"{flag}{t('board.closes', date=card.expected_close_date.isoformat())}")
        elif card.closed_at:
            details.append(t("board.closed", date=card.closed_at.date().isoformat()))
        st.caption(plain_join(details))
        if card.lost_reason:
            st.caption(t("board.lost_because", reason=plain(card.lost_reason)))
        if actor.can_write:
            actions = st.columns(2)
            with actions[0].popover("⇄", help=t("board.stage_menu"), width="stretch"):
                move_menu(card)
            if actions[1].button("✎", help=t("board.edit"), key=f"pipeline_edit_{card.id}", width="stretch"):
                STATE["pipeline_edit_id"] = card.id
                STATE["pipeline_edit_snapshot"] = card
                STATE["pipeline_edit_version"] = card.version
                STATE["pipeline_form_generation"] += 1
                STATE.pop("pipeline_stale", None)
                st.rerun()


with read_session() as session:
    win_scores = latest_scores(
        session, "deal_win", [card.id for column in board.columns for card in board.cards[column.stage.id].items]
    )
columns = st.columns(len(board.columns))
for column_widget, column in zip(columns, board.columns, strict=True):
    with column_widget:
        stage = column.stage
        icon = {"won": "🏆", "lost": "✖"}.get(stage.kind, "")
        st.markdown(f"#### {icon} {plain_line(stage.name)}")
        st.caption(t("board.column_totals", count=f"{column.count:,}", amount=money(column.amount),
                     weighted=money(column.weighted_amount), probability=stage.probability))
        cards = board.cards[stage.id]
        for card in cards.items:
            render_card(card)
        if cards.page > 1 or cards.has_next:
            pager = st.columns(2)
            if pager[0].button("◀", key=f"pipeline_prev_{stage.id}", disabled=cards.page <= 1, width="stretch"):
                STATE["pipeline_pages"][stage.id] = cards.page - 1
                st.rerun()
            if pager[1].button("▶", key=f"pipeline_next_{stage.id}", disabled=not cards.has_next, width="stretch"):
                STATE["pipeline_pages"][stage.id] = cards.page + 1
                st.rerun()
            st.caption(t("pager.position", page=cards.page, pages=max(1, -(-column.count // per_page))))


# --- export ----------------------------------------------------------------------------------
st.divider()
if st.button(t("board.prepare_export"), key="pipeline_prepare_export"):
    headers = [t(f"export.deal.{column}") for column in EXPORT_COLUMNS]
    with read_session() as session:
        rows: list[list[Any]] = list(iter_deal_export(session, pipeline=pipeline, filters=filters))
    STATE["pipeline_export"] = to_csv(headers, rows)
if export := STATE.get("pipeline_export"):
    st.download_button(t("board.download_csv"), export, file_name=f"deals-{today.isoformat()}.csv",
                       mime="text/csv", key="pipeline_download")
