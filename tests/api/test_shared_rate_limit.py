"""The API rate limit shared by replicas through Redis (``CRM_REDIS_URL``; ``make cluster``), and the
shared generations that keep the replicas' caches in step (``crm_core.shared``).

Runs when ``CRM_TEST_REDIS_URL`` is set (``.ci/run`` sets it); each run uses a namespace of its own
(``CRM_JOBS_QUEUE``) and deletes only its keys afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from redis import Redis

from crm_api.ratelimit import RateLimiter, RedisRateLimiter, make_rate_limiter
from crm_core import shared
from crm_core.db import Database
from tests.api.conftest import Api, build_client
from tests.factories import World
from tests.hosting import free_port
from tests.integration.test_jobs import redis_url_for_tests

WINDOW = 1_000_000.0  # windows are aligned to the Redis clock: so long that four requests never straddle two


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = redis_url_for_tests()
    name = f"kestrel-test-{secrets.token_hex(4)}"
    monkeypatch.setenv("CRM_REDIS_URL", url)
    monkeypatch.setenv("CRM_JOBS_QUEUE", name)
    yield name
    client = Redis.from_url(url)
    for key in client.scan_iter(f"{name}.*"):
        client.delete(key)
    client.close()


def test_two_api_processes_share_one_limit_per_token(db: Database, world: World, namespace: str) -> None:
    # two apps, as two replicas build them from the same settings: each its own limiter and Redis client
    with build_client(db, rate_limit=(3, WINDOW)) as first, build_client(db, rate_limit=(3, WINDOW)) as second:
        assert isinstance(first.app.routes[0].app.state.rate_limiter, RedisRateLimiter)  # type: ignore[attr-defined]
        api = Api(first, db)
        headers, other = api.headers(world.rep), api.headers(world.rep)
        answers = [client.get("/api/v1/customers", headers=headers) for client in (first, second, first, second)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        refused = answers[-1]
        assert refused.json()["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= WINDOW
        assert int(refused.headers["ratelimit-reset"]) == int(refused.headers["retry-after"])
        assert second.get("/api/v1/customers", headers=other).headers["ratelimit-remaining"] == "2"  # its own count


def test_without_redis_each_process_counts_alone_and_generations_stay_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_REDIS_URL", raising=False)
    assert isinstance(make_rate_limiter(3, 10.0, None), RateLimiter)
    before = shared.generation("test.local")
    shared.bump("test.local")
    assert shared.generation("test.local") == before + 1


def test_a_generation_bumped_in_one_process_is_seen_by_another(namespace: str) -> None:
    url = redis_url_for_tests()
    name = "filter_choices.7"
    assert shared.generation(name) == 0
    shared.bump(name)
    other_process = Redis.from_url(url)  # what another replica's client reads
    assert int(other_process.get(f"{namespace}.generation.{name}") or 0) == 1
    other_process.incr(f"{namespace}.generation.{name}")  # the other replica creates a customer
    other_process.close()
    assert shared.generation(name) == 2  # this process now misses its cached choices


def test_when_redis_does_not_answer_requests_pass_and_caches_fall_back_on_their_ttl(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    silent = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    monkeypatch.setenv("CRM_REDIS_URL", silent)
    limiter = make_rate_limiter(1, 10.0, silent)
    assert isinstance(limiter, RedisRateLimiter)
    decisions = [limiter.hit(7), limiter.hit(7)]
    assert all(d.allowed and d.remaining == 1 for d in decisions)  # not counted, not refused
    shared.bump("test.silent")
    assert shared.generation("test.silent") == 0
    assert "Redis did not answer" in caplog.text
