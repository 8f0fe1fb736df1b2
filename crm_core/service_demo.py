"""The service desk of the demo tenants: a Shanghai business calendar with China's holidays and 调休 days,
SLA policies per priority, team queues, and a few dozen recent cases per tenant with a realistic SLA
history (replies, waits on the customer, holds, priority changes, resolutions), swept once; about
half of the resolved ones are rated by the customer (CSAT), as the bulk cases of :mod:`crm_core.demo` are.

Small on purpose (``CASES_PER_TENANT``), so that ``make run``'s demo load stays fast: the generator's
bulk cases (years of them, mostly closed) keep no clocks; these recent ones show every state of one.
Deterministic for a seed; instants are relative to ``now``.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Case, Customer, Role, Team, Tenant, User, utcnow
from crm_core.models.automation import AssignmentMethod
from crm_core.models.service import (
    CaseEvent,
    CaseEventKind,
    CaseRating,
    ServiceQueue,
    SlaCalendar,
    SlaCalendarDay,
    SlaPolicy,
)
from crm_core.rules import china_holidays
from crm_core.rules.case_flow import CLOSED_STATUSES
from crm_core.services.sla import recompute_case_sla, sweep_sla
from crm_core.services.sla_settings import STANDARD_HOURS

CASES_PER_TENANT = 40
TARGETS = {"urgent": (30, 60, 240), "high": (60, 120, 480), "normal": (240, 480, 1440), "low": (480, 960, 2880)}
SUBJECTS = {
    "en": ["Cannot log in", "Invoice amount is wrong", "Delivery is late", "Scanner does not pair",
           "Refund request", "Password reset link expired", "Order shows twice", "Contract renewal question"],
    "zh": ["无法登录", "发票金额有误", "发货延迟", "扫码枪无法配对", "申请退款", "重置密码链接失效", "订单重复显示",
           "合同续签咨询"],
}
REPLIES = {"en": "Thanks for reporting this; we are looking into it.", "zh": "感谢反馈，我们正在处理。"}
RATINGS = {  # (score, comment) a customer leaves on a recent resolved case
    "en": [("good", "Fixed the same day, thanks."), ("good", None), ("good", None), ("bad", "Too slow to reply.")],
    "zh": [("good", "当天就解决了，谢谢。"), ("good", None), ("good", None), ("bad", "回复太慢了。")],
}


def add_service_desk(db: Database, *, zh: bool, seed: int = 42, now: dt.datetime | None = None) -> int:
    """Set up the service desk of every demo tenant without one; returns the number of cases added."""
    now = now or utcnow()
    added = 0
    with db.system_transaction("demo service desk") as session:
        tenant_ids = list(session.scalars(select(Tenant.id).where(Tenant.slug.like("demo%"))))
        for position, tenant_id in enumerate(tenant_ids):
            if session.scalar(select(SlaCalendar.id).where(SlaCalendar.tenant_id == tenant_id)) is not None:
                continue
            rng = random.Random(seed * 1000 + position)  # the same cases whatever the ids
            calendar = SlaCalendar(tenant_id=tenant_id, name="上海客服" if zh else "Shanghai support",
                                   time_zone="Asia/Shanghai", hours=STANDARD_HOURS)
            session.add(calendar)
            session.flush()
            special = [(china_holidays.HOLIDAYS, "holiday"), (china_holidays.WORKDAYS, "workday")]
            session.add_all(SlaCalendarDay(tenant_id=tenant_id, calendar_id=calendar.id, day=day, kind=kind,
                                           name=name) for days, kind in special for day, name in days.items())
            for priority, (first, following, resolution) in TARGETS.items():
                session.add(SlaPolicy(tenant_id=tenant_id, priority=priority, calendar_id=calendar.id,
                                      first_response_minutes=first, next_response_minutes=following,
                                      resolution_minutes=resolution, warn_percent=75, pause_on_pending=True,
                                      pause_on_hold=True, manager_after_minutes=60))
            teams = list(session.scalars(select(Team.id).where(Team.tenant_id == tenant_id).order_by(Team.id)))
            for team_id in teams:
                session.add(ServiceQueue(tenant_id=tenant_id, team_id=team_id, method=AssignmentMethod.ROUND_ROBIN,
                                         calendar_id=calendar.id))
            reps = session.execute(select(User.id, User.team_id).where(
                User.tenant_id == tenant_id, User.role == Role.REP.value, User.is_active.is_(True))
                .order_by(User.id).limit(20)).all()
            customers = list(session.scalars(select(Customer.id).where(
                Customer.tenant_id == tenant_id, Customer.archived_at.is_(None)).order_by(Customer.id).limit(200)))
            if not reps or not customers:
                continue
            session.flush()
            for number in range(CASES_PER_TENANT):
                added += _one_case(session, rng, tenant_id, reps, customers, zh, number, now)
            sweep_sla(session, tenant_id, now=now)
    return added


def _one_case(session, rng: random.Random, tenant_id: int, reps, customers, zh: bool,  # type: ignore[no-untyped-def]
              number: int, now: dt.datetime) -> int:
    """One case opened in the last days, with its history written at the instants it happened."""
    assignee_id, team_id = reps[number % len(reps)]
    opened = now - dt.timedelta(minutes=rng.randint(20, 6 * 24 * 60))
    priority = rng.choices(list(TARGETS), weights=[1, 3, 5, 2])[0]
    subject = rng.choice(SUBJECTS["zh" if zh else "en"])
    case = Case(tenant_id=tenant_id, customer_id=rng.choice(customers), assignee_id=assignee_id, team_id=team_id,
                subject=subject, description=subject, status="new", priority=priority,
                channel=rng.choice(["phone", "email", "web", "chat", "visit"]), opened_at=opened)
    session.add(case)
    session.flush()

    def event(at: dt.datetime, kind: str, old: str | None, new: str | None, body: str | None = None) -> None:
        session.add(CaseEvent(tenant_id=tenant_id, case_id=case.id, at=at, kind=kind, from_value=old, to_value=new,
                              body=body, actor_id=assignee_id if kind != CaseEventKind.OPENED else None))

    event(opened, CaseEventKind.OPENED, None, case.channel)
    event(opened, CaseEventKind.STATUS, None, "new")
    event(opened, CaseEventKind.ASSIGNEE, None, str(assignee_id))
    at, status = opened, "new"
    for step in rng.sample(["reply", "pending", "back", "hold", "priority", "resolve"], k=rng.randint(0, 5)):
        at = min(now, at + dt.timedelta(minutes=rng.randint(10, 12 * 60)))
        if step == "reply" and case.first_responded_at is None:
            case.first_responded_at = at
            event(at, CaseEventKind.REPLY, None, None, REPLIES["zh" if zh else "en"])
            if status == "new":
                event(at, CaseEventKind.STATUS, status, "open")
                status = "open"
        elif step in ("pending", "hold") and status in ("new", "open"):
            new = "pending" if step == "pending" else "on_hold"
            event(at, CaseEventKind.STATUS, status, new)
            status = new
        elif step == "back" and status in ("pending", "on_hold"):
            event(at, CaseEventKind.STATUS, status, "open")
            status = "open"
        elif step == "priority":
            raised = "urgent" if case.priority != "urgent" else "high"
            event(at, CaseEventKind.PRIORITY, case.priority, raised)
            case.priority = raised
        elif step == "resolve" and status not in CLOSED_STATUSES:
            event(at, CaseEventKind.STATUS, status, "resolved")
            status, case.resolved_at = "resolved", at
    case.status = status
    session.flush()
    recompute_case_sla(session, case, now=now)
    if status == "resolved" and case.resolved_at is not None and rng.random() < 0.5:
        score, comment = rng.choice(RATINGS["zh" if zh else "en"])
        rated_at = min(now, case.resolved_at + dt.timedelta(minutes=rng.randint(5, 24 * 60)))
        session.add(CaseRating(tenant_id=tenant_id, case_id=case.id, score=score, comment=comment,
                               rated_at=rated_at))
    return 1
