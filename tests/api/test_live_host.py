"""The API through the real host (``python -m server``): the /api mount, its docs, a token's whole round trip.

One host per module on a SQLite file (the contract tests run the app in-process on every database).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from crm_core.services.api_tokens import issue_api_token
from tests.factories import World, build_world
from tests.hosting import Answer, Host, start_host


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Host, Database, World]]:
    directory = tmp_path_factory.mktemp("api-host")
    url = f"sqlite:///{directory / 'crm.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    host = start_host({"CRM_DATABASE_URL": url, "CRM_JOBS_PATH": str(directory / "jobs.db"),
                       "CRM_COOKIE_KEY": "api-host-test-cookie-key-0123456789", "CRM_API_RATE_LIMIT": "5/60"},
                      directory / "server.log", cwd=directory)
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
