"""Webhooks against a local receiver, on every database: the outbox, signatures, retries (frozen
time), disabling, rotation, refused targets, replay and tenant isolation.

The receiver is an ``http.server`` in a thread of the test process; the dispatcher runs in the
test too, with ``now`` passed in (never a sleep). Loopback targets are allowed per tenant, as the
admin setting does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import AuditEvent, PipelineStage, utcnow
from crm_core.models.jobs import JobSchedule
from crm_core.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEvent
from crm_core.queries.webhooks import (
    DeliveryFilters,
    delivery_attempts,
    disabled_for_failures,
    list_deliveries,
    list_subscriptions,
)
from crm_core.services.customers import CustomerInput, archive_customer, create_customer, update_customer
from crm_core.services.deals import OpportunityInput, create_opportunity, move_stage
from crm_core.services.tasks import TaskInput, complete_task, create_task
from crm_core.services.webhooks import (
    SubscriptionForm,
    create_subscription,
    replay_delivery,
    replay_range,
    rotate_secret,
    send_ping,
    set_allow_private_targets,
    set_enabled,
)
from crm_core.webhooks.dispatch import claim_due, dispatch_due
from tests.conftest import sent_statements
from tests.factories import World, build_world, create_random_customer
from tests.http_receiver import Receiver


@pytest.fixture
def world(db: Database) -> World:
    world = build_world(db)
    set_allow_private_targets(db, world.admin, True)  # the receiver is on loopback
    return world


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def subscribe(db: Database, admin: Actor, url: str, *types: str) -> tuple[int, str]:
    return create_subscription(db, admin, SubscriptionForm(url=url, event_types=list(types or ["customer.*"])))


def deliveries(db: Database, **where: Any) -> list[WebhookDelivery]:
    with db.system_session("test: deliveries") as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for column, value in where.items():
            query = query.where(getattr(WebhookDelivery, column) == value)
        return list(session.scalars(query))


def now() -> dt.datetime:
    """A second ahead of the clock: MariaDB rounds stored times to the second (up, half the time)."""
    return utcnow().replace(microsecond=0) + dt.timedelta(seconds=1)


# --- the outbox ---------------------------------------------------------------------------


def test_a_committed_change_queues_one_delivery_per_subscribed_endpoint(db: Database, world: World,
                                                                       receiver: Receiver) -> None:
    first, _ = subscribe(db, world.admin, receiver.url("/a"), "customer.created")
    second, _ = subscribe(db, world.admin, receiver.url("/b"), "customer.*")
    subscribe(db, world.admin, receiver.url("/c"), "deal.won")  # not interested

    customer_id = create_random_customer(db, world.rep, name="Acme \"Trading\" & 张三")

    made = deliveries(db)
    assert sorted((d.subscription_id, d.event_type) for d in made) == sorted(
        [(first, "customer.created"), (second, "customer.created")])
    assert len({d.webhook_id for d in made}) == 2 and {d.status for d in made} == {"pending"}
    with db.system_session("test") as session:
        event = session.scalars(select(WebhookEvent)).one()
    body = json.loads(event.payload)
    assert body["type"] == "customer.created"
    assert body["data"]["id"] == customer_id and body["data"]["tenant_id"] == world.admin.tenant_id
    assert body["data"]["record"]["name"] == "Acme \"Trading\" & 张三"  # data, unescaped in JSON
    assert "email_normalized" not in body["data"]["record"]


def test_writing_an_event_never_reads_the_delivery_log(db: Database, world: World, receiver: Receiver) -> None:
    """An event costs its INSERTs whatever the log holds: the new deliveries' ids come back from the INSERT.

    (A look-up of them by tenant and webhook-id was planned on SQLite through a tenant index: every customer
    saved read every delivery its tenant had ever had, 3.3 ms per event at 2,000 and 6.6 ms at 10,000.)
    """
    subscribe(db, world.admin, receiver.url("/a"), "customer.*")
    subscribe(db, world.admin, receiver.url("/b"), "customer.created")
    create_random_customer(db, world.rep)  # a log to (not) read
    with sent_statements(db.engine) as sent:
        create_random_customer(db, world.rep)
    statements = [" ".join(statement.split()).lower() for statement, _ in sent]
    touching = [sql for sql in statements if "webhook_deliveries" in sql]
    assert touching and all(sql.startswith("insert into webhook_deliveries") for sql in touching), touching
    assert len(deliveries(db)) == 4


def test_a_rolled_back_change_fires_nothing(db: Database, world: World, receiver: Receiver) -> None:
    subscribe(db, world.admin, receiver.url(), "customer.*")
    with pytest.raises(RuntimeError), db.transaction(world.rep) as session:
        from crm_core.models import Customer

        session.add(Customer(name="Never", owner_id=world.rep.user_id))
        session.flush()  # the audit row and the outbox rows are written here …
        raise RuntimeError("… and rolled back with the customer")
    assert deliveries(db) == []
    with db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_deal_task_and_lifecycle_events_come_from_the_same_changes(db: Database, world: World,
                                                                  receiver: Receiver) -> None:
    subscribe(db, world.admin, receiver.url(), "deal.*", "task.completed", "lifecycle.changed", "customer.updated")
    customer_id = create_random_customer(db, world.rep)
    deal_id = create_opportunity(db, world.rep, OpportunityInput(customer_id=customer_id, name="Big deal"))
    with db.session(world.rep) as session:
        won = session.scalars(select(PipelineStage).where(PipelineStage.kind == "won")).first()
        assert won is not None
        from crm_core.models import Opportunity

        version = session.get(Opportunity, deal_id).version  # type: ignore[union-attr]
    move_stage(db, world.rep, deal_id, won.id, expected_version=version)
    task_id = create_task(db, world.rep, TaskInput(title="Call", customer_id=customer_id,
                                                   assignee_id=world.rep.user_id))
    complete_task(db, world.rep, task_id)
    update_customer(db, world.rep, customer_id, CustomerInput(name="Renamed", owner_id=world.rep.user_id,
                                                              lifecycle_stage="customer"),
                    expected_version=_customer_version(db, world, customer_id))

    types = [d.event_type for d in deliveries(db)]
    assert types.count("deal.created") == 1
    assert types.count("deal.stage_changed") == 1 and types.count("deal.won") == 1
    assert types.count("task.completed") == 1
    assert "customer.updated" in types


def _customer_version(db: Database, world: World, customer_id: int) -> int:
    from crm_core.models import Customer

    with db.session(world.admin) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.version


# --- sending -------------------------------------------------------------------------------


def test_deliveries_are_signed_and_verify_with_standard_webhooks(db: Database, world: World,
                                                                 receiver: Receiver) -> None:
    _, secret = subscribe(db, world.admin, receiver.url(), "customer.created")
    create_random_customer(db, world.rep, name="Signed Ltd", email="a@example.com")

    report = dispatch_due(db, now=now())

    assert report.succeeded == 1 and len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "customer.created" and payload["data"]["record"]["name"] == "Signed Ltd"
    assert not any(word in request.body for word in ("password", "secret", "hash"))
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY").verify(request.body, request.headers)
    (delivery,) = deliveries(db)
    assert (delivery.status, delivery.attempts, delivery.webhook_id) == ("succeeded", 1, request.headers["webhook-id"])
    with db.session(world.admin) as session:
        (attempt,) = delivery_attempts(session, delivery.id)
    assert attempt.status_code == 200 and attempt.response_body == "answer 200" and attempt.latency_ms is not None
    assert attempt.request_headers["webhook-id"] == delivery.webhook_id


def test_retries_follow_the_schedule_with_frozen_time(db: Database, world: World) -> None:
    failing = Receiver(lambda _request: 503)
    try:
        subscribe(db, world.admin, failing.url(), "customer.created")
        create_random_customer(db, world.rep)
        t0 = now()
        expected_offsets = [0, 5, 5 * 60 + 5, 35 * 60 + 5, 155 * 60 + 5, 455 * 60 + 5, 1055 * 60 + 5,
                            1655 * 60 + 5]
        for attempt, offset in enumerate(expected_offsets, start=1):
            due = t0 + dt.timedelta(seconds=offset)
            if offset:
                assert dispatch_due(db, now=due - dt.timedelta(seconds=1)).attempts == 0  # not yet
            assert dispatch_due(db, now=due).attempts == 1
            (delivery,) = deliveries(db)
            assert delivery.attempts == attempt
        assert delivery.status == "failed" and delivery.next_attempt_at is None
        assert len(failing.requests) == 8
        assert len({request.headers["webhook-id"] for request in failing.requests}) == 1  # the same id each time
        assert dispatch_due(db, now=t0 + dt.timedelta(days=3)).attempts == 0
    finally:
        failing.close()


def test_an_endpoint_failing_for_five_days_is_disabled_and_its_admins_told(db: Database, world: World) -> None:
    failing = Receiver(lambda _request: 500)
    try:
        subscription_id, _ = subscribe(db, world.admin, failing.url(), "customer.*")
        create_random_customer(db, world.rep)
        t0 = now()  # after the first change: its delivery is due by then
        for day in range(6):
            if day:
                create_random_customer(db, world.rep)
            dispatch_due(db, now=t0 + dt.timedelta(days=day))
        with db.session(world.admin) as session:
            (notice,) = disabled_for_failures(session)
            assert notice.id == subscription_id and notice.disabled_reason == "failures"
            audit = session.scalars(select(AuditEvent).where(AuditEvent.entity == "webhook_subscription",
                                                             AuditEvent.entity_id == subscription_id,
                                                             AuditEvent.action == "update")).all()
        assert any(event.changes.get("enabled") == [True, False] for event in audit)
        assert {d.status for d in deliveries(db)} <= {"failed", "cancelled"}
        create_random_customer(db, world.rep)
        assert deliveries(db, status="pending") == []  # a disabled endpoint gets nothing new
        set_enabled(db, world.admin, subscription_id, True)
        with db.session(world.admin) as session:
            assert disabled_for_failures(session) == []
    finally:
        failing.close()


def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(db: Database, world: World,
                                                                        receiver: Receiver) -> None:
    subscription_id, old = subscribe(db, world.admin, receiver.url(), "customer.created")
    new = rotate_secret(db, world.admin, subscription_id)
    assert new != old
    create_random_customer(db, world.rep)
    dispatch_due(db, now=now())
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)
    with db.system_session("test") as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.entity == "webhook_subscription")).all()
    assert not any(old in json.dumps(event.changes) or new in json.dumps(event.changes) for event in audit)

    create_random_customer(db, world.rep)
    (claimed,) = claim_due(db, now=now() + dt.timedelta(hours=25))
    assert claimed.secrets == [new]  # the old secret expired


# --- targets ----------------------------------------------------------------------------------


def test_private_targets_are_refused_unless_the_tenant_allows_them(db: Database, world: World,
                                                                  receiver: Receiver) -> None:
    set_allow_private_targets(db, world.admin, False)
    for url in (receiver.url(), "http://10.0.0.8/hook", "http://169.254.169.254/latest/meta-data",
                "http://[::1]:8080/x", "http://localhost/x"):
        with pytest.raises(ValidationFailed) as refused:
            subscribe(db, world.admin, url)
        assert refused.value.errors["url"][0] == "webhooks.error.url_private"

    set_allow_private_targets(db, world.admin, True)
    subscribe(db, world.admin, receiver.url().replace("127.0.0.1", "localhost"), "customer.created")
    set_allow_private_targets(db, world.admin, False)  # e.g. the name now resolves elsewhere: judged at send time
    create_random_customer(db, world.rep)
    report = dispatch_due(db, now=now())
    assert report.attempts == 1 and report.succeeded == 0 and receiver.requests == []
    with db.system_session("test") as session:
        error = session.scalar(select(WebhookAttempt.error))
    assert error is not None and error.startswith("refused:")


# --- claims, replay ---------------------------------------------------------------------------------


def test_two_dispatchers_never_claim_the_same_delivery(db: Database, world: World, receiver: Receiver) -> None:
    subscribe(db, world.admin, receiver.url(), "customer.created")
    for _ in range(5):
        create_random_customer(db, world.rep)
    moment = now()
    first = claim_due(db, now=moment, limit=3)
    second = claim_due(db, now=moment, limit=10)
    third = claim_due(db, now=moment, limit=10)
    assert len(first) == 3 and len(second) == 2 and third == []
    assert not {d.delivery_id for d in first} & {d.delivery_id for d in second}
    # a claim that lapses (its worker was killed) is taken again, with the same webhook-id
    again = claim_due(db, now=moment + dt.timedelta(minutes=3), limit=10)
    assert sorted(d.webhook_id for d in again) == sorted(d.webhook_id for d in first + second)


def test_replay_of_one_delivery_and_of_a_time_range(db: Database, world: World, receiver: Receiver) -> None:
    subscription_id, _ = subscribe(db, world.admin, receiver.url(), "customer.created")
    for _ in range(3):
        create_random_customer(db, world.rep)
    dispatch_due(db, now=now())
    original = deliveries(db)[0]

    replayed_id = replay_delivery(db, world.admin, original.id)
    count = replay_range(db, world.admin, subscription_id, now() - dt.timedelta(hours=1), now() + dt.timedelta(hours=1))
    dispatch_due(db, now=now())

    assert count == 3
    assert len(receiver.requests) == 3 + 1 + 3
    replayed = [d for d in deliveries(db) if d.id == replayed_id][0]
    assert replayed.replay_of_id == original.id and replayed.webhook_id != original.webhook_id
    assert replayed.status == "succeeded"
    bodies = [request.body for request in receiver.requests]
    assert bodies.count(bodies[0]) == 3  # the same event body each time
    ping_id = send_ping(db, world.admin, subscription_id)
    dispatch_due(db, now=now())
    assert json.loads(receiver.requests[-1].body)["type"] == "webhook.ping"
    with db.session(world.admin) as session:
        page = list_deliveries(session, subscription_id, filters=DeliveryFilters(event_type="webhook.ping"))
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "webhook_subscription")).all()
    assert [row.id for row in page.items] == [ping_id]
    assert actions.count("replay") == 2 and actions.count("ping") == 1 and "create" in actions


def test_the_first_subscription_gives_the_tenant_its_dispatch_schedule(db: Database, world: World,
                                                                       receiver: Receiver) -> None:
    subscribe(db, world.admin, receiver.url())
    subscribe(db, world.admin, receiver.url("/2"))
    with db.system_session("test") as session:
        schedules = session.scalars(select(JobSchedule).where(JobSchedule.kind == "webhook_dispatch")).all()
    assert [(s.tenant_id, s.minute, s.hour, s.enabled) for s in schedules] == [
        (world.admin.tenant_id, "*", "*", True)]


# --- who sees and changes what ----------------------------------------------------------------------


def test_tenant_b_never_sees_or_changes_tenant_a_webhooks(db: Database, world: World, receiver: Receiver) -> None:
    subscription_id, _ = subscribe(db, world.admin, receiver.url(), "customer.created")
    create_random_customer(db, world.rep)
    (delivery,) = deliveries(db)

    with db.session(world.other_admin) as session:
        assert list_subscriptions(session) == []
        assert list_deliveries(session, subscription_id).items == []
        assert delivery_attempts(session, delivery.id) == []
    for change in (
        lambda: replay_delivery(db, world.other_admin, delivery.id),
        lambda: rotate_secret(db, world.other_admin, subscription_id),
        lambda: send_ping(db, world.other_admin, subscription_id),
        lambda: set_enabled(db, world.other_admin, subscription_id, False),
    ):
        with pytest.raises(NotFound):
            change()
    # B's own changes never reach A's subscription
    create_random_customer(db, world.other_admin)
    assert len(deliveries(db)) == 1


def test_only_admins_manage_webhooks_or_read_their_log(db: Database, world: World, receiver: Receiver) -> None:
    subscription_id, _ = subscribe(db, world.admin, receiver.url())
    create_random_customer(db, world.rep)  # a rep's change still makes its event
    dispatch_due(db, now=now())
    (delivery,) = deliveries(db)
    for actor in (world.manager, world.rep, world.analyst):
        with db.session(actor) as session:  # payloads carry records these roles may not all see
            assert list_subscriptions(session) == []
            assert list_deliveries(session, subscription_id).items == []
            assert delivery_attempts(session, delivery.id) == []
        with pytest.raises(AccessDenied):
            subscribe(db, actor, receiver.url("/mine"))
        with pytest.raises(AccessDenied):
            rotate_secret(db, actor, subscription_id)
        with pytest.raises(AccessDenied):
            set_allow_private_targets(db, actor, True)


def test_an_archive_makes_customer_archived(db: Database, world: World, receiver: Receiver) -> None:
    subscribe(db, world.admin, receiver.url(), "customer.archived")
    customer_id = create_customer(db, world.rep, CustomerInput(name="Gone Ltd", owner_id=world.rep.user_id))
    archive_customer(db, world.rep, customer_id, expected_version=_customer_version(db, world, customer_id))
    assert [d.event_type for d in deliveries(db)] == ["customer.archived"]


def test_a_success_resets_the_failure_clock(db: Database, world: World) -> None:
    answers = iter([500, 200] + [500] * 20)
    flapping = Receiver(lambda _request: next(answers))
    try:
        subscription_id, _ = subscribe(db, world.admin, flapping.url(), "customer.created")
        create_random_customer(db, world.rep)
        t0 = now()  # after the change: its delivery is due by then
        dispatch_due(db, now=t0)  # fails: failing since t0
        dispatch_due(db, now=t0 + dt.timedelta(seconds=5))  # the retry succeeds: the clock stops
        with db.session(world.admin) as session:
            (row,) = list_subscriptions(session)
        assert row.failing_since is None
        create_random_customer(db, world.rep)
        dispatch_due(db, now=t0 + dt.timedelta(days=4))  # fails again: failing since day 4
        create_random_customer(db, world.rep)
        dispatch_due(db, now=t0 + dt.timedelta(days=6))  # 2 days of failures, not 5: still enabled
        with db.session(world.admin) as session:
            (row,) = list_subscriptions(session)
        assert (row.id, row.enabled, row.failing_since) == (subscription_id, True, t0 + dt.timedelta(days=4))
    finally:
        flapping.close()


def test_the_log_keeps_thirty_days_of_finished_deliveries_and_every_pending_one(db: Database, world: World,
                                                                               receiver: Receiver) -> None:
    from crm_core.models.webhooks import WebhookAttempt
    from crm_core.webhooks.retention import RETENTION, prune_history

    subscribe(db, world.admin, receiver.url(), "customer.created")
    for _ in range(3):
        create_random_customer(db, world.rep)
    dispatch_due(db, now=now())
    create_random_customer(db, world.rep)  # still pending: never pruned, whatever its age
    done = [d.id for d in deliveries(db, status="succeeded")]
    assert len(done) == 3 and len(deliveries(db, status="pending")) == 1
    tenant_id = world.admin.tenant_id

    assert prune_history(db, tenant_id=tenant_id, now=now()) == 0  # nothing is 30 days old yet
    assert prune_history(db, tenant_id=world.other_admin.tenant_id, now=now() + 2 * RETENTION) == 0  # not B's
    later = now() + RETENTION + dt.timedelta(days=1)
    assert prune_history(db, tenant_id=tenant_id, now=later, batch=2) == 2  # a batch at a time
    assert prune_history(db, tenant_id=tenant_id, now=later, batch=2) == 1
    assert prune_history(db, tenant_id=tenant_id, now=later) == 0
    left = deliveries(db)
    assert [d.status for d in left] == ["pending"]
    with db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == 0
        assert session.scalars(select(WebhookEvent.id)).all() == [left[0].event_id]  # its event is kept
