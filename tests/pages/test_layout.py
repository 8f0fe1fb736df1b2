"""crm_ui.layout: the table and its cards, drawn together (CSS shows one by width), and the flow of boxes."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest


def unescaped(markdown: str) -> str:
    """What Markdown shows of a text written through crm_ui.text.plain (its backslash escapes gone)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def cards_in_chinese() -> None:
    import datetime as dt

    import pandas as pd
    import streamlit as st

    from crm_ui.layout import table_or_cards

    st.session_state["kestrel_lang"] = "zh-CN"
    frame = pd.DataFrame([
        {"名称": "**粗体** <b>x</b>", "启用": True, "次数": 1234, "比例": 0.5, "最近": dt.datetime(2026, 12, 4, 14, 5),
         "备注": None, "长文": "第一行\n第二行"},
        {"名称": "", "启用": False, "次数": 7, "比例": 2.0, "最近": None, "备注": "好", "长文": "x"},
        {"名称": "第三", "启用": True, "次数": 0, "比例": 1.25, "最近": None, "备注": "", "长文": "y"},
    ])
    table_or_cards(frame, name="demo", limit=2, column_config={"次数": st.column_config.NumberColumn()})


def test_a_table_becomes_escaped_formatted_cards_with_the_rest_counted() -> None:
    app = AppTest.from_function(cards_in_chinese).run()
    assert not app.exception
    # the wide table: the whole frame
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) == 3
    # the cards: the first column heads each, as text (no bold, no HTML); an empty title is "—"
    titles = [markdown.value for markdown in app.markdown]
    assert len(titles) == 2 and titles[1] == "**—**"
    assert "<b>" not in titles[0] and titles[0].count("**") == 2 and "粗体" in titles[0]
    captions = [unescaped(caption.value) for caption in app.caption]
    assert captions[0] == ("启用：是 · 次数：1,234 · 比例：0.50 · 最近：2026年12月4日 14:05 · 备注：— · "
                           "长文：第一行 第二行")
    assert captions[1] == "启用：否 · 次数：7 · 比例：2 · 最近：— · 备注：好 · 长文：x"
    # the third row is left to the table, and the cards say so
    assert captions[2] == "还有 1 行：在更宽的屏幕上可查看完整表格。"
    assert len(captions) == 3


def chosen_facts_in_english() -> None:
    import pandas as pd

    from crm_ui.layout import table_or_cards

    frame = pd.DataFrame([{"When": None, "File": "a.csv", "Who": "Ann", "Rows": 12, "Status": "done"}])
    table_or_cards(frame, name="runs", title="File", facts=["Status", "Rows"])


def test_a_card_has_the_title_and_the_facts_asked_for() -> None:
    app = AppTest.from_function(chosen_facts_in_english).run()
    assert not app.exception
    assert [unescaped(markdown.value) for markdown in app.markdown] == ["**a.csv**"]
    assert [unescaped(caption.value) for caption in app.caption] == ["Status: done · Rows: 12"]


def boxes_in_flow() -> None:
    from crm_ui.layout import flow

    for index, box in enumerate(flow("fields", 3, item_rem=15)):
        box.selectbox(f"列{index}", ["a", "b"], key=f"pick_{index}")


def test_a_flow_keeps_its_boxes_in_reading_order_and_keyed() -> None:
    app = AppTest.from_function(boxes_in_flow).run()
    assert not app.exception
    assert [box.label for box in app.selectbox] == ["列0", "列1", "列2"]
    assert [box.key for box in app.selectbox] == ["pick_0", "pick_1", "pick_2"]


def cards_that_pick() -> None:
    import streamlit as st

    from crm_ui.layout import CardPick, picked_here, table_or_cards

    table_or_cards([{"Name": "Ann", "Role": "rep"}, {"Name": "Bo", "Role": "admin"}], name="people",
                   pick=CardPick("Change this person", "people_choice", [11, 22]))
    picked_here("people_choice")
    st.selectbox("Person", [11, 22], key="people_choice")


def test_a_cards_button_picks_its_row_in_the_picker_and_brings_the_picker_into_view_once() -> None:
    app = AppTest.from_function(cards_that_pick).run()
    assert not app.exception
    assert [(button.key, button.label) for button in app.button] == [
        ("people_pick_11", "Change this person"), ("people_pick_22", "Change this person")]
    assert app.selectbox(key="people_choice").value == 11
    assert not app.get("html") or all("scrollIntoView" not in html.proto.body for html in app.get("html"))

    app.button(key="people_pick_22").click().run()
    assert app.selectbox(key="people_choice").value == 22
    assert any("scrollIntoView" in html.proto.body for html in app.get("html"))  # the picker comes into view
    app.run()
    assert app.selectbox(key="people_choice").value == 22  # kept, and not scrolled to again
    assert all("scrollIntoView" not in html.proto.body for html in app.get("html"))
