"""Schemas shared by every resource: the problem body and the documented error answers.

``errors_for(401, 403, 404, …)`` gives a route's ``responses=`` for OpenAPI: each status with
the problem schema, served as ``application/problem+json``, and a description saying when it
happens. Resource schemas live beside their router (``crm_api/customers.py`` …).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from crm_api.problems import PROBLEM_MEDIA_TYPE

RecordId = Annotated[int, Field(ge=1, le=2**31 - 1, description="A record's id.")]
"""Every id a client sends: a positive 32-bit integer (a larger one would overflow the databases' columns)."""


def naive_utc(value: dt.datetime) -> dt.datetime:
    """A moment as the database keeps it: UTC without an offset (an offset given is converted, none means UTC)."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last moment a datetime holds
        raise ValueError("out of range") from None


def _written_out(value: Any) -> Any:
    """A moment or a day must be written out (ISO 8601): a bare number (or, in a query string, digits) is not
    read as a Unix time."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("+-").isdigit()):
        raise PydanticCustomError("datetime_type", "Write the moment out, e.g. 2026-12-05T09:00:00Z.")
    return value


UtcDateTime = Annotated[dt.datetime, BeforeValidator(_written_out), AfterValidator(naive_utc)]
"""A moment a client sends: ISO 8601; with an offset (``Z``, ``+08:00``) converted to UTC, without one read as UTC.
Answers give every moment in UTC (``Moment``)."""

Day = Annotated[dt.date, BeforeValidator(_written_out)]
"""A day a client sends: ``2026-12-08``."""

def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored moment (naive UTC) marked as UTC, so that answers write it as RFC 3339 with ``Z``."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


Moment = Annotated[dt.datetime, AfterValidator(as_utc)]
"""A moment in an answer: RFC 3339 in UTC, ``2026-12-05T09:12:03Z``."""

def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("missing", "This field may be left out but not set to null.")
    return value


NOT_NULL = AfterValidator(_not_null)
"""On a PATCH field that may be left out but not cleared (``name``, ``version`` …): an explicit null is a 422."""

NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
"""Search text: control characters match nothing a person typed (and break SQLite's full-text query syntax)."""


class FieldError(BaseModel):
    """One refused field."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"field": "email", "code": "validation.email", "message": "Enter a valid email address."}]})

    field: str = Field(description="The field, as named in the request body or query (`email`, `custom.size`).")
    code: str = Field(description="A stable catalog key (`validation.email` …): branch on this.")
    message: str = Field(description="The reason in the caller's language (`Accept-Language`: en or zh-CN).")


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer of the API."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Unprocessable Content", "status": 422, "code": "validation_failed",
         "detail": "Please correct the following and submit again (your input is kept):",
         "instance": "/api/v1/customers",
         "errors": [{"field": "email", "code": "validation.email", "message": "Enter a valid email address."}]},
        {"type": "about:blank", "title": "Unprocessable Content", "status": 422, "code": "validation_failed",
         "detail": "请修改以下内容后重新提交（您的输入已保留）：", "instance": "/api/v1/customers",
         "errors": [{"field": "email", "code": "validation.email", "message": "请输入有效的邮箱地址。"}]},
        {"type": "about:blank", "title": "Precondition Failed", "status": 412, "code": "stale_record",
         "detail": "Not saved: Mei Lin changed this record at 2026-12-05 09:12 (UTC) after you opened it. …",
         "instance": "/api/v1/customers/42", "changed_by": "Mei Lin", "changed_at": "2026-12-05T09:12:03Z",
         "changes": {"lifecycle_stage": {"from": "prospect", "to": "intent"}}},
    ]})

    type: str = Field(default="about:blank", description="Always about:blank: `code` names the problem.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    code: str | None = Field(default=None, description="A stable name of the problem (`stale_record`, `duplicate` …).")
    detail: str | None = Field(default=None, description="What went wrong, in the caller's language (en / zh-CN).")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(default=None, description="422: the refused fields.")
    correlation_id: str | None = Field(default=None, description="500: the reference the server log carries.")


WHEN = {
    400: "A malformed JSON body, a cursor that does not decode or belongs to another list, a bad Idempotency-Key, "
         "an If-Match that is not a quoted version.",
    401: "No token, or a token that is unknown, revoked or expired, or whose user was deactivated (checked on every "
         "request).",
    403: "The token is read-only, or the user's role may not do this (an analyst writes nothing).",
    404: "No such record, or one the caller may not see (the two look the same).",
    409: "`duplicate`: the tenant's duplicate rules find a customer with the same credit code, email, phone or name "
         "(`action`: `warn` or `block`; `existing_id` when the caller may see it); `idempotency_key_in_flight`: the "
         "first request with this Idempotency-Key is still running.",
    412: "`stale_record`: the record changed since the version sent in If-Match (or `version`); the answer says who "
         "changed it, when and which fields. Nothing was written.",
    415: "The body is not `application/json`.",
    422: "Refused fields (`errors`, each message in the `Accept-Language` language: `en` or `zh-CN`), or an "
         "Idempotency-Key reused with another body (`idempotency_key_reused`).",
    428: "The write needs the version it is based on: `If-Match: \"<version>\"` (or `version` in a PATCH body).",
    429: "The token's rate limit (`RateLimit-*` headers) is used up; `Retry-After` says when to try again.",
    500: "An unexpected error; `correlation_id` is the reference in the server log.",
}


def errors_for(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (400, 401, 429 and 500 are always added)."""
    wanted = sorted({*statuses, 400, 401, 429, 500})
    return {status: {"model": Problem, "description": WHEN[status],
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in wanted}
