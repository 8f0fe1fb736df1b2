"""Admins' team robot settings (WeCom / DingTalk group robots), under the Teams tab of Users & teams.

The URL and the last error are data: shown as code/escaped text; the secret is never shown back."""

from __future__ import annotations

import streamlit as st

from crm_core.errors import DomainError
from crm_core.i18n import LANGUAGES
from crm_core.models.notifications import RobotPlatform
from crm_core.queries.notifications import team_robots
from crm_core.services.team_robots import RobotForm, remove_team_robot, save_team_robot
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import when
from crm_ui.text import plain

STATE = st.session_state


def team_robot_settings(team_names: dict[int, str]) -> None:
    """Pick a team, then set, change or remove its group robot."""
    st.subheader(t("robot.title"))
    st.caption(t("robot.intro"))
    if notice := STATE.pop("robot_notice", None):
        st.success(notice)
    if not team_names:
        return
    actor = current_actor()
    team_id = st.selectbox(t("robot.team"), list(team_names), format_func=team_names.__getitem__,
                           key="robot_team")
    with read_session() as session:
        robot = team_robots(session).get(team_id)
    if robot is None:
        st.caption(t("robot.none"))
    else:
        st.caption(t("robot.status", sent=when(robot.last_sent_at), failed=when(robot.last_failed_at)))
        if robot.last_error:
            st.warning(t("robot.last_error", error=plain(robot.last_error)))
    platforms = list(RobotPlatform.ALL)
    languages = list(LANGUAGES)
    generation = STATE.setdefault("robot_form_generation", 0)  # a saved form starts afresh: the secret is gone
    with st.form(f"robot_form_{team_id}_{generation}"):
        platform = st.selectbox(t("robot.platform"), platforms, format_func=lambda v: t(f"robot.platform.{v}"),
                                index=platforms.index(robot.platform) if robot else 0)
        url = st.text_input(t("robot.url"), value=robot.url if robot else "", max_chars=2000)
        secret = st.text_input(t("robot.secret"), type="password", help=t("robot.secret_help"), max_chars=200)
        language = st.selectbox(t("robot.language"), languages, format_func=LANGUAGES.__getitem__,
                                index=languages.index(robot.language) if robot and robot.language in languages else 1)
        enabled = st.checkbox(t("robot.enabled"), value=robot.enabled if robot else True)
        saved = st.form_submit_button(t("robot.save"), type="primary")
    if saved:
        try:
            save_team_robot(get_db(), actor, team_id, RobotForm(platform=platform, url=url, secret=secret,
                                                                language=language, enabled=enabled))
        except DomainError as error:
            show_domain_error(error, labels={"url": t("robot.url"), "platform": t("robot.platform"),
                                             "secret": t("robot.secret"), "language": t("robot.language")})
        else:
            STATE["robot_notice"] = t("robot.saved")
            STATE["robot_form_generation"] = generation + 1
            st.rerun()
    if robot is not None and st.button(t("robot.remove"), key=f"robot_remove_{team_id}"):
        try:
            remove_team_robot(get_db(), actor, team_id)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE["robot_notice"] = t("robot.removed")
            st.rerun()
