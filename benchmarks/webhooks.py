"""``python -m benchmarks webhooks``: 10,000 events fanned out to 3 local endpoints, one failing half the time.

What issue 12 asks of the webhooks, measured in one run (fresh SQLite file by default;
``--database-url`` for PostgreSQL or MariaDB):

- 10,000 customers are created through the ORM (in transactions of 1,000) by an admin whose
  tenant has 3 subscriptions: the audit hook writes 10,000 events and 30,000 deliveries in the
  same transactions (printed: that time, and the same creation with no subscription);
- 3 endpoints, in a process of their own: two answer 200, one answers 503 to a random half
  of its requests (but never five times running to the same ``webhook-id``, so that every
  delivery ends within the 8 attempts — a flapping endpoint, not a dead one);
- ``--workers`` dispatcher processes (as ``python -m crm_core worker --workers N``) run the
  same ``dispatch_due`` the job runs, claiming batches by conditional UPDATE. Time is frozen
  and advanced (``now`` passed in): when nothing is due the clock jumps to the next retry
  (5 s, then 5 min …), so the retry schedule is followed without waiting for it;
- the endpoints log every ``webhook-id`` they accept; the check: each of the 30,000 accepted
  exactly once, none lost, none accepted twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EVENTS = 10_000
ENDPOINTS = 3
CHUNK = 1_000
MAX_FAILS_IN_A_ROW = 4


# --- the endpoints (a process of their own) ----------------------------------------------------


def _serve(folder: str, ports: Any, seed: int) -> None:
    """Three endpoints: /ok0, /ok1 answer 200; /flaky answers 503 half the time. Accepted ids go to files."""
    chooser = random.Random(seed)
    lock = threading.Lock()
    fails: Counter[str] = Counter()
    logs = {name: open(Path(folder) / f"{name}.log", "a", encoding="ascii") for name in ("ok0", "ok1", "flaky")}  # noqa: SIM115
    served: Counter[str] = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length") or 0))
            name = self.path.strip("/")
            webhook_id = self.headers.get("webhook-id", "")
            with lock:
                served[name] += 1
                status = 200
                if name == "flaky" and fails[webhook_id] < MAX_FAILS_IN_A_ROW and chooser.random() < 0.5:
                    fails[webhook_id] += 1
                    status = 503
                if status == 200:
                    logs[name].write(webhook_id + "\n")
                    logs[name].flush()
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ports.put(server.server_address[1])
    server.serve_forever()


# --- dispatcher processes ---------------------------------------------------------------------------

_db: Any = None


def _open(url: str) -> None:
    global _db
    from crm_core.db import open_database

    _db = open_database(url)


def _dispatch(moment: dt.datetime) -> tuple[int, int]:
    from crm_core.webhooks.dispatch import dispatch_due

    report = dispatch_due(_db, now=moment)
    return report.attempts, report.succeeded


# --- the run --------------------------------------------------------------------------------------------


def _create_customers(db: Any, admin: Any, count: int) -> float:
    from crm_core.models import Customer

    started = time.perf_counter()
    for first in range(0, count, CHUNK):
        with db.transaction(admin) as session:
            session.add_all(Customer(name=f"Webhook benchmark {first + n}", owner_id=admin.user_id)
                            for n in range(min(CHUNK, count - first)))
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    """Run the fan-out and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks webhooks")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--workers", type=int, default=2, help="dispatcher processes (default 2)")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from sqlalchemy import func, select

    from crm_core.db import open_database
    from crm_core.models.webhooks import WebhookAttempt, WebhookDelivery
    from crm_core.schema import upgrade_to_head
    from crm_core.services import auth, tenants
    from crm_core.services.webhooks import SubscriptionForm, create_subscription, set_allow_private_targets
    from crm_core.webhooks.dispatch import next_due_at

    folder = tempfile.mkdtemp(prefix="kestrel-webhooks-bench-")
    # the dispatch jobs a commit queues go to this run's own queue, never to data/ or a shared Redis
    os.environ["CRM_JOBS_PATH"] = f"{folder}/jobs.db"
    os.environ.pop("CRM_REDIS_URL", None)
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    db = open_database(url)
    upgrade_to_head(db.engine)
    suffix = str(int(time.time()))
    password = "Bench-" + suffix + "-pw!"
    tenants.create_tenant(db, name="Bench", slug=f"bench-{suffix}", admin_username=f"bench{suffix}",
                          admin_password=password)
    tenants.create_tenant(db, name="Quiet", slug=f"quiet-{suffix}", admin_username=f"quiet{suffix}",
                          admin_password=password)
    admin = auth.load_actor(db, f"bench{suffix}")
    quiet = auth.load_actor(db, f"quiet{suffix}")
    assert admin is not None and quiet is not None

    plain_seconds = _create_customers(db, quiet, args.events)  # the same writes, no subscription

    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    endpoints = context.Process(target=_serve, args=(folder, ports, args.seed), daemon=True)
    endpoints.start()
    port = ports.get(timeout=30)
    set_allow_private_targets(db, admin, True)
    for name in ("ok0", "ok1", "flaky"):
        create_subscription(db, admin, SubscriptionForm(url=f"http://127.0.0.1:{port}/{name}",
                                                        event_types=["customer.created"]))
    outbox_seconds = _create_customers(db, admin, args.events)
    with db.system_session("bench") as session:
        start = session.scalar(select(func.max(WebhookDelivery.next_attempt_at)))  # every first attempt due
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert start is not None and deliveries is not None
    moment = start.replace(microsecond=0) + dt.timedelta(seconds=1)

    db.engine.dispose()
    started = time.perf_counter()
    epochs = attempts = 0
    with context.Pool(args.workers, initializer=_open, initargs=(url,)) as pool:
        while True:
            results = pool.map(_dispatch, [moment] * args.workers)
            epochs += 1
            attempts += sum(done for done, _ in results)
            due = next_due_at(db, now=moment)
            if due is None:
                break
            moment = max(moment, due) + dt.timedelta(seconds=1)
    seconds = time.perf_counter() - started
    endpoints.terminate()

    accepted = {name: Counter((Path(folder) / f"{name}.log").read_text(encoding="ascii").split())
                for name in ("ok0", "ok1", "flaky")}
    with db.system_session("bench") as session:
        expected = set(session.scalars(select(WebhookDelivery.webhook_id)))
        by_status = dict(session.execute(select(WebhookDelivery.status, func.count())
                                         .group_by(WebhookDelivery.status)).all())  # type: ignore[arg-type]
        failed_attempts = session.scalar(select(func.count()).select_from(WebhookAttempt)
                                         .where(WebhookAttempt.status_code != 200))
    received = Counter[str]()
    for counts in accepted.values():
        received.update(counts)
    twice = sum(1 for times in received.values() if times > 1)
    exactly_once = set(received) == expected and twice == 0 and len(expected) == args.events * ENDPOINTS

    print(f"database: {db.dialect_name}; {args.events:,} events x {ENDPOINTS} endpoints; "
          f"{args.workers} dispatcher processes; endpoint 'flaky' fails ~half its requests")
    print(f"writing the events: {args.events:,} customers with the outbox {outbox_seconds:.2f} s, "
          f"without a subscription {plain_seconds:.2f} s (+{outbox_seconds - plain_seconds:.2f} s for "
          f"{deliveries:,} deliveries)")
    print(f"delivery: {seconds:.2f} s, {args.events / seconds:,.0f} events/s, {deliveries / seconds:,.0f} "
          f"deliveries/s; {attempts:,} requests ({failed_attempts:,} answered 503) in {epochs} clock steps")
    print(f"deliveries by status: {by_status}")
    print("accepted per endpoint: " + ", ".join(f"{name} {sum(c.values()):,} ({len(c):,} ids)"
                                                 for name, c in accepted.items()))
    print(f"exactly once by webhook-id: {'yes' if exactly_once else 'NO'} "
          f"({len(received):,} of {len(expected):,} ids accepted, {twice} accepted twice)")
    return 0 if exactly_once else 1
