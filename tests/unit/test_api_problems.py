"""The API's errors are RFC 9457 problem details; an unexpected one is logged under the id it returns."""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import Any

import anyio
import pytest
from fastapi import FastAPI

from crm_api import create_api
from crm_core.db import Database


def no_database() -> Database:
    raise AssertionError("these routes must not need the database")


async def _call(app: FastAPI, method: str, path: str, body: bytes = b"",
                content_type: str = "application/json") -> tuple[int, dict[str, str], Any, BaseException | None]:
    """One request through the ASGI interface: (status, headers, JSON body, exception re-raised for the server)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    raised: BaseException | None = None
    try:
        await app(scope, receive, send)
    except Exception as error:  # Starlette re-raises after the 500 response so that servers log it too
        raised = error
    start = next(message for message in sent if message["type"] == "http.response.start")
    headers = {key.decode(): value.decode() for key, value in start["headers"]}
    payload = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], headers, json.loads(payload), raised


def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any, BaseException | None]:
    return anyio.run(lambda: _call(app, method, path, **kwargs))


def test_an_unexpected_error_returns_problem_json_with_the_logged_correlation_id(
        caplog: pytest.LogCaptureFixture) -> None:
    api = create_api(no_database)

    @api.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret detail that must stay in the log")

    with caplog.at_level(logging.ERROR, logger="kestrel"):
        status, headers, problem, raised = call(api, "GET", "/v1/boom")
    assert status == 500
    assert headers["content-type"] == "application/problem+json"
    incident_id = problem["correlation_id"]
    assert len(incident_id) == 8 and int(incident_id, 16) >= 0
    assert problem == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                       "detail": f"An unexpected error occurred; it was logged under reference {incident_id}.",
                       "correlation_id": incident_id}
    assert "secret detail" not in json.dumps(problem)
    [record] = [r for r in caplog.records if r.name == "kestrel"]
    assert record.getMessage().startswith(f"incident {incident_id}: unexpected RuntimeError in API GET /v1/boom")
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])
    assert isinstance(raised, RuntimeError)


def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones() -> None:
    api = create_api(no_database)

    @api.get("/v1/things")
    def things() -> list[str]:
        return []

    status, headers, problem, _ = call(api, "DELETE", "/v1/things")
    assert (status, headers["content-type"], headers["allow"]) == (405, "application/problem+json", "GET")
    assert problem == {"type": "about:blank", "title": "Method Not Allowed", "status": 405, "instance": "/v1/things"}


def test_a_request_that_fails_validation_is_a_422_problem_listing_the_fields() -> None:
    api = create_api(no_database)

    @api.get("/v1/pages/{number}")
    def page(number: int) -> int:
        return number

    status, headers, problem, _ = call(api, "GET", "/v1/pages/first")
    assert (status, headers["content-type"]) == (422, "application/problem+json")
    assert problem["title"] == HTTPStatus(422).phrase  # "Unprocessable Entity" before Python 3.13
    assert [error["loc"] for error in problem["errors"]] == [["path", "number"]]
