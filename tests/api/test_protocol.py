"""The HTTP rules every endpoint shares: rate limit, media types, no 500 on malformed input, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from crm_api.ratelimit import RateLimiter
from crm_core.db import Database
from tests.api.conftest import Api, build_client
from tests.factories import World, create_random_customer


def test_the_rate_limit_is_per_token_with_headers_and_retry_after(db: Database, world: World) -> None:
    with build_client(db, rate_limit=(3, 60.0)) as client:
        api = Api(client, db)
        headers, other = api.headers(world.rep), api.headers(world.rep)
        answers = [client.get("/api/v1/customers", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert int(refused.headers["ratelimit-reset"]) == int(refused.headers["retry-after"])
        assert client.get("/api/v1/customers", headers=other).status_code == 200  # another token, its own window
        assert client.get("/api/v1/customers/999999", headers=other).headers["ratelimit-remaining"] == "1"


def test_the_limiter_opens_a_new_window_when_the_last_one_ends() -> None:
    now = [100.0]
    limiter = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert [limiter.hit("t").allowed for _ in range(3)] == [True, True, False]
    now[0] += 9.5
    assert not limiter.hit("t").allowed and limiter.hit("t").reset_seconds == 1
    now[0] += 0.5
    decision = limiter.hit("t")
    assert (decision.allowed, decision.remaining, decision.reset_seconds) == (True, 1, 10)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
def test_a_body_that_is_not_json_is_415(api: Api, world: World, content_type: str) -> None:
    headers = api.headers(world.rep, **({"Content-Type": content_type} if content_type else {}))
    answer = api.client.post("/api/v1/customers", content=b'{"name": "X"}', headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (415, "unsupported_media_type")


MALFORMED: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/customers", b"{not json"),
    ("POST", "/api/v1/customers", b"[]"),
    ("POST", "/api/v1/customers", b"null"),
    ("POST", "/api/v1/customers", b'{"name": 12, "tags": "x", "custom_fields": []}'),
    ("POST", "/api/v1/customers", b'{"name": "' + b"x" * 5000 + b'"}'),
    ("POST", "/api/v1/customers", b'{"name": "\\u0000\\ud800"}'),
    ("POST", "/api/v1/customers", b'{"name": "Ok", "owner_id": 99999999999999999999}'),
    ("POST", "/api/v1/customers", b'{"name": "Ok", "owner_id": 987654}'),
    ("PATCH", "/api/v1/customers/1", b'{"version": "x"}'),
    ("PATCH", "/api/v1/customers/99999999999", b'{"name": "x", "version": 1}'),
    ("GET", "/api/v1/customers?created_from=2026-13-01", None),
    ("GET", "/api/v1/customers?sort=password_hash", None),
    ("GET", "/api/v1/customers?search=%00%27%22--", None),
    ("GET", "/api/v1/customers?search=" + "a" * 300, None),
    ("GET", "/api/v1/customers?owner_id=-1&team_id=99999999999", None),
    ("GET", "/api/v1/customers/0", None),
    ("GET", "/api/v1/customers/abc", None),
    ("GET", "/api/v1/contacts?after=%FF%FE", None),
    ("GET", "/api/v1/contacts?search=%00", None),
    ("GET", "/api/v1/customers?industry=%00&region=%00&tag=%00", None),
    ("POST", "/api/v1/contacts", b'{"customer_id": 0, "name": "x"}'),
    ("DELETE", "/api/v1/customers/1", None),
    ("POST", "/api/v1/cases/1/merge", b'{"merged_id": 0, "merged_version": 1}'),
    ("POST", "/api/v1/cases/1/merge", b'{"merged_id": 99999999999, "merged_version": "x", "field_choices": {}}'),
    ("POST", "/api/v1/cases/1/attachments", b'{"files": []}'),
    ("GET", "/api/v1/cases/1/attachments/99999999999", None),
    ("GET", "/api/v1/cases/0/attachments", None),
    ("POST", "/api/v1/activities",
     b'{"customer_id": 1, "type": "call", "summary": "x", "occurred_at": "9999-12-31T23:00:00-05:00"}'),
    ("POST", "/api/v1/activities",
     b'{"customer_id": 1, "type": "call", "summary": "x", "occurred_at": "0001-01-01T00:00:00Z", '
     b'"next_follow_up_at": "yesterday"}'),
    ("POST", "/api/v1/activities", b'{"customer_id": 1, "type": "fax", "summary": "x", "contact_id": 2147483647}'),
    ("POST", "/api/v1/tasks", b'{"title": "x", "due_at": "0001-01-01T00:00:00+14:00"}'),
    ("POST", "/api/v1/tasks", b'{"title": "x", "customer_id": 2147483647, "assignee_id": 2147483647}'),
    ("POST", "/api/v1/tasks/1/reschedule", b'{"due_at": 12}'),
    ("POST", "/api/v1/tasks/1/complete", b'{"activity": {"type": "call", "summary": "x"}}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": "1e400"}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": NaN}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": 1e300}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": "100000000000000000000000"}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": 99999999999999999999}'),
    ("POST", "/api/v1/products", b'{"sku": "A", "name": "B", "unit_price": "-Infinity"}'),
    ("GET", "/api/v1/tasks?status=lost&order=sideways", None),
    ("POST", "/api/v1/deals", b'{"customer_id": 1, "name": "x", "amount": "1e400"}'),
    ("POST", "/api/v1/deals", b'{"customer_id": 1, "name": "x", "amount": NaN, "probability": -1}'),
    ("POST", "/api/v1/deals", b'{"customer_id": 1, "name": "x", "stage_id": 2147483647, "pipeline_id": 2147483647}'),
    ("POST", "/api/v1/deals", b'{"customer_id": 1, "name": "x", "expected_close_date": "9999-12-31", '
                              b'"closed_on": "0001-01-01", "owner_id": 2147483647}'),
    ("POST", "/api/v1/deals/1/stage", b'{"stage_id": 2147483647}'),
    ("POST", "/api/v1/deals/1/lost", b'{"lost_reason": ""}'),
    ("PATCH", "/api/v1/deals/1", b'{"probability": 1000, "customer_id": null, "version": 1}'),
    ("GET", "/api/v1/deals?after=abc&sort=amount", None),
    ("GET", "/api/v1/deals?search=%00&closed_since=2026-02-30", None),
    ("POST", "/api/v1/orders", b'{"customer_id": 1, "lines": [{"product_id": 2147483647, "quantity": "1e400"}]}'),
    ("POST", "/api/v1/orders", b'{"customer_id": 1, "lines": [], "ordered_at": "9999-12-31T23:00:00-05:00"}'),
    ("POST", "/api/v1/orders", b'{"customer_id": 1, "lines": [{"product_id": 1, "quantity": -1, '
                               b'"unit_price": "-Infinity"}], "currency": "\\u20ac\\u20ac\\u20ac\\u20ac"}'),
    ("GET", "/api/v1/orders?ordered_from=2026-02-30&order_number=%00", None),
    ("POST", "/api/v1/cases", b'{"customer_id": 1, "subject": "<script>x</script>", "priority": "urgent"}'),
    ("POST", "/api/v1/cases", b'{"customer_id": 1, "subject": "x", "contact_id": 2147483647, '
                              b'"assignee_id": 2147483647}'),
    ("GET", "/api/v1/cases?status=lost&search=%00", None),
    ("GET", "/api/v1/segments/2147483647/members", None),
    ("GET", "/api/v1/segments?after=%FF", None),
    ("GET", "/api/v1/segments/1/export?format=pdf", None),
    ("POST", "/api/v1/imports", b'{"entity": "customers"}'),
    ("GET", "/api/v1/imports/2147483647/rejected-rows", None),
    ("GET", "/api/v1/reports/funnel?since=2026-13-01&owner_id=-1", None),
    ("GET", "/api/v1/reports/funnel?pipeline_id=2147483647", None),
    ("GET", "/api/v1/reports/dashboard?today=9999-12-31&period=year", None),
    ("POST", "/api/v1/users", b'{"username": "x", "full_name": "y", "role": "root", "password": "p"}'),
    ("POST", "/api/v1/users", b'{"username": "\\u0000", "full_name": "y", "role": "rep", '
                              b'"password": "Kestrel-2026-ok", "team_id": 2147483647}'),
    ("PATCH", "/api/v1/users/1", b'{"team_id": 2147483647, "version": 1}'),
]


@pytest.mark.parametrize(("method", "path", "body"), MALFORMED)
def test_malformed_input_is_a_4xx_problem_never_a_500(api: Api, world: World, method: str, path: str,
                                                      body: bytes | None) -> None:
    create_random_customer(api.db, world.admin)  # an admin may write everything: the input itself is judged
    headers = api.headers(world.admin, **{"Content-Type": "application/json"})
    answer = api.client.request(method, path, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_is_3_1_with_examples_and_problem_answers(api: Api) -> None:
    document = api.client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert {"CustomerOut", "CustomerCreate", "CustomerPatch", "ContactOut", "ProductOut", "Problem"} <= set(schemas)
    for name, schema in schemas.items():
        assert schema.get("examples"), name
    assert document["components"]["securitySchemes"]["PersonalToken"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.endswith("/status"):
                continue
            assert operation.get("security"), (method, path)
            for code in ("401", "429", "500"):
                answer = operation["responses"][code]
                assert list(answer["content"]) == ["application/problem+json"], (method, path, code)
            assert "Accept-Language" in operation["responses"].get("422", {}).get("description", ""), (method, path)
            if_match = [p for p in operation.get("parameters", []) if p["name"].lower() == "if-match"]
            # an entry of the do-not-contact list and a case's file are never edited, only added or removed:
            # no version to match
            unversioned = path.startswith("/v1/do-not-contact/") or path.endswith("/attachments/{attachment_id}")
            if (method == "delete" and not unversioned) or path.endswith(("/restore", "/complete", "/reopen",
                                                                          "/release")):
                assert if_match and if_match[0]["required"], (method, path)
            if method == "patch":  # `version` in the body may stand in for it
                assert if_match and not if_match[0]["required"], (method, path)


def test_the_docs_page_loads_the_document_behind_the_api_mount(api: Api) -> None:
    page = api.client.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text
