"""A segment's members in the Segments builder: the table on a wide screen, a card per customer on a
phone (crm_ui.layout's switch: no sideways scroll), its name a link to the record as on the customers
grid's cards. Names and other customer text are shown as text, never as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from crm_core.queries.scores import ScoreValue
from crm_core.queries.segments import MemberRow
from crm_ui.context import t
from crm_ui.customers_grid import PROFILE_PAGE
from crm_ui.formatting import EMPTY, dashed, date_column, when
from crm_ui.layout import table_and_cards
from crm_ui.text import plain_join, plain_line

NAME = "segments_members"


def member_facts(member: MemberRow, churn: ScoreValue | None) -> list[str]:
    """A card's line under the name: stage, owner, the team, industry and region it has, churn risk, last contact."""
    facts = [t(f"stage.{member.lifecycle_stage}"), member.owner_name or t("filter.unowned")]
    facts += [value for value in (member.team_name, member.industry, member.region) if value]
    if churn is not None:
        facts.append(t("layout.fact", label=t("scoring.scorer.churn_risk"), value=f"{churn.percent}%"))
    facts.append(t("records.last_contact_short", when=when(member.last_contacted_at)))
    return facts


def members_table(members: Sequence[MemberRow], churn: Mapping[int, ScoreValue]) -> None:
    """The page of members: a table (wide screens) and cards whose names open the record (phones)."""
    wide, narrow = table_and_cards(NAME)
    with wide:
        frame = dashed(pd.DataFrame([{
            t("field.name"): member.name,
            t("field.lifecycle_stage"): t(f"stage.{member.lifecycle_stage}"),
            t("field.owner"): member.owner_name or t("filter.unowned"),
            t("segments.field.team"): member.team_name or "",
            t("field.industry"): member.industry or "",
            t("field.region"): member.region or "",
        } for member in members]))
        # typed columns even when no member has a value: an all-None column would read "None"
        frame[t("scoring.scorer.churn_risk")] = [
            float(churn[member.id].percent) if member.id in churn else float("nan") for member in members]
        frame[t("field.last_contacted_at")] = pd.to_datetime(pd.Series(
            [member.last_contacted_at for member in members], dtype="object"))
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                t("scoring.scorer.churn_risk"): st.column_config.ProgressColumn(format="%d%%", min_value=0,
                                                                                max_value=100),
                t("field.last_contacted_at"): date_column(),
            }, placeholder=EMPTY,
        )
    with narrow:
        for member in members:
            with st.container(border=True, key=f"{NAME}_card_{member.id}"):
                st.page_link(PROFILE_PAGE, label=plain_line(member.name),
                             query_params={"customer_id": str(member.id)})
                st.caption(plain_join(member_facts(member, churn.get(member.id))))
