"""The host's browser-hardening headers: the pages' policy, the API's, the API docs'."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from server import SecurityHeaders, content_security_policy, inline_script_hashes


def client() -> TestClient:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"X-Frame-Options": "DENY"} if "own" in str(request.url) else None)

    app = Starlette(routes=[Route("/{path:path}", hello)])
    return TestClient(SecurityHeaders(app, page_policy=content_security_policy("<script>boot()</script>")))


def test_the_pages_load_nothing_from_other_origins_and_run_no_unlisted_inline_script() -> None:
    policy = client().get("/customers").headers["content-security-policy"]
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' data: blob:"
    assert directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    scripts = directives["script-src"].split()
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert inline_script_hashes("<script>boot()</script>")[0] in scripts
    assert not any(source.startswith(("http:", "https:", "*")) for source in policy.split())


def test_every_response_carries_the_hardening_headers_and_keeps_its_own() -> None:
    headers = client().get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "camera=()" in headers["permissions-policy"]
    assert client().get("/own").headers["x-frame-options"] == "DENY"  # a route's own header wins, never doubled


def test_the_api_gets_a_policy_that_allows_nothing_and_its_docs_only_this_host() -> None:
    api = client().get("/api/v1/customers").headers["content-security-policy"]
    assert api.startswith("default-src 'none'") and "frame-ancestors 'none'" in api
    docs = client().get("/api/docs").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in docs and "frame-ancestors 'none'" in docs
    assert "http" not in docs  # no other origin: the docs work without internet access
