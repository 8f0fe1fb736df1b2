"""The API through the real host (``python -m server``): the /api mount, its docs, a token's whole round trip.

One host per module on a SQLite file (the contract tests run the app in-process on every database).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from crm_core.services.api_tokens import issue_api_token
from crm_core.services.webhooks import SubscriptionForm, create_subscription, set_allow_private_targets
from tests.factories import World, build_world
from tests.hosting import Answer, Host, start_host
from tests.http_receiver import Receiver
from tests.integration.test_jobs import _start_worker, _stop_worker


@pytest.fixture(scope="module")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The host's directory and environment (a job worker for it gets the same)."""
    directory = tmp_path_factory.mktemp("api-host")
    return directory, {"CRM_DATABASE_URL": f"sqlite:///{directory / 'crm.db'}",
                       "CRM_JOBS_PATH": str(directory / "jobs.db"), "CRM_REDIS_URL": "",
                       "CRM_COOKIE_KEY": "api-host-test-cookie-key-0123456789", "CRM_API_RATE_LIMIT": "5/60"}


@pytest.fixture(scope="module")
def live(live_env: tuple[Path, dict[str, str]]) -> Iterator[tuple[Host, Database, World]]:
    directory, env = live_env
    engine = make_engine(env["CRM_DATABASE_URL"])
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    host = start_host(env, directory / "server.log", cwd=directory)
    yield host, db, world
    host.stop()
    engine.dispose()


def call(host: Host, method: str, path: str, *, token: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(host.url + path, data=data, method=method, headers={
        **({"Authorization": f"Bearer {token}"} if token else {}),
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def test_the_docs_and_the_document_are_served_behind_the_mount_without_a_token(live: tuple[Host, Database, World]
                                                                              ) -> None:
    host, _, _ = live
    document = host.get("/api/openapi.json")
    assert document.status == 200 and document.json()["openapi"].startswith("3.1")
    assert document.json()["servers"] == [{"url": "/api"}]
    docs = host.get("/api/docs")
    assert docs.status == 200 and "/api/openapi.json" in docs.body.decode()
    # Swagger UI from this host, not a CDN: the page works on an intranet
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.body.decode())
    assert assets and all(url.startswith("/api/docs-assets/") for url in assets), assets
    for url in assets:
        answer = host.get(url)
        assert answer.status == 200 and answer.body, url
    refused = host.get("/api/v1/customers")
    assert (refused.status, refused.content_type) == (401, "application/problem+json")


def test_a_website_form_creates_a_lead_once_and_reads_it_back(live: tuple[Host, Database, World]) -> None:
    host, db, world = live
    token = issue_api_token(db, world.rep, name="website", scope="read_write", expires_in_days=30).secret
    lead = {"name": "Website lead Ltd", "email": "lead@website.example", "source": "website"}
    created = call(host, "POST", "/api/v1/customers", token=token, body=lead, headers={"Idempotency-Key": "form-1"})
    assert created.status == 201, created.body
    replay = call(host, "POST", "/api/v1/customers", token=token, body=lead, headers={"Idempotency-Key": "form-1"})
    assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created.json()["id"]
    location = created.headers["Location"]
    assert location.startswith(host.url + "/api/v1/customers/")
    got = call(host, "GET", location.removeprefix(host.url), token=token)
    assert got.json()["email"] == "lead@website.example" and got.headers["ETag"] == '"1"'
    assert int(got.headers["RateLimit-Remaining"]) == 2 and got.headers["RateLimit-Limit"] == "5"
    call(host, "GET", "/api/v1/customers", token=token)
    call(host, "GET", "/api/v1/customers", token=token)
    limited = call(host, "GET", "/api/v1/customers", token=token)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0


def test_a_line_feed_in_the_path_is_answered_by_the_api(live: tuple[Host, Database, World]) -> None:
    """``%0A`` in an id reaches the API's router (problem+json), not the UI host's plain-text 404."""
    host, db, world = live
    token = issue_api_token(db, world.admin, name="line feed", scope="read", expires_in_days=None).secret
    for path in ("/api/v1/customers/1%0A2", "/api/v1/custo%0Amers"):
        answer = call(host, "GET", path, token=token)
        assert answer.content_type == "application/problem+json", (path, answer.status, answer.body[:200])
        assert answer.status in (404, 422)


def test_a_website_form_lead_reaches_a_chat_hook_signed_through_a_real_worker(
        live: tuple[Host, Database, World], live_env: tuple[Path, dict[str, str]]) -> None:
    """The issue's "done when": a website form posts a lead with a token; the admin's webhook subscription
    (as the Webhooks page makes it) gets a signed ``customer.created`` from a real job worker."""
    host, db, world = live
    directory, env = live_env
    chat = Receiver()
    set_allow_private_targets(db, world.admin, True)  # the chat hook listens on loopback here
    _subscription_id, secret = create_subscription(db, world.admin, SubscriptionForm(
        url=chat.url("/slack-like"), event_types=["customer.created"], description="sales chat"))
    worker = _start_worker({**os.environ, **env}, directory / "worker.log")
    try:
        token = issue_api_token(db, world.rep, name="website form", scope="read_write", expires_in_days=30).secret
        lead = {"name": "官网线索 有限公司", "email": "hello@lead.example", "source": "website"}
        created = call(host, "POST", "/api/v1/customers", token=token, body=lead,
                       headers={"Idempotency-Key": "website-2"})
        assert created.status == 201, created.body
        deadline = time.monotonic() + 60
        while not chat.requests and time.monotonic() < deadline:
            time.sleep(0.1)  # waits on state: the delivery arriving
        assert chat.requests, (directory / "worker.log").read_text(errors="replace")[-2000:]
        [request] = chat.requests
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "customer.created"
        assert payload["data"]["id"] == created.json()["id"]
        assert payload["data"]["record"]["name"] == "官网线索 有限公司"
    finally:
        _stop_worker(worker)
        chat.close()
