"""The FastAPI application behind ``/api``: routers, problem handlers, rate-limit headers, OpenAPI.

``/api/openapi.json`` (OpenAPI 3.1) and ``/api/docs`` need no token; every data endpoint does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_api import (
    activities,
    case_files,
    case_timeline,
    cases,
    consent,
    contacts,
    customer_tiers,
    customers,
    deals,
    imports,
    merges,
    notifications,
    orders,
    problems,
    products,
    reports,
    segments,
    tasks,
    users,
    v1,
)
from crm_api.ratelimit import RateDecision, make_rate_limiter
from crm_core import __version__, logs
from crm_core.config import api_rate_limit, jobs_queue_name, redis_url
from crm_core.db import Database
from crm_core.metrics import API_REQUEST_SECONDS

DESCRIPTION = """
Kestrel CRM over HTTP: the same records, rules and audit trail as the pages.

**Authentication.** Create a personal token on *My account* (shown once) and send
`Authorization: Bearer kst_…`. A token acts as its user, with the user's role and visibility
(a rep sees their own customers; an analyst writes nothing) and its scope (`read` or
`read_write`). Revoking it, or deactivating its user, stops it at once.

**Errors** are RFC 9457 `application/problem+json` with a stable `code`; `detail` and the
field messages of a 422 are in the language of `Accept-Language` (`en` or `zh-CN`; else the
token user's language).

**Lists** are paged by cursor: `limit` (1–100, default 50), then `after=<next_cursor>`.
`include_total=true` adds a count, capped at 1,000 (`total_capped`).

**Writes.** Every record carries `version` and GET answers `ETag: "<version>"`. PATCH,
DELETE (archive) and restore need `If-Match: "<version>"` (PATCH also accepts `version` in
the body); without it 428, when stale 412 with who changed what and when. POST accepts
`Idempotency-Key`: the same key and body within 24 h replay the first answer
(`Idempotent-Replayed: true`).

**Rate limit** per token (default 100 requests per 10 s): `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset` on every answer, `Retry-After` on 429.
"""


class RateLimitHeaders:
    """Adds the token's ``RateLimit-*`` headers (set on the request by authentication) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            decision = scope.get("state", {}).get("rate_limit")
            if message["type"] == "http.response.start" and isinstance(decision, RateDecision):
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()
                         if name.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestMetrics:
    """Times every API request into ``kestrel_api_request_seconds`` by route template (``/v1/customers/{id}``,
    never the id itself), method and status; an unmatched path counts as ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            with logs.bound(request_id=secrets.token_hex(6)):  # on every line logged while it is answered
                await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            API_REQUEST_SECONDS.labels(route=route, method=scope["method"], status=str(status)).observe(
                time.perf_counter() - started)


DOCS_ASSETS = "/docs-assets"
"""Where /api/docs loads Swagger UI's files from (under the API's mount: /api/docs-assets/…)."""


def create_api(database: Callable[[], Database], *, rate_limit: tuple[int, float] | None = None) -> FastAPI:
    """The API app; ``database`` returns the process's :class:`Database` when a route first needs it."""
    # Swagger UI's script and stylesheet come from this host (fastapi-offline's copy), not from a CDN: the docs
    # work on an intranet without internet access, and the page's policy names no other origin
    api = FastAPIOffline(title="Kestrel CRM API", version=__version__, description=DESCRIPTION,
                         openapi_url="/openapi.json", docs_url="/docs", redoc_url=None, static_url=DOCS_ASSETS)
    api.state.database = database
    api.state.rate_limiter = make_rate_limiter(*(rate_limit or api_rate_limit()), redis_url(), jobs_queue_name())
    problems.install_problem_handlers(api)
    api.include_router(v1.router)
    api.include_router(customers.router)
    api.include_router(customer_tiers.customers_router)
    api.include_router(customer_tiers.router)
    api.include_router(contacts.router)
    api.include_router(consent.customers_router)
    api.include_router(consent.router)
    api.include_router(merges.customers_router)
    api.include_router(merges.contacts_router)
    api.include_router(products.router)
    api.include_router(activities.router)
    api.include_router(tasks.router)
    api.include_router(deals.router)
    api.include_router(users.router)
    api.include_router(orders.router)
    api.include_router(reports.router)
    api.include_router(cases.router)
    api.include_router(case_files.router)
    api.include_router(case_files.upload_router)
    api.include_router(case_timeline.router)
    api.include_router(segments.router)
    api.include_router(notifications.router)
    api.include_router(imports.upload_router)
    api.include_router(imports.router)
    api.add_middleware(RateLimitHeaders)
    api.add_middleware(RequestMetrics)
    _document_problems(api)
    return api


def _document_problems(api: FastAPI) -> None:
    """OpenAPI: error answers are ``application/problem+json`` only; list pages get examples from their items."""
    original = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        document = original()
        schemas = document.get("components", {}).get("schemas", {})
        for name, schema in schemas.items():  # a list page's example: one item, the item schema's own example
            item = schemas.get(name.removeprefix("ListPage_").removesuffix("_"), {})
            if name.startswith("ListPage_") and item.get("examples"):
                schema["examples"] = [{"data": item["examples"][:1], "next_cursor": "eyJyIjoiY3VzdG9tZXJzIn0",
                                       "has_more": True, "total": None, "total_capped": False}]
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "header" and parameter.get("name", "").lower() == "if-match":
                        # a strong tag of the version; without a body to carry `version`, it is required (428)
                        parameter["schema"] = {"type": "string", "pattern": '^(W/)?"[0-9]+"$', "examples": ['"3"']}
                        parameter["required"] = "version" not in _body_properties(operation, schemas)
                for code, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if code[:1] in "45" and problems.PROBLEM_MEDIA_TYPE in content:
                        content.pop("application/json", None)
                    elif code == "422" and "application/json" in content:
                        answer["content"] = {problems.PROBLEM_MEDIA_TYPE: {
                            "schema": {"$ref": "#/components/schemas/Problem"}}}
        api.openapi_schema = document
        return document

    api.openapi = openapi  # type: ignore[method-assign]


def _body_properties(operation: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """The property names of an operation's JSON body (its schema is a reference to a component)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    reference = str(content.get("schema", {}).get("$ref", ""))
    return set(schemas.get(reference.rsplit("/", 1)[-1], {}).get("properties", {})) if reference else set()
