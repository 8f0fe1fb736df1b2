"""Group-robot delivery (WeCom / DingTalk) to a local HTTP receiver, on every database: the message in the
team's language, DingTalk's signature checked as DingTalk checks it, failures retried and shown to admins."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.models.jobs import JobSchedule
from crm_core.models.notifications import Notification, TeamRobot
from crm_core.notifications.robots import deliver_due
from crm_core.services.notifications import save_preferences
from crm_core.services.tasks import TaskInput, create_task
from crm_core.services.team_robots import RobotForm, save_team_robot
from crm_core.services.webhooks import set_allow_private_targets
from tests.factories import World, build_world
from tests.http_receiver import Answer, Received, Receiver

NOW = dt.datetime(2026, 6, 15, 8, 0)


class RobotReceiver(Receiver):
    """A local group robot: answers each POST with ``errcode`` (those in :attr:`errcodes` in order, then 0)."""

    def __init__(self) -> None:
        self.errcodes: list[int] = []
        super().__init__(self._reply)

    def _reply(self, _request: Received) -> Answer:
        errcode = self.errcodes.pop(0) if self.errcodes else 0
        body = {"errcode": errcode, "errmsg": "ok" if errcode == 0 else "sign not match"}
        return 200, "application/json", json.dumps(body).encode()

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Each POST as (path with query, JSON body)."""
        return [(request.path, json.loads(request.body)) for request in self.requests]


@pytest.fixture
def world(db: Database) -> World:
    world = build_world(db)
    set_allow_private_targets(db, world.admin, True)  # the receiver is on loopback
    return world


@pytest.fixture
def robot() -> Iterator[RobotReceiver]:
    receiver = RobotReceiver()
    yield receiver
    receiver.close()


def robot_rows(db: Database) -> list[Notification]:
    with db.system_session("test: robot rows") as session:
        return list(session.scalars(select(Notification).where(Notification.robot_status.is_not(None))
                                    .order_by(Notification.id)))


def test_a_dingtalk_robot_gets_a_signed_message_in_the_teams_language(db: Database, world: World,
                                                                     robot: RobotReceiver) -> None:
    save_team_robot(db, world.admin, world.east_team_id, RobotForm(
        platform="dingtalk", url=robot.url("/robot/send?access_token=abc"), secret="SEC-test", language="zh-CN"))
    create_task(db, world.manager, TaskInput(title="回访 Acme", assignee_id=world.rep.user_id))
    report = deliver_due(db, world.admin.tenant_id, now=NOW + dt.timedelta(days=400))
    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [(path, body)] = robot.calls()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert query["access_token"] == ["abc"]
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(hmac.new(b"SEC-test", f"{timestamp}\nSEC-test".encode(), hashlib.sha256).digest())
    assert query["sign"] == [expected.decode()]
    content = "@Rita Rep：Mia Manager 给你分配了任务：回访 Acme（— 到期）"
    assert body == {"msgtype": "text", "text": {"content": content}}
    assert [row.robot_status for row in robot_rows(db)] == ["sent"]
    # a second run sends nothing again
    assert deliver_due(db, world.admin.tenant_id, now=NOW + dt.timedelta(days=401)).sent == 0
    with db.session(world.admin) as session:  # the robot's schedule came with it
        assert session.scalar(select(JobSchedule.kind).where(JobSchedule.kind == "notification_robots"))


def test_a_refused_message_is_retried_and_the_failure_shown(db: Database, world: World, robot: RobotReceiver) -> None:
    save_team_robot(db, world.admin, world.east_team_id, RobotForm(platform="wecom", url=robot.url("/cgi-bin/send"),
                                                                   language="en"))
    create_task(db, world.manager, TaskInput(title="Call", assignee_id=world.rep.user_id))
    robot.errcodes = [310000]
    later = dt.datetime(2030, 1, 1)
    assert deliver_due(db, world.admin.tenant_id, now=later).retrying == 1
    [row] = robot_rows(db)
    assert row.robot_status == "pending" and row.robot_attempts == 1 and "sign not match" in (row.robot_error or "")
    with db.session(world.admin) as session:
        stored = session.scalar(select(TeamRobot))
        assert stored is not None and stored.last_failed_at == later and "310000" in (stored.last_error or "")
    assert deliver_due(db, world.admin.tenant_id, now=later + dt.timedelta(seconds=30)).sent == 0  # not yet due
    assert deliver_due(db, world.admin.tenant_id, now=later + dt.timedelta(minutes=2)).sent == 1
    assert [request[1]["text"]["content"] for request in robot.calls()] == [
        "@Rita Rep: Mia Manager gave you a task: Call (due —)"] * 2


def test_no_robot_message_for_a_user_who_turned_it_off_or_a_team_without_robot(db: Database, world: World,
                                                                                robot: RobotReceiver) -> None:
    save_team_robot(db, world.admin, world.east_team_id, RobotForm(platform="wecom", url=robot.url("/send")))
    save_preferences(db, world.rep, {"task_assigned": (True, False)})
    create_task(db, world.manager, TaskInput(title="Bell only", assignee_id=world.rep.user_id))
    create_task(db, world.admin, TaskInput(title="West", assignee_id=world.rep_other_team.user_id))
    assert robot_rows(db) == []


def test_only_admins_set_robots_and_private_targets_need_the_tenant_setting(db: Database, world: World,
                                                                            robot: RobotReceiver) -> None:
    from crm_core.errors import AccessDenied

    with pytest.raises(AccessDenied):
        save_team_robot(db, world.manager, world.east_team_id, RobotForm(platform="wecom", url=robot.url("/s")))
    set_allow_private_targets(db, world.admin, False)
    with pytest.raises(ValidationFailed) as refused:
        save_team_robot(db, world.admin, world.east_team_id, RobotForm(platform="wecom", url=robot.url("/s")))
    assert refused.value.errors["url"][0] == "webhooks.error.url_private"
    with pytest.raises(ValidationFailed):
        save_team_robot(db, world.admin, world.east_team_id, RobotForm(platform="slack", url="https://x.example/"))
