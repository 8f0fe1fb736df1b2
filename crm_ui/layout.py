"""Phone and desktop from one script run: tables on a wide screen, cards on a phone.

Streamlit knows nothing of the browser's width on the server, so a page draws both forms and a
stylesheet shows one: under :data:`PHONE_MAX_WIDTH` px the cards (no sideways scroll), above it
the table. The customers grid and Tasks started this; every page uses these helpers for it:

- :func:`table_and_cards` gives the two containers (``<name>_table``, ``<name>_cards``) for a page
  that draws its own cards (links and buttons in them);
- :func:`card` is one card: a bordered box, the title in bold, the facts on one line below;
- :func:`table_or_cards` draws a data frame as both: the table, and a card per row whose title is
  one column and whose facts are the others (``label: value``); with a :class:`CardPick` each card
  has a button that puts its row in the page's picker below (the row's actions: edit, details,
  replay), and :func:`picked_here` brings that picker into view;
- :func:`flow` lays small boxes (a form's field per source column, say) in reading order: several
  to a line on a wide screen, one per line, full width, on a phone (``st.columns`` would stack a
  phone's boxes column by column, out of order).

Cells are shown as text (never Markdown) and empty ones as "—", in the user's language.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from crm_ui.context import t
from crm_ui.formatting import EMPTY, dashed, date, number, when
from crm_ui.page_scripts import SCROLL_TO_PICKED
from crm_ui.text import plain_join, plain_line

PHONE_MAX_WIDTH = 640
CARDS_LIMIT = 50  # cards for the first rows; the wide table (a wider screen) holds them all
WHOLE_TABLE_ROWS = 30  # a table of up to this many rows is drawn whole, without a scroll box of its own

SWITCH_CSS = (
    "<style>"
    f"@media (max-width: {PHONE_MAX_WIDTH}px) {{ .st-key-NAME_table {{ display: none; }} }}"
    f"@media (min-width: {PHONE_MAX_WIDTH + 1}px) {{ .st-key-NAME_cards {{ display: none; }} }}"
    # a card headed by a link (the record it names) has it in bold, as a card's title
    '.st-key-NAME_cards [data-testid="stPageLink"] p { font-weight: 600; }'
    "</style>"
)


def switch_css(name: str) -> str:
    """The stylesheet that shows ``<name>_table`` above the phone width and ``<name>_cards`` below it."""
    return SWITCH_CSS.replace("NAME", name)


def table_and_cards(name: str) -> tuple[Any, Any]:
    """The wide screen's container and the phone's, in this order (both drawn; CSS shows one)."""
    st.html(switch_css(name))
    return st.container(key=f"{name}_table"), st.container(key=f"{name}_cards")


def shown(value: Any) -> str:
    """A cell as a card shows it (raw text: :func:`card` escapes it): numbers and times in the user's
    format, yes/no in words, empty as "—"."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return EMPTY
    if isinstance(value, (bool, np.bool_)):
        return t("grid.yes") if value else t("grid.no")
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return when(value.to_pydatetime() if isinstance(value, pd.Timestamp) else value)
    if isinstance(value, dt.date):
        return date(value)
    if isinstance(value, numbers.Integral):
        return number(int(value))
    if isinstance(value, numbers.Real):
        return number(value, digits=0 if float(value).is_integer() else 2)
    return " ".join(str(value).split())  # one line; the card escapes it


def card(title: object, facts: Sequence[object] = (), *, key: str | None = None) -> Any:
    """One card: a bordered box with ``title`` in bold and ``facts`` on one line; returns the box
    (for the card's own links and buttons)."""
    box = st.container(border=True, key=key)
    with box:
        st.markdown(f"**{plain_line(title) if title not in (None, '') else EMPTY}**")
        if facts:
            st.caption(plain_join(facts))
    return box


PICKED = "layout_picked"  # the picker a card's button last chose for (scrolled to once, on the next run)


@dataclass(frozen=True)
class CardPick:
    """A button on every card that chooses the card's row in the page's picker (the selectbox keyed
    ``picker_key``, whose options are ``values``); the row's actions sit with that picker. On a wide
    screen the table's rows are chosen in the picker itself."""

    label: str
    picker_key: str
    values: Sequence[Any]  # the picker's option for each row of the frame, in order


def _pick(picker_key: str, value: Any) -> None:
    st.session_state[picker_key] = value
    st.session_state[PICKED] = picker_key


def picked_here(picker_key: str) -> None:
    """Where the page draws the picker ``picker_key``: after a card's button chose a row in it, bring
    this place into view (on a phone the cards are a long list above it). Call it just above the picker."""
    if st.session_state.get(PICKED) == picker_key:
        del st.session_state[PICKED]
        with st.container(key=PICKED):  # what the script scrolls to
            st.html(SCROLL_TO_PICKED, unsafe_allow_javascript=True)


def table_or_cards(frame: pd.DataFrame | list[dict[str, Any]], *, name: str, title: str | None = None,
                   facts: Sequence[str] | None = None, limit: int = CARDS_LIMIT, pick: CardPick | None = None,
                   **dataframe_args: Any) -> Any:
    """``st.dataframe(frame)`` on a wide screen, a card per row on a phone; returns the table's value.

    ``title`` is the column that heads a card (the first by default), ``facts`` the columns it
    lists (the others by default: pass the few that matter when a table is wide). The cards stop
    after ``limit`` rows with a line saying how many more the table holds. With ``pick`` each card
    has a button that chooses its row in the page's picker (keyed ``<name>_pick_<the row's value>``).
    """
    frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    # a short table shows every row (no scroll box inside the page's own scroll); a long one keeps
    # Streamlit's ten-row box, whose own scroll saves the page a very long detour
    dataframe_args.setdefault("height", "content" if len(frame) <= WHOLE_TABLE_ROWS else "auto")
    dataframe_args.setdefault("hide_index", True)
    dataframe_args.setdefault("width", "stretch")
    wide, narrow = table_and_cards(name)
    with wide:
        # an empty cell reads "—", not "None": a text cell by dashed(), a typed one by the placeholder
        value = st.dataframe(dashed(frame), **dataframe_args, placeholder=EMPTY)
    columns = [str(column) for column in frame.columns]
    heading = title if title is not None else (columns[0] if columns else None)
    listed = [column for column in (facts if facts is not None else columns) if column != heading]
    with narrow:
        for index, row in enumerate(frame.head(limit).to_dict("records")):  # each cell its own type (no upcast)
            box = card(shown(row[heading]) if heading is not None else EMPTY,
                       [t("layout.fact", label=column, value=shown(row[column])) for column in listed])
            if pick is not None and index < len(pick.values):
                box.button(pick.label, key=f"{name}_pick_{pick.values[index]}", on_click=_pick,
                           args=(pick.picker_key, pick.values[index]))
        if len(frame) > limit:
            st.caption(t("layout.more_rows", count=number(len(frame) - limit)))
    return value


# the row's flex items are the wrappers Streamlit puts around each box
FLOW_ITEM = '.st-key-NAME > [data-testid="stLayoutWrapper"]'
FLOW_CSS = (
    "<style>"
    f"{FLOW_ITEM} {{ flex: 0 1 ITEMrem; min-width: 0; }}"
    f"@media (max-width: {PHONE_MAX_WIDTH}px) {{ {FLOW_ITEM} {{ flex: 1 1 100%; }} }}"
    "</style>"
)


def form_cells(count: int) -> Iterator[Any]:
    """``count`` cells of a two-column form, row by row: each pair is its own row of two columns, so on a phone
    (where columns stack) the fields read in the desktop's order, not the whole left column first."""
    row: Sequence[Any] = ()
    for index in range(count):
        if index % 2 == 0:
            row = st.columns(2)
        yield row[index % 2]


def flow(name: str, items: int, *, item_rem: int = 20) -> list[Any]:
    """``items`` boxes in reading order, each about ``item_rem`` rem wide, as many to a line as fit;
    one per line across the whole width on a phone. Returns the boxes."""
    st.html(FLOW_CSS.replace("NAME", name).replace("ITEM", str(item_rem)))
    row = st.container(horizontal=True, wrap=True, gap="small", key=name)
    return [row.container(border=True, key=f"{name}_item_{index}") for index in range(items)]
