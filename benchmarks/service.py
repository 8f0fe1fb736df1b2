"""The service queue page's query and the service dashboard's queries, beside raw SQL.

``python -m benchmarks service [--cases N] [--customers N] [--database-url URL] [--repeat R]``

Builds a fresh database (default: a temporary SQLite file; or an empty PostgreSQL/MariaDB URL)
with one tenant, two teams of 10 reps each with a manager, an SLA policy, ``--customers``
customers and ``--cases`` cases over two years (about 5% still open, the rest resolved or
closed; each with its ``case_sla`` row; a rating for every second resolved case). Then prints
the median of ``--repeat`` runs of:

* **queue**: :func:`crm_core.queries.cases.list_cases` as the service queue page calls it (a
  manager, their team's queue, open cases, sorted by SLA due, 50 rows and the capped count),
  beside hand-written SQL for the same first page (the soonest running clocks through the
  ``case_sla`` index, and the capped count; without the access layer's criteria) run on the
  driver's cursor;
* **dashboard**: :func:`crm_core.queries.service_reports.service_dashboard` for the manager
  (last 28 days) after the ``service_daily`` job counted the days before today (its time is
  printed), beside the very statements it sent, replayed on the driver's cursor (so the ratio is
  what the ORM, the access layer and the Python assembly cost on top of the SQL);
* **dashboard, all live**: the same figures counted from the cases alone (``rollups=False``, what
  the page does before the job's first run), beside its statements replayed.

A temporary SQLite file is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, text

from crm_core.db import Database, open_database
from crm_core.models import Case, Customer, Role, User, utcnow
from crm_core.models.service import CaseRating, CaseSla
from crm_core.queries.cases import CaseFilters, list_cases
from crm_core.queries.service_reports import service_dashboard
from crm_core.schema import upgrade_to_head
from crm_core.services import sla_settings, tenants
from crm_core.services.auth import load_actor
from crm_core.services.service_daily import run_service_daily

CHUNK = 5_000
PASSWORD = "Bench-password-1"
PRIORITIES = ("urgent", "high", "normal", "low")


def _world(db: Database, customers: int, cases: int, now: dt.datetime) -> tuple[int, int]:
    """The tenant and the east team's id; returns (tenant id, team id)."""
    tenant = tenants.create_tenant(db, name="Bench", slug="bench-service", admin_username="bench-svc-admin",
                                   admin_password=PASSWORD)
    admin = load_actor(db, "bench-svc-admin")
    assert admin is not None
    teams = []
    for name in ("East", "West"):
        manager = tenants.create_user(db, admin, tenants.UserInput(f"bench-svc-lead-{name.lower()}", f"Lead {name}",
                                                                   "manager", password=PASSWORD))
        team = tenants.create_team(db, admin, name=name, region=None, manager_id=manager)
        teams.append(team)
        for number in range(10):
            username = f"bench-svc-{name.lower()}{number}"
            tenants.create_user(db, admin, tenants.UserInput(username, f"{name} rep {number}", "rep", team_id=team,
                                                             password=PASSWORD))
    calendar_id = sla_settings.save_calendar(db, admin, name="Always", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    for priority in PRIORITIES:
        sla_settings.save_policy(db, admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=240, next_response_minutes=240,
            resolution_minutes=2880))
    with db.system_session("benchmark") as session:
        reps: list[Any] = list(session.execute(select(User.id, User.team_id).where(User.tenant_id == tenant.tenant_id,
                                                                         User.role == Role.REP.value)))
        policy_id = session.execute(text("SELECT id FROM sla_policies WHERE tenant_id = :t AND priority = 'normal'"),
                                    {"t": tenant.tenant_id}).scalar_one()
    rng = random.Random(13)
    for start in range(0, customers, CHUNK):
        with db.system_transaction("benchmark: customers") as session:
            session.connection().execute(insert(Customer), [{
                "tenant_id": tenant.tenant_id, "name": f"Customer {number}", "owner_id": reps[number % 20][0],
                "team_id": reps[number % 20][1], "version": 1, "created_at": now, "updated_at": now}
                for number in range(start, min(start + CHUNK, customers))])
    with db.system_session("benchmark") as session:
        first_customer = session.execute(text("SELECT MIN(id) FROM customers WHERE tenant_id = :t"),
                                         {"t": tenant.tenant_id}).scalar_one()
    for start in range(0, cases, CHUNK):
        with db.system_transaction("benchmark: cases") as session:
            connection = session.connection()
            first_id = connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM cases")).scalar_one()
            plans: list[tuple[Any, ...]] = []
            for number in range(start, min(start + CHUNK, cases)):
                assignee, team = reps[number % 20][0], reps[number % 20][1]
                opened = now - dt.timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
                still_open = rng.random() < 0.05
                responded = opened + dt.timedelta(minutes=rng.randrange(10, 600))
                resolved = None if still_open else responded + dt.timedelta(minutes=rng.randrange(30, 5000))
                if resolved is not None and resolved > now:
                    resolved = None
                status = "open" if resolved is None else ("resolved" if rng.random() < 0.3 else "closed")
                plans.append((number, assignee, team, opened, responded if responded < now else None, resolved,
                              status))
            connection.execute(insert(Case), [{
                "tenant_id": tenant.tenant_id, "customer_id": first_customer + number % customers,
                "assignee_id": assignee, "team_id": team, "subject": f"Case {number}", "description": "",
                "status": status, "priority": PRIORITIES[number % 4], "channel": "web", "opened_at": opened,
                "first_responded_at": responded, "resolved_at": resolved, "version": 1, "created_at": opened,
                "updated_at": opened} for number, assignee, team, opened, responded, resolved, status in plans])
            ids = list(connection.execute(text("SELECT id FROM cases WHERE id > :first ORDER BY id"),
                                          {"first": first_id}).scalars())
            states: list[dict[str, Any]] = []
            ratings: list[dict[str, Any]] = []
            for case_id, (_, _, _, opened, met, done, _) in zip(ids, plans, strict=True):
                fr_due, res_due = opened + dt.timedelta(hours=4), opened + dt.timedelta(hours=48)
                states.append({
                    "tenant_id": tenant.tenant_id, "case_id": case_id, "policy_id": policy_id,
                    "calendar_id": calendar_id, "paused_seconds": 0, "escalation_level": 0, "computed_at": now,
                    "created_at": now, "updated_at": now, "first_response_met_at": met,
                    "first_response_due_at": fr_due if met is None or met > fr_due else None,
                    "resolution_met_at": done,
                    "resolution_due_at": res_due if done is None or done > res_due else None,
                    "next_due_at": None if done is not None else (fr_due if met is None else res_due)})
                if done is not None and case_id % 2 == 0:
                    ratings.append({"tenant_id": tenant.tenant_id, "case_id": case_id, "created_at": now,
                                    "updated_at": now, "score": "good" if rng.random() < 0.8 else "bad",
                                    "rated_at": min(now, done + dt.timedelta(hours=5))})
            connection.execute(insert(CaseSla), states)
            if ratings:
                connection.execute(insert(CaseRating), ratings)
    return tenant.tenant_id, teams[0]


def _existing(db: Database) -> tuple[int, int]:
    """The tenant and the east team of a database built before; returns (tenant id, team id)."""
    with db.system_session("benchmark") as session:
        tenant_id, team_id = session.execute(text(
            "SELECT tenants.id, teams.id FROM tenants JOIN teams ON teams.tenant_id = tenants.id "
            "WHERE tenants.slug = 'bench-service' AND teams.name = 'East'")).one()
    return int(tenant_id), int(team_id)


def medians(work: Callable[[], Any], raw: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """The medians of ``repeat`` runs of each, taken in turn: on a shared machine both meet the same load."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for run, kept in ((work, times[0]), (raw, times[1])):
            clock = time.perf_counter()
            run()
            kept.append(time.perf_counter() - clock)
    return statistics.median(times[0]), statistics.median(times[1])


QUEUE_SQL = """
SELECT cases.*, customers.name, users.full_name, case_sla.next_due_at, case_sla.escalation_level
FROM case_sla JOIN cases ON cases.id = case_sla.case_id LEFT JOIN customers ON customers.id = cases.customer_id
LEFT JOIN users ON users.id = cases.assignee_id
WHERE case_sla.tenant_id = :tenant AND case_sla.next_due_at IS NOT NULL
AND cases.tenant_id = :tenant AND cases.team_id = :team AND cases.status <> 'closed'
ORDER BY case_sla.next_due_at, case_sla.case_id LIMIT 51
"""  # the soonest running clocks in the order of the case_sla index (the queue's first page when 51 are running)
COUNT_SQL = """
SELECT COUNT(*) FROM (SELECT cases.id FROM cases WHERE cases.tenant_id = :tenant AND cases.team_id = :team
AND cases.status <> 'closed' LIMIT 10001) AS capped
"""


def _raw_queue(db: Database, tenant_id: int, team_id: int) -> Callable[[], Any]:
    params = {"tenant": tenant_id, "team": team_id}

    def run() -> None:
        with db.engine.connect() as connection:
            connection.execute(text(QUEUE_SQL), params).all()
            connection.execute(text(COUNT_SQL), params).scalar()

    return run


def recorded(db: Database, work: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The statements (and parameters) ``work`` sends to the database."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]


def replay(db: Database, statements: list[tuple[str, Any]]) -> Callable[[], Any]:
    def run() -> None:
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for sql, params in statements:
                cursor.execute(sql, params)
                cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    return run


def main(argv: list[str]) -> int:
    """Print the queue's and the dashboard's times beside raw SQL."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks service")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure again on a database this benchmark built before (--database-url)")
    parser.add_argument("--only", choices=("queue", "dashboard", "all live"),
                        help="measure this one (the others take minutes at 1M customers)")
    args = parser.parse_args(argv)
    folder = None if args.database_url else Path(tempfile.mkdtemp(prefix="bench-service-"))
    url = args.database_url or f"sqlite:///{Path(str(folder)) / 'service.db'}"
    try:
        return _run(args, url)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, url: str) -> int:
    db = open_database(url)
    upgrade_to_head(db.engine)
    now = utcnow()
    clock = time.perf_counter()
    tenant_id, team_id = _existing(db) if args.reuse else _world(db, args.customers, args.cases, now)
    built = time.perf_counter() - clock
    counts = run_service_daily(db, tenant_id, now=now)
    with db.engine.begin() as connection:
        if db.dialect_name != "mysql":
            connection.exec_driver_sql("ANALYZE")
    if args.reuse:  # the sizes it was built with, not this run's arguments
        with db.engine.connect() as connection:
            customers = int(connection.exec_driver_sql("SELECT count(*) FROM customers").scalar_one())
            cases = int(connection.exec_driver_sql("SELECT count(*) FROM cases").scalar_one())
        print(f"database: {url}; {customers:,} customers, {cases:,} cases (reused)")
    else:
        print(f"database: {url}; {args.customers:,} customers, {args.cases:,} cases built in {built:.1f}s")
    print(f"service_daily job: {counts.rows:,} rows for the days {counts.first_day} to {counts.end_day} (excl.) "
          f"counted in {counts.seconds:.2f}s")
    manager = load_actor(db, "bench-svc-lead-east")
    assert manager is not None

    def queue() -> None:
        with db.session(manager) as session:
            list_cases(session, filters=CaseFilters(team_id=team_id), sort="sla_due", descending=False,
                       per_page=50, count_cap=10_000)

    since = dt.datetime.combine(now.date() - dt.timedelta(days=27), dt.time())

    def dashboard(rollups: bool = True) -> None:
        with db.session(manager) as session:
            service_dashboard(session, since=since, until=now, now=now, rollups=rollups)

    def live() -> None:
        dashboard(rollups=False)

    for name, work, make_raw, target in (
        ("queue", queue, lambda: _raw_queue(db, tenant_id, team_id), 0.050),
        ("dashboard", dashboard, lambda: replay(db, recorded(db, dashboard)), 0.300),
        ("all live", live, lambda: replay(db, recorded(db, live)), None),
    ):
        if args.only not in (None, name):
            continue
        raw = make_raw()
        work()  # warm: caches of the access layer, the planner, the page cache
        seconds, raw_seconds = medians(work, raw, args.repeat)
        ratio = seconds / raw_seconds if raw_seconds else float("inf")
        verdict = "" if target is None else (f"   target < {target * 1000:.0f} ms and <= 2x: "
                                             f"{'met' if seconds < target and ratio <= 2 else 'NOT met'}")
        print(f"{name:9} {seconds * 1000:8.1f} ms   raw SQL {raw_seconds * 1000:8.1f} ms   "
              f"ratio {ratio:4.2f}x{verdict}")
    return 0
