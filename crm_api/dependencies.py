"""What routes depend on: the database, the caller behind the bearer token, their language.

``Caller`` authenticates every request (one indexed look-up of the token's hash, its user and
tenant, then the same Actor the pages build) and counts it against the token's rate limit.
``Writer`` is a caller whose token and role may write: a read-scope token or an analyst's gets
403. Routes never filter by tenant or owner: the Actor on the session does (``crm_core.access``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from crm_api.problems import ApiProblem
from crm_api.ratelimit import Limiter
from crm_core.db import Database
from crm_core.queries.record_history import LastChange, last_change
from crm_core.services.api_tokens import TokenCaller, authenticate_token

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="PersonalToken",
    description="A personal API token (`kst_…`), created on *My account*: `Authorization: Bearer kst_…`.",
)


def host_database(request: Request) -> Database:
    """The host's database, handed to the API when it was created (see ``create_api``)."""
    provider = request.app.state.database
    result = provider()
    assert isinstance(result, Database)
    return result


async def database(request: Request) -> Database:
    """The host's database, handed to the API when it was created (see ``create_api``).

    Async (it does no I/O) so that FastAPI does not send it to a worker thread; the same for
    :func:`writer`. Only what touches the database runs in threads.
    """
    return host_database(request)


def rate_limiter(request: Request) -> Limiter:
    """The app's per-token rate limiter (in this process, or in Redis when ``CRM_REDIS_URL`` is set)."""
    limiter: Limiter = request.app.state.rate_limiter
    return limiter


def resolve_caller(request: Request, authorization: str | None) -> TokenCaller:
    """Authenticate ``authorization`` (``Bearer kst_…``) and count the request; 401 or 429 otherwise.

    The answer is kept on the request, so that a route and its wrappers authenticate once.
    """
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, TokenCaller):
        return cached
    scheme, _, secret = (authorization or "").partition(" ")
    found = authenticate_token(host_database(request), secret.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise ApiProblem(401, "unauthenticated", "api.error.unauthenticated",
                         headers={"WWW-Authenticate": 'Bearer realm="kestrel"'})
    request.state.caller = found
    decision = rate_limiter(request).hit(found.token_id)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise ApiProblem(429, "rate_limited", "api.error.rate_limited", headers=decision.headers(),
                         seconds=decision.reset_seconds)
    return found


def caller(request: Request,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]) -> TokenCaller:
    """The caller of this request (see :func:`resolve_caller`)."""
    return resolve_caller(request, f"Bearer {credentials.credentials}" if credentials else None)


async def caller_async(request: Request) -> TokenCaller:
    """:func:`resolve_caller` from async code (the route wrappers), in a worker thread."""
    return await run_in_threadpool(resolve_caller, request, request.headers.get("authorization"))


Caller = Annotated[TokenCaller, Depends(caller)]


async def writer(found: Caller) -> TokenCaller:
    """A caller that may write: a read-write token of a role that writes; 403 otherwise."""
    if found.scope != "read_write":
        raise ApiProblem(403, "read_only_token", "api.error.read_only_token")
    if not found.can_write:
        raise ApiProblem(403, "access_denied", "error.access_denied")
    return found


Writer = Annotated[TokenCaller, Depends(writer)]
Db = Annotated[Database, Depends(database)]


def last_change_for(request: Request, entity: str, entity_id: int) -> LastChange | None:
    """The last audited change of a record, as the request's caller may read it (None: none, or no caller)."""
    found = getattr(request.state, "caller", None)
    if not isinstance(found, TokenCaller):
        return None
    with host_database(request).session(found.actor) as session:
        return last_change(session, entity, entity_id)
