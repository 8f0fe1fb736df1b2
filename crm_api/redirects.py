"""A merged id answers with its survivor (docs/decisions/0027-merge.md).

A request naming a merged customer or contact in its path — ``GET /v1/customers/7``, ``PATCH``,
``DELETE``, an action — answers ``308 Permanent Redirect``, ``Location`` the same URL on the
record that lives on, and a problem body (``code: merged``, ``survivor_id``). 308 keeps the method
and body: a client that follows it sends its PATCH to the survivor, whose version the merge moved
past every version the old record had, so the old ``If-Match`` is refused (412) rather than
applied to a record the client never read. Installed as a router dependency (customers, contacts).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from crm_api.dependencies import host_database, resolve_caller
from crm_api.problems import ApiProblem
from crm_core.queries.merges import redirect_target

REDIRECT: dict[int | str, dict[str, Any]] = {308: {
    "description": "The record was merged into another: `Location` is the same URL on the record that lives on "
                   "(`survivor_id` in the problem body); a client that follows it keeps the method and body."}}
MAX_ID = 2**31 - 1


def merged_redirect(entity: str, parameter: str, prefix: str) -> Any:
    """A router dependency: a path naming a merged ``entity`` by ``parameter`` is redirected (308) to its survivor."""

    async def redirect_if_merged(request: Request) -> None:
        raw = str(request.path_params.get(parameter, ""))
        if not (raw.isascii() and raw.isdecimal()) or not 0 < int(raw) <= MAX_ID:
            return  # no such parameter on this route, or the route's own validation answers
        survivor = await run_in_threadpool(_survivor, request, entity, int(raw))
        if survivor is None:
            return
        path = request.url.path.replace(f"{prefix}/{raw}", f"{prefix}/{survivor}", 1)
        raise ApiProblem(308, "merged", "api.error.merged", headers={"Location": str(request.url.replace(path=path))},
                         extensions={"survivor_id": survivor}, survivor_id=survivor)

    return Depends(redirect_if_merged)


def _survivor(request: Request, entity: str, record_id: int) -> int | None:
    found = resolve_caller(request, request.headers.get("authorization"))  # 401/429 as the route would answer
    with host_database(request).session(found.actor) as session:
        return redirect_target(session, entity, record_id)
