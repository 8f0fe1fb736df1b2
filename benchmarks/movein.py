"""``python -m benchmarks movein``: a company moves in from its old CRM — five files, as jobs, through a worker.

Issue 18's target, measured in one run on a fresh SQLite database: an old CRM's export of
10,000 accounts, 20,000 contacts, 30,000 deals opened and closed over the past years, 30,000
orders and 100,000 activities (plus its 40 products) is written as the old system writes it —
its own record ids ("Account ID"), its owners by email, its dates — and imported in order, each
file a job (``submit_job(…, "import", …)``, exactly what the wizard submits) run by a real
worker (``python -m crm_core worker``), each waiting for the one before. The clock runs from the
first submit to the last job's end. Afterwards:

- every data-quality suite of the database runs (``crm_core.quality.runs``): all must pass;
- the reports read back the old CRM's history: per year of opening, the funnel's deals, wins,
  losses and won amount equal the source's own counts; the revenue of each of the last 12
  months equals the source's confirmed and fulfilled orders.

Beside it, the same rows written with ``executemany`` on the raw sqlite3 connection into a
copy of the same tables (raw SQL, same run): what the checks, references, history, stage
history, lifecycle, audit and follow-up rules cost on top of the bare writes.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from benchmarks.imports import verdict

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 120.0
ORDER = ("products", "customers", "contacts", "opportunities", "orders", "activities")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "海燕"]
INDUSTRIES = ["制造", "软件", "零售", "物流", "Energy", "Finance", "Healthcare", "教育"]
REGIONS = ["华东", "华南", "华北", "西南", "East", "West", "EU"]
LOST_REASONS = ["Price", "Competitor", "No budget", "价格太高", "选择了竞争对手", "项目取消"]
CENT = Decimal("0.01")


@dataclass
class Source:
    """The old CRM's export: its rows per file and its own counts, the figures Kestrel must show afterwards."""

    rows: dict[str, list[list[Any]]] = field(default_factory=dict)
    headers: dict[str, list[str]] = field(default_factory=dict)
    # year opened -> [deals, won, lost, won amount]
    deals_by_year: dict[int, list[Any]] = field(default_factory=dict)
    # YYYY-MM -> confirmed and fulfilled revenue
    revenue_by_month: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, max(0, (last - first).days)))


def old_crm_export(*, customers: int, contacts: int, deals: int, orders: int, activities: int,
                   owners: list[str], stages: dict[str, list[str]], today: dt.date, seed: int) -> Source:
    """The files an old CRM exports, deterministic for ``seed``; dates up to yesterday."""
    rng = random.Random(seed)
    source = Source()
    yesterday = today - dt.timedelta(days=1)
    start = dt.date(2019, 1, 1)
    source.headers["products"] = ["Product Code", "Product Name", "List Price"]
    products = [(f"P-{index:03d}", f"产品 {index:03d}", Decimal(rng.randint(100, 90_000)) / 100) for index in range(40)]
    source.rows["products"] = [[sku, name, str(price)] for sku, name, price in products]

    source.headers["customers"] = ["Account ID", "Account Name", "Owner", "Email", "Industry", "Region",
                                   "Created Date"]
    source.rows["customers"] = [
        [f"ACC-{index:05d}", f"{rng.choice(SURNAMES)}氏{index:05d}科技有限公司" if index % 2 else
         f"Northwind {index:05d} Ltd", rng.choice(owners), f"account{index}@old-crm.example.com",
         rng.choice(INDUSTRIES), rng.choice(REGIONS), _day(rng, dt.date(2016, 1, 1), start).isoformat()]
        for index in range(customers)
    ]
    source.headers["contacts"] = ["Contact ID", "Account ID", "Contact Name", "Title", "Email", "Phone"]
    source.rows["contacts"] = [
        [f"CON-{index:06d}", f"ACC-{rng.randrange(customers):05d}", rng.choice(SURNAMES) + rng.choice(GIVEN),
         rng.choice(["经理", "CTO", "采购", "Buyer"]), f"contact{index}@old-crm.example.com",
         f"1{rng.randint(3, 9)}{rng.randint(0, 10**9 - 1):09d}"]
        for index in range(contacts)
    ]

    source.headers["opportunities"] = ["Opportunity ID", "Opportunity Name", "Account ID", "Owner", "Stage", "Amount",
                                       "Product", "Created Date", "Close Date", "Lost Reason"]
    rows = []
    for index in range(deals):
        opened = _day(rng, start, yesterday - dt.timedelta(days=30))
        closed = opened + dt.timedelta(days=rng.randint(7, 180))
        roll = rng.random()
        kind = "open" if roll < 0.25 or closed > yesterday else ("won" if roll < 0.7 else "lost")
        amount = rng.randint(1_000, 200_000)
        tally = source.deals_by_year.setdefault(opened.year, [0, 0, 0, Decimal(0)])
        tally[0] += 1
        if kind == "won":
            tally[1] += 1
            tally[3] += amount
        elif kind == "lost":
            tally[2] += 1
        rows.append([f"OPP-{index:06d}", f"Old deal {index:06d}", f"ACC-{rng.randrange(customers):05d}",
                     rng.choice(owners), rng.choice(stages[kind]), amount, rng.choice(products)[0], opened.isoformat(),
                     closed.isoformat() if kind != "open" else "", rng.choice(LOST_REASONS) if kind == "lost" else ""])
    source.rows["opportunities"] = rows

    # half the orders came of a deal, and name it; a third of the activities name the contact they were with
    deals_of = source.rows["opportunities"]
    source.headers["orders"] = ["Order Number", "Account ID", "Opportunity ID", "Owner", "Order Date", "Status",
                                "Product", "Quantity", "Unit Price"]
    rows = []
    for index in range(orders):
        ordered = _day(rng, start, yesterday)
        status = rng.choice(["confirmed", "fulfilled", "fulfilled", "cancelled"])
        quantity = rng.randint(1, 10)
        price = Decimal(rng.randint(100, 500_000)) / 100
        if status != "cancelled":
            source.revenue_by_month[ordered.strftime("%Y-%m")] += (quantity * price).quantize(CENT, ROUND_HALF_UP)
        deal = rng.choice(deals_of) if rng.random() < 0.5 else None
        account = deal[2] if deal else f"ACC-{rng.randrange(customers):05d}"
        rows.append([f"SO-OLD-{index:06d}", account, deal[0] if deal else "", rng.choice(owners),
                     ordered.isoformat(), status, rng.choice(products)[0], quantity, str(price)])
    source.rows["orders"] = rows

    people = source.rows["contacts"]
    source.headers["activities"] = ["Account ID", "Contact ID", "Type", "Date", "Summary", "Owner"]
    rows = []
    for index in range(activities):
        person = rng.choice(people) if rng.random() < 0.33 else None
        rows.append([person[1] if person else f"ACC-{rng.randrange(customers):05d}", person[0] if person else "",
                     rng.choice(["call", "email", "meeting", "note"]),
                     f"{_day(rng, start, yesterday).isoformat()} {rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}",
                     rng.choice(["电话沟通报价", "Sent the proposal", "拜访客户，确认需求", "Follow-up call"])
                     + f" #{index}",
                     rng.choice(owners)])
    source.rows["activities"] = rows
    return source


def write_files(source: Source, workdir: Path) -> dict[str, Path]:
    paths = {}
    for entity in ORDER:
        path = workdir / f"old-crm-{entity}.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(source.headers[entity])
            writer.writerows(source.rows[entity])
        paths[entity] = path
    return paths


def bare_writes(database: Path, source: Source) -> float:
    """Seconds to write the same rows with executemany into a copy of the same tables (raw SQL)."""
    copy = database.with_name("bare.db")
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    tenant_id, owner_id = connection.execute("SELECT tenant_id, id FROM users ORDER BY id DESC LIMIT 1").fetchone()
    stage_id, pipeline_id = connection.execute(
        "SELECT id, pipeline_id FROM pipeline_stages WHERE tenant_id = ? ORDER BY position LIMIT 1", (tenant_id,)
    ).fetchone()
    now = "2026-12-01 00:00:00"
    started = time.perf_counter()
    connection.executemany(
        "INSERT INTO customers (tenant_id, name, kind, lifecycle_stage, tags, email, email_normalized, external_id, "
        "owner_id, custom_fields, version, created_at, updated_at) VALUES (?, ?, 'company', 'prospect', '', ?, ?, ?, "
        "?, '{}', 1, ?, ?)",
        [(tenant_id, row[1], row[3], row[3], "bare-" + row[0], owner_id, row[6], now)
         for row in source.rows["customers"]],
    )
    first, = connection.execute("SELECT min(id) FROM customers WHERE external_id LIKE 'bare-%'").fetchone()
    count = len(source.rows["customers"])

    def customer(external: str) -> int:
        return int(first + int(external[4:]) % count)

    connection.executemany(
        "INSERT INTO contacts (tenant_id, customer_id, name, title, email, phone, is_primary, version, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, ?)",
        [(tenant_id, customer(row[1]), row[2], row[3], "bare-" + row[4], row[5], now, now)
         for row in source.rows["contacts"]],
    )
    connection.executemany(
        "INSERT INTO opportunities (tenant_id, customer_id, owner_id, pipeline_id, stage_id, name, amount, currency, "
        "version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'CNY', 1, ?, ?)",
        [(tenant_id, customer(row[2]), owner_id, pipeline_id, stage_id, row[1], row[5], row[7], now)
         for row in source.rows["opportunities"]],
    )
    connection.executemany(
        "INSERT INTO orders (tenant_id, customer_id, owner_id, order_number, status, currency, total_amount, "
        "ordered_at, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'CNY', ?, ?, 1, ?, ?)",
        [(tenant_id, customer(row[1]), owner_id, "BARE-" + row[0], row[5], str(row[7] * Decimal(row[8])), row[4],
          now, now) for row in source.rows["orders"]],
    )
    connection.executemany(
        "INSERT INTO activities (tenant_id, customer_id, author_id, type, summary, occurred_at, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(tenant_id, customer(row[0]), owner_id, row[2], row[4], row[3], now, now)
         for row in source.rows["activities"]],
    )
    connection.commit()
    seconds = time.perf_counter() - started
    connection.close()
    copy.unlink()
    return seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks movein")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file's rows (1.0: the target's)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    args = parser.parse_args(argv)

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    workdir = Path(tempfile.mkdtemp(prefix="kestrel-movein-bench-"))
    database = workdir / "bench.db"
    url = f"sqlite:///{database}"
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_JOBS_PATH": str(workdir / "jobs.db"),
           "CRM_FILES_DIR": str(workdir / "files"), "CRM_BCRYPT_ROUNDS": "4"}
    env.pop("CRM_REDIS_URL", None)
    os.environ.update({key: env[key] for key in ("CRM_DATABASE_URL", "CRM_JOBS_PATH", "CRM_FILES_DIR",
                                                  "CRM_BCRYPT_ROUNDS")})
    os.environ.pop("CRM_REDIS_URL", None)

    from sqlalchemy import func, select

    from crm_core.db import open_database
    from crm_core.jobs.service import submit_job
    from crm_core.jobs.uploads import store_upload
    from crm_core.models import Activity, Order, PipelineStage
    from crm_core.quality.runs import database_suites, run_suite_for_tenant
    from crm_core.queries.jobs import get_job
    from crm_core.queries.reports import ReportFilters, funnel, revenue_by_month
    from crm_core.schema import upgrade_to_head
    from crm_core.services import tenants
    from crm_core.services.auth import load_actor

    db = open_database(url)
    upgrade_to_head(db.engine)
    password = "Movein-bench-" + os.urandom(6).hex()
    tenants.create_tenant(db, name="Moved In Ltd", slug="moved-in", admin_username="movein.admin",
                          admin_password=password)
    admin = load_actor(db, "movein.admin")
    assert admin is not None
    owners = []
    for index in range(8):
        email = f"rep{index}@moved-in.example.com"
        tenants.create_user(db, admin, tenants.UserInput(f"movein.rep{index}", f"Rep {index}", "rep", email=email,
                                                         password=password))
        owners.append(email)
    with db.session(admin) as session:
        kinds: dict[str, list[str]] = defaultdict(list)
        for stage in session.scalars(select(PipelineStage).order_by(PipelineStage.position)):
            kinds[stage.kind].append(stage.name)
    today = dt.date.today()

    def scaled(rows: int) -> int:
        return max(1, int(rows * args.scale))

    started = time.perf_counter()
    source = old_crm_export(customers=scaled(10_000), contacts=scaled(20_000), deals=scaled(30_000),
                            orders=scaled(30_000), activities=scaled(100_000), owners=owners, stages=kinds,
                            today=today, seed=args.seed)
    paths = write_files(source, workdir)
    print(f"old CRM export written in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{entity} {len(source.rows[entity]):,}" for entity in ORDER))

    log = open(workdir / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen([sys.executable, "-m", "crm_core", "worker"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    results: list[tuple[str, float, dict[str, Any]]] = []

    def finished(job_id: int) -> Any:
        while True:
            with db.system_session("benchmark: job") as session:
                view = get_job(session, job_id)
            if view.status.finished:
                return view
            time.sleep(0.1)

    try:
        # a worker runs all day: its start and GX's first import (~3 s) are not the move-in's. One data-quality
        # check of the empty tenant (a job that imports GX) before the clock
        began = time.perf_counter()
        finished(submit_job(db, admin, "quality_check", {"data_docs": False}))
        print(f"worker warm-up (start, GX import, one empty check): {time.perf_counter() - began:.1f} s")
        started = time.perf_counter()
        for entity in ORDER:
            upload = store_upload(admin.tenant_id, paths[entity].name, paths[entity])
            began = time.perf_counter()
            view = finished(submit_job(db, admin, "import", {
                "entity": entity, "file_path": str(upload), "file_name": paths[entity].name,
                "policy": "all-or-nothing", "chunk_size": args.chunk_size,
            }))
            results.append((entity, time.perf_counter() - began, dict(view.result or {})))
            if view.status.value != "succeeded" or view.result.get("status") != "imported":
                print(f"  {entity}: job {view.status.value}, {view.result}")
                break
        total = time.perf_counter() - started
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()

    print(f"Move-in of {sum(len(rows) for rows in source.rows.values()):,} rows in {len(ORDER)} files as jobs "
          "(one worker, SQLite):")
    for entity, seconds, result in results:
        print(f"  {entity:<14} {seconds:7.2f} s  {result.get('status')}: created {result.get('created', 0):,}, "
              f"rejected {result.get('rejected', 0):,}")
    checks = [len(results) == len(ORDER) and all(result.get("status") == "imported" for *_, result in results)]
    print(f"  total (first submit → last job's end) {total:7.2f} s")
    if args.scale == 1.0:
        checks.append(total < TARGET_SECONDS)
        print(f"  target: < {TARGET_SECONDS:.0f} s: {verdict(checks[-1])}")
    bare = bare_writes(database, source)
    print(f"  bare executemany of the same rows {bare:7.2f} s  ratio move-in / bare = {total / bare:.1f}")

    started = time.perf_counter()
    failed = []
    for suite in database_suites():
        run = run_suite_for_tenant(db, admin, suite, data_docs=False)
        if not run.success:
            failed.append((suite, [(check.check, check.examples[:3]) for check in run.failures]))
    checks.append(not failed)
    print(f"  data-quality suites ({len(database_suites())}) {time.perf_counter() - started:.1f} s: "
          f"{failed if failed else 'all green'}")

    mismatches = []
    with db.session(admin) as session:
        for year, (deals, won, lost, amount) in sorted(source.deals_by_year.items()):
            report = funnel(session, filters=ReportFilters(since=dt.date(year, 1, 1), until=dt.date(year, 12, 31)))
            shown = (report.total_count, report.won_count, report.lost_count, report.won_amount) if report else None
            if shown != (deals, won, lost, amount):
                mismatches.append(f"{year}: funnel {shown}, source {(deals, won, lost, amount)}")
        months = revenue_by_month(session, today=today, months=12)
        for month in months:
            if month.amount != source.revenue_by_month.get(month.month, Decimal(0)):
                mismatches.append(f"{month.month}: revenue {month.amount}, source "
                                  f"{source.revenue_by_month.get(month.month)}")
        # the links between the files: every order naming a deal, every activity naming a contact, holds it
        linked = {
            "orders → deal": (session.scalar(select(func.count()).select_from(Order).where(
                Order.opportunity_id.is_not(None))), sum(1 for row in source.rows["orders"] if row[2])),
            "activities → contact": (session.scalar(select(func.count()).select_from(Activity).where(
                Activity.contact_id.is_not(None))), sum(1 for row in source.rows["activities"] if row[1])),
        }
        mismatches += [f"{name}: {found:,} linked, source {named:,}" for name, (found, named) in linked.items()
                       if found != named]
    checks.append(not mismatches)
    print("  links relinked by the old CRM's ids: "
          + ", ".join(f"{name} {found:,}/{named:,}" for name, (found, named) in linked.items()))
    years = Counter({year: tally[0] for year, tally in source.deals_by_year.items()})
    print(f"  reports against the source: funnel per year opened ({len(years)} years, {sum(years.values()):,} deals) "
          f"and revenue of the last 12 months: {'equal' if not mismatches else mismatches[:5]}")
    db.engine.dispose()
    print(f"  workdir {workdir}")
    return 0 if all(checks) else 1
