"""A team's group robot (WeCom 企业微信 / DingTalk 钉钉): admins set its webhook URL, its DingTalk signing
secret and its language. The URL is judged by the webhooks' rules (scheme, no credentials; the address
vetted at save and again at every send). The secret is stored as the webhooks' secrets are: readable to
sign, never audited (``access._NOT_AUDITED_COLUMNS``), never shown again; an empty secret field keeps it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.i18n import LANGUAGES
from crm_core.jobs.service import ensure_schedule
from crm_core.models import Team
from crm_core.models.notifications import RobotPlatform, TeamRobot
from crm_core.notifications.robots import KIND as ROBOT_KIND
from crm_core.services.webhooks import target_url_problem

SECRET_MAX = 200


@dataclass
class RobotForm:
    """What an admin edits for a team's robot (``secret`` empty: keep the stored one)."""

    platform: str
    url: str
    secret: str = ""
    language: str = "zh-CN"
    enabled: bool = True


def save_team_robot(db: Database, actor: Actor, team_id: int, form: RobotForm) -> int:
    """Create or change the team's robot; its id. Admins only."""
    if not actor.is_admin:
        raise AccessDenied("only an admin sets a team's robot")
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    url = form.url.strip()
    secret = form.secret.strip()
    if form.platform not in RobotPlatform.ALL:
        errors["platform"] = ("validation.choice", {})
    if form.language not in LANGUAGES:
        errors["language"] = ("validation.choice", {})
    if len(secret) > SECRET_MAX:
        errors["secret"] = ("validation.too_long", {"max": SECRET_MAX})
    with db.transaction(actor) as session:
        if session.get(Team, team_id) is None:
            raise NotFound("team", id=team_id)
        problem = target_url_problem(session, url)
        if problem:
            errors["url"] = (problem, {})
        if errors:
            raise ValidationFailed(errors)  # type: ignore[arg-type]
        robot = session.scalar(select(TeamRobot).where(TeamRobot.team_id == team_id))
        if robot is None:
            robot = TeamRobot(tenant_id=actor.tenant_id, team_id=team_id)
            session.add(robot)
        robot.platform, robot.url, robot.language, robot.enabled = form.platform, url, form.language, form.enabled
        if secret:
            robot.signing_secret = secret
        elif form.platform != RobotPlatform.DINGTALK:
            robot.signing_secret = None  # WeCom robots sign nothing
        ensure_schedule(session, actor.tenant_id, ROBOT_KIND)
        session.flush()
        return robot.id


def remove_team_robot(db: Database, actor: Actor, team_id: int) -> None:
    """The team's robot posts nothing more. Admins only."""
    if not actor.is_admin:
        raise AccessDenied("only an admin sets a team's robot")
    with db.transaction(actor) as session:
        robot = session.scalar(select(TeamRobot).where(TeamRobot.team_id == team_id))
        if robot is None:
            raise NotFound("team_robot", id=team_id)
        session.delete(robot)
