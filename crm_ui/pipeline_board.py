"""The Pipeline page: filters, the deal panel (open / edit / create), the board and the export.

``pages/pipeline.py`` calls :func:`page`; the page script stays a few lines, so Streamlit
re-parses almost nothing per rerun. The board is a fragment (:func:`board`): a drop, a
"Move to" pick, a page of a column or an undo reruns the board alone, not the filters and
forms around it.

The board itself is one browser element (:data:`board_element`, decision 0017): a
``st.components.v2`` component with inline HTML/CSS/JS that draws the columns and cards from
JSON and reports drops, "Move to" picks, Previous/Next and clicks on a deal or customer name
as events. The rules stay in the core: a move goes through
:func:`crm_core.services.deals.move_stage` (legal transitions, closing rules, audit, history);
a refusal is explained in the user's language and the card stays where it was. Won and lost
ask in a dialog (the lost reason in words, required; the day it closed). The last move can be
undone (:func:`crm_core.services.deals.undo_stage_move`) while nobody has changed the deal since.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import streamlit as st

from crm_core.errors import DomainError, StaleRecord, ValidationFailed
from crm_core.exporting import to_csv
from crm_core.models import StageKind
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.queries.deals import (
    EXPORT_COLUMNS,
    MAX_SEARCH_MATCHES,
    Board,
    DealCard,
    DealFilters,
    PipelineRow,
    StageRow,
    get_deal,
    iter_deal_export,
    list_pipelines,
    load_board,
    stage_history,
)
from crm_core.queries.products import list_products
from crm_core.queries.scores import latest_scores
from crm_core.queries.users import assignable_owners
from crm_core.rules.pipeline import allowed_targets
from crm_core.services.deal_lines import DealLineInput, deal_lines, set_deal_lines
from crm_core.services.deals import (
    OpportunityInput,
    create_opportunity,
    move_stage,
    undo_stage_move,
    update_opportunity,
)
from crm_ui.context import choice_key, current_actor, get_db, read_session, record_id, show_domain_error, t
from crm_ui.formatting import EMPTY, date, date_input_format, money, number, percent, when
from crm_ui.layout import form_cells
from crm_ui.text import plain, plain_line, plain_params

STATE = st.session_state
PROFILE_PAGE = "pages/customer_profile.py"
PROFILE_PATH = "customer"  # its url_path in crm_ui/navigation.py; the 360 reads ?customer_id=
CLOSED_WINDOWS = [30, 90, 365, 0]  # days of won/lost deals shown; 0 = all
ALL = "__all__"
BOARD_KEY = "pipeline_board"


@dataclass(frozen=True)
class LastMove:
    """The acting user's latest move on the board: what Undo takes back."""

    deal_id: int
    name: str
    from_stage: str
    to_stage: str
    version: int  # the version the move returned; Undo refuses when the deal has changed since
    lost_reason: str | None  # what the deal had before, needed when the way back leads to lost
    closed_on: dt.date | None


@dataclass(frozen=True)
class PendingClose:
    """A card dropped on a won or lost stage, waiting for the reason and the day it closed."""

    deal_id: int
    name: str
    version: int
    from_stage_id: int
    to_stage_id: int
    previous_lost_reason: str | None
    previous_closed_on: dt.date | None


@dataclass
class BoardContext:
    """What the board fragment needs from the page around it."""

    pipeline: PipelineRow
    filters: DealFilters
    per_page: int
    can_write: bool


def page() -> None:
    """The whole Pipeline page."""
    actor = current_actor()
    STATE.setdefault("pipeline_pages", {})
    STATE.setdefault("pipeline_form_generation", 0)
    st.title(t("board.title"))
    with read_session() as session:
        pipelines = list_pipelines(session)
        owners = assignable_owners(session)
    if not pipelines:
        st.info(t("board.no_pipeline"))
        return
    pipeline, filters, per_page = _filters(pipelines, owners)
    if notice := STATE.pop("pipeline_notice", None):
        st.success(notice)
    _open_linked_deal(pipeline)
    if actor.can_write:
        _deal_panel(pipeline, owners)
    else:
        st.caption(t("access.read_only"))
        _deal_details_read_only()
    board(BoardContext(pipeline, filters, per_page, actor.can_write))
    _export(pipeline, filters)


def reset_pages() -> None:
    """Back to each column's first page (the filters changed)."""
    STATE["pipeline_pages"] = {}
    STATE.pop("pipeline_export", None)  # an export always matches the filters on screen


# --- filters -------------------------------------------------------------------------------------
def _filters(pipelines: list[PipelineRow], owners: list[tuple[int, str]]) -> tuple[PipelineRow, DealFilters, int]:
    actor = current_actor()
    owner_names = dict(owners)
    top = st.columns([2, 3]) if len(pipelines) > 1 else [st.container(), st.container()]
    pipeline_ids = [pipeline.id for pipeline in pipelines]
    pipeline_id = pipeline_ids[0]
    if len(pipelines) > 1:  # one pipeline: nothing to choose, one box less above the board
        pipeline_id = top[0].selectbox(
            t("board.pipeline"), pipeline_ids,
            format_func=lambda value: next(p.name for p in pipelines if p.id == value),
            key="pipeline_pipeline", on_change=reset_pages,
        )
    search = top[1].text_input(
        t("board.search"), key="pipeline_search", placeholder=t("board.search_hint"), on_change=reset_pages
    )
    with st.expander(t("board.more_filters")):
        more = st.columns(3)
        visible_owner_choices = [ALL, *[owner_id for owner_id, _ in owners
                                        if actor.sees_whole_tenant or owner_id in actor.visible_owner_ids
                                        or owner_id == actor.user_id]]
        owner_choice = more[0].selectbox(
            t("field.owner"), visible_owner_choices,
            format_func=lambda value: t("filter.all") if value == ALL else owner_names.get(value, str(value)),
            key=choice_key("pipeline_owner"), on_change=reset_pages,
        )
        closed_window = more[1].selectbox(
            t("board.closed_window"), CLOSED_WINDOWS,
            format_func=lambda days: t("board.closed_all") if days == 0 else t("board.closed_days", days=days),
            index=1, key=choice_key("pipeline_closed_window"), on_change=reset_pages,
        )
        per_page = more[2].selectbox(t("board.per_column"), [5, 10, 20], index=1, key="pipeline_per_page",
                                     on_change=reset_pages)
    pipeline = next(p for p in pipelines if p.id == pipeline_id)
    today = dt.datetime.now(dt.UTC).date()
    filters = DealFilters(
        owner_id=owner_choice if isinstance(owner_choice, int) else None,
        search=search,
        closed_since=None if closed_window == 0 else today - dt.timedelta(days=closed_window),
    )
    return pipeline, filters, int(per_page)


def allowed_moves(pipeline: PipelineRow, current: StageRow) -> list[StageRow]:
    """The stages a deal in ``current`` may move to (the pipeline rules), in pipeline order."""
    by_id = {stage.id: stage for stage in pipeline.stages}
    return [by_id[target.id] for target in allowed_targets(current.info, [stage.info for stage in pipeline.stages])]


# --- the deal panel: open (details + history), edit, create -----------------------------------------
def open_deal(card: DealCard) -> None:
    """Show ``card`` in the deal panel (its details, stage history and form); the URL names it."""
    STATE["pipeline_edit_id"] = card.id
    STATE["pipeline_edit_snapshot"] = card
    STATE["pipeline_edit_version"] = card.version
    STATE["pipeline_form_generation"] += 1
    STATE.pop("pipeline_stale", None)
    st.query_params["deal"] = str(card.id)


def close_deal() -> None:
    """Close the deal panel."""
    STATE.pop("pipeline_edit_id", None)
    STATE.pop("pipeline_stale", None)
    st.query_params.pop("deal", None)


def _open_linked_deal(pipeline: PipelineRow) -> None:
    """``?deal=ID`` (a card's link opened in a new tab, a reload) opens that deal."""
    raw = st.query_params.get("deal", "")
    deal_id = record_id(raw)
    if not raw or (deal_id is not None and STATE.get("pipeline_edit_id") == deal_id):
        return
    card = None
    if deal_id is not None:
        with read_session() as session:
            card = get_deal(session, deal_id)
    if card is None or card.pipeline_id != pipeline.id:
        st.query_params.pop("deal", None)
        if card is None:
            st.warning(t("board.deal_not_found"))
        return
    open_deal(card)


def _deal_details(card: DealCard) -> None:
    """Key facts, the customer link and the stage history of the opened deal."""
    facts = st.columns(3)
    facts[0].metric(t("deal.amount"), money(card.amount, currency_code=card.currency))
    facts[1].metric(t("deal.stage"), plain_line(card.stage_name))
    facts[2].metric(t("deal.probability"), percent(card.probability / 100, digits=0))
    st.page_link(PROFILE_PAGE, label=t("board.open_customer", name=plain_line(card.customer_name)),
                 query_params={"customer_id": str(card.customer_id)})
    with read_session() as session:
        history = stage_history(session, card.id)
        lines = deal_lines(session, [card.id]).get(card.id, [])
    if lines:  # what the amount is the sum of (decision 0045), read-only
        st.caption(t("deal.lines", count=number(len(lines))))
        st.dataframe([{
            "SKU": line.sku or "", t("products.name"): plain_line(line.product_name),
            t("orders.quantity"): float(line.quantity),
            t("products.unit_price"): money(line.unit_price, currency_code=card.currency),
            t("orders.line_total"): money(line.line_total, currency_code=card.currency),
        } for line in lines], hide_index=True, width="stretch", placeholder=EMPTY)
    with st.expander(t("board.stage_history", count=number(len(history)))):
        for change in history:
            st.caption(
                t("board.history_line", when=when(change.changed_at), to_stage=plain(change.to_stage),
                  from_stage=plain(change.from_stage or t("board.history_created")),
                  who=plain(change.changed_by or t("board.history_someone")))
            )


def _deal_details_read_only() -> None:
    editing: DealCard | None = STATE.get("pipeline_edit_snapshot") if STATE.get("pipeline_edit_id") else None
    if editing is None:
        return
    with st.container(border=True):
        st.subheader(plain_line(editing.name))
        _deal_details(editing)
        if st.button(t("board.cancel_edit"), key="pipeline_cancel_edit"):
            close_deal()
            st.rerun()


def _deal_panel(pipeline: PipelineRow, owners: list[tuple[int, str]]) -> None:
    # the form edits the deal as it was when the user opened it (a snapshot): its values and
    # version stay put while someone else saves, so a conflict is detected, not overwritten
    editing: DealCard | None = STATE.get("pipeline_edit_snapshot") if STATE.get("pipeline_edit_id") else None
    if editing is not None and editing.pipeline_id != pipeline.id:
        close_deal()
        editing = None
    if editing is None:
        with st.expander(t("board.new_deal"), expanded=False):
            _deal_form(pipeline, owners, None)
        return
    with st.container(border=True):
        st.subheader(t("board.edit_deal", name=plain_line(editing.name)))
        _deal_details(editing)
        _deal_form(pipeline, owners, editing)
        _deal_lines_form(editing)
        buttons = st.columns([1, 1, 3])
        if STATE.get("pipeline_stale") and buttons[0].button(t("board.reload"), key="pipeline_reload"):
            # take the saved version as the new base; the form shows their values
            with read_session() as session:
                fresh = get_deal(session, editing.id)
            if fresh is None:
                close_deal()
            else:
                STATE["pipeline_edit_snapshot"] = fresh
                STATE["pipeline_edit_version"] = fresh.version
            STATE["pipeline_form_generation"] += 1
            STATE.pop("pipeline_stale", None)
            st.rerun()
        if buttons[1].button(t("board.cancel_edit"), key="pipeline_cancel_edit"):
            close_deal()
            st.rerun()


def _deal_lines_form(editing: DealCard) -> None:
    """The opened deal's product lines, edited as a whole (:func:`crm_core.services.deal_lines.set_deal_lines`:
    versioned with the deal, audited): each line's product, quantity and price (blank: the list price), a box to
    remove it, and one new line per save. A refusal keeps the input; a stale deal offers Reload, as the form."""
    actor = current_actor()
    with read_session() as session:
        lines = deal_lines(session, [editing.id]).get(editing.id, [])
        products = list_products(session, active_only=True)
    names = {product.id: " · ".join(filter(None, (product.sku, product.name))) for product in products}
    for existing in lines:  # a line may name a product no longer sold: it stays choosable on its own line
        names.setdefault(existing.product_id, " · ".join(filter(None, (existing.sku, existing.product_name))))
    prefix = f"pipeline_lines_{editing.id}_{STATE['pipeline_form_generation']}"
    with st.expander(t("deal.lines_edit"), expanded=False):
        st.caption(t("deal.lines_help"))
        with st.form(prefix, clear_on_submit=False):
            typed: list[tuple[str, int | None, str, str, bool]] = []
            for number, line in enumerate([*lines, None], start=1):
                left, middle, right, last = st.columns([3, 1, 2, 1], vertical_alignment="bottom")
                title = t("deal.line", number=number) if line is not None else t("deal.line_new")
                options = list(names)
                product_id = left.selectbox(
                    f"{title}: {t('orders.product')}", options, format_func=lambda value: names[value],
                    index=options.index(line.product_id) if line is not None else None,
                    placeholder=t("deal.line_pick"), key=f"{prefix}_product_{number}")
                quantity = middle.text_input(t("orders.quantity"), value=str(line.quantity) if line else "1",
                                             key=f"{prefix}_quantity_{number}")
                price = right.text_input(t("orders.unit_price_override"), value=str(line.unit_price) if line else "",
                                         key=f"{prefix}_price_{number}")
                removed = last.checkbox(t("deal.line_remove"), key=f"{prefix}_remove_{number}") if line else False
                typed.append((title, product_id, quantity, price, removed))
            saved = st.form_submit_button(t("deal.lines_save"))
    if not saved:
        return
    kept = [(title, DealLineInput(product_id=product_id, quantity=quantity, unit_price=price or None))
            for title, product_id, quantity, price, removed in typed if product_id is not None and not removed]
    # the service names a refused line by its place in what was saved: here by the line the user typed it on
    labels = {"lines": t("deal.lines_edit")}
    for index, (title, _) in enumerate(kept, start=1):
        for field_name, label in (("product", t("orders.product")), ("quantity", t("orders.quantity")),
                                  ("unit_price", t("orders.unit_price_override"))):
            labels[f"line{index}.{field_name}"] = f"{title}: {label}"
    try:
        version = set_deal_lines(get_db(), actor, editing.id, [line for _, line in kept],
                                 expected_version=STATE["pipeline_edit_version"])
    except DomainError as error:
        refused_save(error, labels)
    else:
        with read_session() as session:
            fresh = get_deal(session, editing.id)
        if fresh is not None:  # the form edits the deal as it is now (its amount is the lines' sum)
            STATE["pipeline_edit_snapshot"] = fresh
        STATE["pipeline_edit_version"] = version
        STATE["pipeline_form_generation"] += 1
        STATE["pipeline_notice"] = t("deal.lines_saved", name=plain(editing.name))
        reset_pages()
        st.rerun()


def deal_labels() -> dict[str, str]:
    """Field labels of the deal form, also naming the fields of a refused move."""
    return {
        "name": t("deal.name"), "customer_id": t("deal.customer"), "amount": t("deal.amount"),
        "currency": t("deal.currency"), "owner_id": t("field.owner"), "stage_id": t("deal.stage"),
        "probability": t("deal.probability"), "expected_close_date": t("deal.expected_close_date"),
        "lost_reason": t("deal.lost_reason"), "closed_at": t("deal.closed_on"), "pipeline_id": t("board.pipeline"),
        "won_reason": t("deal.won_reason"),
        "undo": t("board.undo"),
    }


def _deal_form(pipeline: PipelineRow, owners: list[tuple[int, str]], editing: DealCard | None) -> None:
    """The create/edit form; keeps the input on any refusal (same widget keys)."""
    actor = current_actor()
    owner_names = dict(owners)
    stages_by_id = {stage.id: stage for stage in pipeline.stages}
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
        stage_options = [current, *allowed_moves(pipeline, current)]
    labels = deal_labels()
    with st.form(prefix, clear_on_submit=False):
        cells = form_cells(10)  # in reading order on a phone too
        name = next(cells).text_input(labels["name"] + " *", value=editing.name if editing else "", max_chars=200)
        next(cells).text_input(labels["customer_id"], value=customer_names.get(picked, "") if picked else "",
                               disabled=True)
        amount = next(cells).text_input(labels["amount"] + " *", value=str(editing.amount) if editing else "",
                                        placeholder="120000")
        currency = next(cells).text_input(labels["currency"], value=editing.currency if editing else "", max_chars=3,
                                          placeholder=t("board.currency_default"))
        owner_id = next(cells).selectbox(
            labels["owner_id"], owner_options, format_func=lambda value: owner_names.get(value, str(value)),
            index=owner_options.index(editing.owner_id) if editing and editing.owner_id in owner_options else 0,
        )
        stage_id = next(cells).selectbox(
            labels["stage_id"], [stage.id for stage in stage_options],
            format_func=lambda value: f"{stages_by_id[value].name} ({stages_by_id[value].probability}%)",
        )
        probability_text = next(cells).text_input(
            labels["probability"], value="" if not editing or editing.hand_set_probability is None
            else str(editing.hand_set_probability), placeholder=t("board.probability_hint"),
        )
        expected_close = next(cells).date_input(
            labels["expected_close_date"], value=editing.expected_close_date if editing else None,
            format=date_input_format(),
        )
        lost_reason = next(cells).text_input(
            labels["lost_reason"], value=(editing.lost_reason or "") if editing else "",
            help=t("board.lost_reason_help"), max_chars=500)
        closed_on = next(cells).date_input(labels["closed_at"], value=None, format=date_input_format(),
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
    if picked is None:
        st.error(t("board.customer_required"))
        return
    form = OpportunityInput(
        customer_id=picked, name=name, amount=amount, currency=currency, pipeline_id=pipeline.id,
        stage_id=stage_id, owner_id=owner_id, probability=probability, expected_close_date=expected_close,
        lost_reason=lost_reason, closed_on=closed_on,
    )
    try:
        if editing is None:
            create_opportunity(get_db(), actor, form)
        else:
            update_opportunity(get_db(), actor, editing.id, form, expected_version=STATE["pipeline_edit_version"])
    except DomainError as error:
        refused_save(error, labels)
    else:
        STATE["pipeline_form_generation"] = generation + 1
        close_deal()
        STATE["pipeline_notice"] = t("board.saved" if editing else "board.created", name=plain(name.strip()))
        reset_pages()
        st.rerun()


# --- the board ----------------------------------------------------------------------------------------
@st.fragment
def board(context: BoardContext) -> None:
    """Totals, the notices of the last action, Undo and the board element; reruns alone on a card action.

    The element's events are handled in their callbacks (:func:`_on_event`), before this
    function runs again, so a move is drawn by the very next run, with no second one.
    """
    pipeline = context.pipeline
    if customer_id := STATE.pop("board_open_customer", None):
        st.switch_page(PROFILE_PAGE, query_params={"customer_id": str(customer_id)})
    if deal_id := STATE.pop("board_open_deal", None):
        card = _read_deal(deal_id)
        if card is not None:
            open_deal(card)
            st.rerun(scope="app")  # the deal panel sits above the board, outside this fragment
    if toast := STATE.pop("board_toast", None):
        st.toast(toast)
    with read_session() as session:
        loaded = load_board(session, pipeline_id=pipeline.id, filters=context.filters, per_page=context.per_page,
                            pages=STATE["pipeline_pages"])
        assert loaded is not None
        card_ids = [card.id for page_of_cards in loaded.cards.values() for card in page_of_cards.items]
        win_scores = latest_scores(session, "deal_win", card_ids)
    if loaded.search_truncated:
        st.warning(t("board.search_truncated", count=number(MAX_SEARCH_MATCHES)))
    # one line, not three metric tiles: on a phone the board starts on the first screen
    st.markdown(t("board.summary", open_label=t("dashboard.open_pipeline"), open_amount=money(loaded.open_amount),
                  weighted_label=t("dashboard.weighted_forecast"), weighted_amount=money(loaded.weighted_amount),
                  deals_label=t("board.deals_on_board"), count=number(sum(c.count for c in loaded.columns))))
    # the notices and the dialog sit in containers that are always there: the board element keeps
    # its place in the page, so a rerun updates it instead of mounting a second one beside it
    with st.container():
        _move_notices()
    with st.container():
        if pending := STATE.get("board_pending_close"):
            _close_dialog(pipeline, pending)
    board_element(board_data(loaded, win_scores, context), key=BOARD_KEY,
                  on_event=lambda event: _on_event(event, pipeline))


def board_data(loaded: Board, win_scores: dict[int, Any], context: BoardContext) -> dict[str, Any]:
    """The board as the browser element draws it: texts already formatted in the user's language.

    Names are raw text: the element sets them with ``textContent``, never as HTML or Markdown.
    """
    today = dt.datetime.now(dt.UTC).date()
    pipeline = loaded.pipeline
    stages = []
    for column in loaded.columns:
        stage = column.stage
        cards = loaded.cards[stage.id]
        pages = max(1, -(-column.count // context.per_page))
        stages.append({
            "id": stage.id,
            "name": stage.name,
            "kind": stage.kind,
            "count_text": number(column.count),
            "totals": t("board.column_totals", count=number(column.count), amount=money(column.amount),
                        weighted=money(column.weighted_amount), probability=stage.probability),
            "targets": [target.id for target in allowed_moves(pipeline, stage)],
            "page": cards.page,
            "pages": pages,
            "position": t("pager.position", page=number(cards.page), pages=number(pages)),
            "cards": [_card_data(card, win_scores, today) for card in cards.items],
        })
    return {
        "revision": STATE.get("board_revision", 0),
        "pipeline_id": pipeline.id,
        "can_write": context.can_write,
        "customer_path": PROFILE_PATH,
        "labels": {
            "stages": t("board.stages"), "empty": t("board.empty_column"), "customer": t("deal.customer"),
            "lost": t("board.lost_label"), "won": t("board.won_label"), "move_to": t("board.move_to"),
            "drag": t("board.drag"),
            "previous": t("board.previous_page"), "next": t("board.next_page"),
        },
        "stages": stages,
    }


def _card_data(card: DealCard, win_scores: dict[int, Any], today: dt.date) -> dict[str, Any]:
    details = [card.owner_name or t("filter.unowned")]
    if card.stage_kind == StageKind.OPEN.value and card.expected_close_date:
        details.append(t("board.closes", date=date(card.expected_close_date)))
    elif card.closed_at:
        details.append(t("board.closed", date=date(card.closed_at)))
    score = win_scores.get(card.id)
    return {
        "id": card.id,
        "version": card.version,
        "name": card.name,
        "customer_id": card.customer_id,
        "customer_name": card.customer_name,
        "amount": f"{money(card.amount, currency_code=card.currency)} · {percent(card.probability / 100, digits=0)}",
        "meta": " · ".join(details),
        "overdue": card.is_overdue(today),
        "lost_reason": card.lost_reason or "",
        "won_reason": card.won_reason or "",
        # present once `python -m crm_core score apply` has run
        "score": t("board.win_score", percent=score.percent) if score is not None else "",
    }


def _on_event(event: str, pipeline: PipelineRow) -> None:
    """Act on what the user did in the board element (a callback: it runs before the board is drawn again)."""
    value = (STATE.get(BOARD_KEY) or {}).get(event)
    if not isinstance(value, dict):
        return
    # the element draws again even when nothing changed (a refused drop): its card is put back
    STATE["board_revision"] = STATE.get("board_revision", 0) + 1
    if event == "page":
        STATE["pipeline_pages"][int(value["stage"])] = max(1, int(value["page"]))
    elif event == "open":
        STATE["board_open_deal"] = int(value["deal"])
    elif event == "customer":
        STATE["board_open_customer"] = int(value["customer"])
    elif event == "move":
        request_move(pipeline, int(value["deal"]), int(value["to"]), int(value["version"]))


def _read_deal(deal_id: int) -> DealCard | None:
    with read_session() as session:
        return get_deal(session, deal_id)


def request_move(pipeline: PipelineRow, deal_id: int, to_stage_id: int, version: int) -> None:
    """A card dropped on a stage (or picked in its "Move to" list): move it, or ask first for won/lost.

    The service decides; a refusal is kept for the notices above the board and the card stays.
    """
    card = _read_deal(deal_id)
    stages = {stage.id: stage for stage in pipeline.stages}
    target = stages.get(to_stage_id)
    if card is None or target is None:
        STATE["board_move_error"] = (t("board.move_gone"), None)
        return
    current = stages.get(card.stage_id)
    legal = current is not None and target in allowed_moves(pipeline, current)
    # closing asks first; an illegal drop goes straight to the service, whose refusal is the message
    if target.kind != StageKind.OPEN.value and legal:
        STATE["board_pending_close"] = PendingClose(
            deal_id, card.name, version, card.stage_id, to_stage_id, card.lost_reason,
            card.closed_at.date() if card.closed_at else None,
        )
        return
    _move(card, target, version, stages, lost_reason=None, closed_on=None)


def _move(card: DealCard, target: StageRow, version: int, stages: dict[int, StageRow], *,
          lost_reason: str | None, closed_on: dt.date | None) -> bool:
    try:
        new_version = move_stage(get_db(), current_actor(), card.id, target.id, expected_version=version,
                                 lost_reason=lost_reason, closed_on=closed_on)
    except DomainError as error:
        STATE["board_move_error"] = (card.name, error)
        return False
    from_stage = stages[card.stage_id].name if card.stage_id in stages else card.stage_name
    STATE["board_last_move"] = LastMove(
        card.id, card.name, from_stage, target.name, new_version, card.lost_reason,
        card.closed_at.date() if card.closed_at else None,
    )
    STATE.pop("board_move_error", None)
    STATE["board_toast"] = t("board.moved", name=plain(card.name), stage=plain(target.name))
    return True


def _move_notices() -> None:
    """Why the last drop was refused (the card stayed), or the last move with its Undo button."""
    if refused := STATE.pop("board_move_error", None):
        name, error = refused
        if error is None:
            st.error(name)
        elif isinstance(error, ValidationFailed):
            st.error(t("board.move_refused", name=plain(name)))
            show_domain_error(error, labels=deal_labels())
        else:  # one box: what happened and why, in the user's language
            st.error(t("board.move_refused", name=plain(name)) + "  \n" + t(error.message_key,
                                                                            **plain_params(error.params)))
    last: LastMove | None = STATE.get("board_last_move")
    if last is None or not current_actor().can_write:
        return
    with st.container(border=True, key="pipeline_undo_bar"):
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.markdown(t("board.last_move", name=plain(last.name), from_stage=plain(last.from_stage),
                        to_stage=plain(last.to_stage)))
        button.button(t("board.undo"), key="pipeline_undo", width="stretch", on_click=_undo, args=(last,),
                      help=t("board.undo_help"))


def _undo(last: LastMove) -> None:
    STATE.pop("board_last_move", None)
    try:
        undo_stage_move(get_db(), current_actor(), last.deal_id, expected_version=last.version,
                        lost_reason=last.lost_reason, closed_on=last.closed_on)
    except StaleRecord as error:
        STATE["board_move_error"] = (t("board.undo_stale", name=plain(last.name), **_stale_params(error)), None)
    except ValidationFailed as error:
        if "undo" in error.errors:
            STATE["board_move_error"] = (t("board.undo_nothing"), None)
        else:
            STATE["board_move_error"] = (last.name, error)
    except DomainError as error:
        STATE["board_move_error"] = (last.name, error)
    else:
        STATE["board_toast"] = t("board.undone", name=plain(last.name), stage=plain(last.from_stage))


def refused_save(error: DomainError, labels: dict[str, str]) -> None:
    """A save of the deal panel (its fields or its lines) the service refused: field errors under the user's
    labels; a stale version also offers the reload of the deal as it is now."""
    show_domain_error(error, labels=labels)
    if isinstance(error, StaleRecord):
        STATE["pipeline_stale"] = True


def _stale_params(error: StaleRecord) -> dict[str, str]:
    return {"changed_by": plain(error.changed_by or t("board.history_someone")),
            "changed_at": when(error.changed_at) if error.changed_at else "—"}


def _close_dialog(pipeline: PipelineRow, pending: PendingClose) -> None:
    """Won / lost: ask for the reason in words (required for lost, optional for won) and the day it closed."""
    stages = {stage.id: stage for stage in pipeline.stages}
    target = stages[pending.to_stage_id]
    lost = target.kind == StageKind.LOST.value
    title = t("board.close_lost_title" if lost else "board.close_won_title", stage=plain_line(target.name))

    def body() -> None:
        st.markdown(t("board.close_question_lost" if lost else "board.close_question_won",
                      name=plain(pending.name), stage=plain(target.name)))
        today = dt.datetime.now(dt.UTC).date()
        with st.form("pipeline_close_form", border=False):
            if lost:
                reason = st.text_area(t("board.lost_reason_prompt") + " *", key="pipeline_close_reason",
                                      max_chars=500, placeholder=t("board.lost_reason_placeholder"))
            else:
                reason = st.text_area(t("board.won_reason_prompt"), key="pipeline_close_reason",
                                      max_chars=500, placeholder=t("board.won_reason_placeholder"))
            closed_on = st.date_input(t("deal.closed_on"), value=today, max_value=today, format=date_input_format(),
                                      key="pipeline_close_day")
            confirm = st.form_submit_button(title, type="primary")
        if st.button(t("board.close_cancel"), key="pipeline_close_cancel"):
            _forget_pending()
            st.rerun()
        if not confirm:
            return
        if lost and not reason.strip():  # asked here in words, before the service says the same
            st.error(t("deal.lost_reason_required"))
            return
        card = _read_deal(pending.deal_id)
        if card is None:
            _forget_pending()
            STATE["board_move_error"] = (t("board.move_gone"), None)
            st.rerun()
        assert card is not None
        try:
            new_version = move_stage(get_db(), current_actor(), card.id, target.id, expected_version=pending.version,
                                     lost_reason=reason if lost else None, closed_on=closed_on,
                                     won_reason=None if lost else reason)
        except ValidationFailed as error:
            show_domain_error(error, labels=deal_labels())  # stays open with the input
            return
        except DomainError as error:
            _forget_pending()
            STATE["board_move_error"] = (pending.name, error)
            st.rerun()
        STATE["board_last_move"] = LastMove(
            card.id, card.name, stages[pending.from_stage_id].name, target.name, new_version,
            pending.previous_lost_reason, pending.previous_closed_on,
        )
        _forget_pending()
        st.rerun()

    st.dialog(title, on_dismiss=_forget_pending)(body)()


def _forget_pending() -> None:
    for key in ("board_pending_close", "pipeline_close_reason", "pipeline_close_day"):
        STATE.pop(key, None)


# --- export --------------------------------------------------------------------------------------------
def _export(pipeline: PipelineRow, filters: DealFilters) -> None:
    st.divider()
    if st.button(t("board.prepare_export"), key="pipeline_prepare_export"):
        headers = [t(f"export.deal.{column}") for column in EXPORT_COLUMNS]
        with read_session() as session:
            rows: list[list[Any]] = list(iter_deal_export(session, pipeline=pipeline, filters=filters))
        STATE["pipeline_export"] = to_csv(headers, rows)
    if export := STATE.get("pipeline_export"):
        today = dt.datetime.now(dt.UTC).date()
        st.download_button(t("board.download_csv"), export, file_name=f"deals-{today.isoformat()}.csv",
                           mime="text/csv", key="pipeline_download")


# --- the browser element --------------------------------------------------------------------------------
# The element (decision 0017): a st.components.v2 component with inline HTML, CSS and JS, served
# by Streamlit itself (no iframe, nothing fetched from elsewhere). Python hands it the board as
# JSON; it builds the DOM with textContent only, so a name is shown as written, never as HTML.
# Events it reports (Python decides, the card never moves by itself):
#   move     {"deal", "to", "version"}: a card dropped on a column or a phone's stage tab, or
#            picked in the card's "Move to" list (the keyboard and one-hand path);
#   open     {"deal"}: the deal's name clicked; customer {"customer"}: the customer's name;
#   page     {"stage", "page"}: a column's Previous / Next.
# Drag uses pointer events (mouse anywhere on a card; touch and pen on its "Drag" grip, so a
# finger elsewhere still scrolls). Under 640 px one stage shows at a time, picked by its tab; wider,
# a tab brings its column into view, and the tabs take drops too.
CSS = """
.kb { color: var(--st-text-color); font-family: var(--st-font); font-size: 0.95rem; }
.kb button, .kb select { font: inherit; color: inherit; }
.kb-tabs { display: flex; gap: .4rem; overflow-x: auto; padding: 0 0 .6rem 0; scrollbar-width: thin; }
.kb-tab { flex: 0 0 auto; min-height: 34px; padding: 0 .8rem; border-radius: .5rem; cursor: pointer;
  border: 1px solid var(--st-border-color, rgba(128,128,128,.35)); background: var(--st-secondary-background-color); }
.kb-tab[aria-pressed="true"] { border: 2px solid var(--st-primary-color); font-weight: 600; }
.kb-cols { display: flex; gap: .6rem; align-items: flex-start; overflow-x: auto; padding-bottom: .4rem; }
.kb-col { flex: 1 1 0; min-width: 11rem; border-radius: .6rem; padding: .5rem;
  background: var(--st-secondary-background-color); outline: 2px solid transparent; outline-offset: -2px; }
.kb-col h3 { font-size: 1rem; margin: .1rem 0 .15rem 0; font-weight: 600; }
.kb-totals { font-size: .8rem; opacity: .75; margin: 0 0 .3rem 0; }
.kb-cards { list-style: none; margin: 0; padding: 0; min-height: 3rem; }
.kb-empty { font-size: .85rem; opacity: .6; padding: .6rem .2rem; }
.kb-card { background: var(--st-background-color); border: 1px solid var(--st-border-color, rgba(128,128,128,.3));
  border-radius: .5rem; padding: .45rem .55rem; margin: 0 0 .45rem 0; cursor: grab; user-select: none; }
.kb-card.kb-pending { opacity: .45; }
.kb-card.kb-dragging { opacity: .3; }
.kb-name { font-weight: 600; color: var(--st-primary-color); text-decoration: none; overflow-wrap: anywhere; }
.kb-name:hover, .kb-customer:hover { text-decoration: underline; }
.kb-customer { display: block; color: inherit; font-size: .85rem; text-decoration: none; opacity: .85;
  overflow-wrap: anywhere; margin: .1rem 0; }
.kb-amount { font-variant-numeric: tabular-nums; margin: .15rem 0; }
.kb-meta, .kb-lost, .kb-score { font-size: .8rem; opacity: .75; overflow-wrap: anywhere; }
.kb-overdue { color: var(--st-red-color, #d33); opacity: 1; }
.kb-move { display: flex; gap: .35rem; align-items: center; margin-top: .35rem; font-size: .8rem; }
.kb-move select { flex: 1; min-width: 0; min-height: 32px; border-radius: .4rem; padding: 0 .3rem;
  border: 1px solid var(--st-border-color, rgba(128,128,128,.35)); background: var(--st-background-color); }
.kb-grip { flex: 0 0 auto; padding: .2rem .45rem; border-radius: .4rem; cursor: grab; touch-action: none;
  border: 1px dashed var(--st-border-color, rgba(128,128,128,.5)); font-size: .75rem; opacity: .8; }
.kb-pager { display: flex; gap: .35rem; align-items: center; justify-content: space-between; font-size: .8rem; }
.kb-pager button { min-height: 32px; padding: 0 .6rem; border-radius: .4rem; cursor: pointer;
  border: 1px solid var(--st-border-color, rgba(128,128,128,.35)); background: var(--st-background-color); }
.kb-pager button:disabled { opacity: .4; cursor: default; }
.kb-col.kb-allowed, .kb-tab.kb-allowed { outline: 2px dashed var(--st-primary-color); }
.kb-col.kb-over, .kb-tab.kb-over { outline: 3px solid var(--st-primary-color); }
.kb-col.kb-refused, .kb-tab.kb-refused { outline: 3px solid var(--st-red-color, #d33); }
.kb-ghost { position: fixed; z-index: 100000; pointer-events: none; margin: 0; opacity: .95;
  box-shadow: 0 6px 18px rgba(0,0,0,.25); transform: rotate(1.5deg); }
@media (min-width: 641px) {
  .kb-tab[aria-pressed="true"] { border: 1px solid var(--st-border-color, rgba(128,128,128,.35)); font-weight: 400; }
}
@media (max-width: 640px) {
  .kb-tab { min-height: 44px; }
  .kb-cols { display: block; }
  .kb-col { display: none; min-width: 0; }
  .kb-col.kb-active { display: block; }
  .kb-move select, .kb-pager button, .kb-grip { min-height: 44px; font-size: 16px; }
  .kb-grip { display: inline-flex; align-items: center; }
}
"""

JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const doc = parentElement.ownerDocument || document;
  const shadow = parentElement.getRootNode ? parentElement.getRootNode() : doc;
  let root = parentElement.querySelector(".kb");
  if (!root) { root = doc.createElement("div"); root.className = "kb"; parentElement.appendChild(root); }
  root.replaceChildren();
  if (!data) { return; }
  const L = data.labels;
  const stageById = new Map(data.stages.map((s) => [s.id, s]));
  const storeKey = "kestrel.board.stage." + data.pipeline_id;
  let active = Number(sessionStorage.getItem(storeKey));
  if (!stageById.has(active)) { active = data.stages.length ? data.stages[0].id : 0; }

  const el = (tag, cls, text) => {
    const node = doc.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  };
  const plainClick = (event) =>
    event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;

  const tabs = el("div", "kb-tabs");
  tabs.setAttribute("role", "group");
  tabs.setAttribute("aria-label", L.stages);
  const cols = el("div", "kb-cols");
  const tabButtons = new Map();
  const columns = new Map();

  const phone = () => (doc.defaultView || window).matchMedia("(max-width: 640px)").matches;
  // a tab shows its stage: alone on a phone; on a wider screen it scrolls its column into view
  // (the tabs are also drop targets, so a card reaches a column that is out of view)
  function showStage(stageId, reveal) {
    active = stageId;
    sessionStorage.setItem(storeKey, String(stageId));
    tabButtons.forEach((button, id) => button.setAttribute("aria-pressed", String(id === stageId)));
    columns.forEach((column, id) => column.classList.toggle("kb-active", id === stageId));
    const column = columns.get(stageId);
    if (reveal && column && !phone()) {
      const strip = cols.getBoundingClientRect(), box = column.getBoundingClientRect();
      if (box.left < strip.left) { cols.scrollLeft -= strip.left - box.left; }
      else if (box.right > strip.right) { cols.scrollLeft += box.right - strip.right; }
    }
  }

  for (const stage of data.stages) {
    const tab = el("button", "kb-tab", stage.name + " · " + stage.count_text);
    tab.type = "button";
    tab.dataset.stage = stage.id;
    tab.addEventListener("click", () => showStage(stage.id, true));
    tabButtons.set(stage.id, tab);
    tabs.appendChild(tab);

    const column = el("section", "kb-col");
    column.dataset.stage = stage.id;
    column.setAttribute("aria-label", stage.name);
    column.appendChild(el("h3", "", stage.name));
    column.appendChild(el("p", "kb-totals", stage.totals));
    const list = el("ol", "kb-cards");
    if (!stage.cards.length) { list.appendChild(el("li", "kb-empty", L.empty)); }
    for (const card of stage.cards) { list.appendChild(buildCard(stage, card)); }
    column.appendChild(list);
    if (stage.pages > 1) { column.appendChild(buildPager(stage)); }
    columns.set(stage.id, column);
    cols.appendChild(column);
  }
  root.appendChild(tabs);
  root.appendChild(cols);
  showStage(active);
  // a redraw (after a move) keeps the columns scrolled where the user had them
  const scrollKey = "kestrel.board.scroll." + data.pipeline_id;
  cols.scrollLeft = Number(sessionStorage.getItem(scrollKey)) || 0;
  cols.addEventListener("scroll", () => sessionStorage.setItem(scrollKey, String(cols.scrollLeft)));

  function buildCard(stage, card) {
    const item = el("li", "kb-card");
    item.dataset.deal = card.id;
    item.dataset.stage = stage.id;
    const name = el("a", "kb-name", card.name);
    name.href = "?deal=" + card.id;
    name.addEventListener("click", (event) => {
      if (!plainClick(event)) { return; }
      event.preventDefault();
      setTriggerValue("open", { deal: card.id });
    });
    item.appendChild(name);
    const customer = el("a", "kb-customer", card.customer_name);
    customer.href = data.customer_path + "?customer_id=" + card.customer_id;
    customer.setAttribute("aria-label", L.customer + ": " + card.customer_name);
    customer.addEventListener("click", (event) => {
      if (!plainClick(event)) { return; }
      event.preventDefault();
      setTriggerValue("customer", { customer: card.customer_id });
    });
    item.appendChild(customer);
    item.appendChild(el("div", "kb-amount", card.amount));
    const meta = el("div", "kb-meta" + (card.overdue ? " kb-overdue" : ""), card.meta);
    item.appendChild(meta);
    if (card.lost_reason) { item.appendChild(el("div", "kb-lost", L.lost + " " + card.lost_reason)); }
    if (card.won_reason) { item.appendChild(el("div", "kb-lost", L.won + " " + card.won_reason)); }
    if (card.score) { item.appendChild(el("div", "kb-score", card.score)); }
    if (data.can_write && stage.targets.length) {
      const row = el("div", "kb-move");
      const select = el("select");
      select.setAttribute("aria-label", L.move_to + " — " + card.name);
      const placeholder = el("option", "", L.move_to + "…");
      placeholder.value = ""; placeholder.disabled = true; placeholder.selected = true;
      select.appendChild(placeholder);
      for (const targetId of stage.targets) {
        const option = el("option", "", stageById.get(targetId).name);
        option.value = String(targetId);
        select.appendChild(option);
      }
      // picked with a pointer (or a phone's picker): move at once; with the keyboard, arrows only
      // choose (Chrome fires "change" on each arrow of a closed list) and Enter moves
      let byKeyboard = false;
      const send = () => {
        if (!select.value) { return; }
        item.classList.add("kb-pending");
        setTriggerValue("move", { deal: card.id, to: Number(select.value), version: card.version });
      };
      select.addEventListener("pointerdown", () => { byKeyboard = false; });
      select.addEventListener("keydown", (event) => {
        byKeyboard = true;
        if (event.key === "Enter") { event.preventDefault(); send(); }
      });
      select.addEventListener("change", () => { if (!byKeyboard) { send(); } });
      row.appendChild(select);
      const grip = el("span", "kb-grip", L.drag);
      grip.setAttribute("aria-hidden", "true");
      row.appendChild(grip);
      item.appendChild(row);
      makeDraggable(item, stage, card);
    }
    return item;
  }

  function buildPager(stage) {
    const pager = el("div", "kb-pager");
    const previous = el("button", "", L.previous);
    previous.type = "button";
    previous.disabled = stage.page <= 1;
    previous.addEventListener("click", () => setTriggerValue("page", { stage: stage.id, page: stage.page - 1 }));
    const next = el("button", "", L.next);
    next.type = "button";
    next.disabled = stage.page >= stage.pages;
    next.addEventListener("click", () => setTriggerValue("page", { stage: stage.id, page: stage.page + 1 }));
    pager.appendChild(previous);
    pager.appendChild(el("span", "", stage.position));
    pager.appendChild(next);
    return pager;
  }

  // Drag with pointer events (mouse anywhere on the card, touch and pen on the "Drag" grip):
  // one code path for desktop and phone, no HTML5 drag-and-drop (which touch screens lack).
  let drag = null;
  function targetAt(x, y) {
    // every element under the point, not only the topmost: a toast or the app's header over a
    // tab must not swallow the drop
    const hits = shadow.elementsFromPoint ? shadow.elementsFromPoint(x, y) : doc.elementsFromPoint(x, y);
    const hit = hits.find((node) => root.contains(node));
    return hit ? hit.closest(".kb-col, .kb-tab") : null;
  }
  function clearMarks() {
    root.querySelectorAll(".kb-allowed, .kb-over, .kb-refused").forEach((node) =>
      node.classList.remove("kb-allowed", "kb-over", "kb-refused"));
  }
  function hover(state) {
    const over = targetAt(state.x, state.y);
    if (state.over && state.over !== over) { state.over.classList.remove("kb-over", "kb-refused"); }
    state.over = over;
    if (!over) { return; }
    const overStage = Number(over.dataset.stage);
    if (overStage !== state.stage.id) {
      over.classList.add(state.stage.targets.includes(overStage) ? "kb-over" : "kb-refused");
    }
    // wider screens bring the column of a tab into view; a phone keeps the held card's column
    // (hiding it would end the drag) and shows the target stage once the card has moved
    if (over.classList.contains("kb-tab") && overStage !== active && !phone()) { showStage(overStage, true); }
  }
  // near the left or right edge of the columns (or the phone's tabs) they scroll, so that a
  // column out of view can still be reached while the card is held
  function autoScroll(state) {
    const strip = phone() ? tabs : cols;
    const box = strip.getBoundingClientRect();
    const edge = 48;
    const within = state.y >= box.top && state.y <= box.bottom;  // held over the strip, not just beside it
    state.scrollBy = !within ? 0 : state.x > box.right - edge ? 14 : state.x < box.left + edge ? -14 : 0;
    state.strip = strip;
    if (!state.scrollBy || state.scrolling) { return; }
    state.scrolling = true;
    const step = () => {
      if (drag !== state || !state.scrollBy) { state.scrolling = false; return; }
      state.strip.scrollLeft += state.scrollBy;
      hover(state);
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }
  function makeDraggable(item, stage, card) {
    item.addEventListener("pointerdown", (event) => {
      const onGrip = event.target.closest(".kb-grip");
      if (event.target.closest("a, select, button, option")) { return; }
      if (event.pointerType !== "mouse" && !onGrip) { return; }  // a finger elsewhere scrolls
      if (event.pointerType === "mouse" && event.button !== 0) { return; }
      drag = { item, stage, card, startX: event.clientX, startY: event.clientY, x: event.clientX,
               y: event.clientY, ghost: null, over: null, pointerId: event.pointerId };
      item.setPointerCapture(event.pointerId);
      if (onGrip) { event.preventDefault(); }
    });
    item.addEventListener("pointermove", (event) => {
      if (!drag || drag.item !== item || event.pointerId !== drag.pointerId) { return; }
      if (!drag.ghost) {
        if (Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < 6) { return; }
        const box = item.getBoundingClientRect();
        drag.ghost = item.cloneNode(true);
        drag.ghost.classList.add("kb-ghost");
        drag.ghost.style.width = box.width + "px";
        drag.offsetX = drag.startX - box.left;
        drag.offsetY = drag.startY - box.top;
        root.appendChild(drag.ghost);
        item.classList.add("kb-dragging");
        for (const targetId of stage.targets) {
          columns.get(targetId).classList.add("kb-allowed");
          tabButtons.get(targetId).classList.add("kb-allowed");
        }
      }
      event.preventDefault();
      drag.x = event.clientX;
      drag.y = event.clientY;
      drag.ghost.style.left = (event.clientX - drag.offsetX) + "px";
      drag.ghost.style.top = (event.clientY - drag.offsetY) + "px";
      hover(drag);
      autoScroll(drag);
    });
    const finish = (event, cancelled) => {
      if (!drag || drag.item !== item || event.pointerId !== drag.pointerId) { return; }
      const state = drag;
      drag = null;
      if (item.hasPointerCapture(event.pointerId)) { item.releasePointerCapture(event.pointerId); }
      clearMarks();
      item.classList.remove("kb-dragging");
      if (!state.ghost) { return; }
      state.ghost.remove();
      const over = cancelled ? null : targetAt(event.clientX, event.clientY);
      if (!over) { return; }
      const to = Number(over.dataset.stage);
      if (to === stage.id) { return; }
      item.classList.add("kb-pending");  // stays in its column until the server has moved it
      if (phone() && stage.targets.includes(to)) { sessionStorage.setItem(storeKey, String(to)); }  // shown next
      setTriggerValue("move", { deal: card.id, to, version: card.version });
    };
    item.cancelDrag = () => { if (drag && drag.item === item) { finish({ pointerId: drag.pointerId }, true); } };
    item.addEventListener("pointerup", (event) => finish(event, false));
    item.addEventListener("pointercancel", (event) => finish(event, true));
  }

  // Escape drops nothing: the held card goes back
  const onKey = (event) => { if (event.key === "Escape" && drag) { drag.item.cancelDrag(); } };
  doc.addEventListener("keydown", onKey);
  return () => doc.removeEventListener("keydown", onKey);
}
"""

_board = st.components.v2.component("kestrel_pipeline_board", css=CSS, js=JS)


def board_element(data: dict[str, Any], *, key: str, on_event: Callable[[str], None]) -> None:
    """Mount the board element with ``data`` (:func:`board_data`).

    ``on_event(name)`` is called back for each event (``move``, ``open``, ``customer``,
    ``page``) before the next run; the event's value is ``st.session_state[key][name]``.
    """
    _board(
        data=data, key=key, height="content",
        on_move_change=partial(on_event, "move"), on_open_change=partial(on_event, "open"),
        on_customer_change=partial(on_event, "customer"), on_page_change=partial(on_event, "page"),
    )
