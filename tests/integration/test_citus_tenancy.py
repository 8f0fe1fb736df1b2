"""Citus-ready tenancy (decision 0057): every statement the core, the API and the jobs send to PostgreSQL while
they run the product's flows names its tenant on each distributed table.

Every statement PostgreSQL receives (``before_cursor_execute``: ORM queries, the unit of work's flushes, Core
and ``text()`` SQL alike) is read by :mod:`tests.tenant_sql`. A statement on a distributed table (every table
with ``tenant_id`` but the reference tables of decision 0057) that does not pin each of them to one tenant
would be sent to every shard under Citus. Such a statement fails the test unless its shape is listed in
``tests/integration/citus_fan_out.json``: ``allowed`` (a statement that spans tenants by nature, with the
reason) or ``remaining`` (known offenders not fixed yet: the list only shrinks — a shape listed there that no
flow issues any more fails the test too, so the fix removes its line).

PostgreSQL only: the statements are PostgreSQL's (Citus is an extension of it); without
``CRM_TEST_POSTGRES_URL`` the test skips and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey
from sqlalchemy import Engine, event, select

from crm_core.db import Database
from crm_core.jobs.runner import execute_job, mark_interrupted
from crm_core.jobs.schedules import ensure_default_schedules, run_due_schedules
from crm_core.jobs.service import submit_job
from crm_core.jobs.uploads import store_upload
from crm_core.mail.inbound import receive_message
from crm_core.mail.outbound import MailSettings, send_queued_mail
from crm_core.marketing.engine import marketing_tick
from crm_core.marketing.sender import send_marketing_mail
from crm_core.marketing.tracking import preferences, record_open, unsubscribe
from crm_core.models import ImportRun, PipelineStage, distributed_tables
from crm_core.models.marketing import ConsentAction, EmailTemplate, MarketingMessage, ProofKind
from crm_core.services import campaigns
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.consent import record_in
from crm_core.services.customers import CustomerInput, update_customer
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage
from crm_core.services.merging import Versions, merge_customers
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.pool import claim_customers
from crm_core.services.products import ProductInput, create_product
from crm_core.services.segments import SegmentInput, record_snapshot, save_segment
from crm_core.services.tasks import TaskInput, complete_task, create_task
from crm_core.services.webhooks import SubscriptionForm, create_subscription, set_allow_private_targets
from tests.api.conftest import build_client
from tests.conftest import rolled_back
from tests.factories import World, build_world, create_random_customer, customer_with_contact, tenant_slug, unique
from tests.http_receiver import Receiver
from tests.mail_sink import Sink
from tests.tenant_sql import Reading, read_statement

LISTED = Path(__file__).with_name("citus_fan_out.json")
DISTRIBUTED = distributed_tables()
NOW = dt.datetime(2026, 12, 1, 1, 0)


@dataclass
class Capture:
    """The statements seen, by shape, with the flow step that sent each first."""

    step: str = "setup"
    readings: dict[str, tuple[Reading, str]] = field(default_factory=dict)

    def see(self, sql: str) -> None:
        reading = read_statement(sql, DISTRIBUTED)
        if reading.tables and reading.shape not in self.readings:
            self.readings[reading.shape] = (reading, self.step)

    @contextmanager
    def during(self, step: str) -> Iterator[None]:
        self.step = step
        yield
        self.step = "between steps"


@pytest.fixture
def pg_engine(migrated_engines: Callable[[str], Engine]) -> Engine:
    if not os.environ.get("CRM_TEST_POSTGRES_URL") and not os.environ.get("CRM_REQUIRE_ALL_DATABASES"):
        pytest.skip("CRM_TEST_POSTGRES_URL is not set: the Citus tenancy test reads the statements PostgreSQL "
                    "receives (Citus is a PostgreSQL extension)")
    return migrated_engines("postgresql")


@pytest.fixture
def pg_db(pg_engine: Engine) -> Iterator[Database]:
    with rolled_back(pg_engine) as database:
        yield database


@pytest.fixture
def capture(pg_engine: Engine) -> Iterator[Capture]:
    seen = Capture()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.see(statement)

    event.listen(pg_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(pg_engine, "before_cursor_execute", before)


@pytest.fixture
def mail_env(monkeypatch: pytest.MonkeyPatch, sink: tuple[Sink, int], tmp_path: Path) -> None:
    _keeper, port = sink
    for name, value in {"CRM_PUBLIC_URL": "https://crm.example.cn", "CRM_MAIL_FROM": "news@example.cn",
                        "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(port), "CRM_MAIL_DOMAIN": "in.example.cn",
                        "CRM_CSAT_KEY": "citus-test-key-0123456789abcdef0123", "CRM_FILES_DIR": str(tmp_path / "files"),
                        "CRM_GX_DIR": str(tmp_path / "gx")}.items():
        monkeypatch.setenv(name, value)
    for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run_job(db: Database, world: World, kind: str, params: dict[str, Any] | None = None) -> None:
    """Submit a job as the admin and run it as a worker would, from the message the queue holds."""
    queue = MemoryHuey(unique("citus-"))
    submit_job(db, world.admin, kind, params or {}, queue=queue)
    message = queue.dequeue()
    assert message is not None
    job_id, tenant_id = message.args
    execute_job(db, job_id, queue=queue, tenant_id=tenant_id)


def sales_flow(db: Database, world: World, capture: Capture) -> None:
    with capture.during("customer create and edit"):
        customer_id = create_random_customer(db, world.rep, email=f"{unique('c')}@example.cn", tags="nurture")
        update_customer(db, world.rep, customer_id, CustomerInput(name=unique("Renamed "), owner_id=world.rep.user_id,
                                                                  tags="nurture"), expected_version=1)
    with capture.during("task"):
        task_id = create_task(db, world.rep, TaskInput(title="Call back", customer_id=customer_id,
                                                       assignee_id=world.rep.user_id))
        complete_task(db, world.rep, task_id)
    with capture.during("deal to won"):
        with db.session(world.admin) as session:
            stages = {stage.name: stage.id for stage in session.scalars(select(PipelineStage))}
        deal_id = create_opportunity(db, world.rep, OpportunityInput(customer_id=customer_id, name="Pilot",
                                                                     amount="12000"))
        version = move_stage(db, world.rep, deal_id, stages["Proposal"], expected_version=1)
        move_stage(db, world.rep, deal_id, stages["Won"], expected_version=version)
    with capture.during("order with lines"):
        product_id = create_product(db, world.manager, ProductInput(sku=unique("SKU"), name="Licence",
                                                                    unit_price="100"))
        create_order(db, world.rep, OrderInput(customer_id=customer_id, lines=[
            OrderLineInput(product_id=product_id, quantity=2)]))
    with capture.during("case, reply, SLA sweep"):
        case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer down",
                                                       priority="urgent"))
        add_case_reply(db, world.rep, case_id, "On it.")
        run_job(db, world, "sla_sweep", {"as_of": (NOW + dt.timedelta(days=3)).isoformat()})


def jobs_flow(db: Database, world: World, capture: Capture) -> None:
    with capture.during("import job"):
        path = store_upload(world.admin.tenant_id, "people.csv",
                            b"Company Name,Email\nAlpha Ltd,alpha@example.com\nBeta Ltd,beta@example.com\n")
        run_job(db, world, "import", {"entity": "customers", "file_path": str(path), "file_name": "people.csv",
                                      "mapping": {"columns": {"Company Name": "name", "Email": "email"}}})
    with capture.during("segment and its snapshot job"):
        segment_id = save_segment(db, world.manager, SegmentInput(
            name=unique("Nurture "), sharing="tenant",
            conditions={"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "nurture"}]}))
        record_snapshot(db, world.manager, segment_id)
        run_job(db, world, "segment_snapshot")
    with capture.during("periodic jobs"):
        for kind in ("lifecycle_refresh", "pool_return", "service_daily", "campaign_results_refresh", "sales_rollup",
                     "customer_tier_refresh", "task_reminders", "automation_run", "quality_check", "score_training",
                     "uploads_cleanup"):
            run_job(db, world, kind)
    with capture.during("a worker starts: jobs its host's dead workers left"):
        mark_interrupted(db)
    with capture.during("schedules"):
        ensure_default_schedules(db)
        run_due_schedules(db, queue=MemoryHuey(unique("citus-")), now=NOW)
    with capture.during("marketing launch, tick and send"):
        with db.transaction(world.manager) as session:
            template = EmailTemplate(name=unique("Hello "), language="en", subject="Hello {{ customer.name }}",
                                     body="Hi {{ contact.name }}. Unsubscribe: {{ links.unsubscribe }}")
            session.add(template)
            session.flush()
            template_id = template.id
        with db.transaction(world.admin) as session:
            for customer_address in ("li@example.cn",):
                record_in(session, channel="email", address=customer_address, action=ConsentAction.GRANT,
                          basis="consent", proof_kind=ProofKind.FORM, now=NOW - dt.timedelta(days=2))
        campaign_id = campaigns.save_campaign(db, world.manager, campaigns.CampaignInput(
            name=unique("Campaign "), segment_id=segment_id))
        campaigns.save_step(db, world.manager, campaign_id, "email", {"template_id": template_id},
                            expected_version=1)
        campaigns.launch(db, world.manager, campaign_id, now=NOW)
        marketing_tick(db, world.admin.tenant_id, now=NOW)
        send_marketing_mail(db, world.admin.tenant_id, now=NOW)
    with capture.during("marketing links: open, preferences, unsubscribe"):
        with db.session(world.admin) as session:
            tokens = list(session.scalars(select(MarketingMessage.token)))
        assert tokens, "the campaign queued no email: the links' statements would go unread"
        record_open(db, tokens[0], now=NOW)
        preferences(db, tokens[0])
        unsubscribe(db, tokens[0], now=NOW)


def records_flow(db: Database, world: World, capture: Capture) -> None:
    with capture.during("merge two customers, claim from the pool, revert an import"):
        survivor = create_random_customer(db, world.admin, email=f"{unique('m')}@example.cn")
        merged = create_random_customer(db, world.admin)
        merge_customers(db, world.admin, survivor, merged, {}, Versions(1, 1))
        pooled = create_random_customer(db, world.manager, owner_id=None)  # unowned: the east team's pool
        claim_customers(db, world.rep, [pooled])
        with db.session(world.admin) as session:
            run_id = session.scalars(select(ImportRun.id).order_by(ImportRun.id.desc())).first()
        assert run_id is not None
        run_job(db, world, "import_revert", {"run_id": run_id})


def service_mail_flow(db: Database, world: World, capture: Capture, sink_port: int) -> None:
    with capture.during("email to case, a public reply sent, the customer's answer"):
        customer_id, _contact_id = customer_with_contact(db, world, "li.lei@example.test")
        to = [f"support+{tenant_slug(db, world)}@example.test"]
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = "li.lei@example.test", to[0], "Printer broken"
        email["Message-ID"] = "<citus-1@example.test>"
        email.set_content("My printer is broken.")
        case_id = receive_message(db, email.as_bytes(), to).case_id
        assert case_id is not None
        add_case_reply(db, world.admin, case_id, "We are on it.")
        send_queued_mail(db, world.admin.tenant_id, MailSettings(
            host="127.0.0.1", port=sink_port, from_address="help@kestrel.test", inbound_domain="kestrel.test"))
        answer = EmailMessage()
        answer["From"], answer["To"], answer["Subject"] = "li.lei@example.test", to[0], f"Re: [#CASE-{case_id}]"
        answer["Message-ID"], answer["In-Reply-To"] = "<citus-2@example.test>", "<citus-1@example.test>"
        answer.set_content("Still broken.")
        receive_message(db, answer.as_bytes(), to)


def webhook_flow(db: Database, world: World, capture: Capture) -> None:
    receiver = Receiver()
    try:
        with capture.during("webhooks: subscribe, outbox, dispatch job"):
            set_allow_private_targets(db, world.admin, True)
            create_subscription(db, world.admin, SubscriptionForm(url=receiver.url("/hook"),
                                                                   event_types=["customer.*"]))
            create_random_customer(db, world.admin)
            run_job(db, world, "webhook_dispatch")
    finally:
        receiver.close()


def api_flow(db: Database, world: World, capture: Capture) -> None:
    from crm_core.services.api_tokens import issue_api_token

    with capture.during("API"), build_client(db) as client:
        secret = issue_api_token(db, world.rep, name="citus", scope="read_write", expires_in_days=None).secret
        headers = {"Authorization": f"Bearer {secret}"}
        created = client.post("/api/v1/customers", json={"name": unique("Api "), "email": "api@example.cn"},
                              headers=headers)
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        assert client.get("/api/v1/customers?limit=50&search=Api", headers=headers).status_code == 200
        assert client.get(f"/api/v1/customers/{customer_id}", headers=headers).status_code == 200
        patched = client.patch(f"/api/v1/customers/{customer_id}", json={"industry": "Retail"},
                               headers={**headers, "If-Match": '"1"'})
        assert patched.status_code == 200, patched.text
        assert client.get("/api/v1/deals", headers=headers).status_code == 200
        once, body = {**headers, "Idempotency-Key": "citus-form-1"}, {"name": unique("Once "), "email": "o@example.cn"}
        first = client.post("/api/v1/customers", json=body, headers=once)
        again = client.post("/api/v1/customers", json=body, headers=once)
        assert first.status_code == 201 and again.json()["id"] == first.json()["id"], again.text


def listed() -> dict[str, dict[str, dict[str, str]]]:
    return json.loads(LISTED.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_every_statement_on_a_distributed_table_names_its_tenant(pg_db: Database, capture: Capture,
                                                                 mail_env: None, sink: tuple[Sink, int]) -> None:
    with capture.during("tenants and users"):
        world = build_world(pg_db)
    sales_flow(pg_db, world, capture)
    jobs_flow(pg_db, world, capture)
    service_mail_flow(pg_db, world, capture, sink[1])
    records_flow(pg_db, world, capture)
    webhook_flow(pg_db, world, capture)
    api_flow(pg_db, world, capture)

    fan_outs = {reading.key: (reading, step) for reading, step in capture.readings.values() if reading.fans_out}
    kinds = {(reading.kind, table) for reading, _step in capture.readings.values() for table in reading.tables}
    # the flows reached the database through every path: reads, the unit of work's writes, Core deletes
    assert {("select", "customers"), ("insert", "customers"), ("update", "customers"), ("update", "opportunities"),
            ("delete", "api_idempotency_keys"), ("insert", "sla_escalations")} <= kinds, sorted(kinds)
    known = listed()
    allowed, remaining = known["allowed"], known["remaining"]
    new = {key: value for key, value in fan_outs.items() if key not in allowed and key not in remaining}
    report = "\n".join(
        f'  "{key}": {{"step": "{step}", "tables": "{", ".join(sorted(reading.unpinned))}", '
        f'"sql": {json.dumps(reading.shape[:600], ensure_ascii=False)}}},'
        for key, (reading, step) in sorted(new.items(), key=lambda item: item[1][1]))
    assert not new, (f"{len(new)} statement shape(s) on distributed tables without a tenant_id equality (they "
                     f"would go to every Citus shard; decision 0057):\n{report}")
    gone = sorted(set(remaining) - set(fan_outs))
    assert not gone, f"fixed, or no longer issued: take these off 'remaining' in {LISTED.name}: {gone}"
