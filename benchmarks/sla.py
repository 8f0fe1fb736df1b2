"""The SLA sweep over N open cases, beside hand-written SQL writing the same rows.

``python -m benchmarks sla [--cases N] [--database-url URL]``

Builds a fresh database (default: a temporary SQLite file; or an empty PostgreSQL/MariaDB URL)
with one tenant, a team of 10 reps with a manager, an SLA policy and N open cases whose clocks
(``case_sla``) are spread so that about a third have passed their warning, a third their due time
and a third are still running. Then prints:

* the hand-written SQL for the same answer, rolled back: per level, one INSERT … SELECT of the
  escalations of every metric, one of the digests and one of the other notifications, then one UPDATE
  of the marks and the levels reached;
* the sweep (:func:`crm_core.services.sla.run_sla_sweep`: escalation rows per level, the marks,
  the escalation levels and their notifications: one with the number for whoever is told of more than
  ``DIGEST_AFTER`` at once, else one per escalation; decision 0037), then a second sweep with nothing new;
* the ratio sweep / raw SQL.

A temporary SQLite file is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, insert, select, text

from crm_core.db import open_database, refresh_planner_statistics
from crm_core.models import Case, Customer, Role, User, postgresql_key, utcnow
from crm_core.models.service import SLA_METRICS, CaseSla
from crm_core.schema import upgrade_to_head
from crm_core.services import sla_settings, tenants
from crm_core.services.auth import load_actor
from crm_core.services.sla import DIGEST_AFTER, run_sla_sweep

CHUNK = 5_000


def _world(db, cases: int, now: dt.datetime) -> int:  # type: ignore[no-untyped-def]
    tenant = tenants.create_tenant(db, name="Bench", slug="bench-sla", admin_username="bench-sla-admin",
                                   admin_password="Bench-password-1")
    admin = load_actor(db, "bench-sla-admin")
    assert admin is not None
    manager = tenants.create_user(db, admin, tenants.UserInput("bench-sla-lead", "Lead", "manager",
                                                               password="Bench-password-1"))
    team = tenants.create_team(db, admin, name="Support", region=None, manager_id=manager)
    for number in range(10):
        tenants.create_user(db, admin, tenants.UserInput(f"bench-sla-rep{number}", f"Rep {number}", "rep",
                                                         team_id=team, password="Bench-password-1"))
    calendar_id = sla_settings.save_calendar(db, admin, name="Always", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    sla_settings.save_policy(db, admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=60, next_response_minutes=60,
        resolution_minutes=480))
    with db.system_transaction("benchmark: open cases") as session:
        reps = list(session.scalars(select(User.id).where(User.tenant_id == tenant.tenant_id,
                                                          User.role == Role.REP.value)))
        policy_id = session.execute(text("SELECT id FROM sla_policies WHERE tenant_id = :t"),
                                    {"t": tenant.tenant_id}).scalar_one()
        customer = Customer(tenant_id=tenant.tenant_id, name="Bench customer", owner_id=reps[0], team_id=team)
        session.add(customer)
        session.flush()
        customer_id = customer.id
    for start in range(0, cases, CHUNK):
        rows = range(start, min(start + CHUNK, cases))
        with db.system_transaction("benchmark: open cases") as session:
            connection = session.connection()
            first_id = connection.execute(select(text("COALESCE(MAX(id), 0)")).select_from(text("cases"))).scalar_one()
            connection.execute(insert(Case), [{
                "tenant_id": tenant.tenant_id, "customer_id": customer_id, "assignee_id": reps[number % len(reps)],
                "team_id": team, "subject": f"Case {number}", "description": "", "status": "open",
                "priority": "normal", "channel": "web", "opened_at": now - dt.timedelta(hours=3), "version": 1,
                "created_at": now, "updated_at": now} for number in rows])
            ids = list(connection.execute(text("SELECT id FROM cases WHERE id > :first ORDER BY id"),
                                          {"first": first_id}).scalars())
            states = []
            for offset, case_id in enumerate(ids):
                shift = dt.timedelta(minutes=[-90, -10, 90][offset % 3])  # breached / warned / running
                due = now + shift
                state = {"tenant_id": tenant.tenant_id, "case_id": case_id, "policy_id": policy_id,
                         "calendar_id": calendar_id, "paused_seconds": 0, "escalation_level": 0,
                         "next_due_at": due, "computed_at": now, "created_at": now, "updated_at": now}
                for metric in SLA_METRICS:
                    running = metric != "next_response"
                    state[f"{metric}_due_at"] = due if running else None
                    state[f"{metric}_warn_at"] = due - dt.timedelta(minutes=15) if running else None
                states.append(state)
            connection.execute(insert(CaseSla), states)
    return tenant.tenant_id


def _key(dialect: str, table: str, *columns: str) -> str:
    """A unique key's columns as ``dialect`` holds them (PostgreSQL: tenant_id in front, migration 0044)."""
    return ", ".join(postgresql_key(table, columns) if dialect == "postgresql" else columns)


def _raw_statements(dialect: str, policy_ids: list[int]) -> list[str]:
    """The sweep's answer in hand-written SQL: per level, one INSERT … SELECT of the escalations of every
    metric, one of the digests (one notice with the number for whoever is told of more than ``DIGEST_AFTER``)
    and one of the other notifications (the benchmark's recipients have no preferences and no robots),
    then one UPDATE of the marks and the level reached (``:late_<policy>``: the instant before which a
    breach is old enough for the managers under that policy)."""
    def new_only(table: str, key: str, select: str) -> str:
        if dialect == "mysql":  # MariaDB has no ON CONFLICT: NOT EXISTS on the key
            return f"{select} AND NOT EXISTS (SELECT 1 FROM {table} AS kept WHERE {key})"
        return select
    conflict = {"sla_escalations": "", "notifications": ""} if dialect == "mysql" else {
        "sla_escalations":
            f" ON CONFLICT ({_key(dialect, 'sla_escalations', 'case_id', 'metric', 'level')}) DO NOTHING",
        "notifications": f" ON CONFLICT ({_key(dialect, 'notifications', 'user_id', 'dedupe_key')}) DO NOTHING"}
    json = "json_build_object" if dialect == "postgresql" else "json_object"
    key = ("CONCAT('sla:', e.case_id, ':', e.metric, ':', e.level)" if dialect == "mysql"
           else "'sla:' || e.case_id || ':' || e.metric || ':' || e.level")

    def late(metric: str) -> str:
        breached = f"COALESCE({metric}_breached_at, CASE WHEN {metric}_due_at <= :now THEN :now END)"
        return " OR ".join(f"(policy_id = {policy_id} AND {breached} <= :late_{policy_id})" for policy_id in policy_ids)

    levels = (  # level, its condition per metric, the recipient, the notification's kind and who is told
        (1, lambda m: f"{m}_met_at IS NULL AND {m}_warn_at <= :now", "cases.assignee_id", "sla_warning",
         "users.id = e.recipient_user_id"),
        (2, lambda m: f"{m}_met_at IS NULL AND {m}_due_at <= :now", "teams.manager_id", "sla_breach",
         "users.id = e.recipient_user_id"),
        (3, lambda m: f"{m}_met_at IS NULL AND ({late(m)})", "NULL" if dialect == "mysql" else "CAST(NULL AS INTEGER)",
         "sla_escalated",
         "users.tenant_id = e.tenant_id AND users.role = 'manager'"),
    )
    statements = []
    reached = []
    for level, condition, recipient, kind, told in levels if policy_ids else levels[:2]:
        selects = [new_only(
            "sla_escalations", f"kept.case_id = case_sla.case_id AND kept.metric = '{metric}' AND kept.level = {level}",
            f"SELECT :tenant, :now, :now, case_sla.case_id, '{metric}', {level}, {recipient}, :now FROM case_sla "
            "JOIN cases ON cases.id = case_sla.case_id LEFT JOIN teams ON teams.id = cases.team_id "
            f"WHERE case_sla.tenant_id = :tenant AND {condition(metric)}") for metric in SLA_METRICS]
        statements.append("INSERT INTO sla_escalations (tenant_id, created_at, updated_at, case_id, metric, level, "
                          f"recipient_user_id, at) {' UNION ALL '.join(selects)}{conflict['sla_escalations']}")
        told_of = (f"FROM sla_escalations AS e JOIN cases ON cases.id = e.case_id JOIN users ON {told} "
                   f"AND users.is_active = TRUE WHERE e.tenant_id = :tenant AND e.level = {level} AND e.at = :now")
        many = f"SELECT users.id {told_of} GROUP BY users.id HAVING COUNT(*) > {DIGEST_AFTER}"
        digest_key = f"'sla:{level}:' || :stamp" if dialect != "mysql" else f"CONCAT('sla:{level}:', :stamp)"
        statements.append(  # who is told of more than DIGEST_AFTER at once: one notice with the number
            "INSERT INTO notifications (tenant_id, user_id, kind, entity, entity_id, params, dedupe_key, created_at, "
            "updated_at, robot_attempts) "
            f"SELECT :tenant, users.id, '{kind}', 'case_queue', NULL, {json}('count', COUNT(*)), {digest_key}, :now, "
            f":now, 0 {told_of} GROUP BY users.id HAVING COUNT(*) > {DIGEST_AFTER}")
        statements.append(
            "INSERT INTO notifications (tenant_id, user_id, kind, entity, entity_id, params, dedupe_key, created_at, "
            "updated_at, robot_attempts) "
            + new_only("notifications", f"kept.user_id = users.id AND kept.dedupe_key = {key}", (
                f"SELECT :tenant, users.id, '{kind}', 'case', e.case_id, "
                f"{json}('case', e.case_id, 'subject', cases.subject, 'metric', e.metric), {key}, :now, :now, 0 "
                f"{told_of} AND users.id NOT IN ({many if dialect != 'mysql' else f'SELECT id FROM ({many}) AS m'})"))
            + conflict["notifications"])
        reached.append(f"WHEN {' OR '.join(f'({condition(metric)})' for metric in SLA_METRICS)} THEN {level}")
    level_reached = f"CASE {' '.join(reversed(reached))} ELSE 0 END"
    marks, news = [], []
    for metric in SLA_METRICS:
        for mark, instant in (("warned_at", "warn_at"), ("breached_at", "due_at")):
            new = f"({metric}_met_at IS NULL AND {metric}_{instant} <= :now AND {metric}_{mark} IS NULL)"
            marks.append(f"{metric}_{mark} = CASE WHEN {new} THEN :now ELSE {metric}_{mark} END")
            news.append(new)
    statements.append(
        f"UPDATE case_sla SET {', '.join(marks)}, escalation_level = CASE WHEN {level_reached} > escalation_level "
        f"THEN {level_reached} ELSE escalation_level END WHERE tenant_id = :tenant AND ({' OR '.join(news)} "
        f"OR {level_reached} > escalation_level)")
    return statements


def _raw(db, tenant_id: int, now: dt.datetime) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """The sweep's escalations, notifications and marks by hand-written SQL, rolled back; (seconds, rows written)."""
    now = now.replace(microsecond=0)  # as the sweep does
    with db.engine.connect() as connection:
        policies = [tuple(row) for row in connection.execute(text(
            "SELECT id, manager_after_minutes FROM sla_policies WHERE tenant_id = :t"), {"t": tenant_id})]
        values: dict[str, Any] = {"now": now, "tenant": tenant_id, "stamp": now.strftime("%Y%m%dT%H%M%S")}
        values.update({f"late_{policy_id}": now - dt.timedelta(minutes=after) for policy_id, after in policies})
        types = {"tenant": Integer, "stamp": String}
        statements = [text(sql).bindparams(*(bindparam(name, type_=types.get(name, DateTime))
                                             for name in values if re.search(rf":{name}\b", sql)))
                      for sql in _raw_statements(db.dialect_name, [policy_id for policy_id, _ in policies])]
        connection.rollback()  # the policies' read
        transaction = connection.begin()
        clock = time.perf_counter()
        written = 0
        for statement in statements:
            result = connection.execution_options(preserve_rowcount=True).execute(statement, values)
            written += max(result.rowcount or 0, 0)
        seconds = time.perf_counter() - clock
        transaction.rollback()
    return seconds, written


def main(argv: list[str]) -> int:
    """Print the sweep's time beside the same rows written by hand-written SQL."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks sla")
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    folder = None if args.database_url else Path(tempfile.mkdtemp(prefix="bench-sla-"))
    try:
        return _run(args, args.database_url or f"sqlite:///{Path(str(folder)) / 'sla.db'}")
    finally:
        if folder is not None:  # the temporary SQLite file (100 MB at 50k cases)
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, url: str) -> int:
    db = open_database(url)
    upgrade_to_head(db.engine)
    now = utcnow()
    clock = time.perf_counter()
    tenant_id = _world(db, args.cases, now)
    refresh_planner_statistics(db.engine)  # what autovacuum / the import's ANALYZE would have done by now
    print(f"database: {url}; {args.cases:,} open cases built in {time.perf_counter() - clock:.1f}s")
    raw_seconds, marked = _raw(db, tenant_id, now)
    print(f"raw SQL (the same rows, hand-written): {raw_seconds:8.3f}s  {marked:,} rows written")
    clock = time.perf_counter()
    first = run_sla_sweep(db, tenant_id, now=now)
    first_seconds = time.perf_counter() - clock
    print(f"sweep (escalations, marks, notices): {first_seconds:8.3f}s  warnings {first.warnings:,}, "
          f"breaches {first.breaches:,}, manager escalations {first.manager_escalations:,}, "
          f"notifications {first.notified:,}")
    clock = time.perf_counter()
    second = run_sla_sweep(db, tenant_id, now=now)
    second_seconds = time.perf_counter() - clock
    print(f"second sweep (nothing new):          {second_seconds:8.3f}s  warnings {second.warnings}, "
          f"breaches {second.breaches}")
    print(f"ratio sweep / raw SQL: {first_seconds / raw_seconds:.1f}x; "
          f"target < 5 s at 50,000 open cases: {'met' if first_seconds < 5 else 'NOT met'}")
    return 0
