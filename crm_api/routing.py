"""The route class of every resource router: JSON bodies only (415), and ``Idempotency-Key`` on POST.

``APIRouter(route_class=ApiRoute)`` wraps each route's handler:

1. A request with a body to a route that takes one: any other media type than JSON is 415.
2. A POST carrying ``Idempotency-Key`` authenticates first (the key belongs to the token),
   then claims the key (``crm_core.services.idempotency``): the same key and body within
   24 h replays the first answer (with ``Idempotent-Replayed: true``); the same key with
   another body, path or method is a 422; a key whose first request is still running is a
   409. The answer is stored unless it is a 5xx, 401, 409 or 429 (those may be retried).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from crm_api.dependencies import caller_async, host_database
from crm_api.problems import ApiProblem, answer_for
from crm_core.services import idempotency
from crm_core.services.idempotency import ClaimOutcome, StoredResponse

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("content-type", "location", "etag")
NOT_STORED = {401, 409, 429}


def is_json(content_type: str | None) -> bool:
    """``application/json`` or any ``application/…+json`` (parameters such as charset allowed)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def has_body(request: Request) -> bool:
    """The request carries a body (a length above zero, or chunks): a route whose body is optional may get none."""
    length = request.headers.get("content-length", "0").strip()
    return "transfer-encoding" in request.headers or not length.isdigit() or int(length) > 0


def request_hash(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for a key: method, path and the JSON body (key order and spacing aside)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class ApiRoute(APIRoute):
    """An API route with the JSON-body rule and idempotent POSTs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route(request: Request) -> Response:
            if takes_body and has_body(request) and not is_json(request.headers.get("content-type")):
                raise ApiProblem(415, "unsupported_media_type", "api.error.unsupported_media_type")
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if request.method != "POST" or key is None:
                return await handler(request)
            return await idempotent(request, key, handler)

        return route


async def idempotent(request: Request, key: str, handler: Callable[[Request], Coroutine[Any, Any, Response]]
                     ) -> Response:
    """Run a POST under its idempotency key (see the module docstring)."""
    if not key.strip() or len(key) > idempotency.MAX_KEY_LENGTH:
        raise ApiProblem(400, "invalid_idempotency_key", "api.error.invalid_idempotency_key",
                         max=idempotency.MAX_KEY_LENGTH)
    found = await caller_async(request)
    body = await request.body()
    db = host_database(request)
    claim = await run_in_threadpool(
        lambda: idempotency.claim_key(
            db, tenant_id=found.actor.tenant_id, token_id=found.token_id, key=key, method=request.method,
            path=request.url.path, request_hash=request_hash(request.method, request.url.path, body)))
    if claim.outcome is ClaimOutcome.IN_FLIGHT:
        raise ApiProblem(409, "idempotency_key_in_flight", "api.error.idempotency_in_flight")
    if claim.outcome is ClaimOutcome.KEY_REUSED:
        raise ApiProblem(422, "idempotency_key_reused", "api.error.idempotency_key_reused")
    if claim.outcome is ClaimOutcome.REPLAY:
        assert claim.stored is not None
        headers = {**claim.stored.headers, REPLAYED_HEADER: "true"}
        return Response(claim.stored.body.encode(), status_code=claim.stored.status, headers=headers)
    assert claim.claim_id is not None
    claim_id, tenant_id = claim.claim_id, found.actor.tenant_id
    try:
        response = await handler(request)
    except Exception as error:
        answer = await answer_for(request, error)
        if answer is None:  # unexpected: the key is freed, the error goes on to the 500 handler
            await run_in_threadpool(idempotency.release_key, db, tenant_id, claim_id)
            raise
        response = answer
    if response.status_code >= 500 or response.status_code in NOT_STORED:
        await run_in_threadpool(idempotency.release_key, db, tenant_id, claim_id)
        return response
    kept = {name: value for name, value in response.headers.items() if name.lower() in KEPT_HEADERS}
    stored = StoredResponse(response.status_code, kept, bytes(response.body).decode())
    await run_in_threadpool(idempotency.store_response, db, tenant_id, claim_id, stored)
    return response
