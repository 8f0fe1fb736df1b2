"""``python -m benchmarks campaign_launch [--database-url URL] [--customers N]``: launching a campaign to a
100k-member segment (target < 10 s).

It WRITES: on the given database (default: a new SQLite file) it creates a tenant with N customers
(half with a contact carrying an email), a tenant-wide segment holding all of them, a template and a
campaign of one email step, then times :func:`crm_core.services.campaigns.launch` as the tenant's admin
(enrolment with each member's person, the ``entered`` touches, one audit row) against the bare
``INSERT INTO campaign_members … SELECT`` of the same customers into a second campaign, and prints both
and their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from crm_core import bulk
from crm_core.db import make_engine, open_database
from crm_core.models import Base, Campaign
from crm_core.models.marketing import EmailTemplate
from crm_core.schema import upgrade_to_head
from crm_core.services import auth, campaigns, tenants
from crm_core.services.segments import SegmentInput, save_segment


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks campaign_launch")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'campaign_launch.sqlite3'}"
    upgrade_to_head(make_engine(url))
    db = open_database(url)
    stamp = str(int(time.time()))
    tenants.create_tenant(db, name="Bench", slug=f"bench-{stamp}", admin_username=f"bench{stamp}",
                          admin_password="Bench-password-1")
    admin = auth.load_actor(db, f"bench{stamp}")
    assert admin is not None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    started = time.perf_counter()
    with db.system_transaction("benchmark data") as session:
        customers = Base.metadata.tables["customers"]
        bulk.insert_rows(session, customers, [
            {"tenant_id": admin.tenant_id, "name": f"Bench {n}", "kind": "company", "lifecycle_stage": "prospect",
             "tags": ",bench,", "email": f"c{n}@example.cn", "email_normalized": f"c{n}@example.cn",
             "custom_fields": {}, "owner_id": admin.user_id, "created_at": now, "updated_at": now, "version": 1}
            for n in range(args.customers)])
        session.execute(text(
            "INSERT INTO contacts (tenant_id, customer_id, name, email, email_normalized, is_primary, created_at,"
            " updated_at, version) SELECT tenant_id, id, name, email, email_normalized, :yes, created_at, updated_at,"
            " 1 FROM customers WHERE tenant_id = :tenant AND MOD(id, 2) = 0"
            if not url.startswith("sqlite") else
            "INSERT INTO contacts (tenant_id, customer_id, name, email, email_normalized, is_primary, created_at,"
            " updated_at, version) SELECT tenant_id, id, name, email, email_normalized, :yes, created_at, updated_at,"
            " 1 FROM customers WHERE tenant_id = :tenant AND id % 2 = 0"), {"tenant": admin.tenant_id, "yes": True})
    print(f"data: {args.customers} customers in {time.perf_counter() - started:.1f} s")
    segment_id = save_segment(db, admin, SegmentInput(name="Bench all", sharing="tenant", conditions={
        "match": "all", "conditions": [{"field": "tags", "op": "has", "value": "bench"}]}))
    with db.transaction(admin) as session:
        template = EmailTemplate(name="Bench", language="en", subject="Hi", body="Hello")
        session.add(template)
        session.flush()
        template_id = template.id
    campaign_id = campaigns.save_campaign(db, admin, campaigns.CampaignInput(name="Bench", segment_id=segment_id))
    with db.session(admin) as session:
        version = session.get(Campaign, campaign_id).version  # type: ignore[union-attr]
    campaigns.save_step(db, admin, campaign_id, "email", {"template_id": template_id}, expected_version=version)
    launched = campaigns.launch(db, admin, campaign_id)
    raw_campaign = campaigns.save_campaign(db, admin, campaigns.CampaignInput(name="Raw", segment_id=segment_id))
    with db.system_transaction("benchmark raw") as session:
        clock = time.perf_counter()
        session.execute(text(
            "INSERT INTO campaign_members (tenant_id, campaign_id, customer_id, source, enrolled_at, state, cycle,"
            " created_at, updated_at) SELECT tenant_id, :campaign, id, 'raw', :now, 'active', 1, :now, :now"
            " FROM customers WHERE tenant_id = :tenant AND archived_at IS NULL AND tags LIKE '%,bench,%'"),
            {"campaign": raw_campaign, "now": now, "tenant": admin.tenant_id})
        raw = time.perf_counter() - clock
    print(f"launch: {launched.enrolled} members enrolled in {launched.seconds:.2f} s (target < 10 s)")
    print(f"raw INSERT … SELECT of the same members: {raw:.2f} s; ratio {launched.seconds / raw:.1f}x")
    return 0 if launched.seconds < 10 else 1
