"""The ASGI host: uvicorn serves ``server:app``, the whole of Kestrel CRM, from one process.

    uvicorn → st.App("app.py")   the Streamlit frame and its pages (websocket, /_stcore/…)
              /healthz           the process is up
              /readyz            the database answers, its schema is at Alembic head, the job queue answers
              /metrics           Prometheus series (crm_core.metrics; merged across processes)
              /_kestrel/session  turns a one-time login ticket into the HttpOnly login cookie (and …/clear)
              /csat/{token}      the customer's one-click CSAT rating of a resolved case (crm_core.services.csat)
              /m/u|p|o|c/{token} a marketing email's unsubscribe, preferences, open pixel, click (decision 0048)
              /api               the FastAPI app of ``crm_api`` (problem+json errors)

Uncaught script errors reach ``on_script_error``: logged under a correlation id, shown to the
user as a translated message carrying that id, never as a traceback.

``python -m server [--host H] [--port P]`` (what ``make run`` starts) runs uvicorn with the
settings ``streamlit run`` gives it: the sans-I/O websocket protocol, no per-message
compression, Streamlit's message size limit and pings. ``uvicorn server:app`` serves the same
app with uvicorn's own defaults (websocket compression on, 16 MiB frames).
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import hashlib
import importlib
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from crm_api import create_api
from crm_core import logs, schema
from crm_core.config import load_settings
from crm_core.db import Database, open_database
from crm_ui import page_scripts, session_cookie
from crm_ui.context import show_unexpected_error

SCRIPT = Path(__file__).resolve().with_name("app.py")
READINESS_TIMEOUT_SECONDS = 2.0
LOG = logging.getLogger("kestrel")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class HostDatabase:
    """The host's own engine (probes and API), opened on first use and disposed at shutdown.

    The Streamlit frame keeps its own (``crm_ui.context.get_db``): a probe must see whether a
    fresh connection can be had, not borrow one from the pool the pages are using.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._database: Database | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Database:
        with self._lock:
            if self._database is None:
                self._database = open_database(self.url)
            return self._database

    def close(self) -> None:
        """Dispose of the engine's connections (the lifespan's shutdown)."""
        with self._lock:
            if self._database is not None:
                self._database.engine.dispose()
                self._database = None


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: passed, or failed for a reason an operator can act on."""

    ok: bool
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": True} if self.ok else {"ok": False, "reason": self.reason}


PASSED = CheckResult(ok=True)


def check_database(database: Callable[[], Database], results: dict[str, CheckResult]) -> None:
    """``database``: a connection answers ``SELECT 1``; ``schema``: it is at the code's Alembic head."""
    engine = database().engine
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as error:
        LOG.warning("readiness: the database did not answer: %s", error)
        results["database"] = CheckResult(False, f"the database did not answer ({type(error).__name__})")
        results["schema"] = CheckResult(False, "not checked: the database did not answer")
        return
    results["database"] = PASSED
    current, head = schema.current_revision(engine), schema.head_revision()
    if current == head:
        results["schema"] = PASSED
    elif current is None:
        results["schema"] = CheckResult(False, f"the database has no schema, the code is at {head}: "
                                               "run python -m crm_core init")
    else:
        results["schema"] = CheckResult(False, f"the database is at {current}, the code at {head}: "
                                               "run python -m crm_core init")


def check_queue(results: dict[str, CheckResult]) -> None:
    """``queue``: ``crm_core.jobs.queue.queue_reachable()`` answers True (imported here, lazily)."""
    try:
        queue = importlib.import_module("crm_core.jobs.queue")
    except ImportError as error:
        LOG.warning("readiness: the job queue module could not be imported: %s", error)
        results["queue"] = CheckResult(False, "queue module unavailable")
        return
    try:
        reachable = bool(queue.queue_reachable())
    except Exception as error:
        LOG.warning("readiness: the job queue check raised: %s", error)
        results["queue"] = CheckResult(False, f"the job queue check raised {type(error).__name__}")
        return
    results["queue"] = PASSED if reachable else CheckResult(False, "the job queue did not answer")


class GuardedCheck:
    """Runs a blocking check in a worker thread under a deadline, with at most one thread at a time.

    A hung database must not hang the probe: past the deadline the thread is abandoned (it
    finishes on its own) and the checks it had not finished are reported as failed. While it
    is still running, later probes report it as such instead of starting another thread, so a
    long outage cannot pile up threads.
    """

    def __init__(self, names: tuple[str, ...], run: Callable[[dict[str, CheckResult]], None]) -> None:
        self.names = names
        self._run = run
        self._guard = threading.Lock()
        self._busy = False

    async def results(self, timeout: float) -> dict[str, CheckResult]:
        """The checks' results, within ``timeout`` seconds."""
        with self._guard:
            if self._busy:
                still = CheckResult(False, "an earlier check has not returned yet")
                return dict.fromkeys(self.names, still)
            self._busy = True
        results: dict[str, CheckResult] = {}
        state = {"started": False, "abandoned": False}

        def work() -> None:
            with self._guard:
                if state["abandoned"]:
                    return
                state["started"] = True
            try:
                self._run(results)
            except Exception as error:  # a check must report, never take the probe down
                LOG.warning("readiness: %s check raised: %s", "/".join(self.names), error)
                for name in self.names:
                    results.setdefault(name, CheckResult(False, f"the check raised {type(error).__name__}"))
            finally:
                with self._guard:
                    self._busy = False

        try:
            with anyio.fail_after(timeout):
                await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            with self._guard:
                state["abandoned"] = True
                if not state["started"]:
                    self._busy = False
            answered = dict(results)  # the thread may still write; report what it had when time ran out
            pending = [name for name in self.names if name not in answered]
            for position, name in enumerate(pending):
                reason = f"no answer within {timeout:g} s" if position == 0 else "not checked: an earlier check hung"
                answered[name] = CheckResult(False, reason)
            return answered
        for name in self.names:
            results.setdefault(name, CheckResult(False, "the check gave no answer"))
        return results

    @property
    def running(self) -> bool:
        """A thread of this check is still running (one that timed out, say)."""
        with self._guard:
            return self._busy


class Readiness:
    """``/readyz``: the database and the queue are checked side by side, each in its own thread."""

    def __init__(self, database: Callable[[], Database], timeout: float = READINESS_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.checks = (
            GuardedCheck(("database", "schema"), lambda results: check_database(database, results)),
            GuardedCheck(("queue",), check_queue),
        )
        self._last_failed: list[str] | None = None

    async def results(self) -> dict[str, CheckResult]:
        """Every check's result, in a fixed order, within the timeout."""
        found: dict[str, CheckResult] = {}

        async def run(check: GuardedCheck) -> None:
            found.update(await check.results(self.timeout))

        async with anyio.create_task_group() as group:
            for check in self.checks:
                group.start_soon(run, check)
        return {name: found[name] for check in self.checks for name in check.names}

    async def endpoint(self, request: Request) -> JSONResponse:
        """200 with every check passed, else 503 naming the failed ones."""
        results = await self.results()
        failed = [name for name, result in results.items() if not result.ok]
        if failed != self._last_failed:  # a log line when readiness changes, not one per probe
            if failed:
                LOG.warning("readiness: not ready; failed checks: %s", ", ".join(failed))
            elif self._last_failed is not None:
                LOG.info("readiness: ready again")
            self._last_failed = failed
        body: dict[str, Any] = {"status": "not ready" if failed else "ready",
                                "checks": {name: result.as_json() for name, result in results.items()}}
        if failed:
            body["failed"] = failed
        return JSONResponse(body, status_code=503 if failed else 200, headers={"Cache-Control": "no-store"})


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving (no database or queue involved)."""
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def on_script_error(error: Exception) -> bool:
    """st.App's hook for an exception no page caught: log it with an id, show the translated message.

    Returns True so that Streamlit's own exception box (which could carry a trace) stays hidden.
    """
    show_unexpected_error(error)
    return True


def configure_logging() -> None:
    """The ``kestrel`` logger writes to stderr beside uvicorn's, unless already configured.

    Under ``uvicorn server:app``, ``import streamlit`` gives uvicorn's loggers a console
    handler of its own after uvicorn configured them: every access line came out twice and
    ``--no-access-log`` printed them still. Uvicorn's own configuration is kept; Streamlit's
    extra handler is taken off. (``python -m server`` configures all of it up front.)
    """
    for name in ("uvicorn", "uvicorn.access"):
        logger = logging.getLogger(name)
        extra = getattr(logger, "streamlit_console_handler", None)
        if isinstance(extra, logging.Handler):
            logger.removeHandler(extra)
    if LOG.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logs.formatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def inline_script_hashes(index_html: str) -> list[str]:
    """CSP sources (``'sha256-…'``) for the inline scripts of Streamlit's ``index.html``, as installed."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", index_html, re.S)
    ]


def content_security_policy(index_html: str) -> str:
    """The pages' policy: everything from this host only, nothing may frame them.

    No request leaves for another origin (images, scripts, styles, fonts, fetch/websocket): a
    tracking pixel or a script planted in data could not load even if something rendered it.
    Scripts are this host's files, inline scripts by their hash only (the bootstrap of
    ``index.html`` and ``crm_ui.page_scripts``: a script
    planted in data would not run even if something rendered it), the ``blob:`` modules
    Streamlit makes for inline components (the pipeline board) and WebAssembly (Streamlit's
    protobuf decoder); ``'unsafe-inline'`` is needed for styles only (Streamlit's CSS-in-JS).
    """
    hashes = dict.fromkeys(inline_script_hashes(index_html) + inline_script_hashes(page_scripts.all_variants()))
    scripts = " ".join(["'self'", *hashes, "'wasm-unsafe-eval'", "blob:"])
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "frame-src 'self' blob: data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",  # Streamlit's own component frames are this host's
    ])


# /api/docs loads Swagger UI's files from this host (crm_api.app.DOCS_ASSETS) and starts it with an inline script
API_DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeaders:
    """Pure ASGI middleware: the browser-hardening headers on every HTTP response of the host.

    ``Content-Security-Policy`` (see :func:`content_security_policy`), ``X-Frame-Options: SAMEORIGIN``
    (no other site may frame a page: clickjacking; for browsers without ``frame-ancestors``),
    ``X-Content-Type-Options: nosniff``,
    ``Referrer-Policy: same-origin`` (a record's URL never leaves in a Referer) and a
    ``Permissions-Policy`` that turns off camera, microphone, geolocation and payment.
    """

    def __init__(self, app: Any, page_policy: str) -> None:
        self.app = app
        common = [
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.page_headers = [*common, (b"content-security-policy", page_policy.encode())]
        self.api_headers = [*common, (b"content-security-policy", API_CSP.encode())]
        self.docs_headers = [*common, (b"content-security-policy", API_DOCS_CSP.encode())]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = (self.docs_headers if path.rstrip("/") == "/api/docs"
                 else self.api_headers if path == "/api" or path.startswith("/api/") else self.page_headers)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(header for header in extra if header[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1×1 transparent GIF


def cookie_is_secure(request: Request) -> bool:
    """Mark the cookie Secure over HTTPS (uvicorn reads X-Forwarded-Proto from a trusted proxy) or when told to."""
    return request.url.scheme == "https" or os.environ.get("CRM_COOKIE_SECURE", "") == "1"


async def set_session_cookie(request: Request) -> Response:
    """Redeem a one-time login ticket: the browser stores the HttpOnly login cookie (crm_ui.session_cookie)."""
    ticket = request.query_params.get("ticket", "")
    username = session_cookie.TICKETS.redeem(ticket)
    if username is None:
        LOG.info("login cookie not set: the ticket is %s", session_cookie.TICKETS.refusal(ticket))
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    value = session_cookie.cookie_value(username, session_cookie.configured_cookie_key())
    header = session_cookie.set_cookie_header(value, secure=cookie_is_secure(request))
    return Response(PIXEL, media_type="image/gif", headers={"Set-Cookie": header, "Cache-Control": "no-store"})


async def clear_session_cookie(request: Request) -> Response:
    """Drop the login cookie (after a logout or an ended session; it no longer logs in anyway)."""
    header = session_cookie.clear_cookie_header(secure=cookie_is_secure(request))
    return Response(PIXEL, media_type="image/gif", headers={"Set-Cookie": header, "Cache-Control": "no-store"})


def csat_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/csat/{token}``: GET shows the choices, or with ``?score=good|bad`` records the click;
    POST (``score``, ``comment``) adds the optional comment. HTML in the link's language, escaped."""
    from crm_core.errors import ValidationFailed
    from crm_core.services import csat
    from crm_ui import csat_page

    def page(body: str, status: int = 200) -> Response:
        return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    def refused(error: csat.CsatLinkRefused) -> Response:
        return page(csat_page.message_page(f"csat.refused.{error.reason}", error.language),
                    404 if error.reason == "invalid" else 410)

    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "POST":
            form = await request.form()
            score, comment = str(form.get("score", "")), str(form.get("comment", ""))
        else:
            score, comment = request.query_params.get("score", ""), None
        try:
            if not score:
                claim = csat.read_csat_token(token)
                return page(csat_page.choice_page(token, claim.language))
            result = await anyio.to_thread.run_sync(lambda: csat.rate_case(database(), token, score, comment))
        except csat.CsatLinkRefused as error:
            return refused(error)
        except ValidationFailed as error:
            language = csat.read_csat_token(token).language
            if "score" in error.errors:
                return page(csat_page.choice_page(token, language), 400)
            key, params = error.errors["comment"]  # past the form's maxlength: only a hand-made request
            return page(csat_page.message_page(key, language, **params), 400)
        if request.method == "POST":
            return page(csat_page.message_page("csat.comment_saved", result.language))
        return page(csat_page.thanks_page(token, result.score, result.language, updated=result.updated))

    return endpoint


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _not_found_page(language: str = "en") -> Response:
    from crm_ui import marketing_pages

    return _html(marketing_pages.message_page("marketing_mail.page.unknown", language), 404)


def marketing_unsubscribe_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/m/u/{token}``: GET asks (one button), POST unsubscribes at once (RFC 8058 one-click: no login, no
    confirmation); crm_core.marketing.tracking does the work."""
    from crm_core.marketing import tracking
    from crm_ui import marketing_pages

    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "POST":
                done = await anyio.to_thread.run_sync(lambda: tracking.unsubscribe(database(), token))
                key = "marketing_mail.page.already" if done.already else "marketing_mail.page.unsubscribed"
                return _html(marketing_pages.message_page(key, done.language, token=token, address=done.address))
            prefs = await anyio.to_thread.run_sync(lambda: tracking.preferences(database(), token))
        except tracking.UnknownLink:
            return _not_found_page()
        email = next((choice.address for choice in prefs.choices if choice.channel == "email"), "")
        return _html(marketing_pages.unsubscribe_page(token, prefs.language, email))

    return endpoint


def marketing_preferences_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/m/p/{token}``: the person's channels (GET) and their choices (POST, with the token-bound form key)."""
    from crm_core.marketing import tracking
    from crm_ui import marketing_pages

    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "POST":
                form = await request.form()
                wanted = {str(name): str(value) for name, value in form.items() if name != "form_key"}
                form_key = str(form.get("form_key", ""))
                prefs = await anyio.to_thread.run_sync(
                    lambda: tracking.save_preferences(database(), token, form_key, wanted))
                return _html(marketing_pages.preferences_page(token, prefs, saved=True))
            prefs = await anyio.to_thread.run_sync(lambda: tracking.preferences(database(), token))
        except tracking.UnknownLink:
            return _not_found_page()
        except tracking.FormRefused:
            language = await anyio.to_thread.run_sync(lambda: tracking.message_language(database(), token))
            return _html(marketing_pages.message_page("marketing_mail.page.form_refused", language, token=token), 400)
        return _html(marketing_pages.preferences_page(token, prefs))

    return endpoint


def marketing_open_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/m/o/{token}.gif``: the 1x1 pixel, and an ``opened`` touch (404 for a token we never sent)."""
    from crm_core.marketing import tracking

    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            await anyio.to_thread.run_sync(lambda: tracking.record_open(database(), token))
        except tracking.UnknownLink:
            return Response(status_code=404, headers={"Cache-Control": "no-store"})
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})

    return endpoint


def marketing_click_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/m/c/{token}?u=…&s=…``: 302 to ``u`` when ``s`` signs it for this token, else the 404 page."""
    from crm_core.marketing import tracking

    async def endpoint(request: Request) -> Response:
        token = request.path_params["token"]
        url, signature = request.query_params.get("u", ""), request.query_params.get("s", "")
        try:
            target = await anyio.to_thread.run_sync(
                lambda: tracking.click_target(database(), token, url, signature))
        except tracking.UnknownLink:
            return _not_found_page()
        return Response(status_code=302, headers={"Location": target, "Cache-Control": "no-store"})

    return endpoint


def marketing_routes(database: Callable[[], Database]) -> list[BaseRoute]:
    """The routes of a marketing email's links (decision 0048)."""
    return [
        Route("/m/u/{token}", marketing_unsubscribe_endpoint(database), methods=["GET", "POST"]),
        Route("/m/p/{token}", marketing_preferences_endpoint(database), methods=["GET", "POST"]),
        Route("/m/o/{token}.gif", marketing_open_endpoint(database), methods=["GET"]),
        Route("/m/c/{token}", marketing_click_endpoint(database), methods=["GET"]),
    ]


def metrics_endpoint(database: Callable[[], Database]) -> Callable[[Request], Any]:
    """``/metrics``: Prometheus text; jobs waiting per kind and pool use are read at scrape time."""
    from sqlalchemy import func, select

    from crm_core.metrics import StateCollector, exposition
    from crm_core.models.jobs import Job, JobStatus

    def queued_jobs() -> dict[str, int]:
        try:
            with database().system_session("metrics") as session:
                rows = session.execute(select(Job.kind, func.count()).where(Job.status == JobStatus.QUEUED.value)
                                       .group_by(Job.kind))
                return {str(kind): int(count) for kind, count in rows}
        except Exception:  # a scrape must answer while the database is down (the probes say why)
            return {}

    def pools() -> dict[str, tuple[int, int]]:
        from crm_ui.context import get_db

        found = {"api": database().engine.pool, "pages": get_db().engine.pool}
        return {name: (int(getattr(pool, "checkedout", lambda: 0)()), int(getattr(pool, "size", lambda: 0)()))
                for name, pool in found.items()}

    state = StateCollector(queued_jobs, pools)

    async def endpoint(request: Request) -> Response:
        body, content_type = await anyio.to_thread.run_sync(exposition, state)
        return Response(body, media_type=content_type)

    return endpoint


def api_mount(api: Any) -> Mount:
    """``Mount("/api")`` whose pattern also spans a line feed (``%0A``) in the path.

    Starlette compiles the mount's pattern without DOTALL, so ``/api/v1/customers/1%0A2`` fell through
    to the UI's router and an API client got the host's plain-text 404 instead of the API's problem+json.
    """
    mount = Mount("/api", app=api)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def create_app(database_url: str | None = None) -> st.App:
    """The host: Streamlit's app.py with the probes and the /api mount beside it."""
    database = HostDatabase(database_url or load_settings().database_url)
    readiness = Readiness(database)

    @asynccontextmanager
    async def lifespan(_app: st.App) -> AsyncIterator[None]:
        configure_logging()
        started = time.perf_counter()
        imported = warm_up()
        LOG.info("host: serving %s (%d modules of the frame and the landing page imported in %.1f s)",
                 SCRIPT.name, imported, time.perf_counter() - started)
        try:
            yield
        finally:
            database.close()

    routes: list[BaseRoute] = [
        Route(f"/{LANDING_PATH}", landing_redirect, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness.endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint(database), methods=["GET"]),
        Route(session_cookie.SET_PATH, set_session_cookie, methods=["GET"]),
        Route(session_cookie.CLEAR_PATH, clear_session_cookie, methods=["GET"]),
        Route("/csat/{token}", csat_endpoint(database), methods=["GET", "POST"]),
        *marketing_routes(database),
        api_mount(create_api(database)),
    ]
    index_html = (Path(st.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    middleware = [Middleware(SecurityHeaders, page_policy=content_security_policy(index_html))]
    return st.App(SCRIPT, routes=routes, lifespan=lifespan, middleware=middleware,
                  on_script_error=on_script_error)


# The frame and every role's landing page. Their first run imports pandas, plotly, the frame's crm_ui modules and
# the rest (1 to 2 s of CPU), under Python's import lock: after a restart, every user logging in at once waited for
# it (a sampling profile of 10 sessions showed the script threads queued on that lock). The host imports them
# before it serves; a replica is ready when its first user would be quick.
WARM_SCRIPTS = (SCRIPT, SCRIPT.with_name("pages") / "dashboard.py")
# Streamlit reads its emoji catalogue the first time a page icon is an emoji (app.py's page icon)
WARM_EXTRA = ("streamlit.emojis",)
# Left to the frame's first run: importing streamlit_authenticator imports extra_streamlit_components, which declares
# its custom components, and Streamlit registers a component only when it is declared inside a script run. Declared
# here, outside one, Streamlit would print its plain-text "missing ScriptRunContext!" warning per component (and
# their files would answer 404 for the life of the process; the frame draws none of them since decision 0063).
WARM_SKIPPED = ("streamlit_authenticator",)


def script_imports(path: Path) -> list[str]:
    """The modules a script imports at its top level, in order (``import x`` and ``from x import y``)."""
    names: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module != "__future__":
            names.append(node.module)
    return names


def warm_up() -> int:
    """Import :data:`WARM_SCRIPTS`' modules now, but for :data:`WARM_SKIPPED`' packages; returns how many. A module
    that fails to import is logged and left to the page's own run, which shows its error as any page does."""
    imports = [name for path in WARM_SCRIPTS for name in script_imports(path)]
    names = [name for name in dict.fromkeys([*imports, *WARM_EXTRA]) if name.partition(".")[0] not in WARM_SKIPPED]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # a broken module must not keep the host from serving the pages that work
            LOG.warning("host: importing %s ahead of the first page failed: %s", name, error)
    return len(names)


LANDING_PATH = "dashboard"  # every role's first page (crm_ui.navigation), which Streamlit serves at "/"


async def landing_redirect(request: Request) -> Response:
    """``/dashboard`` (a bookmark, a typed address) opens the landing page at ``/``, its link's own address.

    Streamlit serves the default page at ``/`` only and answers its name with an English "Page not found"
    dialog over the page.
    """
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/{query}", status_code=307)


app = create_app()


def uvicorn_options() -> dict[str, Any]:
    """The uvicorn settings ``streamlit run`` uses, read from Streamlit's configuration.

    Streamlit's runner builds them in a private function; calling it keeps them in step with the
    pinned Streamlit (tests/integration/test_host.py fails if it goes away) rather than copying
    its constants here.
    """
    from streamlit.web.server.starlette.starlette_server import _get_uvicorn_config_kwargs

    return dict(_get_uvicorn_config_kwargs())


def logging_config() -> dict[str, Any]:
    """Uvicorn's logging configuration plus the ``kestrel`` logger, for ``python -m server``.

    ``import streamlit`` turned propagation off on ``uvicorn.error``, and uvicorn's own
    configuration does not turn it back on: its start-up lines and errors were lost.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["propagate"] = True
    config["formatters"]["kestrel"] = {"format": LOG_FORMAT}
    config["handlers"]["kestrel"] = {"class": "logging.StreamHandler", "formatter": "kestrel",
                                     "stream": "ext://sys.stderr"}
    config["loggers"]["kestrel"] = {"handlers": ["kestrel"], "level": "INFO", "propagate": False}
    if logs.json_lines():  # CRM_LOG_FORMAT=json: uvicorn's lines and ours as JSON objects
        config["formatters"] = {name: {"()": "crm_core.logs.formatter"} for name in config["formatters"]}
    return config


def main(argv: list[str] | None = None) -> None:
    """``python -m server``: serve :data:`app` under uvicorn on HOST:PORT until SIGINT or SIGTERM."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve Kestrel CRM (server:app) under uvicorn with the settings streamlit run would use.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="the port to listen on (default 8501)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request (off: probes would flood it)")
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_config=logging_config(),
                **{**uvicorn_options(), "access_log": args.access_log})


if __name__ == "__main__":
    main()
