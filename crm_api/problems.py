"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

One handler per kind of error, installed on the app by :func:`install_problem_handlers`:

| error | status | extension members |
|---|---|---|
| HTTP errors (unknown path, wrong method, :class:`ApiProblem`) | as raised | ``code`` when given |
| a malformed JSON body | 400 | ``code: malformed_body`` |
| request or body that does not fit the endpoint | 422 | ``errors: [{field, code, message, loc}]`` |
| ``NotFound`` | 404 | |
| ``AccessDenied`` | 403 | |
| ``DuplicateCustomer`` | 409 | ``matched_on``, ``action`` (warn/block), ``existing_id`` (if the caller may see it) |
| ``PoolRefused`` (a claim the pool's rules refuse: cap, cooldown, taken) | 409 | ``code`` (its catalog key) |
| ``MergeRefused`` (into itself, merged before, archived, two customers' contacts) | 409 | ``code`` |
| ``StaleRecord`` | 412 | ``changed_by``, ``changed_at``, ``changes`` (the last audited change) |
| ``ValidationFailed`` | 422 | ``errors`` as above |
| any other ``DomainError`` | 422 | ``code`` (its catalog key) |
| anything unexpected | 500 | ``correlation_id`` (the incident id the server log carries) |

``detail`` and each field error's ``message`` are in the caller's language: the request's
``Accept-Language`` (``en`` or ``zh-CN``), else the token user's language, else English.
``code`` never changes with the language: clients branch on it, people read ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_core.errors import (
    AccessDenied,
    DomainError,
    DuplicateCustomer,
    MergeRefused,
    NotFound,
    PoolRefused,
    StaleRecord,
    ValidationFailed,
)
from crm_core.i18n import LANGUAGES, t
from crm_core.incidents import is_database_outage, log_incident

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = PROBLEM_MEDIA_TYPE


class ApiProblem(StarletteHTTPException):
    """An HTTP error the API raises itself (401, 403 scope, 415, 428, 429 …) with a stable ``code``."""

    def __init__(self, status: int, code: str, detail_key: str, *, headers: Mapping[str, str] | None = None,
                 extensions: Mapping[str, Any] | None = None, **params: Any) -> None:
        super().__init__(status, detail=detail_key, headers=dict(headers) if headers else None)
        self.code = code
        self.detail_key = detail_key
        self.params = params
        self.extensions = dict(extensions or {})  # more members of the problem body (a 308's survivor_id)


def problem(status: int, *, detail: str | None = None, headers: Mapping[str, str] | None = None,
            **extensions: Any) -> ProblemResponse:
    """A problem details response: ``type`` about:blank, ``title`` the status phrase, extension members."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def request_language(request: Request) -> str:
    """``en`` or ``zh-CN``: the best of ``Accept-Language`` we speak, else the caller's own, else English."""
    header = request.headers.get("accept-language", "")
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for negative_quality, _, tag in sorted(ranked):
        if negative_quality >= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    caller = getattr(request.state, "caller", None)
    language = getattr(getattr(caller, "actor", None), "language", None)
    return language if language in LANGUAGES else "en"


async def http_error(request: Request, error: Exception) -> ProblemResponse:
    """Starlette's and FastAPI's HTTP errors (404 for every unknown path, 405, …) and ApiProblems."""
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error, ApiProblem):
        language = request_language(request)
        return problem(error.status_code, detail=t(error.detail_key, language, **error.params), headers=error.headers,
                       code=error.code, instance=request.url.path, **error.extensions)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    return problem(error.status_code, detail=detail, headers=error.headers, instance=request.url.path)


# what a request that does not fit the endpoint broke, as the catalog keys the forms use
_PYDANTIC_KEYS = (
    ("missing", "validation.required"), ("too_long", "validation.too_long"), ("int", "validation.number"),
    ("float", "validation.number"), ("decimal", "validation.number"), ("greater", "validation.number"),
    ("less", "validation.number"), ("multiple", "validation.number"), ("bool", "validation.bool"),
    ("date", "validation.date"), ("enum", "validation.choice"), ("literal", "validation.choice"),
    ("extra_forbidden", "api.validation.unknown_field"),
)


def _catalog_key(pydantic_type: str) -> str:
    for fragment, key in _PYDANTIC_KEYS:
        if fragment in pydantic_type:
            return key
    return "validation.text"


_VALIDATOR_STEPS = {"str", "int", "float", "bool", "date", "datetime", "decimal", "list", "dict", "none"}


def _field_path(parts: list[str]) -> list[str]:
    """The field's own path in a pydantic location: without the union members and validator steps it names."""
    return [part for part in parts
            if not any(mark in part for mark in "[(") and part.lower() not in _VALIDATOR_STEPS
            and not part.startswith(("function-", "literal", "lax-", "json-or-python"))]


async def validation_error(request: Request, error: Exception) -> ProblemResponse:
    """A request that does not fit the route: 400 for a body that is not JSON, else 422 with the field errors."""
    assert isinstance(error, RequestValidationError)
    language = request_language(request)
    found = list(error.errors())
    if any(item.get("type") == "json_invalid" for item in found):
        return problem(400, detail=t("api.error.malformed_body", language), code="malformed_body",
                       instance=request.url.path)
    errors: list[dict[str, Any]] = []
    for item in found:
        location = [str(part) for part in item.get("loc", ())]
        field = ".".join(_field_path(location[1:])) or ".".join(location)
        if any(error["field"] == field for error in errors):
            continue  # one message per field (a union reports each of its members)
        key = _catalog_key(str(item.get("type", "")))
        errors.append({"field": field, "code": key, "message": t(key, language), "loc": location})
    return problem(422, detail=t("api.error.request_invalid", language), code="request_invalid",
                   instance=request.url.path, errors=errors)


def field_errors(error: ValidationFailed, language: str) -> list[dict[str, Any]]:
    """A ValidationFailed's field errors, each with its catalog key and its text in ``language``."""
    return [{"field": name, "code": key, "message": t(key, language, **params)}
            for name, (key, params) in sorted(error.errors.items())]


async def domain_error(request: Request, error: Exception) -> ProblemResponse:
    """A named error of crm_core, as its status (see the module's table), in the caller's language."""
    assert isinstance(error, DomainError)
    language = request_language(request)
    detail = t(error.message_key, language, **error.params)
    instance = request.url.path
    if isinstance(error, NotFound):
        return problem(404, detail=detail, code="not_found", instance=instance)
    if isinstance(error, AccessDenied):
        return problem(403, detail=detail, code="access_denied", instance=instance)
    if isinstance(error, DuplicateCustomer):
        extensions: dict[str, Any] = {"matched_on": error.matched_on, "action": error.action}
        if error.existing_id:  # 0 when the duplicate is outside the caller's scope: not revealed
            extensions["existing_id"] = error.existing_id
        return problem(409, detail=detail, code="duplicate", instance=instance, **extensions)
    if isinstance(error, (PoolRefused, MergeRefused)):
        return problem(409, detail=detail, code=error.message_key, instance=instance)
    if isinstance(error, StaleRecord):
        details = await run_in_threadpool(stale_details, request, error)  # reads the audit trail
        return problem(412, detail=detail, code="stale_record", instance=instance, **details)
    if isinstance(error, ValidationFailed):
        return problem(422, detail=t("error.validation_failed", language), code="validation_failed",
                       instance=instance, errors=field_errors(error, language))
    return problem(422, detail=detail, code=error.message_key, instance=instance)


def stale_details(request: Request, error: StaleRecord) -> dict[str, Any]:
    """Who changed the record, when, and which fields, from the audit trail the caller may read."""
    from crm_api.dependencies import last_change_for  # the database lives there; imported late (no cycle)

    change = last_change_for(request, error.entity, error.entity_id)
    if change is None:
        return {"changed_by": error.changed_by, "changed_at": _iso(error.changed_at), "changes": {}}
    return {"changed_by": change.changed_by, "changed_at": _iso(change.changed_at),
            "changes": {name: {"from": values[0], "to": values[1]} for name, values in change.changes.items()
                        if not name.startswith("_") and isinstance(values, list) and len(values) == 2}}


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


async def unexpected_error(request: Request, error: Exception) -> ProblemResponse:
    """Anything else: the traceback goes to the log under a correlation id; the client gets the id only."""
    incident_id = log_incident(error, where=f"API {request.method} {request.url.path}")
    if is_database_outage(error):  # nothing was written; the client may simply retry
        return problem(503, detail=t("error.database_unavailable", request_language(request),
                                     incident=incident_id),
                       headers={"Retry-After": "5"}, correlation_id=incident_id)
    return problem(500, detail=f"An unexpected error occurred; it was logged under reference {incident_id}.",
                   correlation_id=incident_id)


async def answer_for(request: Request, error: Exception) -> ProblemResponse | None:
    """The problem response the handlers give for ``error``; None for an unexpected one (left to propagate)."""
    if isinstance(error, StarletteHTTPException):
        return await http_error(request, error)
    if isinstance(error, RequestValidationError):
        return await validation_error(request, error)
    if isinstance(error, DomainError):
        return await domain_error(request, error)
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through the handlers above."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(Exception, unexpected_error)
