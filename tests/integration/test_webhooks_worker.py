"""Webhook delivery on a REAL worker (``python -m crm_core worker``): a commit starts the delivery of
its events; a worker killed mid-run loses nothing and each ``webhook-id`` is accepted once; on
every database.

The receiver runs in the test process; the worker claims batches with a short lease (4 s) so the
test waits seconds, not minutes, for a killed worker's claim to lapse. Waits are on state.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core.db import Database, make_engine
from crm_core.jobs import queue as job_queue
from crm_core.jobs.queue import make_queue
from crm_core.jobs.service import cancel_job, submit_job
from crm_core.models.jobs import Job, JobSchedule
from crm_core.models.webhooks import WebhookAttempt, WebhookDelivery
from crm_core.services.webhooks import SubscriptionForm, create_subscription, set_allow_private_targets
from tests.conftest import database_url, private_database, reset_schema
from tests.factories import build_world, create_random_customer
from tests.http_receiver import Receiver
from tests.integration.test_jobs import _start_worker, _stop_worker

EVENTS = 100
ENDPOINTS = 3
WAIT_SECONDS = 180.0


def wait_for(what: str, condition: Callable[[], Any], log: Path) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with private_database(database_url(request.param, tmp_path)) as url:
        monkeypatch.delenv("CRM_REDIS_URL", raising=False)
        monkeypatch.delenv("CRM_JOBS_QUEUE", raising=False)
        monkeypatch.delenv("CRM_JOBS_INLINE", raising=False)
        monkeypatch.setenv("CRM_DATABASE_URL", url)
        monkeypatch.setenv("CRM_JOBS_PATH", str(tmp_path / "q.db"))
        monkeypatch.setenv("CRM_FILES_DIR", str(tmp_path / "files"))
        # a commit's dispatch request goes to the process's queue: made afresh from THIS test's settings
        # (an earlier test's queue file would hold it where no worker looks, until the minute's tick)
        monkeypatch.setattr(job_queue, "_queue", None)
        yield url


def test_a_worker_killed_mid_delivery_loses_nothing_and_each_webhook_id_is_accepted_once(
    database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    reset_schema(engine)
    db = Database(engine)
    world = build_world(db)
    set_allow_private_targets(db, world.admin, True)

    def slow_ok(_request: Any) -> int:
        time.sleep(0.01)  # a real endpoint takes a while: the kill lands mid-batch
        return 200

    receivers = [Receiver(slow_ok) for _ in range(ENDPOINTS)]
    log = tmp_path / "worker.log"
    queue = make_queue(database)

    def received() -> list[str]:
        return [request.headers["webhook-id"] for receiver in receivers for request in receiver.requests]

    worker = _start_worker(dict(os.environ), log)
    try:
        for receiver in receivers:
            create_subscription(db, world.admin, SubscriptionForm(url=receiver.url(), event_types=["customer.created"]))
        # the commit of a change queues a dispatch: no schedule needed for the first attempt
        committed = time.monotonic()
        create_random_customer(db, world.rep)
        wait_for("the first event at every endpoint", lambda: len(received()) == ENDPOINTS, log)
        assert time.monotonic() - committed < 30

        def first_recorded() -> bool:  # a worker stopped between a request and its record would hold the
            with db.system_session("test: first deliveries") as session:  # delivery's lease for two minutes
                return not session.scalar(select(func.count()).select_from(WebhookDelivery)
                                          .where(WebhookDelivery.status != "succeeded"))

        wait_for("the first deliveries recorded", first_recorded, log)
        _stop_worker(worker)

        with db.transaction(world.admin) as session:  # the next run is started by hand, with a short lease
            for schedule in session.scalars(select(JobSchedule).where(JobSchedule.kind == "webhook_dispatch")):
                schedule.enabled = False
        for _ in range(EVENTS):
            create_random_customer(db, world.rep)
        with db.system_session("test: waiting dispatches") as session:
            waiting = session.scalars(
                select(Job.id).where(Job.kind == "webhook_dispatch", Job.status == "queued")
            ).all()
        assert len(waiting) == 1  # a hundred commits, one dispatch waiting
        cancel_job(db, world.admin, waiting[0], queue=queue)

        worker = _start_worker(dict(os.environ), log)
        first_job = submit_job(db, world.admin, "webhook_dispatch", {"lease_seconds": 4}, queue=queue)
        wait_for("a third of the deliveries", lambda: len(received()) >= EVENTS * ENDPOINTS // 3, log)
        with db.system_session("test: job worker") as session:
            worker_id = session.scalar(select(Job.worker).where(Job.id == first_job))
        os.kill(int(str(worker_id).rsplit(":", 1)[1]), signal.SIGKILL)
        before_kill = len(received())
        assert before_kill < (EVENTS + 1) * ENDPOINTS  # killed mid-run

        restarts = [submit_job(db, world.admin, "webhook_dispatch", {"lease_seconds": 4}, queue=queue)]

        def all_delivered() -> bool:
            with db.system_session("test: deliveries") as session:
                left = session.scalar(
                    select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status != "succeeded")
                )
                latest = session.scalar(select(Job.status).where(Job.id == restarts[-1]))
            if left and latest in ("succeeded", "failed", "interrupted") and len(restarts) < 20:
                # what the (disabled) minute tick does: a run that ended before the dead worker's lease
                # lapsed leaves its claims to the next run
                restarts.append(submit_job(db, world.admin, "webhook_dispatch", {"lease_seconds": 4}, queue=queue))
            return left == 0

        try:
            wait_for("every delivery", all_delivered, log)
        except AssertionError as timed_out:
            with db.system_session("test: what is left") as session:
                left = session.execute(
                    select(WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at,
                           WebhookDelivery.lease_until, func.count())
                    .where(WebhookDelivery.status != "succeeded")
                    .group_by(WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at,
                              WebhookDelivery.lease_until)
                ).all()
                errors = session.execute(select(WebhookAttempt.status_code, WebhookAttempt.error, func.count())
                                         .group_by(WebhookAttempt.status_code, WebhookAttempt.error)).all()
                jobs = session.execute(select(Job.id, Job.status, Job.params, Job.worker, Job.started_at,
                                              Job.finished_at).where(Job.kind == "webhook_dispatch")
                                       .order_by(Job.id)).all()
            raise AssertionError(f"{timed_out}\nleft: {left}\nattempts: {errors}\nrestarts: {len(restarts)}"
                                 f"\nfirst: {first_job}\njobs: {jobs}") from None
        with db.system_session("test: deliveries") as session:
            expected = set(session.scalars(select(WebhookDelivery.webhook_id)))
            successes = Counter(session.execute(
                select(WebhookAttempt.delivery_id).where(WebhookAttempt.status_code == 200)
            ).scalars())
        counts = Counter(received())
        assert len(expected) == (EVENTS + 1) * ENDPOINTS
        assert set(counts) == expected  # nothing lost
        assert len(successes) == len(expected) and set(successes.values()) == {1}  # one recorded success each
        resent = [webhook_id for webhook_id, times in counts.items() if times > 1]
        assert len(resent) <= 1  # only the request in flight at the kill, with its same webhook-id
    finally:
        _stop_worker(worker)
        for receiver in receivers:
            receiver.close()
        engine.dispose()
