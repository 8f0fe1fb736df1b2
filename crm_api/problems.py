"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Handlers for HTTP errors (unknown paths, wrong methods), request validation and anything
unexpected; the last one logs the traceback as an incident and returns only its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_core.incidents import log_incident

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = PROBLEM_MEDIA_TYPE


def problem(status: int, *, detail: str | None = None, headers: Mapping[str, str] | None = None,
            **extensions: Any) -> ProblemResponse:
    """A problem details response: ``type`` about:blank, ``title`` the status phrase, extension members."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


async def http_error(request: Request, error: Exception) -> ProblemResponse:
    """Starlette's and FastAPI's HTTP errors (404 for every unknown path, 405, …) as problems."""
    assert isinstance(error, StarletteHTTPException)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    return problem(error.status_code, detail=detail, headers=error.headers, instance=request.url.path)


async def validation_error(request: Request, error: Exception) -> ProblemResponse:
    """A request that does not match the route's declared parameters or body: 422 with the field errors."""
    assert isinstance(error, RequestValidationError)
    return problem(422, detail="The request does not match what this endpoint accepts.",
                   instance=request.url.path, errors=jsonable_encoder(error.errors()))


async def unexpected_error(request: Request, error: Exception) -> ProblemResponse:
    """Anything else: the traceback goes to the log under a correlation id; the client gets the id only."""
    incident_id = log_incident(error, where=f"API {request.method} {request.url.path}")
    return problem(500, detail=f"An unexpected error occurred; it was logged under reference {incident_id}.",
                   correlation_id=incident_id)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through the handlers above."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
