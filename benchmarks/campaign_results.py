"""The campaign results page's queries at scale, beside the very SQL they sent replayed on the raw cursor.

``python -m benchmarks campaign_results [--customers N] [--touches N] [--campaigns K] [--database-url URL]
[--reuse] [--repeat R]``

Builds a fresh database (default: a temporary SQLite file) with the demo's tenant of ``--customers``
customers (default 1,000,000; its deals, orders … and the small marketing story), then ``--campaigns``
more campaigns (default 10) of four steps each whose members received ``--touches`` touches (default
2,000,000) over the last 90 days in the proportions a campaign produces (entered, sent, opened,
clicked, replied, tasks …). Then times the ``campaign_results_refresh`` job (decision 0051:
it counts the rollup the page reads) and prints the median of ``--repeat`` runs of
:func:`crm_core.queries.campaign_results.results_page` (what the page calls: every figure, the
attribution and the first 200 influenced deals, from the rollup) for the analyst (the whole tenant) and
for a manager (their teams' customers), for all campaigns and for one, beside the statements it sent
replayed on the driver's cursor (the ratio is what the ORM, the access layer and the Python assembly cost
on top of the SQL). Target: the page < 300 ms. ``--live`` also times one campaign computed live from the
touches (:mod:`crm_core.queries.campaign_results_live`, the page before the rollup) for comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, select, text

from crm_core.db import Database, open_database
from crm_core.demo import _BulkWriter, _Clock, _load_connection, generate_demo
from crm_core.models import Tenant, User
from crm_core.queries import campaign_results_live
from crm_core.queries.campaign_results import ResultsFilters, results_page
from crm_core.schema import upgrade_to_head
from crm_core.services.auth import load_actor
from crm_core.services.campaign_results_refresh import run_campaign_results_refresh

DAY = 86_400
# no "delivered": the results derive it from the sends and bounces (queries.campaign_results.delivered_send)
KINDS = ("entered", "sent", "opened", "clicked", "replied", "task", "skipped", "bounced",
         "unsubscribed", "goal", "exited", "completed")
SHARES = (0.17, 0.16, 0.14, 0.05, 0.01, 0.12, 0.015, 0.005, 0.005, 0.02, 0.01, 0.12)


def _touches(db: Database, campaigns: int, touches: int, seed: int) -> None:
    """``campaigns`` campaigns of four steps and ``touches`` touches on their members, in bulk."""
    rng = np.random.default_rng(seed)
    with _load_connection(db) as connection:
        writer = _BulkWriter(connection, None)
        clock = _Clock(dt.date.today(), sqlite=connection.dialect.name == "sqlite")
        tenant_id = int(connection.execute(text("SELECT id FROM tenants WHERE slug = 'demo'")).scalar_one())
        customers = np.array(connection.execute(text(
            "SELECT id FROM customers WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}).scalars().all())
        first_campaign, first_step = writer.next_id("campaigns"), writer.next_id("campaign_steps")
        campaign_ids = np.arange(first_campaign, first_campaign + campaigns, dtype=np.int64)
        stamp = clock.timestamps(np.full(campaigns, -100 * DAY))
        writer.insert("campaigns", campaigns, {
            "id": campaign_ids, "tenant_id": tenant_id, "name": [f"Bench campaign {i + 1}" for i in range(campaigns)],
            "channel": "email", "status": "active", "budget": "0.00", "entry_mode": "dynamic",
            "allow_reentry": False, "attribution_days": 90, "created_at": stamp, "updated_at": stamp, "version": 1})
        steps = campaigns * 4
        step_ids = np.arange(first_step, first_step + steps, dtype=np.int64)
        kinds = ["email", "wait", "task", "goal"] * campaigns
        configs = {"email": '{"template_id": null}', "wait": '{"days": 3, "business_days": false}',
                   "task": '{"activity_kind": "call", "title": "Call", "due_days": 2}', "goal": '{"kind": "deal_won"}'}
        writer.insert("campaign_steps", steps, {
            "id": step_ids, "tenant_id": tenant_id, "campaign_id": np.repeat(campaign_ids, 4),
            "position": np.tile(np.arange(1, 5), campaigns), "kind": kinds, "config": [configs[k] for k in kinds],
            "created_at": clock.timestamps(np.full(steps, -100 * DAY)),
            "updated_at": clock.timestamps(np.full(steps, -100 * DAY)), "version": 1})
        per_campaign = max(1, min(customers.shape[0], touches // campaigns // 5))
        member_campaign = np.repeat(np.arange(campaigns), per_campaign)
        member_customer = np.concatenate([rng.choice(customers, per_campaign, replace=False)
                                          for _ in range(campaigns)])
        members = member_campaign.shape[0]
        first_member = writer.next_id("campaign_members")
        member_ids = np.arange(first_member, first_member + members, dtype=np.int64)
        entered = -rng.integers(1, 90 * DAY, members)
        writer.insert("campaign_members", members, {
            "id": member_ids, "tenant_id": tenant_id, "campaign_id": campaign_ids[member_campaign],
            "customer_id": member_customer, "source": "manual", "enrolled_at": clock.timestamps(entered),
            "state": "active", "cycle": 1, "created_at": clock.timestamps(entered),
            "updated_at": clock.timestamps(entered)})
        member = rng.integers(0, members, touches)
        kind = rng.choice(len(KINDS), touches, p=np.array(SHARES) / sum(SHARES))
        step_of_kind = np.array([0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 3])
        occurred = np.minimum(entered[member] + rng.integers(0, 30 * DAY, touches), -60)
        first_event = writer.next_id("marketing_events")
        kind_names = np.array(KINDS, dtype=object)
        writer.insert("marketing_events", touches, {
            "id": np.arange(first_event, first_event + touches, dtype=np.int64), "tenant_id": tenant_id,
            "campaign_id": campaign_ids[member_campaign[member]],
            "step_id": step_ids[member_campaign[member] * 4 + step_of_kind[kind]],
            "member_id": member_ids[member], "customer_id": member_customer[member], "cycle": 1,
            "kind": kind_names[kind], "occurred_at": clock.timestamps(occurred),
            "detail": np.where(kind_names[kind] == "skipped", "no lawful basis recorded", "").astype(object),
            "created_at": clock.timestamps(occurred), "updated_at": clock.timestamps(occurred)})


def _median_ms(work: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _measure(db: Database, label: str, work: Callable[[], Any], runs: int) -> float:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        work()  # warm, and the statements to replay
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    def raw() -> None:
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    function_ms, raw_ms = _median_ms(work, runs), _median_ms(raw, runs)
    print(f"{label:<44} {function_ms:>9.1f} ms   raw SQL {raw_ms:>9.1f} ms   ratio {function_ms / raw_ms:5.2f}x")
    return function_ms


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks campaign_results")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--touches", type=int, default=2_000_000)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--reuse", action="store_true", help="measure again on a database this benchmark built")
    parser.add_argument("--live", action="store_true", help="also time one campaign computed live (slow)")
    args = parser.parse_args(argv)
    folder = None if args.database_url else Path(tempfile.mkdtemp(prefix="bench-campaign-results-"))
    url = args.database_url or f"sqlite:///{Path(str(folder)) / 'campaigns.db'}"
    try:
        return _run(args, url)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, url: str) -> int:
    db = open_database(url)
    if not args.reuse:
        upgrade_to_head(db.engine)
        started = time.perf_counter()
        generate_demo(db, customers=args.customers, seed=args.seed)
        demo_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _touches(db, args.campaigns, args.touches, args.seed)
        print(f"built: demo of {args.customers:,} customers in {demo_seconds:.0f} s; {args.touches:,} touches "
              f"of {args.campaigns} campaigns in {time.perf_counter() - started:.0f} s")
        with db.engine.begin() as connection:
            if db.dialect_name != "mysql":
                connection.exec_driver_sql("ANALYZE")
    with db.system_session("benchmark") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
        analyst = session.scalar(select(User.username).where(User.tenant_id == tenant_id, User.role == "analyst"))
        manager = session.scalar(select(User.username).where(User.tenant_id == tenant_id, User.role == "manager")
                                 .order_by(User.id))
        one = session.scalar(text("SELECT campaign_id FROM marketing_events GROUP BY campaign_id "
                                  "ORDER BY count(*) DESC LIMIT 1"))
        touches = session.scalar(text("SELECT count(*) FROM marketing_events"))
        customers = session.scalar(text("SELECT count(*) FROM customers"))
    print(f"database: {url}; {customers:,} customers, {touches:,} touches")
    refresh = run_campaign_results_refresh(db, tenant_id or 0)  # the job's work, once
    print(f"campaign_results_refresh job: {refresh.seconds:.1f} s ({refresh.daily_rows:,} daily rows, "
          f"{refresh.influence_rows:,} influence rows)")
    for username in (analyst, manager):
        actor = load_actor(db, username or "")
        assert actor is not None
        month = dt.datetime.combine(dt.date.today() - dt.timedelta(days=30), dt.time())
        for label, filters in (("one campaign", ResultsFilters(campaign_id=one)), ("all campaigns", ResultsFilters()),
                               ("one campaign, last 30 days", ResultsFilters(campaign_id=one, since=month)),
                               ("all campaigns, last 30 days", ResultsFilters(since=month))):
            def work(filters: ResultsFilters = filters, actor: Any = actor) -> None:
                with db.session(actor) as session:
                    results_page(session, filters, deals_shown=200)

            page_ms = _measure(db, f"{actor.role.value}, {label}", work, args.repeat)
            print(f"{'':<44} target 300 ms: {'met' if page_ms < 300 else 'MISSED'}")
    if args.live:
        actor = load_actor(db, analyst or "")
        assert actor is not None

        def live() -> None:
            with db.session(actor) as session:
                campaign_results_live.campaign_results(session, ResultsFilters(campaign_id=one))

        _measure(db, "analyst, one campaign, live (no rollup)", live, 1)
    return 0
