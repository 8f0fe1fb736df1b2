"""AppTests of the Pipeline board: what the board element is given, and what its events do.

The board is one browser element (crm_ui/pipeline_board.py); AppTest cannot drag, so these
tests read the JSON the element draws from and send the events the browser would send (a
drop or a "Move to" pick is a ``move`` event). tests/e2e/test_board_drag.py drags in Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget, get_widget_state

from crm_core.db import Database
from crm_core.models import Opportunity, PipelineStage
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.services import auth
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage, update_opportunity
from tests.conftest import sent_statements
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in


@pytest.fixture
def stages(app_world: AppWorld) -> dict[str, int]:
    with app_world.db.session(app_world.world.admin) as session:
        return {stage.name: stage.id for stage in session.scalars(select(PipelineStage))}


@pytest.fixture
def deals(app_world: AppWorld, stages: dict[str, int]) -> dict[str, int]:
    """Three deals of the rep (one won), one of the far rep."""
    db, world = app_world.db, app_world.world
    rep_customer = create_random_customer(db, world.rep, name="Kestrel Foods 红隼食品")
    far_customer = create_random_customer(db, world.rep_other_team, name="Far Away Inc")
    ids = {
        "pilot": create_opportunity(db, world.rep, OpportunityInput(customer_id=rep_customer, name="Pilot 试点",
                                                                    amount="10000")),
        "rollout": create_opportunity(db, world.rep, OpportunityInput(
            customer_id=rep_customer, name="Rollout", amount="50000", stage_id=stages["Negotiation"],
            expected_close_date=dt.date.today())),
        "renewal": create_opportunity(db, world.rep, OpportunityInput(customer_id=rep_customer, name="Renewal",
                                                                      amount="8000")),
        "far": create_opportunity(db, world.rep_other_team, OpportunityInput(customer_id=far_customer,
                                                                             name="Far deal", amount="99000")),
    }
    move_stage(db, world.rep, ids["renewal"], stages["Won"], expected_version=1)
    return ids


def open_board(username: str, *, chinese: bool = False, db: Database | None = None) -> AppTest:
    if chinese:  # the user's saved language, which a login starts with
        assert db is not None
        auth.set_language(db, username, "zh-CN")
    app = log_in(username)
    app.switch_page("pages/pipeline.py")
    app._run(widget_states(app))
    assert not app.exception, app.exception
    return app


def board(app: AppTest) -> dict[str, Any]:
    """The JSON the board element draws from."""
    (element,) = app.get("bidi_component")
    data: dict[str, Any] = json.loads(element.proto.json)
    return data


def column(app: AppTest, stage_name: str) -> dict[str, Any]:
    return next(stage for stage in board(app)["stages"] if stage["name"] == stage_name)


def card_names(app: AppTest, stage_name: str) -> list[str]:
    return [card["name"] for card in column(app, stage_name)["cards"]]


def widget_states(app: AppTest) -> WidgetStates:
    """The widget values the browser sends back, as AppTest serialises them.

    AppTest formats a select box's value with English labels; with Chinese option labels it
    cannot find them and raises. Such a box is left out, as a browser that never touched it would.
    """
    states = WidgetStates()
    for node in app._tree:
        if isinstance(node, Widget):
            try:
                state = get_widget_state(node)
            except ValueError:
                continue
            if state is not None:
                states.widgets.append(state)
    return states


def send(app: AppTest, event: str, value: dict[str, Any]) -> AppTest:
    """What the browser sends when the user drops a card, picks a stage, clicks a name or a pager."""
    (element,) = app.get("bidi_component")
    states = widget_states(app)
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(element.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": event, "value": value}])
    app._run(states)
    assert not app.exception, app.exception
    return app


def drop(app: AppTest, deal_id: int, stage_id: int) -> AppTest:
    card = next(card for stage in board(app)["stages"] for card in stage["cards"] if card["id"] == deal_id)
    return send(app, "move", {"deal": deal_id, "to": stage_id, "version": card["version"]})


def stage_of(app_world: AppWorld, deal_id: int) -> int:
    with app_world.db.session(app_world.world.admin) as session:
        deal = session.get(Opportunity, deal_id)
        assert deal is not None
        return deal.stage_id


def errors(app: AppTest) -> str:
    return "\n".join(error.value for error in app.error)


def test_a_rep_sees_only_their_deals_with_totals_and_money_in_one_format(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    assert card_names(app, "Lead") == ["Pilot 试点"]
    assert card_names(app, "Negotiation") == ["Rollout"]
    assert card_names(app, "Won") == ["Renewal"]
    assert "Far deal" not in json.dumps(board(app), ensure_ascii=False)
    lead = column(app, "Lead")
    assert lead["totals"] == "Deals: 1 · ¥10,000.00 · weighted ¥1,000.00 (10%)"
    assert lead["cards"][0]["amount"] == "¥10,000.00 · 10%"
    assert lead["targets"] == [stage["id"] for stage in board(app)["stages"] if stage["name"] != "Lead"]


def test_a_won_card_may_only_go_back_to_an_open_stage(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    assert column(app, "Won")["targets"] == [stages[name] for name in ("Lead", "Qualified", "Proposal", "Negotiation")]


def test_dropping_a_card_moves_it_records_the_history_and_undo_takes_it_back(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    drop(app, deals["pilot"], stages["Proposal"])
    assert stage_of(app_world, deals["pilot"]) == stages["Proposal"]
    assert card_names(app, "Proposal") == ["Pilot 试点"] and card_names(app, "Lead") == []
    assert any("Last move: **Pilot 试点** from Lead to Proposal." in m.value for m in app.markdown)
    app.button(key="pipeline_undo").click().run()
    assert not app.exception and not app.error
    assert stage_of(app_world, deals["pilot"]) == stages["Lead"]
    assert card_names(app, "Lead") == ["Pilot 试点"]
    assert not [b for b in app.button if b.key == "pipeline_undo"]  # one undo per move
    with app_world.db.session(app_world.world.admin) as session:
        moves = session.execute(
            select(OpportunityStageChange.from_stage_id, OpportunityStageChange.to_stage_id)
            .where(OpportunityStageChange.opportunity_id == deals["pilot"]).order_by(OpportunityStageChange.id)
        ).all()
    assert [tuple(move) for move in moves] == [
        (None, stages["Lead"]), (stages["Lead"], stages["Proposal"]), (stages["Proposal"], stages["Lead"])
    ]


def test_undo_after_someone_else_moved_the_deal_says_who_and_changes_nothing(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    db, world = app_world.db, app_world.world
    app = open_board(world.rep.username)
    drop(app, deals["pilot"], stages["Proposal"])
    move_stage(db, world.manager, deals["pilot"], stages["Negotiation"], expected_version=2)
    app.button(key="pipeline_undo").click().run()
    assert "Nothing was undone: Mia Manager changed **Pilot 试点**" in errors(app)
    assert stage_of(app_world, deals["pilot"]) == stages["Negotiation"]


def test_dropping_on_lost_asks_why_in_words_and_refuses_an_empty_reason(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    drop(app, deals["pilot"], stages["Lost"])
    assert stage_of(app_world, deals["pilot"]) == stages["Lead"]  # nothing moves before the reason
    assert any(area.label == "Why was it lost? *" for area in app.text_area)
    next(b for b in app.button if b.label == "Close as Lost").click().run()
    assert "Say why the deal was lost." in errors(app)
    assert "lost_reason" not in errors(app)  # never a raw field key
    assert stage_of(app_world, deals["pilot"]) == stages["Lead"]
    app.text_area(key="pipeline_close_reason").input("价格太高")
    next(b for b in app.button if b.label == "Close as Lost").click().run()
    assert not app.exception and not app.error
    with app_world.db.session(app_world.world.admin) as session:
        deal = session.get(Opportunity, deals["pilot"])
        assert deal is not None and deal.lost_reason == "价格太高" and deal.closed_at is not None
    lost = column(app, "Lost")["cards"]
    assert [(card["name"], card["lost_reason"]) for card in lost] == [("Pilot 试点", "价格太高")]
    assert board(app)["labels"]["lost"] == "Lost because:"


def test_cancelling_the_close_dialog_leaves_the_card_where_it_was(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    drop(app, deals["rollout"], stages["Won"])
    assert [area.label for area in app.text_area] == ["What won it? (optional)"]  # no asterisk: not required
    app.button(key="pipeline_close_cancel").click().run()
    assert not [b for b in app.button if b.label == "Mark as Won"]
    assert stage_of(app_world, deals["rollout"]) == stages["Negotiation"]


def test_winning_a_deal_keeps_what_won_it_and_the_card_says_so(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    drop(app, deals["rollout"], stages["Won"])
    app.text_area(key="pipeline_close_reason").input("试点说服了财务总监")
    next(b for b in app.button if b.label == "Mark as Won").click().run()
    assert not app.exception and not app.error
    with app_world.db.session(app_world.world.admin) as session:
        deal = session.get(Opportunity, deals["rollout"])
        assert deal is not None and deal.won_reason == "试点说服了财务总监" and deal.lost_reason is None
    won = [card for card in column(app, "Won")["cards"] if card["name"] == "Rollout"]
    assert [card["won_reason"] for card in won] == ["试点说服了财务总监"]
    assert board(app)["labels"]["won"] == "Won because:"


def test_an_illegal_drop_is_refused_in_the_users_language_and_the_card_stays(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username, chinese=True, db=app_world.db)
    drop(app, deals["renewal"], stages["Lost"])  # won → lost: reopen first; no reason is asked for
    assert not app.text_area
    assert "**Renewal** 未移动" in errors(app)
    assert "Won" in errors(app) and "Lost" in errors(app)  # the stages by name, in a Chinese sentence
    assert stage_of(app_world, deals["renewal"]) == stages["Won"]
    assert card_names(app, "Won") == ["Renewal"]


def test_a_move_made_on_a_stale_card_is_refused_naming_who_moved_it(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    db, world = app_world.db, app_world.world
    app = open_board(world.rep.username)
    move_stage(db, world.manager, deals["pilot"], stages["Qualified"], expected_version=1)
    send(app, "move", {"deal": deals["pilot"], "to": stages["Proposal"], "version": 1})
    assert "Mia Manager changed this record" in errors(app)
    assert stage_of(app_world, deals["pilot"]) == stages["Qualified"]


def test_each_column_pages_on_the_server(app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]) -> None:
    db, world = app_world.db, app_world.world
    customer_id = create_random_customer(db, world.rep, name="Paging Co")
    for number in range(6):
        create_opportunity(db, world.rep, OpportunityInput(customer_id=customer_id, name=f"Bulk {number}",
                                                           amount=str(1000 + number)))
    app = open_board(world.rep.username)
    app.selectbox(key="pipeline_per_page").select(5).run()
    lead = column(app, "Lead")
    assert (lead["page"], lead["pages"], len(lead["cards"])) == (1, 2, 5)
    assert lead["cards"][0]["name"] == "Pilot 试点"  # biggest first
    send(app, "page", {"stage": stages["Lead"], "page": 2})
    lead = column(app, "Lead")
    assert (lead["page"], lead["position"], [card["name"] for card in lead["cards"]]) == (2, "Page 2 of 2", ["Bulk 1",
                                                                                                            "Bulk 0"])


def test_the_deal_name_opens_the_deal_with_its_history_and_a_link_to_the_customer(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    app = open_board(app_world.world.rep.username)
    send(app, "open", {"deal": deals["renewal"]})
    assert [h.value for h in app.subheader] == ["Edit deal: Renewal"]
    assert app.query_params.get("deal") == str(deals["renewal"])
    history = [c.value for c in app.caption if "→" in c.value]
    assert len(history) == 2 and "created → Lead" in history[1] and "Lead → Won" in history[0]
    link = next(el for el in app.get("page_link") if "Open the customer" in el.proto.label)
    assert "customer_id=" in link.proto.page or link.proto.query_string
    app.button(key="pipeline_cancel_edit").click().run()
    assert not app.subheader and "deal" not in app.query_params


def test_a_link_with_the_deal_in_its_address_opens_that_deal(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = log_in(app_world.world.rep.username)
    app.query_params["deal"] = str(deals["rollout"])
    app.switch_page("pages/pipeline.py").run()
    assert [h.value for h in app.subheader] == ["Edit deal: Rollout"]


def test_the_customer_name_opens_the_customer_360(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    card = column(app, "Lead")["cards"][0]
    assert board(app)["customer_path"] == "customer"
    send(app, "customer", {"customer": card["customer_id"]})
    assert app.query_params.get("customer_id") == str(card["customer_id"])
    assert "Kestrel Foods 红隼食品" in "\n".join(t.value for t in [*app.title, *app.header, *app.subheader])


def test_editing_a_deal_someone_else_saved_keeps_the_input_and_offers_reload(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    db, world = app_world.db, app_world.world
    app = open_board(world.rep.username)
    send(app, "open", {"deal": deals["pilot"]})
    amount = next(w for w in app.text_input if w.label == "Amount *")
    amount.input("12345")
    with db.session(world.admin) as session:
        deal = session.get(Opportunity, deals["pilot"])
        assert deal is not None
        customer_id = deal.customer_id
    update_opportunity(db, world.manager, deals["pilot"],
                       OpportunityInput(customer_id=customer_id, name="Pilot 试点", amount="11000"), expected_version=1)
    next(b for b in app.button if b.label == "Save deal").click().run()
    assert "Mia Manager changed this record" in errors(app)
    assert next(w for w in app.text_input if w.label == "Amount *").value == "12345"
    with db.session(world.admin) as session:
        assert session.get(Opportunity, deals["pilot"]).amount == Decimal("11000.00")  # type: ignore[union-attr]
    app.button(key="pipeline_reload").click().run()
    assert next(w for w in app.text_input if w.label == "Amount *").value == "11000.00"


def test_a_rep_creates_a_deal_from_the_board(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username)
    app.text_input(key="pipeline_customer_search").input("红隼食品").run()
    next(w for w in app.text_input if w.label == "Deal *").input("Expansion 扩容")
    next(w for w in app.text_input if w.label == "Amount *").input("-5")
    next(b for b in app.button if b.label == "Create deal").click().run()
    assert "Amount must be between 0 and 999999999999.99" in errors(app)  # the field rule
    next(w for w in app.text_input if w.label == "Amount *").input("20,000")
    next(b for b in app.button if b.label == "Create deal").click().run()
    assert not app.exception, app.exception
    assert not app.error, errors(app)
    assert any('Deal "Expansion 扩容" created.' in s.value for s in app.success)
    with app_world.db.session(app_world.world.admin) as session:
        created = session.scalars(select(Opportunity).where(Opportunity.name == "Expansion 扩容")).one()
    assert created.amount == Decimal("20000.00") and created.owner_id == app_world.world.rep.user_id


def test_an_analyst_reads_the_board_without_moving_anything(
    app_world: AppWorld, deals: dict[str, int], stages: dict[str, int]
) -> None:
    app = open_board(app_world.world.analyst.username)
    assert "Far deal" in card_names(app, "Lead")
    assert board(app)["can_write"] is False
    assert not [b for b in app.button if b.key == "pipeline_undo"]


def test_the_board_speaks_chinese(app_world: AppWorld, deals: dict[str, int]) -> None:
    app = open_board(app_world.world.rep.username, chinese=True, db=app_world.db)
    labels = board(app)["labels"]
    assert [labels[name] for name in ("move_to", "drag", "previous", "next")] == ["移动到", "拖动", "上一页", "下一页"]
    assert column(app, "Lead")["totals"].startswith("1 个商机")


def test_deal_cards_show_the_win_score_once_the_scorer_has_run(app_world: AppWorld, deals: dict[str, int]) -> None:
    from crm_core.scoring import runner

    tenant_id = app_world.world.rep.tenant_id
    assert column(open_board(app_world.world.rep.username), "Lead")["cards"][0]["score"] == ""
    runner.train(app_world.db, tenant_id, "deal_win")  # one closed deal: falls back to stage probability
    runner.apply(app_world.db, tenant_id, "deal_win")
    app = open_board(app_world.world.rep.username)
    assert column(app, "Lead")["cards"][0]["score"] == "🎯 Win score 10%"  # the pilot, in Lead (10%)
    assert column(app, "Negotiation")["cards"][0]["score"] == "🎯 Win score 75%"


def test_a_board_rerun_sends_as_many_statements_for_ten_times_the_cards(
    app_world: AppWorld, stages: dict[str, int], deals: dict[str, int]
) -> None:
    """Columns, counts, sums and cards are a fixed set of queries: more deals never mean more round trips.

    How fast a rerun is at 1M customers is ``python -m benchmarks pages``, not a timed test."""
    db, world = app_world.db, app_world.world
    app = open_board(world.manager.username)
    with sent_statements() as before:
        app.run()
    assert not app.exception
    for number in range(10):
        customer_id = create_random_customer(db, world.rep, name=f"Board customer {number}")
        create_opportunity(db, world.rep, OpportunityInput(
            customer_id=customer_id, name=f"Board deal {number}", amount=str(1000 + number),
            stage_id=stages["Negotiation" if number % 2 else "Lead"]))
    with sent_statements() as after:
        app.run()
    assert not app.exception
    assert "Board deal 9" in card_names(app, "Negotiation")  # the new cards are drawn ...
    assert before and len(after) == len(before), "\n".join(sql for sql, _ in after)  # ... by the same statements


def test_an_opened_deal_shows_its_product_lines_under_its_facts(app_world: AppWorld, deals: dict[str, int]) -> None:
    from crm_core.services.deal_lines import DealLineInput, set_deal_lines
    from crm_core.services.products import ProductInput, create_product

    db, world = app_world.db, app_world.world
    scanner = create_product(db, world.admin, ProductInput(sku="SCN-9", name="Scanner", unit_price="1200"))
    set_deal_lines(db, world.rep, deals["rollout"], [DealLineInput(product_id=scanner, quantity=3)],
                   expected_version=1)
    app = log_in(world.rep.username)
    app.query_params["deal"] = str(deals["rollout"])
    app.switch_page("pages/pipeline.py").run()
    assert not app.exception, app.exception
    assert any("Products (1)" in caption.value for caption in app.caption)
    [table] = [frame.value for frame in app.dataframe if "SKU" in frame.value.columns]
    assert table.iloc[0]["SKU"] == "SCN-9" and table.iloc[0]["Quantity"] == 3.0
    assert "3,600.00" in table.iloc[0]["Line total"]


def test_the_deal_panel_edits_the_product_lines_through_the_service_keeping_a_refused_input(
    app_world: AppWorld, deals: dict[str, int]
) -> None:
    from crm_core.models import AuditEvent
    from crm_core.models.pipeline import OpportunityLine
    from crm_core.services.products import ProductInput, create_product

    db, world = app_world.db, app_world.world
    scanner = create_product(db, world.admin, ProductInput(sku="SCN-9", name="Scanner", unit_price="1200"))
    licence = create_product(db, world.admin, ProductInput(sku="", name="Licence", unit_price="33.33"))
    app = open_board(world.rep.username)
    send(app, "open", {"deal": deals["rollout"]})

    def field(label: str) -> Any:
        return next(widget for widget in [*app.selectbox, *app.text_input, *app.checkbox] if widget.label == label)

    def save() -> None:
        next(button for button in app.button if button.label == "Save products").click().run()
        assert not app.exception, app.exception

    def stored() -> list[tuple[int, Decimal, Decimal]]:
        with db.session(world.admin) as session:
            return [(line.product_id, line.quantity, line.unit_price) for line in session.scalars(
                select(OpportunityLine).where(OpportunityLine.opportunity_id == deals["rollout"])
                .order_by(OpportunityLine.position))]

    # a new line: the product, a quantity, a blank price (the list price)
    field("Add a product: Product").set_value(scanner)
    field("Quantity").set_value("2")
    save()
    assert not app.error, errors(app)
    assert any("Products of “Rollout” saved." in notice.value for notice in app.success)
    assert stored() == [(scanner, Decimal("2.00"), Decimal("1200.00"))]
    with db.session(world.admin) as session:
        assert session.get(Opportunity, deals["rollout"]).amount == Decimal("2400.00")  # type: ignore[union-attr]
    assert next(w for w in app.text_input if w.label == "Amount *").value == "2400.00"  # the panel shows it

    # a quantity the order line's rules refuse: said on that line, the input kept, nothing written
    next(w for w in app.text_input if w.label == "Quantity" and w.value == "2.00").set_value("0")
    save()
    assert "Line 1: Quantity must be between 0.01" in errors(app).replace("\\", "")  # Markdown escapes the colon
    assert [w.value for w in app.text_input if w.label == "Quantity"][0] == "0"
    assert stored() == [(scanner, Decimal("2.00"), Decimal("1200.00"))]

    # the first line removed, another added, in one save; every line written and removed is audited as the rep's
    next(w for w in app.text_input if w.label == "Quantity").set_value("2")
    field("Remove").check()
    field("Add a product: Product").set_value(licence)
    next(w for w in app.text_input if w.label == "Unit price (empty: list price)" and w.value == "").set_value("30")
    save()
    assert not app.error, errors(app)
    assert stored() == [(licence, Decimal("1.00"), Decimal("30.00"))]
    with db.session(world.admin) as session:
        audited = session.execute(select(AuditEvent.action, AuditEvent.actor_id).where(
            AuditEvent.entity == "opportunity_line").order_by(AuditEvent.id)).all()
        assert [tuple(row) for row in audited] == [("create", world.rep.user_id), ("delete", world.rep.user_id),
                                                   ("create", world.rep.user_id)]

    # someone else saved the deal since it was opened: refused naming them, Reload offered
    with db.session(world.admin) as session:
        deal = session.get(Opportunity, deals["rollout"])
        assert deal is not None
        customer_id, version, stage_id = deal.customer_id, deal.version, deal.stage_id
    update_opportunity(db, world.manager, deals["rollout"], OpportunityInput(
        customer_id=customer_id, name="Rollout", amount="1", stage_id=stage_id), expected_version=version)
    field("Add a product: Product").set_value(scanner)
    save()
    assert "Mia Manager changed this record" in errors(app)
    assert stored() == [(licence, Decimal("1.00"), Decimal("30.00"))]
    assert [b for b in app.button if b.key == "pipeline_reload"]
