"""Segments page: an analyst builds a segment with a live count, saves it, reopens it; bad input keeps the input."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from sqlalchemy import select

from crm_core.models.segments import Segment, SegmentSnapshot
from crm_ui.text import plain_line
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in


def open_segments(username: str, language: str = "en"):  # type: ignore[no-untyped-def]
    app = log_in(username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
        app.session_state["kestrel_lang_chosen"] = True
    app.switch_page("pages/segments.py").run()
    assert not app.exception, app.exception
    return app


def live_count(app) -> str:  # type: ignore[no-untyped-def]
    return next(m.value for m in app.metric if m.label == "Customers in this segment (live)")


def test_an_analyst_builds_counts_and_saves_a_segment(app_world: AppWorld) -> None:
    app = open_segments(app_world.world.analyst.username)
    assert app.title[0].value == "Segments"
    next(b for b in app.button if b.label == "➕ Add condition").click().run()
    app.selectbox(key="segments_c1_field").select("name").run()
    app.selectbox(key="segments_c1_op").select("contains").run()
    app.text_input(key="segments_c1_value").input("acme").run()
    assert live_count(app) == "1"
    members = app.dataframe[0].value
    assert list(members.iloc[:, 0]) == ["Acme Trading"]
    # never contacted, no industry or churn score: dashes, and typed cells the table writes "—" (its placeholder)
    row = members.iloc[0]
    assert row["Industry"] == "—" and pd.isna(row["Last contacted"]) and pd.isna(row["Churn risk"])
    assert str(members["Last contacted"].dtype).startswith("datetime64")

    app.text_input(key="segments_name").input("Acme accounts")
    app.selectbox(key="segments_sharing").select("tenant")
    next(b for b in app.button if b.label == "Save as new segment").click().run()
    assert not app.exception
    assert any("Acme accounts" in toast.value for toast in app.toast)  # a toast: the button was far down
    with app_world.db.system_session("check") as session:
        segment = session.scalars(select(Segment).where(Segment.name == "Acme accounts")).one()
        snapshot = session.scalars(select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment.id)).one()
    assert segment.owner_id == app_world.world.analyst.user_id
    assert segment.conditions["conditions"] == [{"field": "name", "op": "contains", "value": "acme"}]
    assert snapshot.member_count == 1 and snapshot.source == "save"
    # analysts may not create tasks from a segment
    assert any("not create tasks" in i.value for i in app.info)


def test_a_taken_name_is_refused_in_chinese_and_the_input_is_kept(app_world: AppWorld) -> None:
    app = open_segments(app_world.world.analyst.username, "zh-CN")
    next(b for b in app.button if b.label == "➕ 添加条件").click().run()
    app.selectbox(key="segments_c1_field").select("lifecycle_stage").run()
    app.text_input(key="segments_name").input("潜客名单")
    next(b for b in app.button if b.label == "另存为新分群").click().run()
    next(b for b in app.button if b.label == "另存为新分群").click().run()
    assert any("已存在名为“潜客名单”的分群" in e.value for e in app.error)
    assert app.text_input(key="segments_name").value == "潜客名单"
    assert app.selectbox(key="segments_c1_field").value == "lifecycle_stage"


def test_a_manager_opens_a_saved_segment_and_creates_tasks_for_its_members(app_world: AppWorld) -> None:
    app = open_segments(app_world.world.manager.username)
    next(b for b in app.button if b.label == "➕ Add condition").click().run()
    app.selectbox(key="segments_c1_field").select("name").run()
    app.selectbox(key="segments_c1_op").select("contains").run()
    app.text_input(key="segments_c1_value").input("张三").run()
    app.text_input(key="segments_name").input("张三 accounts")
    next(b for b in app.button if b.label == "Save as new segment").click().run()
    # reopen from the saved list: the condition comes back
    app = open_segments(app_world.world.manager.username)
    app.radio(key="segments_section").set_value("saved").run()
    app.selectbox(key="segments_chosen").select_index(0)
    next(b for b in app.button if b.label == "Open in builder").click().run()
    assert app.radio(key="segments_section").value == "builder"
    assert app.text_input(key="segments_c1_value").value == "张三"
    assert live_count(app) == "1"
    app.text_input(key="segments_task_title").input("Call {name}")
    next(b for b in app.button if b.label == "Create a task for every customer").click().run()
    assert any("1 tasks created" in s.value for s in app.success)


def test_churn_risk_shows_as_a_column_in_the_customers_grid(app_world: AppWorld) -> None:
    from crm_core.models import Customer
    from crm_core.models.segments import Score, ScoringModel

    tenant_id = app_world.world.admin.tenant_id
    with app_world.db.system_transaction("test scores") as session:
        model = ScoringModel(
            tenant_id=tenant_id, scorer="churn_risk", version=1, method="logistic", metrics={}, model={}
        )
        session.add(model)
        session.flush()
        acme = session.scalar(select(Customer.id).where(Customer.name == "Acme Trading"))
        session.add(Score(tenant_id=tenant_id, scorer="churn_risk", entity="customer", entity_id=acme,
                          model_id=model.id, score=0.731))
    app = log_in(app_world.world.rep.username)
    app.switch_page("pages/customers.py").run()
    frame = app.dataframe[0].value
    risk = dict(zip(frame[frame.columns[0]], frame["Churn risk"], strict=True))
    assert risk["Acme Trading"] == 73
    assert risk["张三科技有限公司"] is None or risk["张三科技有限公司"] != risk["张三科技有限公司"]  # no score: empty


def test_the_lifecycle_rfm_and_scoring_sections_render_for_an_analyst(app_world: AppWorld) -> None:
    app = open_segments(app_world.world.analyst.username)
    app.radio(key="segments_section").set_value("lifecycle").run()
    assert not app.exception
    assert [m.label for m in app.metric] == ["Prospect", "Intent", "Customer", "Churned"]
    assert [m.value for m in app.metric] == ["3", "0", "0", "0"]
    app.radio(key="segments_section").set_value("rfm").run()
    assert not app.exception
    rfm = app.dataframe[0].value
    assert len(rfm) == 11 and int(rfm["Customers"].sum()) == 0  # no orders yet
    app.radio(key="segments_section").set_value("scoring").run()
    assert not app.exception
    assert sum("Not trained yet: it trains on its schedule" in i.value for i in app.info) == 2


@pytest.mark.parametrize(("language", "facts"), [
    ("en", "Prospect · Unassigned · Textiles · last contact —"),
    ("zh-CN", "潜客 · 未分配 · Textiles · 最近联系 —"),
])
def test_on_a_phone_the_members_are_cards_whose_names_open_the_record(
    app_world: AppWorld, language: str, facts: str
) -> None:
    """The builder's members (every customer while there is no condition): the wide table stays, and a card
    per member carries its name as a link to the record, as text, and its facts in the user's language."""
    name = "Star **BOLD** [Click](http://phish.example) :red[RED]"
    customer_id = create_random_customer(app_world.db, app_world.world.admin, name=name, owner_id=None,
                                         industry="Textiles")
    app = open_segments(app_world.world.analyst.username, language)
    assert name in list(app.dataframe[0].value.iloc[:, 0])  # the wide screen's table
    links = [link for link in app.get("page_link") if "Star" in link.proto.label]
    assert len(links) == 1
    assert links[0].proto.label == plain_line(name)  # the name as text: its Markdown escaped
    assert (links[0].proto.page, links[0].proto.query_string) == ("customer_profile", f"customer_id={customer_id}")
    captions = [re.sub(r"\\(.)", r"\1", caption.value) for caption in app.caption]
    assert facts in captions
