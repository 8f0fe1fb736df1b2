"""``python -m benchmarks marketing_send``: the marketing sender against a local aiosmtpd sink (issue 14's
target: ≥ 200 emails/s, exactly once).

A fresh SQLite file by default (``--database-url`` for PostgreSQL or MariaDB) gets one tenant whose outbox
holds ``--messages`` queued emails (one campaign member, one step, a cycle each: the outbox's unique key),
each address with a consent grant in the ledger. The sink runs in a process of its own and logs the
Message-ID of every message it accepts; the sender (``send_marketing_mail``, what the ``marketing_send``
job runs) claims, asks the ledger, and sends in batches over one SMTP connection each, tracking on (links
rewritten, the HTML twin with its pixel). Printed: seconds, emails/s, and the check — every message
accepted once, none lost, none twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from benchmarks.server import free_port
from crm_core.db import Database, open_database

MESSAGES = 3000
BODY = ("Hello,\n\nour spring catalogue is out: https://shop.example.com/spring?utm=mail\n"
        "Questions? Answer this email.\n")


def seed_outbox(db: Database, tenant_id: int, admin: Any, count: int, *, sender: str = "news@bench.example",
                now: dt.datetime | None = None) -> list[str]:
    """``count`` queued marketing messages of one member (a cycle each) to distinct granted addresses, inserted
    set-based; their Message-IDs."""
    from crm_core.models import Campaign, utcnow
    from crm_core.models.marketing import CampaignStep, ConsentRecord, MarketingMessage, MarketingSettings
    from crm_core.models.segments import CampaignMember
    from crm_core.services.customers import CustomerInput, create_customer

    moment = now or utcnow()
    customer_id = create_customer(db, admin, CustomerInput(name=f"Bench {uuid.uuid4().hex[:6]}",
                                                           owner_id=admin.user_id), allow_duplicate=True)
    with db.system_transaction("bench: campaign") as session:
        if session.scalar(select(MarketingSettings.id).where(MarketingSettings.tenant_id == tenant_id)) is None:
            session.add(MarketingSettings(tenant_id=tenant_id, daily_cap_per_sender=1_000_000, tracking_enabled=True,
                                          sender_name="Bench", postal_address="1 Bench Road"))
        campaign = Campaign(tenant_id=tenant_id, name="Spring", status="running")
        session.add(campaign)
        session.flush()
        step = CampaignStep(tenant_id=tenant_id, campaign_id=campaign.id, position=1, kind="email", config={})
        member = CampaignMember(tenant_id=tenant_id, campaign_id=campaign.id, customer_id=customer_id,
                                state="active")
        session.add_all([step, member])
        session.flush()
        campaign_id, step_id, member_id = campaign.id, step.id, member.id
    message_ids = [f"<mkt-{uuid.uuid4().hex}@kestrel-crm.invalid>" for _ in range(count)]
    for start in range(0, count, 1000):
        chunk = range(start, min(count, start + 1000))
        with db.system_transaction("bench: outbox") as session:
            session.execute(insert(ConsentRecord), [
                {"tenant_id": tenant_id, "channel": "email", "address": f"p{i}@bench.example", "action": "grant",
                 "basis": "consent", "proof_kind": "form", "proof": "bench",
                 "recorded_at": moment - dt.timedelta(days=1),
                 "customer_id": customer_id} for i in chunk])
            session.execute(insert(MarketingMessage), [
                {"tenant_id": tenant_id, "campaign_id": campaign_id, "step_id": step_id, "member_id": member_id,
                 "cycle": i + 1, "customer_id": customer_id, "language": "en" if i % 2 else "zh-CN",
                 "to_address": f"p{i}@bench.example", "from_address": sender, "subject": f"Spring {i}",
                 "body": BODY, "status": "queued", "reason": "", "token": uuid.uuid4().hex + uuid.uuid4().hex[:20],
                 "message_id": message_ids[i], "attempts": 0, "queued_at": moment} for i in chunk])
    return message_ids


def _serve(log_path: str, port: int, ready: Any) -> None:
    """The sink: accepts every message and logs its Message-ID (one line each)."""
    from email.parser import BytesHeaderParser

    from aiosmtpd.controller import Controller

    log = open(log_path, "a", encoding="ascii")  # noqa: SIM115 - open for the process's life

    class Keeper:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            headers = BytesHeaderParser().parsebytes(envelope.original_content)
            log.write(str(headers.get("Message-ID", "")).strip() + "\n")
            log.flush()
            return "250 OK"

    controller = Controller(Keeper(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def start_sink(log_path: Path, port: int) -> Any:
    """The sink in a process of its own (the sender has the other core)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_serve, args=(str(log_path), port, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the sink did not start")
    return process


def main(argv: list[str]) -> int:
    """Seed the outbox, send it to the sink, print the figures and the exactly-once check."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks marketing_send")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--connections", type=int, default=None, help="SMTP connections side by side")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args(argv)

    from crm_core.marketing.sender import send_marketing_mail
    from crm_core.models.marketing import MarketingMessage
    from crm_core.schema import upgrade_to_head
    from crm_core.services import auth, tenants

    folder = Path(tempfile.mkdtemp(prefix="kestrel-marketing-bench-"))
    os.environ["CRM_JOBS_PATH"] = f"{folder}/jobs.db"
    os.environ.pop("CRM_REDIS_URL", None)
    port = free_port()
    os.environ.update({"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(port),
                       "CRM_MAIL_FROM": "news@bench.example", "CRM_PUBLIC_URL": "https://crm.bench.example",
                       "CRM_CSAT_KEY": "bench-link-key-0123456789abcdef"})
    for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
        os.environ.pop(name, None)
    db = open_database(args.database_url or f"sqlite:///{folder}/bench.db")
    upgrade_to_head(db.engine)
    suffix = str(int(time.time()))
    created = tenants.create_tenant(db, name="Bench", slug=f"mkt-{suffix}", admin_username=f"mkt{suffix}",
                                    admin_password=f"Bench-{suffix}-pw!")
    admin = auth.load_actor(db, f"mkt{suffix}")
    assert admin is not None
    seeded = time.perf_counter()
    message_ids = seed_outbox(db, created.tenant_id, admin, args.messages)
    seed_seconds = time.perf_counter() - seeded
    log_path = folder / "sink.log"
    sink = start_sink(log_path, port)
    try:
        started = time.perf_counter()
        more = {} if args.connections is None else {"connections": args.connections}
        run = send_marketing_mail(db, created.tenant_id, batch_size=args.batch_size, **more)
        seconds = time.perf_counter() - started
        time.sleep(0.5)  # the sink's last lines
    finally:
        sink.terminate()
        sink.join(10)
    received = Counter(line.strip() for line in log_path.read_text(encoding="ascii").splitlines() if line.strip())
    with db.system_session("bench: statuses") as session:
        statuses = Counter(session.scalars(select(MarketingMessage.status).where(
            MarketingMessage.tenant_id == created.tenant_id)))
    twice = sum(1 for count in received.values() if count > 1)
    lost = len(set(message_ids) - set(received))
    print(f"database: {db.dialect_name}; {args.messages:,} queued emails, batches of {args.batch_size}, tracking on")
    print(f"seeding the outbox: {seed_seconds:.2f} s")
    print(f"sending: {seconds:.2f} s, {run.sent / seconds:,.0f} emails/s ({run.batches} batches; "
          f"sent {run.sent}, skipped {run.skipped}, retried {run.retried}, failed {run.failed})")
    print(f"sink: {sum(received.values()):,} messages, {len(received):,} distinct Message-IDs; lost {lost}, "
          f"received twice {twice}; outbox statuses {dict(statuses)}")
    ok = lost == 0 and twice == 0 and run.sent == args.messages and run.sent / seconds >= 200
    print("exactly once, >= 200 emails/s: " + ("yes" if ok else "NO"))
    return 0 if ok else 1
